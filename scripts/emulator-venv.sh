#!/usr/bin/env bash
# Create (idempotently) the Python venv for the local AWS emulator at
# <repo>/.venv-emulator and install tests/emulator/requirements.txt into it.
# The install is skipped when a stamp records the same requirements hash and
# Python version. Quiet unless something fails; the last stdout line is the
# venv's python path.
#
# Env: PYTHON=python3.11 to pick the interpreter (default: python3.11 if
# present, else python3).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv-emulator"
req="$root/tests/emulator/requirements.txt"
stamp="$venv/.requirements.sha256"
log="$venv/.setup.log"

if [[ -z "${PYTHON:-}" ]]; then
    if command -v python3.11 >/dev/null 2>&1; then PYTHON=python3.11; else PYTHON=python3; fi
fi

fail() {
    echo "emulator-venv: $*" >&2
    if [[ -f "$log" ]]; then
        echo "---- $log (last 60 lines) ----" >&2
        tail -n 60 "$log" >&2
    fi
    exit 1
}

command -v "$PYTHON" >/dev/null 2>&1 || fail "$PYTHON not found"
"$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 9) else 1)' \
    || fail "$PYTHON is older than 3.9"

mkdir -p "$venv"
# Keep the venv out of git without touching the repo's .gitignore.
[[ -f "$venv/.gitignore" ]] || echo '*' > "$venv/.gitignore"

# Serialise concurrent callers (e.g. parallel test binaries).
if command -v flock >/dev/null 2>&1; then
    exec 9>"$venv/.lock"
    flock 9
fi

py="$venv/bin/python"
want="$( { cat "$req"; "$PYTHON" -c 'import sys; print(sys.version)'; } | sha256sum | cut -d' ' -f1)"

if [[ -x "$py" ]] && "$py" -c 'import sys' >/dev/null 2>&1 \
    && [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    echo "$py"
    exit 0
fi

: > "$log"
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1

if ! { [[ -x "$py" ]] && "$py" -m pip --version >/dev/null 2>&1; }; then
    rm -rf "$venv/bin" "$venv/lib" "$venv/lib64" "$venv/include" "$venv/pyvenv.cfg"
    if ! "$PYTHON" -m venv "$venv" >>"$log" 2>&1; then
        # Debian/Ubuntu without python3-venv (no ensurepip): use virtualenv from PyPI.
        echo "python -m venv failed; falling back to virtualenv" >>"$log"
        rm -rf "$venv/bin" "$venv/lib" "$venv/lib64" "$venv/include" "$venv/pyvenv.cfg"
        tools="$venv/.virtualenv-tool"
        "$PYTHON" -m pip install --quiet --target "$tools" virtualenv >>"$log" 2>&1 \
            || fail "could not create a venv (python -m venv and virtualenv both failed)"
        PYTHONPATH="$tools" "$PYTHON" -m virtualenv "$venv" >>"$log" 2>&1 \
            || fail "virtualenv failed"
    fi
fi

"$py" -m pip install --quiet -r "$req" >>"$log" 2>&1 || fail "pip install -r $req failed"
"$py" -c 'import moto, boto3, werkzeug' >>"$log" 2>&1 || fail "installed packages do not import"

echo "$want" > "$stamp"
echo "$py"
