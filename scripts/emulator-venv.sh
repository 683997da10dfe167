#!/usr/bin/env bash
# Create (idempotently) the Python venv for the local AWS emulator at
# <repo>/.venv-emulator and install tests/emulator/requirements.txt (moto,
# pinned) into it. Quiet unless something fails; the last stdout line is the
# venv's python path. See scripts/lib/pyvenv.sh.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/lib/pyvenv.sh
source "$root/scripts/lib/pyvenv.sh"

py="$(pyvenv "$root/.venv-emulator" "$root/tests/emulator/requirements.txt" emulator-venv)"
"$py" -c 'import moto, boto3, werkzeug' >/dev/null 2>&1 \
    || { echo "emulator-venv: the installed packages do not import" >&2; exit 1; }
echo "$py"
