//! Neptune.2 remediation end to end against the emulators, in `apply` mode:
//! the tests check live state (parameter groups, the audit export, reboots, log
//! retention) and the finding (RESOLVED with a note naming each change).

use crate::support;

use std::time::Duration;

use chrono::{Datelike, Timelike, Utc};
use serde_json::{json, Value};
use support::{show, ClusterSpec, World, WorldOptions};

const LIMIT: Duration = Duration::from_secs(120);

fn apply(reboot: &str, extra: &str) -> String {
    format!(
        "mode = \"apply\"\nreboot = \"{reboot}\"\nrecheck_seconds = 1\nlog_retention_days = 365\n{extra}"
    )
}

fn note(f: &Value) -> String {
    f["Note"]["Text"].as_str().unwrap_or_default().to_string()
}

/// A world with the RDS service-linked role, as a real account has.
async fn world() -> World {
    World::with_rds_role(WorldOptions {
        visibility_seconds: 10,
        max_receive_count: 5,
    })
    .await
}

async fn dev_cluster(w: &World, spec: ClusterSpec<'_>) -> Value {
    let id = spec.id.to_string();
    w.create_cluster(ClusterSpec {
        tags: &[("env", "dev")],
        ..spec
    })
    .await;
    let f = w.finding(&id, |_| {});
    w.import(std::slice::from_ref(&f));
    f
}

