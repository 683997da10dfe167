//! Never fight the database's state, the stack that owns a cluster, or
//! whatever keeps reverting a fix, end to end:
//! - a cluster in `backing-up` when its finding comes is fixed, verified and
//!   RESOLVED once it is `available`, with no ticket; one that stays past
//!   `wait_for_available_minutes` gets one ticket naming the state;
//! - a cluster tagged by a CloudFormation stack gets a ticket carrying the
//!   stack change (`DeletionProtection: true`, `deletion_protection = true`,
//!   the stack's name) and is not changed; with `iac_managed = "remediate"`
//!   it is fixed;
//! - a cluster whose deletion protection is turned off again after each fix
//!   is fixed twice, then ticketed once with the earlier changes named.

use crate::controls::{finding_of, instance, note, status};
use crate::support;

use std::process::Stdio;
use std::time::{Duration, Instant};

use aws_sdk_neptune::types::Tag;
use serde_json::{json, Value};

use support::{
    jira_table, show, wait_with_limit, TicketFakes, World, WorldOptions, ACCOUNT, JIRA_ENV,
};

const LIMIT: Duration = Duration::from_secs(150);
const TABLE: &str = "hubtriage-journal";

/// An unprotected dev cluster with one instance, with more `tags`.
async fn cluster(w: &World, id: &str, tags: &[(&str, &str)]) -> String {
    let mut create = w
        .neptune
        .create_db_cluster()
        .db_cluster_identifier(id)
        .engine("neptune")
        .engine_version("1.3.2.1")
        .deletion_protection(false)
        .tags(Tag::builder().key("env").value("dev").build());
    for (k, v) in tags {
        create = create.tags(Tag::builder().key(*k).value(*v).build());
    }
    let arn = create
        .send()
        .await
        .unwrap()
        .db_cluster
        .unwrap()
        .db_cluster_arn
        .unwrap();
    instance(&w.neptune, id).await;
    arn
}

fn set_status(w: &World, cluster: &str, status: Option<&str>) {
    let (code, v) = w.emu.http(
        "POST",
        "/_emu/neptune/cluster-status",
        Some(&json!({"cluster": cluster, "status": status})),
    );
    assert_eq!(code, 200, "{v}");
}

/// ModifyDBCluster calls that turn DeletionProtection on for `cluster`.
fn protections(w: &World, cluster: &str) -> usize {
    w.emu
        .calls("rds", "ModifyDBCluster")
        .iter()
        .filter(|c| {
            c["request"]["DBClusterIdentifier"] == cluster
                && c["request"]["DeletionProtection"] == "true"
        })
        .count()
}

