#!/usr/bin/env bash
# pyvenv DIR REQUIREMENTS NAME: create (idempotently) a Python venv at DIR and
# pip-install the pinned REQUIREMENTS file into it. The install is skipped when a
# stamp records the same requirements and Python version. Quiet unless something
# fails (then NAME, the reason and the tail of the install log go to stderr and
# the caller exits 1). Prints the venv's python path. Needs only python3 (3.9+)
# with pip; without python3-venv it falls back to virtualenv from PyPI.
#
# Env: PYTHON=python3.11 to pick the interpreter (default: python3.11 if
# present, else python3).

pyvenv() {
    local venv="$1" req="$2" name="$3"
    local stamp="$venv/.requirements.sha256" log="$venv/.setup.log"
    local python="${PYTHON:-}"
    if [[ -z "$python" ]]; then
        if command -v python3.11 >/dev/null 2>&1; then python=python3.11; else python=python3; fi
    fi

    _pyvenv_fail() {
        echo "$name: $*" >&2
        if [[ -f "$log" ]]; then
            echo "---- $log (last 60 lines) ----" >&2
            tail -n 60 "$log" >&2
        fi
        exit 1
    }

    command -v "$python" >/dev/null 2>&1 || _pyvenv_fail "$python not found"
    "$python" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 9) else 1)' \
        || _pyvenv_fail "$python is older than 3.9"
    [[ -f "$req" ]] || _pyvenv_fail "no requirements file $req"

    mkdir -p "$venv"
    # Keep the venv out of git without touching the repo's .gitignore.
    [[ -f "$venv/.gitignore" ]] || echo '*' > "$venv/.gitignore"

    # Serialise concurrent callers (parallel test binaries, say).
    if command -v flock >/dev/null 2>&1; then
        exec 9>"$venv/.lock"
        flock 9
    fi

    local py="$venv/bin/python" want
    want="$( { cat "$req"; "$python" -c 'import sys; print(sys.version)'; } | sha256sum | cut -d' ' -f1)"
    if [[ -x "$py" ]] && "$py" -c 'import sys' >/dev/null 2>&1 \
        && [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
        echo "$py"
        return 0
    fi

    : > "$log"
    export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1
    if ! { [[ -x "$py" ]] && "$py" -m pip --version >/dev/null 2>&1; }; then
        rm -rf "${venv:?}/bin" "${venv:?}/lib" "${venv:?}/lib64" "${venv:?}/include" "${venv:?}/pyvenv.cfg"
        if ! "$python" -m venv "$venv" >>"$log" 2>&1; then
            # Debian/Ubuntu without python3-venv (no ensurepip): use virtualenv from PyPI.
            echo "python -m venv failed; falling back to virtualenv" >>"$log"
            rm -rf "${venv:?}/bin" "${venv:?}/lib" "${venv:?}/lib64" "${venv:?}/include" "${venv:?}/pyvenv.cfg"
            local tools="$venv/.virtualenv-tool"
            "$python" -m pip install --quiet --target "$tools" virtualenv >>"$log" 2>&1 \
                || _pyvenv_fail "could not create a venv (python -m venv and virtualenv both failed)"
            PYTHONPATH="$tools" "$python" -m virtualenv "$venv" >>"$log" 2>&1 \
                || _pyvenv_fail "virtualenv failed"
        fi
    fi
    "$py" -m pip install --quiet -r "$req" >>"$log" 2>&1 || _pyvenv_fail "pip install -r $req failed"
    echo "$want" > "$stamp"
    echo "$py"
}
