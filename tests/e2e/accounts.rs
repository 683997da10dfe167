//! An organisation, not one account: findings of member accounts are read and
//! fixed through the role hubtriage assumes in each (`[accounts] role_arn`),
//! against the emulators (moto's AssumeRole credentials act in the role's
//! account). The daemon runs in the administrator account, `support::ACCOUNT`.

use crate::support;

use std::time::Duration;

use serde_json::{json, Value};

use support::{show, World, WorldOptions, ACCOUNT, REGION};

const LIMIT: Duration = Duration::from_secs(150);
const MEMBER_A: &str = "222222222222";
const MEMBER_B: &str = "333333333333";
const MEMBER_C: &str = "444444444444";
const OTHER_REGION: &str = "eu-west-1";
const EXTERNAL_ID_ENV: &str = "HUBTRIAGE_TEST_EXTERNAL_ID";
const EXTERNAL_ID: &str = "org-7f3a-hubtriage";

fn accounts_table() -> String {
    format!(
        "\n[accounts]\nrole_arn = \"arn:aws:iam::{{account}}:role/hubtriage-member\"\nexternal_id_env = \"{EXTERNAL_ID_ENV}\"\n"
    )
}

/// A one-instance dev cluster `id` in `account` and `region`, created with that
/// account's credentials; returns its ARN.
async fn member_cluster(w: &World, account: &str, region: &str, id: &str) -> String {
    let spec = support::ClusterSpec {
        id,
        tags: &[("env", "dev")],
        members: 1,
        ..Default::default()
    };
    w.create_cluster_in(account, region, spec).await
}

/// The Neptune.2 finding Security Hub raises in `account` and `region` for `arn`.
fn member_finding(w: &World, account: &str, region: &str, arn: &str, n: usize) -> Value {
    w.finding("graph", |f| {
        let id = format!("arn:aws:securityhub:{region}:{account}:security-control/Neptune.2/finding/member-{account}-{n}");
        f["Id"] = json!(id);
        f["AwsAccountId"] = json!(account);
        f["Region"] = json!(region);
        f["ProductArn"] = json!(format!(
            "arn:aws:securityhub:{region}::product/aws/securityhub"
        ));
        f["Resources"] =
            json!([{"Type": "AwsRdsDbCluster", "Id": arn, "Partition": "aws", "Region": region}]);
        f["ProductFields"]["Resources:0/Id"] = json!(arn);
    })
}

/// The AssumeRole calls the daemon made, as (role ARN, external id).
fn assume_role_calls(w: &World) -> Vec<(String, String)> {
    w.emu
        .calls("sts", "AssumeRole")
        .iter()
        .filter(|c| {
            c["request"]["RoleSessionName"]
                .as_str()
                .is_some_and(|s| s == "hubtriage")
        })
        .map(|c| {
            (
                c["request"]["RoleArn"].as_str().unwrap_or("").to_string(),
                c["request"]["ExternalId"]
                    .as_str()
                    .unwrap_or("")
                    .to_string(),
            )
        })
        .collect()
}

fn role_of(account: &str) -> String {
    format!("arn:aws:iam::{account}:role/hubtriage-member")
}

