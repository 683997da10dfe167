#!/usr/bin/env bash
# cargo-deny over the dependency tree, with the rules in deny.toml: licenses,
# banned crates (OpenSSL: TLS is rustls only) and crate sources always;
# security advisories when a local copy of the RustSec advisory database exists.
#
# cargo-deny itself is pinned and installed from crates.io into
# target/tools (about 2.5 minutes once on two cores; reused after).
# The advisory database lives on GitHub, which this machine and CI cannot
# reach, and the tests send nothing off-host: the script never fetches it.
# Where a copy is present ($CARGO_HOME/advisory-dbs, where `cargo deny fetch`
# puts it on a machine that can reach GitHub), the advisories are checked
# against it, offline; otherwise the script says they were skipped, and why.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
version="0.20.2"
tools="$root/target/tools"
deny="$tools/bin/cargo-deny"

if ! "$deny" --version 2>/dev/null | grep -qx "cargo-deny $version"; then
    echo "cargo-deny $version: installing into target/tools (once)"
    log="$(mktemp)"
    if ! cargo install --locked --quiet "cargo-deny@$version" --root "$tools" >"$log" 2>&1; then
        cat "$log" >&2
        echo "deny: installing cargo-deny $version failed" >&2
        exit 1
    fi
    rm -f "$log"
fi

cd "$root"
"$deny" --log-level error check licenses bans sources
echo "cargo deny: licenses, bans and sources ok (deny.toml)"

db="${CARGO_HOME:-$HOME/.cargo}/advisory-dbs"
if compgen -G "$db/*/crates" >/dev/null; then
    "$deny" --offline --log-level error check advisories
    echo "cargo deny: advisories ok (local database in $db)"
else
    echo "cargo deny: advisories SKIPPED: no local RustSec advisory database in $db" \
        "(GitHub is not reachable here; 'cargo deny fetch' makes one where it is)"
fi
