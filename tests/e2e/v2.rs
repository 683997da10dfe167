//! The new Security Hub end to end: OCSF "Findings Imported V2" events in,
//! BatchUpdateFindingsV2 out (StatusId and Comment), against the emulator's
//! V2 half (its OCSF twins of CSPM findings, and their events).

use crate::support;

use std::time::Duration;

use serde_json::{json, Value};
use support::{jira_table, show, ClusterSpec, TicketFakes, World, WorldOptions, JIRA_ENV};

const LIMIT: Duration = Duration::from_secs(180);

async fn world() -> World {
    World::with_rds_role(WorldOptions {
        visibility_seconds: 10,
        max_receive_count: 5,
    })
    .await
}

async fn cluster(w: &World, id: &str, env: &str, members: usize) {
    w.create_cluster(ClusterSpec {
        id,
        tags: &[("env", env)],
        members,
        ..Default::default()
    })
    .await;
}

fn id(f: &Value) -> &str {
    f["Id"].as_str().unwrap()
}

fn comment(v2: &Value) -> String {
    v2["comment"].as_str().unwrap_or_default().to_string()
}

fn apply() -> &'static str {
    "mode = \"apply\"\nreboot = \"immediate\"\nrecheck_seconds = 1\nlog_retention_days = 365\n"
}