#[tokio::test(flavor = "multi_thread")]
async fn member_clusters_in_two_regions_are_fixed_through_their_roles_and_no_other_is_touched() {
    let w = World::new(WorldOptions {
        visibility_seconds: 10,
        max_receive_count: 5,
    })
    .await;
    // The administrator's own `graph` is prod (a ticket); each member has a dev
    // `graph` of its own (remediate), A in the daemon's region, B in another.
    w.create_cluster(support::ClusterSpec {
        id: "graph",
        tags: &[("env", "prod")],
        members: 1,
        ..Default::default()
    })
    .await;
    let a = member_cluster(&w, MEMBER_A, REGION, "graph").await;
    let b = member_cluster(&w, MEMBER_B, OTHER_REGION, "graph").await;
    for account in [ACCOUNT, MEMBER_A, MEMBER_B] {
        let (status, v) = w.emu.http(
            "POST",
            "/_emu/iam/rds-service-linked-role",
            Some(&json!({"account": account})),
        );
        assert_eq!(status, 200, "{v}");
    }
    let own = w.finding("graph", |_| {});
    let fa = member_finding(&w, MEMBER_A, REGION, &a, 1);
    let fb = member_finding(&w, MEMBER_B, OTHER_REGION, &b, 1);
    w.import(&[own.clone(), fa.clone(), fb.clone()]);
    w.emu.http("DELETE", "/_emu/calls", None);

    let remediation = "mode = \"apply\"\nreboot = \"immediate\"\nrecheck_seconds = 1\n".to_string();
    let out = w.drain_with_env(
        &w.config_with(&remediation, &accounts_table()),
        &[(EXTERNAL_ID_ENV, EXTERNAL_ID)],
        LIMIT,
    );

    // Each member's own cluster is fixed, in its own account and region.
    for (account, region) in [(MEMBER_A, REGION), (MEMBER_B, OTHER_REGION)] {
        let c = w
            .neptune_at(account, region)
            .await
            .describe_db_clusters()
            .db_cluster_identifier("graph")
            .send()
            .await
            .unwrap()
            .db_clusters
            .unwrap()
            .remove(0);
        assert!(
            c.enabled_cloudwatch_logs_exports()
                .contains(&"audit".to_string()),
            "{account} {region}: {c:?}\n{}",
            show(&out)
        );
        assert_eq!(
            c.db_cluster_parameter_group(),
            Some("hubtriage-audit-graph"),
            "{account} {region}"
        );
    }
    for f in [&fa, &fb] {
        let got = w.stored(f["Id"].as_str().unwrap());
        assert_eq!(
            got["Workflow"]["Status"],
            "RESOLVED",
            "{got}\n{}",
            show(&out)
        );
        assert!(
            got["Note"]["Text"]
                .as_str()
                .is_some_and(|n| n.contains("remediated")),
            "{got}"
        );
    }
    // The administrator's same-named prod cluster: decided from its own state
    // (a ticket), never changed.
    let mine = w.cluster("graph").await;
    assert_eq!(
        mine.db_cluster_parameter_group(),
        Some("default.neptune1.3")
    );
    assert!(!mine
        .enabled_cloudwatch_logs_exports()
        .contains(&"audit".to_string()));
    let got = w.stored(own["Id"].as_str().unwrap());
    assert_eq!(got["Workflow"]["Status"], "NOTIFIED", "{got}");

    // One AssumeRole per member account for the whole run, each with the
    // external id; none for the daemon's own account (direct).
    let mut calls = assume_role_calls(&w);
    calls.sort();
    assert_eq!(
        calls,
        vec![
            (role_of(MEMBER_A), EXTERNAL_ID.to_string()),
            (role_of(MEMBER_B), EXTERNAL_ID.to_string()),
        ],
        "{}",
        show(&out)
    );
    // The external id never reaches the logs.
    assert!(!String::from_utf8_lossy(&out.stdout).contains(EXTERNAL_ID));
    assert!(!String::from_utf8_lossy(&out.stderr).contains(EXTERNAL_ID));
}

