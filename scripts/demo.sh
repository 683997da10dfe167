#!/usr/bin/env bash
# The main job on local data: what hubtriage decides for sample findings.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --quiet
bin=target/debug/hubtriage
fx=tests/fixtures

echo "== hubtriage check-config --config config/hubtriage.toml"
"$bin" check-config --config config/hubtriage.toml

echo
echo "== prod cluster on the default parameter group (rule: ticket)"
"$bin" explain --config config/hubtriage.toml --event "$fx/neptune2-failed-event.json" \
  --clusters "$fx/describe-db-clusters.json" --parameters "$fx/describe-db-cluster-parameters.json" \
  --tags "$fx/list-tags-for-resource.json"

echo
echo "== the same cluster tagged env=dev (rule: remediate, with its plan)"
"$bin" explain --config config/hubtriage.toml --event "$fx/neptune2-failed-event.json" \
  --clusters "$fx/describe-db-clusters.json" --parameters "$fx/describe-db-cluster-parameters.json" \
  --tags "$fx/list-tags-dev.json"

echo
echo "== two findings; the second cluster already exports audit with the parameter on (resolve)"
"$bin" explain --config config/hubtriage.toml --event "$fx/two-findings-event.json" \
  --clusters "$fx/describe-db-clusters-three.json" \
  --parameters "$fx/describe-db-cluster-parameters-audit-on.json"