fn calls(w: &World, operation: &str) -> usize {
    w.emu
        .calls("securityhub", operation)
        .iter()
        .filter(|c| c["status"] == 200)
        .count()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_v2_finding_is_answered_in_v2_and_its_echo_is_dropped() {
    let w = world().await;
    w.mirror_v2(false);
    cluster(&w, "orders-prod", "prod", 1).await;
    cluster(&w, "billing-prod", "prod", 1).await;
    let f = w.finding("orders-prod", |_| {});
    let g = w.finding("billing-prod", |_| {});
    w.import(&[f.clone(), g.clone()]);
    // The billing cluster's finding again, naming it by its resource id alone.
    let mut by_id = w.stored_v2(id(&g));
    let resource_id = w
        .cluster("billing-prod")
        .await
        .db_cluster_resource_id()
        .unwrap()
        .to_string();
    by_id["finding_info"]["uid"] = format!("{}-by-id", id(&g)).into();
    by_id["metadata"]["uid"] = "0".repeat(64).into();
    by_id["resources"][0] = json!({"type": "AWS::RDS::DBCluster", "uid": resource_id});
    let (status, v) = w.emu.http(
        "POST",
        "/_emu/findingsv2/import",
        Some(&json!({"Findings": [by_id]})),
    );
    assert_eq!(status, 200, "{v}");

    let out = w.drain(&w.config(""), LIMIT);
    let v2 = w.stored_v2(id(&f));
    assert_eq!(v2["status_id"], 2, "In Progress: {v2}\n{}", show(&out));
    let text = comment(&v2);
    assert!(
        text.starts_with(
            "hubtriage[action=ticket;rule=prod-needs-change-ticket;status=NOTIFIED] hubtriage opened a ticket."
        ),
        "{text}"
    );
    assert!(text.chars().count() <= 512);
    let by_id = w.stored_v2(&format!("{}-by-id", id(&g)));
    assert_eq!(by_id["status_id"], 2, "{by_id}\n{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("looked the cluster up by its resource id")
    );
    // The CSPM finding is left as it was: each finding is answered in its format.
    let v1 = w.stored(id(&f));
    assert_eq!(v1["Workflow"]["Status"], "NEW");
    assert!(v1.get("Note").is_none(), "{v1}");
    assert!(calls(&w, "BatchUpdateFindingsV2") >= 1);
    assert_eq!(calls(&w, "BatchUpdateFindings"), 0);
    assert!(
        support::emf_total(&out, "OwnUpdatesDropped") >= 3,
        "each V2 echo is dropped:\n{}",
        show(&out)
    );
    assert_eq!(w.depth(&w.queue_url).await, 0);
    assert_eq!(w.depth(&w.dlq_url).await, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_remediation_started_from_a_v2_finding_ends_resolved() {
    let w = world().await;
    w.mirror_v2(false);
    cluster(&w, "catalog-dev", "dev", 2).await;
    let f = w.finding("catalog-dev", |_| {});
    w.import(std::slice::from_ref(&f));
    let out = w.drain(&w.config_with(apply(), ""), LIMIT);

    let v2 = w.stored_v2(id(&f));
    assert_eq!(v2["status_id"], 4, "Resolved: {v2}\n{}", show(&out));
    let text = comment(&v2);
    assert!(
        text.starts_with("hubtriage[action=remediate;")
            && text.contains("remediation=done")
            && text.contains("enabled the audit log export"),
        "{text}"
    );
    let c = w.cluster("catalog-dev").await;
    assert!(c
        .enabled_cloudwatch_logs_exports()
        .contains(&"audit".to_string()));
    let mut reboots = w.reboots();
    reboots.sort();
    assert_eq!(reboots, ["catalog-dev-1", "catalog-dev-2"]);
    assert_eq!(w.stored(id(&f))["Workflow"]["Status"], "NEW");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_v2_pass_closes_the_problems_issue() {
    let w = world().await;
    w.mirror_v2(false);
    cluster(&w, "orders-prod", "prod", 1).await;
    let fakes = TicketFakes::start();
    let config = w.config(&jira_table("jira", &fakes.url("jira")));
    let f = w.finding("orders-prod", |_| {});
    w.import(std::slice::from_ref(&f));
    let out = w.drain_with_env(&config, &JIRA_ENV, LIMIT);
    let issues = fakes.state("jira")["issues"].as_array().unwrap().clone();
    assert_eq!(issues.len(), 1, "{}", show(&out));
    let key = issues[0]["key"].as_str().unwrap().to_string();
    let v2 = w.stored_v2(id(&f));
    assert_eq!(v2["status_id"], 2);
    assert!(comment(&v2).contains(&format!("ticket={key}")), "{v2}");

    // The check passes: Security Hub resolves the finding (status 4) and the
    // new event is hubtriage's cue to close the problem's issue.
    let mut passed = f.clone();
    passed["Compliance"]["Status"] = "PASSED".into();
    w.import(&[passed]);
    let out = w.drain_with_env(&config, &JIRA_ENV, LIMIT);
    let issues = fakes.state("jira")["issues"].as_array().unwrap().clone();
    assert_eq!(issues.len(), 1, "no new issue");
    assert_eq!(
        issues[0]["fields"]["status"]["name"],
        "Done",
        "{}",
        show(&out)
    );
    assert_eq!(w.stored_v2(id(&f))["status_id"], 4);
}

#[tokio::test(flavor = "multi_thread")]
async fn both_formats_of_one_problem_give_one_ticket_and_one_remediation() {
    let w = world().await;
    w.mirror_v2(true);
    cluster(&w, "orders-prod", "prod", 1).await;
    cluster(&w, "catalog-dev", "dev", 2).await;
    let fakes = TicketFakes::start();
    let p = w.finding("orders-prod", |_| {});
    let d = w.finding("catalog-dev", |_| {});
    w.import(&[p.clone(), d.clone()]);
    let config = w.config_with(apply(), &jira_table("jira", &fakes.url("jira")));
    let out = w.drain_with_env(&config, &JIRA_ENV, LIMIT);

    // The prod cluster: one issue, named by both findings.
    let issues = fakes.state("jira")["issues"].as_array().unwrap().clone();
    assert_eq!(issues.len(), 1, "one problem, one issue:\n{}", show(&out));
    let key = issues[0]["key"].as_str().unwrap();
    let v1 = w.stored(id(&p));
    assert_eq!(v1["Workflow"]["Status"], "NOTIFIED", "{v1}");
    assert_eq!(v1["UserDefinedFields"]["hubtriage:ticket"], key);
    let v2 = w.stored_v2(id(&p));
    assert_eq!(v2["status_id"], 2, "{v2}");
    assert!(comment(&v2).contains(&format!("ticket={key}")), "{v2}");

    // The dev cluster: one remediation, each instance rebooted once; both
    // findings end resolved, each in its own format.
    let mut reboots = w.reboots();
    reboots.sort();
    assert_eq!(
        reboots,
        ["catalog-dev-1", "catalog-dev-2"],
        "{}",
        show(&out)
    );
    let groups = w
        .emu
        .calls("rds", "CreateDBClusterParameterGroup")
        .iter()
        .filter(|c| c["status"] == 200)
        .count();
    assert_eq!(groups, 1);
    assert_eq!(w.stored(id(&d))["Workflow"]["Status"], "RESOLVED");
    assert_eq!(w.stored_v2(id(&d))["status_id"], 4);
    assert_eq!(w.depth(&w.queue_url).await, 0);
    assert_eq!(w.depth(&w.dlq_url).await, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_malformed_v2_event_is_never_deleted_and_lands_in_the_dlq() {
    let w = World::new(WorldOptions {
        visibility_seconds: 2,
        max_receive_count: 2,
    })
    .await;
    w.mirror_v2(false);
    cluster(&w, "orders-prod", "prod", 1).await;
    let mut bad: Value =
        serde_json::from_str(include_str!("../fixtures/neptune2-v2-orders-event.json")).unwrap();
    bad["detail"]["findings"][0]["cloud"]
        .as_object_mut()
        .unwrap()
        .remove("account");
    w.send_raw(&bad.to_string()).await;
    // Updates that come back unprocessed or throttled are retried: the good
    // finding is recorded all the same.
    w.emu.fault(json!({"operation": "BatchUpdateFindingsV2", "unprocessed": 1, "error_code": "ConflictException"}));
    w.emu
        .fault(json!({"operation": "BatchUpdateFindingsV2", "throttle": 2}));
    let f = w.finding("orders-prod", |_| {});
    w.import(std::slice::from_ref(&f));

    let out = w.drain(&w.config(""), LIMIT);
    assert_eq!(w.stored_v2(id(&f))["status_id"], 2, "{}", show(&out));
    let dead = w.take_all(&w.dlq_url).await;
    assert_eq!(dead, vec![bad.to_string()], "untouched, in the DLQ");
    assert!(support::log_lines(&out).iter().any(|l| l["message"]
        .as_str()
        .unwrap_or_default()
        .starts_with("message cannot be parsed; not deleted")
        && l["error"] == "detail.findings[0].cloud.account: missing"));
}