#[tokio::test(flavor = "multi_thread")]
async fn out_of_scope_accounts_are_never_entered_and_an_unreachable_one_blocks_no_other() {
    let w = World::new(WorldOptions {
        visibility_seconds: 10,
        max_receive_count: 2,
    })
    .await;
    let a1 = member_cluster(&w, MEMBER_A, REGION, "graph").await;
    let a2 = member_cluster(&w, MEMBER_A, REGION, "orders").await;
    let b = member_cluster(&w, MEMBER_B, REGION, "graph").await;
    let c = member_cluster(&w, MEMBER_C, REGION, "graph").await;
    let fa1 = member_finding(&w, MEMBER_A, REGION, &a1, 1);
    let fa2 = member_finding(&w, MEMBER_A, REGION, &a2, 2);
    let fb = member_finding(&w, MEMBER_B, REGION, &b, 1);
    let fc = member_finding(&w, MEMBER_C, REGION, &c, 1);
    w.import(&[fa1.clone(), fa2.clone(), fb.clone(), fc.clone()]);
    w.emu.http("DELETE", "/_emu/calls", None);
    // C's role cannot be assumed (its member stack is missing).
    let (status, v) = w.emu.http(
        "POST",
        "/_emu/faults",
        Some(&json!({
            "operation": "AssumeRole",
            "request_contains": MEMBER_C,
            "error_code": "AccessDenied",
            "status": 403,
            "message": "User is not authorized to perform: sts:AssumeRole",
            "count": 100
        })),
    );
    assert_eq!(status, 200, "{v}");

    let extra = format!(
        "{}\n[scope]\naccounts = [\"{ACCOUNT}\", \"{MEMBER_A}\", \"{MEMBER_C}\"]\n",
        accounts_table()
    );
    let out = w.drain_with_env(&w.config(&extra), &[(EXTERNAL_ID_ENV, EXTERNAL_ID)], LIMIT);

    // A's findings are decided from A's live state and recorded in the same
    // run, with one AssumeRole for both.
    for f in [&fa1, &fa2] {
        let got = w.stored(f["Id"].as_str().unwrap());
        assert_eq!(
            got["Workflow"]["Status"],
            "NOTIFIED",
            "{got}\n{}",
            show(&out)
        );
    }
    let calls = assume_role_calls(&w);
    let to = |account: &str| calls.iter().filter(|(r, _)| *r == role_of(account)).count();
    assert_eq!(to(MEMBER_A), 1, "{calls:?}");
    assert!(calls.iter().all(|(_, e)| e == EXTERNAL_ID), "{calls:?}");

    // B is outside [scope]: no AssumeRole into it, nothing recorded.
    assert_eq!(to(MEMBER_B), 0, "{calls:?}");
    let got = w.stored(fb["Id"].as_str().unwrap());
    assert_eq!(got["Workflow"]["Status"], "NEW", "{got}");

    // C cannot be reached: not decided, not recorded, its message in the DLQ,
    // a log line naming the account, the role and the error code, and the metric.
    assert!(to(MEMBER_C) >= 1, "{calls:?}");
    let got = w.stored(fc["Id"].as_str().unwrap());
    assert_eq!(got["Workflow"]["Status"], "NEW", "{got}");
    assert_eq!(w.updates_of(fc["Id"].as_str().unwrap()), 0);
    assert_eq!(w.depth(&w.dlq_url).await, 1, "{}", show(&out));
    let unreachable: Vec<Value> = support::log_lines(&out)
        .into_iter()
        .filter(|l| {
            l["message"]
                .as_str()
                .is_some_and(|m| m.contains("cannot be reached"))
        })
        .collect();
    assert!(!unreachable.is_empty(), "{}", show(&out));
    let line = unreachable[0].to_string();
    assert!(line.contains(MEMBER_C), "{line}");
    assert!(line.contains(&role_of(MEMBER_C)), "{line}");
    assert!(line.contains("AccessDenied"), "{line}");
    assert!(support::emf_total(&out, "AccountUnreachable") >= 1);
    assert!(!line.contains(EXTERNAL_ID));
}

/// `hubtriage explain --live --finding-id ARN --config F`, with the emulators.
fn explain_live(w: &World, config: &std::path::Path, id: &str) -> std::process::Output {
    let mut cmd = std::process::Command::new(support::BIN);
    cmd.args(["explain", "--live", "--finding-id", id, "--config"])
        .arg(config)
        .envs(w.emu.env())
        .env(EXTERNAL_ID_ENV, EXTERNAL_ID)
        .env_remove("AWS_PROFILE");
    cmd.output().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn explain_live_decides_a_member_finding_through_its_role_and_changes_nothing() {
    let w = World::new(WorldOptions {
        visibility_seconds: 10,
        max_receive_count: 5,
    })
    .await;
    let a = member_cluster(&w, MEMBER_A, REGION, "graph").await;
    let f = member_finding(&w, MEMBER_A, REGION, &a, 1);
    w.import(std::slice::from_ref(&f));
    w.emu.http("DELETE", "/_emu/calls", None);
    let apply = "mode = \"apply\"\nreboot = \"immediate\"\n";
    let config = w.config_with(apply, &accounts_table());

    let out = explain_live(&w, &config, f["Id"].as_str().unwrap());
    assert!(out.status.success(), "{}", show(&out));
    let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1, "{}", show(&out));
    assert_eq!(lines[0]["action"], "remediate", "{}", lines[0]);
    assert_eq!(lines[0]["account"], MEMBER_A, "{}", lines[0]);

    // Read calls only, in the member's account through its role.
    let (_, mutating) = w.emu.http("GET", "/_emu/calls?mutating=true", None);
    assert_eq!(mutating, json!([]), "explain changed something");
    assert_eq!(
        assume_role_calls(&w),
        vec![(role_of(MEMBER_A), EXTERNAL_ID.to_string())]
    );
    assert!(!w.emu.calls("rds", "DescribeDBClusters").is_empty());
    let got = w.stored(f["Id"].as_str().unwrap());
    assert_eq!(got["Workflow"]["Status"], "NEW", "nothing recorded: {got}");

    // An unknown finding: exit 65, naming it.
    let out = explain_live(
        &w,
        &config,
        "arn:aws:securityhub:us-east-1:222222222222:nope",
    );
    assert_eq!(out.status.code(), Some(65), "{}", show(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no finding with Id"));
}