fn wait_for(what: &str, limit: Duration, done: impl Fn() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(
            Instant::now() < deadline,
            "{what} did not happen within {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_busy_cluster_is_waited_for_and_a_stack_owned_one_gets_the_stack_change() {
    let w = World::with_rds_role(WorldOptions::default()).await;
    let fakes = TicketFakes::start();
    let busy = cluster(&w, "nf-busy", &[]).await;
    let stuck = cluster(&w, "nf-stuck", &[]).await;
    let stack = cluster(
        &w,
        "nf-stack",
        &[("aws:cloudformation:stack-name", "orders-prod")],
    )
    .await;
    set_status(&w, "nf-busy", Some("backing-up"));
    set_status(&w, "nf-stuck", Some("backing-up"));
    let f_busy = finding_of(&w, "Neptune.4", ACCOUNT, &busy, "busy");
    let f_stuck = finding_of(&w, "Neptune.4", ACCOUNT, &stuck, "stuck");
    let f_stack = finding_of(&w, "Neptune.4", ACCOUNT, &stack, "stack");
    w.import(&[f_busy.clone(), f_stuck.clone(), f_stack.clone()]);
    let config = w.config_with(
        "mode = \"apply\"\nreboot = \"immediate\"\nrecheck_seconds = 2\nwait_for_available_minutes = 1",
        &jira_table("jira", &fakes.url("jira")),
    );
    let daemon = w
        .daemon(&config, &[])
        .envs(JIRA_ENV.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();

    // The stack's cluster: a ticket with the stack change; nothing changed.
    wait_for("the stack ticket", LIMIT, || {
        status(&w, &f_stack) == "NOTIFIED"
    });
    // The busy one waits (in progress), unchanged, without a ticket.
    wait_for("the busy cluster's wait", LIMIT, || {
        note(&w, &f_busy).contains("wait_for_available")
    });
    assert_eq!(
        protections(&w, "nf-busy"),
        0,
        "not changed while backing-up"
    );
    set_status(&w, "nf-busy", None);
    wait_for("the busy cluster's fix", LIMIT, || {
        status(&w, &f_busy) == "RESOLVED"
    });
    // The stuck one, past the wait: one ticket naming the state.
    wait_for("the stuck cluster's ticket", LIMIT, || {
        note(&w, &f_stuck).contains("stayed backing-up")
    });
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &daemon.id().to_string()])
        .status();
    let out = wait_with_limit(daemon, Duration::from_secs(60));
    let log = show(&out);

    assert_eq!(status(&w, &f_busy), "RESOLVED", "{log}");
    assert!(
        note(&w, &f_busy).contains("Verified: DeletionProtection is true"),
        "{}",
        note(&w, &f_busy)
    );
    assert_eq!(protections(&w, "nf-busy"), 1);
    assert_eq!(protections(&w, "nf-stuck"), 0);
    assert_eq!(
        protections(&w, "nf-stack"),
        0,
        "the stack's cluster is not changed"
    );
    assert_eq!(
        w.cluster("nf-stack").await.deletion_protection(),
        Some(false)
    );
    let issues = fakes.state("jira")["issues"].as_array().unwrap().clone();
    let about = |cluster: &str| -> Vec<Value> {
        issues
            .iter()
            .filter(|i| {
                i["fields"]["summary"]
                    .as_str()
                    .unwrap_or_default()
                    .contains(cluster)
            })
            .cloned()
            .collect()
    };
    assert!(
        about("nf-busy").is_empty(),
        "no ticket for the busy cluster: {issues:#?}"
    );
    assert_eq!(about("nf-stuck").len(), 1, "{issues:#?}");
    assert!(about("nf-stuck")[0].to_string().contains("backing-up"));
    let stack_issue = about("nf-stack");
    assert_eq!(stack_issue.len(), 1, "{issues:#?}");
    let text = stack_issue[0]["fields"]["description"].to_string();
    for want in [
        "DeletionProtection: true",
        "deletion_protection = true",
        "orders-prod",
    ] {
        assert!(text.contains(want), "{want} not in the ticket: {text}");
    }

    // Told to remediate stack-owned clusters anyway, it fixes it.
    let anyway = w.config_with(
        "mode = \"apply\"\nreboot = \"immediate\"\niac_managed = \"remediate\"",
        &jira_table("jira", &fakes.url("jira")),
    );
    let again = finding_of(&w, "Neptune.4", ACCOUNT, &stack, "stack-again");
    w.import(std::slice::from_ref(&again));
    let out = w.drain_with_env(&anyway, &JIRA_ENV, LIMIT);
    assert_eq!(status(&w, &again), "RESOLVED", "{}", show(&out));
    assert_eq!(
        w.cluster("nf-stack").await.deletion_protection(),
        Some(true)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fix_reverted_after_each_time_is_made_twice_then_ticketed_once() {
    let w = World::with_rds_role(WorldOptions::default()).await;
    w.create_journal_table(TABLE).await;
    let arn = cluster(&w, "nf-revert", &[]).await;
    let config = w.config_with(
        "mode = \"apply\"\nreboot = \"immediate\"",
        &format!("[journal]\ntable = \"{TABLE}\"\n"),
    );
    let turn_off = || async {
        w.neptune
            .modify_db_cluster()
            .db_cluster_identifier("nf-revert")
            .deletion_protection(false)
            .send()
            .await
            .unwrap();
    };
    let mut findings = Vec::new();
    for round in 1..=3 {
        let f = finding_of(&w, "Neptune.4", ACCOUNT, &arn, &format!("revert-{round}"));
        w.import(std::slice::from_ref(&f));
        let out = w.drain(&config, LIMIT);
        findings.push((f, show(&out)));
        if round < 3 {
            // Something (a stack, a script, a person) turns it off again.
            turn_off().await;
        }
    }
    for (f, log) in &findings[..2] {
        assert_eq!(status(&w, f), "RESOLVED", "{log}");
    }
    let (third, log) = &findings[2];
    assert_eq!(status(&w, third), "NOTIFIED", "{log}");
    let n = note(&w, third);
    assert!(
        n.contains("DeletionProtection was turned off again 3 times since"),
        "{n}"
    );
    assert!(
        n.contains("something reverts it (a stack, a script, a person)"),
        "{n}"
    );
    assert_eq!(
        protections(&w, "nf-revert"),
        2,
        "fixed twice, not a third time"
    );
    assert_eq!(
        w.cluster("nf-revert").await.deletion_protection(),
        Some(false)
    );
    // The ticket names the earlier changes, as the journal has them.
    let changes: Vec<String> = w
        .history(&config, &["--kind", "change"])
        .iter()
        .filter_map(|e| e["id"].as_str().map(str::to_string))
        .collect();
    assert_eq!(changes.len(), 2);
    for id in &changes {
        assert!(log.contains(id.as_str()), "the ticket names {id}: {log}");
    }
}
