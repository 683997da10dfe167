#!/usr/bin/env bash
# Everything the project tests: formatting, lints, unit tests, CLI tests and the
# end-to-end tests against local emulators (loopback only).
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets --quiet -- -D warnings

echo "== cargo test"
cargo test --all-targets
