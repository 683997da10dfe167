//! `hubtriage run` end to end against the loopback emulators: findings imported
//! into (emulated) Security Hub reach the queue through an EventBridge rule, the
//! real binary drains it, and the tests read back what a user would check: the
//! finding's workflow status and note, the queue and DLQ, the calls made.

use crate::support;

use std::time::Duration;

use serde_json::{json, Value};
use support::{log_lines, show, ClusterSpec, World, WorldOptions};

const LIMIT: Duration = Duration::from_secs(90);

fn note(f: &Value) -> String {
    f["Note"]["Text"].as_str().unwrap_or_default().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn findings_end_with_the_workflow_and_note_their_decision_implies() {
    let w = World::new(WorldOptions::default()).await;
    w.create_cluster(ClusterSpec {
        id: "orders-graph",
        tags: &[("env", "prod")],
        ..Default::default()
    })
    .await;
    w.create_cluster(ClusterSpec {
        id: "catalog-dev",
        tags: &[("env", "dev")],
        ..Default::default()
    })
    .await;
    w.create_cluster(ClusterSpec {
        id: "sandbox-graph",
        members: 1,
        ..Default::default()
    })
    .await;
    w.create_parameter_group("audit-on", "neptune1.3", Some("1"))
        .await;
    w.create_cluster(ClusterSpec {
        id: "billing-graph",
        group: Some("audit-on"),
        tags: &[("env", "prod")],
        audit_export: true,
        ..Default::default()
    })
    .await;

    let prod = w.finding("orders-graph", |_| {});
    let dev = w.finding("catalog-dev", |_| {});
    let sandbox = w.finding("sandbox-graph", |_| {});
    // The finding claims FAILED with stale details; live state is compliant.
    let compliant = w.finding("billing-graph", |_| {});
    let other_control = w.finding("orders-graph", |f| {
        f["Id"] =
            json!("arn:aws:securityhub:us-east-1:111122223333:security-control/EC2.1/finding/1");
        f["Compliance"]["SecurityControlId"] = json!("EC2.1");
        f["GeneratorId"] = json!("security-control/EC2.1");
    });
    w.import(&[
        prod.clone(),
        dev.clone(),
        sandbox.clone(),
        compliant.clone(),
        other_control.clone(),
    ]);

    let out = w.drain(&w.config(""), LIMIT);

    let f = w.stored(prod["Id"].as_str().unwrap());
    assert_eq!(f["Workflow"]["Status"], "NOTIFIED", "{f}");
    assert!(
        note(&f)
            .starts_with("hubtriage opened a ticket. Rule prod-needs-change-ticket chose ticket"),
        "{}",
        note(&f)
    );
    assert_eq!(f["Note"]["UpdatedBy"], "hubtriage");
    assert_eq!(f["UserDefinedFields"]["hubtriage:action"], "ticket");
    assert_eq!(
        f["UserDefinedFields"]["hubtriage:rule"],
        "prod-needs-change-ticket"
    );

    let f = w.stored(dev["Id"].as_str().unwrap());
    assert_eq!(f["Workflow"]["Status"], "NOTIFIED", "{f}");
    assert!(
        note(&f).contains("planned a remediation (dry-run: nothing was changed)"),
        "{}",
        note(&f)
    );
    assert!(
        note(&f).contains("create_parameter_group hubtriage-audit-catalog-dev"),
        "{}",
        note(&f)
    );
    assert_eq!(f["UserDefinedFields"]["hubtriage:action"], "remediate");

    let f = w.stored(sandbox["Id"].as_str().unwrap());
    assert_eq!(f["Workflow"]["Status"], "SUPPRESSED", "{f}");
    assert!(
        note(&f).contains("Suppressed by sandbox-clusters until 2099-12-31"),
        "{}",
        note(&f)
    );
    assert_eq!(f["UserDefinedFields"]["hubtriage:expires"], "2099-12-31");

    let f = w.stored(compliant["Id"].as_str().unwrap());
    assert_eq!(f["Workflow"]["Status"], "RESOLVED", "{f}");
    assert!(
        note(&f).starts_with("hubtriage resolved this finding. Live state is compliant"),
        "{}",
        note(&f)
    );

    let f = w.stored(other_control["Id"].as_str().unwrap());
    assert_eq!(
        f["Workflow"]["Status"], "NEW",
        "another control is ignored: {f}"
    );
    assert!(f.get("Note").is_none() || f["Note"].is_null());

    // Nothing is left behind; nothing went to the DLQ.
    assert_eq!(w.depth(&w.queue_url).await, 0);
    assert_eq!(w.depth(&w.dlq_url).await, 0);

    // One decision event per recorded decision.
    let events: Vec<Value> = w
        .take_all(&w.decisions_url)
        .await
        .iter()
        .map(|b| serde_json::from_str(b).unwrap())
        .collect();
    assert_eq!(events.len(), 4, "{events:?}");
    let prod_event = events
        .iter()
        .find(|e| e["detail"]["finding_id"] == prod["Id"])
        .expect("an event for the prod finding");
    assert_eq!(prod_event["detail-type"], "hubtriage Decision");
    assert_eq!(prod_event["detail"]["action"], "ticket");
    assert_eq!(prod_event["detail"]["outcome"]["workflow"], "NOTIFIED");

    // Metrics: a CloudWatch EMF line with what happened.
    let emf: Vec<Value> = log_lines(&out)
        .into_iter()
        .filter(|l| l.get("_aws").is_some())
        .collect();
    let totals = |name: &str| {
        emf.iter()
            .map(|l| l[name].as_u64().unwrap_or(0))
            .sum::<u64>()
    };
    assert!(!emf.is_empty(), "an EMF line at exit\n{}", show(&out));
    assert_eq!(
        emf[0]["_aws"]["CloudWatchMetrics"][0]["Namespace"],
        "hubtriage"
    );
    assert_eq!(totals("DecidedTicket"), 1);
    assert_eq!(totals("DecidedRemediate"), 1);
    assert_eq!(totals("DecidedSuppress"), 1);
    assert_eq!(totals("DecidedResolve"), 1);
    assert_eq!(totals("DecidedIgnore"), 1);
    assert_eq!(totals("TicketsOpened"), 1);
    assert_eq!(totals("Recorded"), 4);
    assert!(totals("FindingsReceived") >= 5);

    // Logs: one "decided" line per finding, inside a span naming it.
    let logs = log_lines(&out);
    let decided: Vec<&Value> = logs.iter().filter(|l| l["message"] == "decided").collect();
    assert_eq!(decided.len(), 5, "{}", show(&out));
    assert!(decided
        .iter()
        .any(|l| l["span"]["cluster"] == "orders-graph" && l["span"]["finding_id"] == prod["Id"]));
}

#[tokio::test(flavor = "multi_thread")]
async fn own_update_events_are_dropped_without_calling_neptune() {
    let w = World::new(WorldOptions::default()).await;
    w.create_cluster(ClusterSpec {
        id: "orders-graph",
        tags: &[("env", "prod")],
        ..Default::default()
    })
    .await;
    let f = w.finding("orders-graph", |_| {});
    w.import(std::slice::from_ref(&f));

    let out = w.drain(&w.config(""), LIMIT);
    assert_eq!(w.updates_of(f["Id"].as_str().unwrap()), 1);
    // The import's event and the echo of hubtriage's own update both arrived...
    let logs = log_lines(&out);
    assert!(
        logs.iter()
            .any(|l| l["message"] == "event reflects hubtriage's own update; dropped"),
        "{}",
        show(&out)
    );
    // ...and only the first read the cluster.
    assert_eq!(w.emu.calls("rds", "DescribeDBClusters").len(), 1);
    assert_eq!(w.depth(&w.queue_url).await, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_same_message_delivered_twice_is_recorded_once() {
    let w = World::new(WorldOptions::default()).await;
    w.create_cluster(ClusterSpec {
        id: "orders-graph",
        tags: &[("env", "prod")],
        ..Default::default()
    })
    .await;
    let f = w.finding("orders-graph", |_| {});
    // Import without events, then deliver the same event body twice.
    w.emu
        .http("POST", "/_emu/events", Some(&json!({"enabled": false})));
    w.import(std::slice::from_ref(&f));
    w.emu
        .http("POST", "/_emu/events", Some(&json!({"enabled": true})));
    let mut stored = w.stored(f["Id"].as_str().unwrap());
    stored.as_object_mut().unwrap().remove("Note");
    let event = json!({
        "version": "0", "id": "7a0c5e7e-1111-4c0e-9d8a-2e61f0b7c4d1",
        "detail-type": "Security Hub Findings - Imported", "source": "aws.securityhub",
        "account": support::ACCOUNT, "time": "2026-11-20T10:15:02Z", "region": support::REGION,
        "resources": [], "detail": {"findings": [stored]}
    })
    .to_string();
    w.send_raw(&event).await;
    w.send_raw(&event).await;

    let out = w.drain(&w.config(""), LIMIT);
    let id = f["Id"].as_str().unwrap();
    assert_eq!(
        w.updates_of(id),
        1,
        "one record, no second note\n{}",
        show(&out)
    );
    assert_eq!(w.stored(id)["Workflow"]["Status"], "NOTIFIED");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_malformed_body_is_never_deleted_and_lands_in_the_dlq() {
    let w = World::new(WorldOptions {
        visibility_seconds: 2,
        max_receive_count: 2,
    })
    .await;
    w.create_cluster(ClusterSpec {
        id: "orders-graph",
        tags: &[("env", "prod")],
        ..Default::default()
    })
    .await;
    w.send_raw("{\"this is\": \"not an event\"").await;
    let f = w.finding("orders-graph", |_| {});
    w.import(std::slice::from_ref(&f));

    let out = w.drain(&w.config(""), LIMIT);
    // The good finding went on.
    assert_eq!(
        w.stored(f["Id"].as_str().unwrap())["Workflow"]["Status"],
        "NOTIFIED"
    );
    // The bad body is in the DLQ, untouched.
    let dead = w.take_all(&w.dlq_url).await;
    assert_eq!(dead, vec!["{\"this is\": \"not an event\"".to_string()]);
    let logs = log_lines(&out);
    assert!(logs.iter().any(|l| l["message"]
        .as_str()
        .unwrap_or_default()
        .starts_with("message cannot be parsed; not deleted")
        && l["span"]["message_id"].is_string()
        && l["error"]
            .as_str()
            .unwrap_or_default()
            .starts_with("not JSON")));
}

#[tokio::test(flavor = "multi_thread")]
async fn throttled_and_unprocessed_updates_all_end_recorded() {
    let w = World::new(WorldOptions::default()).await;
    let mut findings = Vec::new();
    for i in 0..6 {
        let id = format!("graph-{i}");
        w.create_cluster(ClusterSpec {
            id: &id,
            members: 1,
            tags: &[("env", "prod")],
            ..Default::default()
        })
        .await;
        findings.push(w.finding(&id, |_| {}));
    }
    w.import(&findings);
    w.emu
        .fault(json!({"operation": "BatchUpdateFindings", "throttle": 3}));
    w.emu.fault(json!({"operation": "BatchUpdateFindings", "unprocessed": 4, "error_code": "ConcurrentUpdateError"}));

    w.drain(&w.config(""), LIMIT);
    for f in &findings {
        let stored = w.stored(f["Id"].as_str().unwrap());
        assert_eq!(stored["Workflow"]["Status"], "NOTIFIED", "{stored}");
        assert_eq!(stored["Note"]["UpdatedBy"], "hubtriage");
    }
    assert_eq!(w.depth(&w.dlq_url).await, 0);
    let calls = w.emu.calls("securityhub", "BatchUpdateFindings");
    assert_eq!(
        calls.iter().filter(|c| c["status"] == 429).count(),
        3,
        "the throttling happened"
    );
}

/// Six prod findings whose cluster reads take `delay_ms` each.
async fn slow_world(visibility_seconds: u32, delay_ms: u64) -> (World, Vec<Value>) {
    let w = World::new(WorldOptions {
        visibility_seconds,
        max_receive_count: 5,
    })
    .await;
    let mut findings = Vec::new();
    for i in 0..6 {
        let id = format!("graph-{i}");
        w.create_cluster(ClusterSpec {
            id: &id,
            members: 1,
            tags: &[("env", "prod")],
            ..Default::default()
        })
        .await;
        findings.push(w.finding(&id, |_| {}));
    }
    w.emu
        .fault(json!({"operation": "DescribeDBClusters", "delay_ms": delay_ms, "count": 1000}));
    w.import(&findings);
    (w, findings)
}

/// Waits until the daemon has started reading clusters (findings in flight).
fn wait_until_in_flight(w: &World) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while w.emu.calls("rds", "DescribeDBClusters").is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "the daemon never started work"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn signal(child: &std::process::Child, sig: &str) {
    let status = std::process::Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

fn assert_all_recorded(w: &World, findings: &[Value]) {
    for f in findings {
        let stored = w.stored(f["Id"].as_str().unwrap());
        assert_eq!(stored["Workflow"]["Status"], "NOTIFIED", "{stored}");
        assert_eq!(stored["Note"]["UpdatedBy"], "hubtriage");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_finishes_in_flight_work_within_the_grace_period() {
    let (w, findings) = slow_world(30, 1500).await;
    let config =
        w.config("[daemon]\nconcurrency = 2\nmax_in_flight = 2\nshutdown_grace_seconds = 8\n");
    let child = w.spawn(&config);
    wait_until_in_flight(&w);
    let asked = std::time::Instant::now();
    signal(&child, "-TERM");
    let out = support::wait_with_limit(child, Duration::from_secs(20));
    let took = asked.elapsed();
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert!(
        took < Duration::from_secs(8 + 4),
        "exited {took:?} after SIGTERM"
    );
    // The findings it was working on are recorded; the rest are still queued.
    let logs = log_lines(&out);
    assert!(logs
        .iter()
        .any(|l| l["message"] == "shutdown requested; no new messages will be received"));
    let recorded = findings
        .iter()
        .filter(|f| w.stored(f["Id"].as_str().unwrap())["Workflow"]["Status"] == "NOTIFIED")
        .count();
    assert!(
        recorded >= 1 && recorded < findings.len(),
        "recorded {recorded}\n{}",
        show(&out)
    );

    // Nothing was lost: a second run records the rest.
    w.emu.http("DELETE", "/_emu/faults", None);
    w.drain(&config, LIMIT);
    assert_all_recorded(&w, &findings);
    for f in &findings {
        assert_eq!(
            w.updates_of(f["Id"].as_str().unwrap()),
            1,
            "each finding recorded once"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_releases_work_that_outlasts_the_grace_period() {
    // Reads take 20 s; the grace period is 2 s; the queue's visibility is 120 s.
    let (w, findings) = slow_world(120, 20_000).await;
    let config = w.config("[daemon]\nconcurrency = 3\nshutdown_grace_seconds = 2\n");
    let child = w.spawn(&config);
    wait_until_in_flight(&w);
    let asked = std::time::Instant::now();
    signal(&child, "-TERM");
    let out = support::wait_with_limit(child, Duration::from_secs(20));
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert!(
        asked.elapsed() < Duration::from_secs(2 + 5),
        "exited {:?} after SIGTERM",
        asked.elapsed()
    );
    assert!(log_lines(&out)
        .iter()
        .any(|l| l["message"] == "grace period over; releasing unfinished messages to the queue"));

    // Released messages are visible again at once, not after 120 s.
    w.emu.http("DELETE", "/_emu/faults", None);
    w.drain(&config, Duration::from_secs(60));
    assert_all_recorded(&w, &findings);
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_mid_batch_then_restart_records_every_finding() {
    let (w, findings) = slow_world(3, 1000).await;
    let config = w.config("[daemon]\nconcurrency = 4\n");
    let mut child = w
        .daemon(&config, &[])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_until_in_flight(&w);
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();

    w.emu.http("DELETE", "/_emu/faults", None);
    w.drain(&config, LIMIT);
    assert_all_recorded(&w, &findings);
    assert_eq!(w.depth(&w.dlq_url).await, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_slow_finding_keeps_its_message_invisible_until_done() {
    // Visibility 2 s, but reading the cluster takes 5 s: without extension the
    // message would be handed out again and worked on twice.
    let w = World::new(WorldOptions {
        visibility_seconds: 2,
        max_receive_count: 5,
    })
    .await;
    w.create_cluster(ClusterSpec {
        id: "orders-graph",
        tags: &[("env", "prod")],
        ..Default::default()
    })
    .await;
    w.emu
        .fault(json!({"operation": "DescribeDBClusters", "delay_ms": 5000, "count": 1}));
    let f = w.finding("orders-graph", |_| {});
    w.import(std::slice::from_ref(&f));
    let out = w.drain(&w.config("[daemon]\nconcurrency = 2\n"), LIMIT);
    assert_eq!(
        w.emu.calls("rds", "DescribeDBClusters").len(),
        1,
        "{}",
        show(&out)
    );
    assert_eq!(w.updates_of(f["Id"].as_str().unwrap()), 1);
    assert!(!w.emu.calls("sqs", "ChangeMessageVisibility").is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn setup_creates_the_dlq_policy_and_rule_once() {
    let w = World::new(WorldOptions::default()).await;
    let sdk = w.emu.sdk(&w.emu.moto).await;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let url = sqs
        .create_queue()
        .queue_name("triage-findings")
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let config = w.dir.path().join("setup.toml");
    std::fs::write(
        &config,
        format!("[queue]\nurl = \"{url}\"\n[setup]\nrule_name = \"neptune2-to-triage\"\nmax_receive_count = 4\n[coordination]\ntable = \"hubtriage-state\"\n"),
    )
    .unwrap();
    let setup = |args: &[&str]| {
        let mut cmd = std::process::Command::new(support::BIN);
        cmd.arg("setup").arg("--config").arg(&config).args(args);
        for (k, v) in w.emu.env() {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    };

    w.emu.http("DELETE", "/_emu/calls", None);
    let dry = setup(&["--dry-run"]);
    assert!(dry.status.success(), "{}", show(&dry));
    assert!(String::from_utf8_lossy(&dry.stdout).contains("would create queue triage-findings-dlq"));
    let mutating: Vec<String> = ["sqs", "events", "dynamodb"]
        .iter()
        .flat_map(|s| w.mutating_calls(s))
        .collect();
    assert!(mutating.is_empty(), "dry-run changed {mutating:?}");

    let first = setup(&[]);
    assert!(first.status.success(), "{}", show(&first));
    let text = String::from_utf8_lossy(&first.stdout);
    for part in [
        "create queue triage-findings-dlq",
        "create EventBridge rule neptune2-to-triage",
        "point rule",
        "redrive policy",
        "queue policy",
        "create DynamoDB table hubtriage-state",
        "turn on TTL (attribute ttl) of DynamoDB table hubtriage-state",
    ] {
        assert!(text.contains(part), "{part}: {text}");
    }
    let second = setup(&[]);
    assert!(second.status.success(), "{}", show(&second));
    assert!(
        String::from_utf8_lossy(&second.stdout).starts_with("nothing to change"),
        "{}",
        show(&second)
    );

    // What it made is what a user checks.
    let attrs = sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::All)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap();
    let redrive: Value =
        serde_json::from_str(&attrs[&aws_sdk_sqs::types::QueueAttributeName::RedrivePolicy])
            .unwrap();
    assert!(redrive["deadLetterTargetArn"]
        .as_str()
        .unwrap()
        .ends_with(":triage-findings-dlq"));
    assert_eq!(
        redrive["maxReceiveCount"].to_string().trim_matches('"'),
        "4"
    );
    let policy = &attrs[&aws_sdk_sqs::types::QueueAttributeName::Policy];
    assert!(policy.contains("events.amazonaws.com") && policy.contains("rule/neptune2-to-triage"));
    let rule = w
        .events
        .describe_rule()
        .name("neptune2-to-triage")
        .send()
        .await
        .unwrap();
    let pattern: Value = serde_json::from_str(rule.event_pattern().unwrap()).unwrap();
    assert_eq!(pattern, hubtriage::setup::event_pattern());
    // The coordination table: one string partition key pk, pay per request, TTL on ttl.
    let dynamodb = aws_sdk_dynamodb::Client::new(&sdk);
    let table = dynamodb
        .describe_table()
        .table_name("hubtriage-state")
        .send()
        .await
        .unwrap()
        .table
        .unwrap();
    let keys: Vec<(&str, &str)> = table
        .key_schema()
        .iter()
        .map(|k| (k.attribute_name(), k.key_type().as_str()))
        .collect();
    assert_eq!(keys, [("pk", "HASH")]);
    assert_eq!(
        table
            .billing_mode_summary()
            .and_then(|b| b.billing_mode())
            .map(|m| m.as_str()),
        Some("PAY_PER_REQUEST")
    );
    let ttl = dynamodb
        .describe_time_to_live()
        .table_name("hubtriage-state")
        .send()
        .await
        .unwrap()
        .time_to_live_description
        .unwrap();
    assert_eq!(ttl.attribute_name(), Some("ttl"));
}

#[tokio::test(flavor = "multi_thread")]
async fn healthcheck_follows_the_receive_loop() {
    let w = World::new(WorldOptions::default()).await;
    let heartbeat = w.dir.path().join("heartbeat");
    let config = w.config(&format!(
        "[daemon]\nheartbeat_file = \"{}\"\n",
        heartbeat.display()
    ));
    let health = || {
        std::process::Command::new(support::BIN)
            .args(["healthcheck", "--max-age-seconds", "3", "--config"])
            .arg(&config)
            .output()
            .unwrap()
    };
    assert_eq!(health().status.code(), Some(1), "no heartbeat yet");

    let child = w.spawn(&config);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while health().status.code() != Some(0) {
        assert!(std::time::Instant::now() < deadline, "never healthy");
        std::thread::sleep(Duration::from_millis(200));
    }
    // Stall the loop (SIGSTOP): the heartbeat ages and the check fails.
    signal(&child, "-STOP");
    std::thread::sleep(Duration::from_secs(5));
    let stalled = health();
    assert_eq!(stalled.status.code(), Some(1), "{}", show(&stalled));
    assert!(String::from_utf8_lossy(&stalled.stderr).contains("last made progress"));
    signal(&child, "-CONT");
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while health().status.code() != Some(0) {
        assert!(std::time::Instant::now() < deadline, "never healthy again");
        std::thread::sleep(Duration::from_millis(200));
    }
    signal(&child, "-TERM");
    let out = support::wait_with_limit(child, Duration::from_secs(30));
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
}

/// A storm under Security Hub's quota (10 requests/s, burst 30; GetFindings 3/s,
/// burst 6): 300 FAILED findings over 10 prod clusters, each decided `ticket`.
/// Every finding ends NOTIFIED and every message deleted; alike updates share
/// BatchUpdateFindings calls; each cluster's live state is read once.
#[tokio::test(flavor = "multi_thread")]
async fn a_storm_is_drained_in_shared_batches_with_one_read_per_cluster() {
    const CLUSTERS: usize = 10;
    const PER_CLUSTER: usize = 30;
    let w = World::new(WorldOptions {
        visibility_seconds: 60,
        max_receive_count: 5,
    })
    .await;
    let (arns, findings) = w
        .prod_storm("storm", CLUSTERS, CLUSTERS * PER_CLUSTER)
        .await;
    let quotas = json!({
        "BatchUpdateFindings": {"rate": 10, "burst": 30},
        "GetFindings": {"rate": 3, "burst": 6}
    });
    let (status, v) = w.emu.http("POST", "/_emu/quotas", Some(&quotas));
    assert_eq!(status, 200, "{v}");
    for chunk in findings.chunks(100) {
        w.import(chunk);
    }
    w.emu.http("DELETE", "/_emu/calls", None);

    let out = w.drain(&w.config(""), Duration::from_secs(240));

    // Alike decisions share update calls of up to 100 findings.
    let n = findings.len();
    let updates = w.emu.calls("securityhub", "BatchUpdateFindings");
    let ok = updates.iter().filter(|c| c["status"] == 200).count();
    let sqs = [
        "ReceiveMessage",
        "DeleteMessageBatch",
        "ChangeMessageVisibility",
    ]
    .iter()
    .map(|op| w.emu.calls("sqs", op).len())
    .sum::<usize>();
    eprintln!(
        "storm: {n} findings, {ok} BatchUpdateFindings calls ({} throttled), {sqs} SQS calls",
        updates.len() - ok
    );
    // Batches fill with what arrives during their one-second linger, so how
    // full they get depends on how fast the emulator delivers (6 calls for 300
    // findings measured here): the bound leaves room for a slow machine and
    // still means one call per twenty findings or better (a naive consumer
    // makes one per finding).
    assert!(
        ok * 20 <= n,
        "{ok} update calls for {n} findings\n{}",
        show(&out)
    );
    // Live state once per cluster (the cache's TTL is longer than the run).
    let describes = w.emu.calls("rds", "DescribeDBClusters");
    for arn in &arns {
        let reads = describes
            .iter()
            .filter(|c| c["request"]["DBClusterIdentifier"] == json!(arn))
            .count();
        assert!(reads <= 1, "{arn} read {reads} times");
    }
    assert!(w.emu.calls("rds", "ListTagsForResource").len() <= CLUSTERS);
    // Every finding recorded, none failed, every message deleted.
    let total = |name: &str| support::emf_total(&out, name);
    assert_eq!(total("Recorded"), n as u64, "{}", show(&out));
    assert_eq!(total("FindingsFailed"), 0);
    // Read back without the quota (it is the daemon's budget, not the test's).
    w.emu.http("DELETE", "/_emu/quotas", None);
    for f in findings.iter().step_by(7) {
        let got = w.stored(f["Id"].as_str().unwrap());
        assert_eq!(got["Workflow"]["Status"], "NOTIFIED", "{got}");
    }
    assert_eq!(w.depth(&w.queue_url).await, 0);
    assert_eq!(w.depth(&w.dlq_url).await, 0);
}

/// Security Hub throttles BatchUpdateFindings for a while (its quota, plus a
/// run of throttled calls): nothing is lost and no failure is recorded; every
/// finding ends recorded and every message deleted.
#[tokio::test(flavor = "multi_thread")]
async fn throttled_updates_are_retried_until_every_finding_is_recorded() {
    let w = World::new(WorldOptions {
        visibility_seconds: 60,
        max_receive_count: 5,
    })
    .await;
    let (_, findings) = w.prod_storm("busy", 5, 60).await;
    w.import(&findings);
    let quota = json!({"BatchUpdateFindings": {"rate": 1, "burst": 1}});
    let (status, v) = w.emu.http("POST", "/_emu/quotas", Some(&quota));
    assert_eq!(status, 200, "{v}");
    w.emu
        .fault(json!({"operation": "BatchUpdateFindings", "throttle": 4}));

    let out = w.drain(&w.config(""), Duration::from_secs(180));

    let throttled = w
        .emu
        .calls("securityhub", "BatchUpdateFindings")
        .iter()
        .filter(|c| c["status"] == 429)
        .count();
    assert!(
        throttled >= 4,
        "{throttled} throttled calls\n{}",
        show(&out)
    );
    let total = |name: &str| support::emf_total(&out, name);
    assert_eq!(total("FindingsFailed"), 0, "{}", show(&out));
    assert_eq!(total("Recorded"), 60);
    assert!(total("Throttles") >= 1);
    assert_all_recorded(&w, &findings);
    assert_eq!(w.depth(&w.queue_url).await, 0);
    assert_eq!(w.depth(&w.dlq_url).await, 0);
}