fn stored(w: &World, f: &Value) -> Value {
    w.stored(f["Id"].as_str().unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn default_group_gets_its_own_group_export_reboots_retention_and_is_resolved() {
    let w = world().await;
    let f = dev_cluster(
        &w,
        ClusterSpec {
            id: "catalog-dev",
            ..Default::default()
        },
    )
    .await;

    w.drain(&w.config_with(&apply("immediate", ""), ""), LIMIT);

    let c = w.cluster("catalog-dev").await;
    assert_eq!(
        c.db_cluster_parameter_group(),
        Some("hubtriage-audit-catalog-dev")
    );
    assert_eq!(w.audit_parameter("hubtriage-audit-catalog-dev").await, "1");
    assert!(c
        .enabled_cloudwatch_logs_exports()
        .contains(&"audit".to_string()));
    assert!(c
        .db_cluster_members()
        .iter()
        .all(|m| m.db_cluster_parameter_group_status() == Some("in-sync")));
    assert_eq!(
        w.reboots(),
        vec!["catalog-dev-2", "catalog-dev-1"],
        "readers first, once each"
    );
    assert_eq!(
        w.retention("/aws/neptune/catalog-dev/audit").await,
        Some(Some(365))
    );
    let groups = w.emu.calls("rds", "CreateDBClusterParameterGroup");
    assert_eq!(groups.len(), 1);
    assert_eq!(groups[0]["request"]["DBParameterGroupFamily"], "neptune1.3");

    let got = stored(&w, &f);
    assert_eq!(got["Workflow"]["Status"], "RESOLVED", "{got}");
    let n = note(&got);
    for part in [
        "created parameter group hubtriage-audit-catalog-dev (neptune1.3)",
        "attached hubtriage-audit-catalog-dev in place of default.neptune1.3",
        "set neptune_enable_audit_log=1",
        "enabled the audit log export",
        "rebooted catalog-dev-2, catalog-dev-1",
        "retention to 365 days",
    ] {
        assert!(n.contains(part), "note lacks {part:?}: {n}");
    }
    assert_eq!(got["UserDefinedFields"]["hubtriage:remediation"], "done");
    assert_eq!(w.depth(&w.dlq_url).await, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_exclusive_custom_group_is_modified_in_place() {
    let w = world().await;
    w.create_parameter_group("catalog-params", "neptune1.3", None)
        .await;
    let f = dev_cluster(
        &w,
        ClusterSpec {
            id: "catalog-dev",
            group: Some("catalog-params"),
            ..Default::default()
        },
    )
    .await;
    w.emu.http("DELETE", "/_emu/calls", None);
    w.drain(&w.config_with(&apply("immediate", ""), ""), LIMIT);

    assert_eq!(
        w.cluster("catalog-dev").await.db_cluster_parameter_group(),
        Some("catalog-params")
    );
    assert_eq!(w.audit_parameter("catalog-params").await, "1");
    assert!(
        w.emu
            .calls("rds", "CreateDBClusterParameterGroup")
            .is_empty(),
        "no new group"
    );
    assert_eq!(stored(&w, &f)["Workflow"]["Status"], "RESOLVED");
}

/// catalog-dev (env=dev, with a finding) and billing-graph share `shared-params`.
async fn shared_group_world() -> (World, Value) {
    let w = world().await;
    w.create_parameter_group("shared-params", "neptune1.3", None)
        .await;
    w.create_cluster(ClusterSpec {
        id: "billing-graph",
        group: Some("shared-params"),
        members: 1,
        ..Default::default()
    })
    .await;
    let f = dev_cluster(
        &w,
        ClusterSpec {
            id: "catalog-dev",
            group: Some("shared-params"),
            ..Default::default()
        },
    )
    .await;
    (w, f)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_shared_group_is_copied_not_touched_under_policy_copy() {
    let (w, f) = shared_group_world().await;
    w.drain(
        &w.config_with(&apply("immediate", "shared_parameter_group = \"copy\""), ""),
        LIMIT,
    );

    assert_eq!(
        w.cluster("catalog-dev").await.db_cluster_parameter_group(),
        Some("hubtriage-audit-catalog-dev")
    );
    assert_eq!(
        w.cluster("billing-graph")
            .await
            .db_cluster_parameter_group(),
        Some("shared-params")
    );
    assert_eq!(
        w.audit_parameter("shared-params").await,
        "0",
        "the shared group is untouched"
    );
    assert!(w
        .emu
        .calls("rds", "ModifyDBClusterParameterGroup")
        .iter()
        .all(|c| c["request"]["DBClusterParameterGroupName"] != "shared-params"));
    assert!(w.reboots().iter().all(|i| i.starts_with("catalog-dev")));
    assert_eq!(stored(&w, &f)["Workflow"]["Status"], "RESOLVED");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_shared_group_under_policy_ticket_changes_nothing() {
    let (w, f) = shared_group_world().await;
    w.emu.http("DELETE", "/_emu/calls", None);
    w.drain(
        &w.config_with(
            &apply("immediate", "shared_parameter_group = \"ticket\""),
            "",
        ),
        LIMIT,
    );
    assert!(
        w.mutating_calls("rds").is_empty(),
        "{:?}",
        w.mutating_calls("rds")
    );
    let got = stored(&w, &f);
    assert_eq!(got["Workflow"]["Status"], "NOTIFIED");
    assert!(
        note(&got).contains("shared with billing-graph"),
        "{}",
        note(&got)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn export_on_but_parameter_0_only_sets_the_parameter_and_reboots() {
    let w = world().await;
    w.create_parameter_group("catalog-params", "neptune1.3", None)
        .await;
    let f = dev_cluster(
        &w,
        ClusterSpec {
            id: "catalog-dev",
            group: Some("catalog-params"),
            audit_export: true,
            ..Default::default()
        },
    )
    .await;
    w.emu.http("DELETE", "/_emu/calls", None);
    w.drain(&w.config_with(&apply("immediate", ""), ""), LIMIT);
    let rds = w.mutating_calls("rds");
    assert!(!rds.contains(&"ModifyDBCluster".to_string()), "{rds:?}");
    assert!(
        !rds.contains(&"CreateDBClusterParameterGroup".to_string()),
        "{rds:?}"
    );
    assert_eq!(w.reboots(), vec!["catalog-dev-2", "catalog-dev-1"]);
    assert_eq!(stored(&w, &f)["Workflow"]["Status"], "RESOLVED");
}

#[tokio::test(flavor = "multi_thread")]
async fn parameter_already_1_with_a_member_pending_reboot_only_reboots_it() {
    let w = world().await;
    w.create_parameter_group("catalog-params", "neptune1.3", Some("1"))
        .await;
    w.create_cluster(ClusterSpec {
        id: "catalog-dev",
        group: Some("catalog-params"),
        audit_export: true,
        tags: &[("env", "dev")],
        ..Default::default()
    })
    .await;
    w.emu.http(
        "POST",
        "/_emu/neptune/member-status",
        Some(&json!({"cluster": "catalog-dev", "instance": "catalog-dev-2", "status": "pending-reboot"})),
    );
    let f = w.finding("catalog-dev", |_| {});
    w.import(std::slice::from_ref(&f));
    w.emu.http("DELETE", "/_emu/calls", None);
    w.drain(&w.config_with(&apply("immediate", ""), ""), LIMIT);
    assert_eq!(w.mutating_calls("rds"), vec!["RebootDBInstance"]);
    assert_eq!(w.reboots(), vec!["catalog-dev-2"]);
    assert_eq!(stored(&w, &f)["Workflow"]["Status"], "RESOLVED");
}

#[tokio::test(flavor = "multi_thread")]
async fn reboot_policy_never_reboots_nothing_and_says_a_reboot_is_pending() {
    let w = world().await;
    let f = dev_cluster(
        &w,
        ClusterSpec {
            id: "catalog-dev",
            ..Default::default()
        },
    )
    .await;
    w.drain(&w.config_with(&apply("never", ""), ""), LIMIT);
    assert!(w.reboots().is_empty());
    let got = stored(&w, &f);
    assert_eq!(got["Workflow"]["Status"], "NOTIFIED");
    assert!(
        note(&got).contains("a reboot of every instance is still needed"),
        "{}",
        note(&got)
    );
    assert_eq!(
        got["UserDefinedFields"]["hubtriage:remediation"],
        "reboot-pending"
    );
    // What may be done without a reboot is done.
    assert!(w
        .cluster("catalog-dev")
        .await
        .enabled_cloudwatch_logs_exports()
        .contains(&"audit".to_string()));
}

/// `ddd:hh:mm` for a time.
fn at(t: chrono::DateTime<Utc>) -> String {
    let day = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
        [t.weekday().num_days_from_monday() as usize];
    format!("{day}:{:02}:{:02}", t.hour(), t.minute())
}

#[tokio::test(flavor = "multi_thread")]
async fn maintenance_window_reboots_only_inside_the_window() {
    let now = Utc::now();
    let w = world().await;
    let inside = format!(
        "{}-{}",
        at(now - chrono::Duration::minutes(10)),
        at(now + chrono::Duration::minutes(50))
    );
    let outside = format!(
        "{}-{}",
        at(now + chrono::Duration::hours(30)),
        at(now + chrono::Duration::hours(31))
    );
    let f_in = dev_cluster(
        &w,
        ClusterSpec {
            id: "inside-dev",
            window: &inside,
            members: 1,
            ..Default::default()
        },
    )
    .await;
    let f_out = dev_cluster(
        &w,
        ClusterSpec {
            id: "outside-dev",
            window: &outside,
            members: 1,
            ..Default::default()
        },
    )
    .await;

    // The outside cluster's re-check waits hours: run until the inside one is done, then stop.
    let config = w.config_with(&apply("maintenance-window", ""), "");
    let child = w.spawn(&config);
    let deadline = std::time::Instant::now() + LIMIT;
    while stored(&w, &f_in)["Workflow"]["Status"] != "RESOLVED" {
        assert!(
            std::time::Instant::now() < deadline,
            "inside-dev was not resolved"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let out = support::wait_with_limit(child, Duration::from_secs(30));
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));

    assert_eq!(
        w.reboots(),
        vec!["inside-dev-1"],
        "nothing rebooted outside its window"
    );
    let got = stored(&w, &f_out);
    assert_eq!(got["Workflow"]["Status"], "NOTIFIED");
    assert_eq!(
        got["UserDefinedFields"]["hubtriage:remediation"],
        "in-progress"
    );
    assert!(
        note(&got).contains("wait_for_maintenance_window"),
        "{}",
        note(&got)
    );
    // Its re-check is on the queue, delayed: nothing is lost by stopping.
    assert!(w.depth(&w.queue_url).await >= 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_crash_after_attaching_the_group_resumes_without_a_second_group_or_reboot() {
    let w = world().await;
    let f = dev_cluster(
        &w,
        ClusterSpec {
            id: "catalog-dev",
            ..Default::default()
        },
    )
    .await;
    // The attach is carried out, but its reply is held back while the daemon is killed.
    w.emu.fault(
        json!({"operation": "ModifyDBCluster", "delay_ms": 30000, "after": true, "count": 1}),
    );
    let config = w.config_with(&apply("immediate", ""), "");
    let mut child = w.spawn(&config);
    let deadline = std::time::Instant::now() + LIMIT;
    while w.emu.calls("rds", "ModifyDBCluster").is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "the attach never came"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(300));
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(
        w.cluster("catalog-dev").await.db_cluster_parameter_group(),
        Some("hubtriage-audit-catalog-dev"),
        "the attach happened before the crash"
    );

    w.drain(&config, LIMIT);
    assert_eq!(
        w.emu.calls("rds", "CreateDBClusterParameterGroup").len(),
        1,
        "one new group"
    );
    assert_eq!(
        w.reboots(),
        vec!["catalog-dev-2", "catalog-dev-1"],
        "each instance rebooted once"
    );
    assert_eq!(stored(&w, &f)["Workflow"]["Status"], "RESOLVED");
}

#[tokio::test(flavor = "multi_thread")]
async fn dry_run_makes_no_mutating_call() {
    let w = world().await;
    let f = dev_cluster(
        &w,
        ClusterSpec {
            id: "catalog-dev",
            ..Default::default()
        },
    )
    .await;
    w.emu.http("DELETE", "/_emu/calls", None);
    w.drain(
        &w.config_with(
            "mode = \"dry-run\"\nreboot = \"immediate\"\nlog_retention_days = 365",
            "",
        ),
        LIMIT,
    );
    for service in ["rds", "logs", "iam"] {
        assert!(
            w.mutating_calls(service).is_empty(),
            "{service}: {:?}",
            w.mutating_calls(service)
        );
    }
    let got = stored(&w, &f);
    assert_eq!(got["Workflow"]["Status"], "NOTIFIED");
    assert!(note(&got).contains("dry-run"), "{}", note(&got));
}

#[tokio::test(flavor = "multi_thread")]
async fn no_change_and_a_ticket_without_the_role_on_a_stopped_cluster_or_with_the_skip_tag() {
    // No service-linked role.
    let w = World::new(WorldOptions::default()).await;
    let no_role = dev_cluster(
        &w,
        ClusterSpec {
            id: "norole-dev",
            members: 1,
            ..Default::default()
        },
    )
    .await;
    w.emu.http("DELETE", "/_emu/calls", None);
    w.drain(&w.config_with(&apply("immediate", ""), ""), LIMIT);
    assert!(w.mutating_calls("rds").is_empty());
    let got = stored(&w, &no_role);
    assert_eq!(got["Workflow"]["Status"], "NOTIFIED");
    assert!(
        note(&got).contains("service-linked role AWSServiceRoleForRDS"),
        "{}",
        note(&got)
    );

    // A stopped cluster (#26: a modifying one is waited for now, see
    // never_fight.rs), and one tagged hubtriage:skip.
    let w = world().await;
    w.create_cluster(ClusterSpec {
        id: "busy-dev",
        members: 1,
        tags: &[("env", "dev")],
        ..Default::default()
    })
    .await;
    w.emu.http(
        "POST",
        "/_emu/neptune/cluster-status",
        Some(&json!({"cluster": "busy-dev", "status": "stopped"})),
    );
    w.create_cluster(ClusterSpec {
        id: "skip-dev",
        members: 1,
        tags: &[("env", "dev"), ("hubtriage:skip", "change freeze")],
        ..Default::default()
    })
    .await;
    let busy = w.finding("busy-dev", |_| {});
    let skip = w.finding("skip-dev", |_| {});
    w.import(&[busy.clone(), skip.clone()]);
    w.emu.http("DELETE", "/_emu/calls", None);
    w.drain(&w.config_with(&apply("immediate", ""), ""), LIMIT);
    assert!(
        w.mutating_calls("rds").is_empty(),
        "{:?}",
        w.mutating_calls("rds")
    );
    let got = stored(&w, &busy);
    assert_eq!(got["Workflow"]["Status"], "NOTIFIED");
    assert!(
        note(&got).contains("the cluster is stopped"),
        "{}",
        note(&got)
    );
    let got = stored(&w, &skip);
    assert_eq!(got["Workflow"]["Status"], "NOTIFIED");
    assert!(
        note(&got).contains("tagged hubtriage:skip"),
        "{}",
        note(&got)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn slow_reboots_and_modifications_are_waited_on_not_repeated() {
    let w = world().await;
    // Reboots take 3 s, cluster modifications 2 s, as (much faster than) in AWS.
    w.emu.http(
        "POST",
        "/_emu/neptune/timing",
        Some(&json!({"reboot_seconds": 3, "modify_seconds": 2})),
    );
    let f = dev_cluster(
        &w,
        ClusterSpec {
            id: "catalog-dev",
            ..Default::default()
        },
    )
    .await;
    let out = w.drain(&w.config_with(&apply("immediate", ""), ""), LIMIT);
    assert_eq!(
        w.reboots(),
        vec!["catalog-dev-2", "catalog-dev-1"],
        "one at a time, once each"
    );
    assert_eq!(stored(&w, &f)["Workflow"]["Status"], "RESOLVED");
    let logs = support::log_lines(&out);
    // Waited for: the instance rebooting, or the reboot asked for still to apply.
    assert!(
        logs.iter().any(|l| l["message"] == "remediation waiting"
            && l["why"].as_str().is_some_and(|why| {
                why.contains("is rebooting") || why.contains("waiting for the reboot to apply")
            })),
        "the second reboot waited for the first\n{}",
        show(&out)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn max_concurrent_makes_remediations_wait_their_turn() {
    let w = world().await;
    let mut findings = Vec::new();
    for id in ["a-dev", "b-dev", "c-dev"] {
        findings.push(
            dev_cluster(
                &w,
                ClusterSpec {
                    id,
                    members: 1,
                    ..Default::default()
                },
            )
            .await,
        );
    }
    w.emu.http("DELETE", "/_emu/calls", None);
    w.drain(
        &w.config_with(&apply("immediate", "max_concurrent = 1"), ""),
        LIMIT,
    );
    for f in &findings {
        assert_eq!(stored(&w, f)["Workflow"]["Status"], "RESOLVED");
    }
    // One cluster at a time: each cluster's changes form one block in the call log.
    let (_, calls) = w
        .emu
        .http("GET", "/_emu/calls?mutating=true&service=rds", None);
    let order: Vec<String> = calls
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| {
            let r = &c["request"];
            r["DBClusterIdentifier"]
                .as_str()
                .or(r["DBInstanceIdentifier"].as_str())
                .or(r["DBClusterParameterGroupName"].as_str())
                .map(|s| {
                    s.trim_start_matches("hubtriage-audit-")
                        .split('-')
                        .next()
                        .unwrap_or("")
                        .to_string()
                })
        })
        .collect();
    let mut blocks = order.clone();
    blocks.dedup();
    assert_eq!(blocks.len(), 3, "changes interleaved: {order:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn verification_that_never_passes_becomes_a_ticket_naming_the_check() {
    let w = world().await;
    // Neptune never writes the audit log (say, the log group is denied).
    w.emu.http(
        "POST",
        "/_emu/neptune/audit-logs",
        Some(&json!({"enabled": false})),
    );
    let f = dev_cluster(
        &w,
        ClusterSpec {
            id: "catalog-dev",
            members: 1,
            ..Default::default()
        },
    )
    .await;
    w.drain(
        &w.config_with(&apply("immediate", "verify_deadline_minutes = 1"), ""),
        Duration::from_secs(180),
    );
    let got = stored(&w, &f);
    assert_eq!(got["Workflow"]["Status"], "NOTIFIED", "{got}");
    let n = note(&got);
    assert!(n.contains("did not verify by its deadline"), "{n}");
    assert!(
        n.contains("no audit log stream in /aws/neptune/catalog-dev/audit"),
        "{n}"
    );
    assert_eq!(got["UserDefinedFields"]["hubtriage:action"], "ticket");
}

/// The P0 scenario: hubtriage runs in the administrator account (the emulator's
/// 111122223333) in `apply` mode with no way into member accounts. A member
/// account's finding names `reports`; the administrator has its own `reports`,
/// tagged env=dev. That cluster must stay untouched, and the member's finding
/// must not be marked.
#[tokio::test(flavor = "multi_thread")]
async fn a_member_accounts_finding_never_touches_the_administrators_same_named_cluster() {
    const MEMBER: &str = "222222222222";
    let w = world().await;
    let admin_reports = w
        .create_cluster(ClusterSpec {
            id: "reports",
            tags: &[("env", "dev")],
            ..Default::default()
        })
        .await;
    // The member has a `reports` cluster of its own.
    let member_arn = w
        .create_cluster_in(
            MEMBER,
            support::REGION,
            ClusterSpec {
                id: "reports",
                members: 0,
                ..Default::default()
            },
        )
        .await;
    assert_eq!(
        member_arn,
        format!("arn:aws:rds:us-east-1:{MEMBER}:cluster:reports")
    );
    assert_ne!(admin_reports, member_arn);

    let f = w.finding("reports", |f| {
        let id = f["Id"].as_str().unwrap().replace(support::ACCOUNT, MEMBER);
        f["Id"] = json!(id);
        f["AwsAccountId"] = json!(MEMBER);
        f["Resources"][0]["Id"] = json!(member_arn);
        f["ProductFields"]["Resources:0/Id"] = json!(member_arn);
    });
    w.import(std::slice::from_ref(&f));
    w.emu.http("DELETE", "/_emu/calls", None);

    let out = w.drain(&w.config_with(&apply("immediate", ""), ""), LIMIT);

    // No call at all was made for either cluster: not a read, not a change.
    assert!(w.mutating_calls("rds").is_empty(), "{}", show(&out));
    assert!(
        w.emu.calls("rds", "DescribeDBClusters").is_empty(),
        "{}",
        show(&out)
    );
    assert!(w.mutating_calls("logs").is_empty());
    let c = w.cluster("reports").await;
    assert_eq!(c.db_cluster_parameter_group(), Some("default.neptune1.3"));
    assert!(!c
        .enabled_cloudwatch_logs_exports()
        .contains(&"audit".to_string()));
    assert!(!w.group_exists("hubtriage-audit-reports").await);
    assert!(w.reboots().is_empty());

    // The member's finding is not marked RESOLVED or NOTIFIED.
    let got = stored(&w, &f);
    assert_eq!(got["Workflow"]["Status"], "NEW", "{got}");
    assert_eq!(w.updates_of(f["Id"].as_str().unwrap()), 0);

    // The log says why, naming the member account.
    let decided: Vec<Value> = support::log_lines(&out)
        .into_iter()
        .filter(|l| l["message"] == "decided")
        .collect();
    assert_eq!(decided.len(), 1, "{}", show(&out));
    let line = decided[0].to_string();
    assert!(line.contains(MEMBER), "{line}");
    assert_eq!(decided[0]["span"]["account"], MEMBER, "{line}");
    assert_eq!(decided[0]["action"], "ignore", "{line}");
    let reason = decided[0]["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains(&format!("no way into account {MEMBER}")),
        "{reason}"
    );
    assert!(reason.contains("[accounts] role_arn"), "{reason}");
    assert!(!reason.contains("no longer exists"), "{reason}");
    // Nothing left behind: the message was handled and deleted.
    assert_eq!(w.depth(&w.queue_url).await, 0);
    assert_eq!(w.depth(&w.dlq_url).await, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn two_daemons_share_max_concurrent_and_reboot_each_instance_once() {
    let w = world().await;
    w.create_coordination_table("hubtriage-state").await;
    // Each with the consolidated finding and a standard-specific one.
    let (clusters, findings) = w.dev_clusters_with_two_findings("r", 12, 1).await;
    let config = w.config_with(
        &apply("immediate", "max_concurrent = 2\nmax_per_hour = 100"),
        // Waiting re-checks read their finding back each second: not paced to
        // Security Hub's GetFindings quota here, to keep the test short.
        "\n[coordination]\ntable = \"hubtriage-state\"\nlease_seconds = 10\n[pacing]\nget_findings = { per_second = 0, burst = 1 }\n",
    );
    let outs = w.drain_with_daemons(2, &config, &[], Duration::from_secs(300));
    let both = || outs.iter().map(show).collect::<Vec<_>>().join("\n----\n");
    for out in &outs {
        assert!(
            support::emf_total(out, "FindingsReceived") > 0,
            "both worked"
        );
    }
    for f in &findings {
        assert_eq!(
            stored(&w, f)["Workflow"]["Status"],
            "RESOLVED",
            "{}",
            both()
        );
    }
    for id in &clusters {
        let c = w.cluster(id).await;
        assert!(c
            .enabled_cloudwatch_logs_exports()
            .contains(&"audit".to_string()));
    }
    let mut reboots = w.reboots();
    let count = reboots.len();
    reboots.sort();
    reboots.dedup();
    assert_eq!(count, reboots.len(), "an instance was rebooted twice");
    assert_eq!(count, clusters.len(), "each instance rebooted once");
    let most = w.most_clusters_changed_at_once();
    assert!(
        most <= 2,
        "{most} clusters changed at once across the two daemons"
    );
}
