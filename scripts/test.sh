#!/usr/bin/env bash
# Everything the project tests: formatting, lints (Rust, Dockerfile, CloudFormation),
# cargo-deny's dependency checks,
# the emulator's self-test, unit tests, CLI tests, template tests and the
# end-to-end tests against the local emulators
# (127.0.0.1 only). Installs what it needs itself (a Python venv for moto).
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets --quiet -- -D warnings

echo "== cargo deny: licenses, bans, sources (and advisories from a local database), deny.toml"
scripts/deny.sh

echo "== deployment lint: hadolint (Dockerfile) and cfn-lint (deploy/*.yaml), pinned"
scripts/lint-deploy.sh

echo "== emulator venv (moto, pinned) and the emulator's self-test"
python="$(scripts/emulator-venv.sh | tail -n1)"
"$python" tests/emulator/test_hubemu.py
echo "== ticket system fakes' self-test (Jira Cloud, Jira Data Center, ServiceNow)"
"$python" tests/emulator/test_ticketfakes.py

echo "== cargo test (unit, CLI, property and end-to-end tests)"
cargo test --all-targets
