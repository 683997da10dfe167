#!/usr/bin/env bash
# The main job on local data: hubtriage drains a queue of Security Hub Neptune.2
# findings against local emulators (127.0.0.1 only) and shows what it did.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== building hubtriage"
cargo build --quiet
echo "== preparing the emulator (Python venv with moto, first time only)"
python="$(scripts/emulator-venv.sh | tail -n1)"
"$python" scripts/demo.py --bin target/debug/hubtriage --python "$python"

echo
echo "== offline: hubtriage explain on saved AWS CLI outputs"
target/debug/hubtriage explain --config config/hubtriage.toml \
  --event tests/fixtures/neptune2-failed-event.json \
  --clusters tests/fixtures/describe-db-clusters.json \
  --parameters tests/fixtures/describe-db-cluster-parameters.json \
  --tags tests/fixtures/list-tags-dev.json
