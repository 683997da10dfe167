//! Micro-benchmark: parse a finding event and decide it, the CPU work hubtriage
//! does per finding (`cargo bench --bench parse_decide`). Inputs are the sample
//! event and the saved AWS CLI outputs in tests/fixtures; the config is
//! config/hubtriage.toml. Results: docs/benchmarks.md.

use chrono::{TimeZone, Utc};
use divan::{black_box, Bencher};

use hubtriage::config::Config;
use hubtriage::decide::{decide, AccountReach};
use hubtriage::finding::parse_event;
use hubtriage::state::cli::{
    self, DescribeDbClusterParameters, DescribeDbClusters, ListTagsForResource,
};
use hubtriage::state::ClusterState;

const EVENT: &str = include_str!("../tests/fixtures/neptune2-failed-event.json");
const CLUSTERS: &str = include_str!("../tests/fixtures/describe-db-clusters.json");
const PARAMETERS: &str = include_str!("../tests/fixtures/describe-db-cluster-parameters.json");
const TAGS: &str = include_str!("../tests/fixtures/list-tags-for-resource.json");
/// The example config a new user starts from (its rules and suppressions).
const CONFIG: &str = include_str!("../config/hubtriage.toml");

fn main() {
    divan::main();
}

fn inputs() -> (Config, ClusterState) {
    let config =
        Config::from_toml_with_env("config/hubtriage.toml", CONFIG, vec![]).expect("config");
    let listing: DescribeDbClusters = serde_json::from_str(CLUSTERS).expect("clusters");
    let parameters: DescribeDbClusterParameters =
        serde_json::from_str(PARAMETERS).expect("parameters");
    let tags: ListTagsForResource = serde_json::from_str(TAGS).expect("tags");
    let state = cli::cluster_state(
        &listing,
        "arn:aws:rds:us-east-1:111122223333:cluster:orders-graph",
        parameters.audit_parameter(),
        tags.into_map(),
    )
    .expect("the sample cluster");
    (config, state)
}

/// One finding: parse its event, then decide it from live state.
#[divan::bench]
fn parse_and_decide(bencher: Bencher) {
    let (config, state) = inputs();
    let reach = AccountReach::own("111122223333");
    let now = Utc.with_ymd_and_hms(2026, 11, 26, 12, 0, 0).unwrap();
    bencher.bench_local(|| {
        let findings = parse_event(black_box(EVENT.as_bytes())).expect("the sample parses");
        findings
            .iter()
            .map(|f| decide(f, Some(&state), &config, &reach, now))
            .collect::<Vec<_>>()
    });
}

/// The parse alone.
#[divan::bench]
fn parse(bencher: Bencher) {
    bencher.bench_local(|| parse_event(black_box(EVENT.as_bytes())).expect("the sample parses"));
}

/// The decision alone.
#[divan::bench]
fn decide_only(bencher: Bencher) {
    let (config, state) = inputs();
    let reach = AccountReach::own("111122223333");
    let now = Utc.with_ymd_and_hms(2026, 11, 26, 12, 0, 0).unwrap();
    let findings = parse_event(EVENT.as_bytes()).expect("the sample parses");
    bencher.bench_local(|| decide(black_box(&findings[0]), Some(&state), &config, &reach, now));
}
