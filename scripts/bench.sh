#!/usr/bin/env bash
# scripts/bench.sh [N] [M] [--controls LIST]: the storm benchmark. Starts the
# emulators on 127.0.0.1 with Security Hub's quota enforced, loads N FAILED
# findings (default 10000; Neptune.2, or round-robin over the cluster controls
# of --controls) over M prod clusters (default 200), drains them with
# the release build of hubtriage and, in the same run, a sample with a naive
# consumer (scripts/bench.py). Writes target/bench/result.json and prints a
# table. Measures; asserts nothing. See docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/.."

n="${1:-10000}"
m="${2:-200}"
if ! [[ "$n" =~ ^[1-9][0-9]*$ && "$m" =~ ^[1-9][0-9]*$ ]]; then
    echo "usage: scripts/bench.sh [N findings, default 10000] [M clusters, default 200] [--controls Neptune.1,Neptune.2,...]" >&2
    exit 64
fi

echo "== release build" >&2
cargo build --release --quiet
echo "== emulator venv (moto, pinned)" >&2
python="$(scripts/emulator-venv.sh | tail -n1)"
echo "== benchmark: $n findings over $m clusters" >&2
"$python" scripts/bench.py "$n" "$m" "${@:3}"
