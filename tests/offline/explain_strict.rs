//! `explain` and `check-config` never answer from a file they were not
//! given, or from a silent default that turns a failing resource into a
//! passing one: a missing flag is exit 64 naming it, an output that lacks
//! what a control reads (or describes another resource, or disagrees with
//! itself) is exit 65 naming it; ids are shown as they are; check-config
//! says which controls each rule covers and which rule can never decide.

use std::process::Command;

use serde_json::{json, Value};

use crate::explain_controls::{clusters, event, fixture, Flavour, REMEDIATE};

const BIN: &str = env!("CARGO_BIN_EXE_hubtriage");

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

/// `hubtriage explain` with a config, the event and these files (flag → JSON).
fn explain(event: &Value, files: &[(&str, &Value)], extra: &[&str]) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(&config, REMEDIATE).unwrap();
    let event_path = dir.path().join("event.json");
    std::fs::write(&event_path, event.to_string()).unwrap();
    let mut cmd = Command::new(BIN);
    cmd.args(["explain", "--config"])
        .arg(&config)
        .arg("--event")
        .arg(&event_path)
        .args(["--now", "2026-11-25T12:00:00Z"]);
    for (i, (flag, value)) in files.iter().enumerate() {
        let p = dir.path().join(format!("{i}.json"));
        std::fs::write(&p, value.to_string()).unwrap();
        cmd.arg(flag).arg(p);
    }
    cmd.args(extra);
    let out = cmd.output().unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).to_string(),
        stderr: String::from_utf8_lossy(&out.stderr).to_string(),
    }
}

fn snapshots() -> Value {
    json!({"DBClusterSnapshots": [{
        "DBClusterSnapshotIdentifier": "orders-graph-snap",
        "DBClusterSnapshotArn": "arn:aws:rds:us-east-1:111122223333:cluster-snapshot:orders-graph-snap",
        "DBClusterIdentifier": "orders-graph",
        "Engine": "neptune",
        "Status": "available",
        "SnapshotType": "manual",
        "StorageEncrypted": true
    }]})
}

fn attributes(of: &str) -> Value {
    json!({"DBClusterSnapshotAttributesResult": {
        "DBClusterSnapshotIdentifier": of,
        "DBClusterSnapshotAttributes": [{"AttributeName": "restore", "AttributeValues": ["all"]}]
    }})
}

#[test]
fn a_finding_whose_resource_file_was_not_given_is_refused_naming_the_flag() {
    let cluster = clusters(|_| {});
    // A snapshot control without --snapshots.
    let r = explain(
        &event("Neptune.6", Flavour::Consolidated),
        &[("--clusters", &cluster)],
        &[],
    );
    assert_eq!(r.code, 64, "{}", r.stderr);
    assert!(r.stderr.contains("pass --snapshots"), "{}", r.stderr);
    // A cluster control without --clusters.
    let r = explain(
        &event("Neptune.4", Flavour::Consolidated),
        &[("--snapshots", &snapshots())],
        &[],
    );
    assert_eq!(r.code, 64, "{}", r.stderr);
    assert!(r.stderr.contains("pass --clusters"), "{}", r.stderr);
    // Neptune.3 without --snapshot-attributes: not "not public".
    let r = explain(
        &event("Neptune.3", Flavour::Consolidated),
        &[("--snapshots", &snapshots())],
        &[],
    );
    assert_eq!(r.code, 64, "{}", r.stderr);
    assert!(
        r.stderr.contains("pass --snapshot-attributes"),
        "{}",
        r.stderr
    );
    // Another snapshot's attributes: refused, naming both.
    let r = explain(
        &event("Neptune.3", Flavour::Consolidated),
        &[
            ("--snapshots", &snapshots()),
            ("--snapshot-attributes", &attributes("other-snap")),
        ],
        &[],
    );
    assert_eq!(r.code, 65, "{}", r.stderr);
    assert!(
        r.stderr.contains("other-snap") && r.stderr.contains("orders-graph-snap"),
        "{}",
        r.stderr
    );
    // Its own attributes: decided (public: remediate).
    let r = explain(
        &event("Neptune.3", Flavour::Consolidated),
        &[
            ("--snapshots", &snapshots()),
            ("--snapshot-attributes", &attributes("orders-graph-snap")),
        ],
        &[],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.contains("\"action\":\"remediate\""),
        "{}",
        r.stdout
    );
}

#[test]
fn a_saved_output_without_the_field_a_control_reads_or_at_odds_with_itself_is_refused() {
    for (control, field) in [
        ("Neptune.1", "StorageEncrypted"),
        ("Neptune.4", "DeletionProtection"),
        ("Neptune.5", "BackupRetentionPeriod"),
        ("Neptune.7", "IAMDatabaseAuthenticationEnabled"),
        ("Neptune.8", "CopyTagsToSnapshot"),
        ("Neptune.9", "MultiAZ"),
    ] {
        let saved = clusters(|c| {
            c.as_object_mut().unwrap().remove(field);
        });
        let r = explain(
            &event(control, Flavour::Consolidated),
            &[("--clusters", &saved)],
            &[],
        );
        assert_eq!(r.code, 65, "{control}: {}", r.stderr);
        assert!(
            r.stderr.contains(&format!(
                "cluster orders-graph has no {field}, which {control} reads"
            )),
            "{}",
            r.stderr
        );
    }
    // The same cluster twice, saying different things.
    let mut twice = clusters(|_| {});
    let mut other = twice["DBClusters"][0].clone();
    other["DeletionProtection"] = json!(false);
    twice["DBClusters"].as_array_mut().unwrap().push(other);
    let r = explain(
        &event("Neptune.4", Flavour::Consolidated),
        &[("--clusters", &twice)],
        &[],
    );
    assert_eq!(r.code, 65, "{}", r.stderr);
    assert!(
        r.stderr.contains("is listed twice, with different values"),
        "{}",
        r.stderr
    );
}

#[test]
fn a_finding_id_needs_live_and_an_empty_event_says_so() {
    let cluster = clusters(|_| {});
    let r = explain(
        &event("Neptune.4", Flavour::Consolidated),
        &[("--clusters", &cluster)],
        &[
            "--finding-id",
            "arn:aws:securityhub:us-east-1:111122223333:x",
        ],
    );
    assert_eq!(r.code, 64, "{}", r.stderr);
    let mut empty = fixture("neptune2-failed-event.json");
    empty["detail"]["findings"] = json!([]);
    let r = explain(&empty, &[("--clusters", &cluster)], &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.is_empty());
    assert!(
        r.stderr.contains("the event holds no findings"),
        "{}",
        r.stderr
    );
}

#[test]
fn ids_in_reasons_are_shown_as_they_are() {
    let cluster = clusters(|_| {});
    let mut e = event("Neptune.4", Flavour::Consolidated);
    e["detail"]["findings"][0]["Compliance"]["SecurityControlId"] = json!("N\u{435}ptune.4");
    let r = explain(&e, &[("--clusters", &cluster)], &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let d: Value = serde_json::from_str(r.stdout.trim()).unwrap();
    assert_eq!(d["action"], "ignore");
    let reason = d["reason"].as_str().unwrap();
    assert!(reason.contains("N\\u{435}ptune.4"), "{reason}");
    assert!(!reason.contains("Neptune.4,"), "{reason}");
    let mut e = event("Neptune.4", Flavour::Consolidated);
    e["detail"]["findings"][0]["Compliance"]["SecurityControlId"] = json!("");
    e["detail"]["findings"][0]["GeneratorId"] = json!("security-control/");
    let r = explain(&e, &[("--clusters", &cluster)], &[]);
    let d: Value = serde_json::from_str(r.stdout.trim()).unwrap();
    assert!(
        d["reason"].as_str().unwrap().contains("empty control id"),
        "{d}"
    );
}

/// `hubtriage check-config` on `toml`, with `env` set.
fn check_config(toml: &str, env: &[(&str, &str)]) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(&config, toml).unwrap();
    let out = Command::new(BIN)
        .args(["check-config", "--now", "2026-11-25T12:00:00Z", "--config"])
        .arg(&config)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).to_string(),
        stderr: String::from_utf8_lossy(&out.stderr).to_string(),
    }
}

#[test]
fn check_config_names_each_rules_controls_and_the_rules_that_never_decide() {
    let toml = "[remediation]\nmode = \"apply\"\n\
        [[suppress]]\nname = \"tags-by-backup\"\nreason = \"r\"\nexpires = \"2099-01-01\"\ncontrols = [\"Neptune.7\"]\n\
        [[rule]]\nname = \"catch-all\"\naction = \"ticket\"\n\
        [[rule]]\nname = \"iam-auth\"\naction = \"remediate\"\ncontrols = [\"Neptune.7\"]\n\
        [[rule]]\nname = \"encrypt\"\naction = \"remediate\"\ncontrols = [\"Neptune.1\"]\n\
        [journal]\ntable = \"j-1\"\n";
    let r = check_config(toml, &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout
            .contains("1. tags-by-backup [active, until 2099-01-01] for Neptune.7 only"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains("1. catch-all -> ticket for every control when everything"),
        "{}",
        r.stdout
    );
    assert!(
        r.stderr.contains("warning: rule iam-auth never decides Neptune.7: rule catch-all, before it, matches every finding of Neptune.7"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr
            .contains("warning: rule encrypt remediates only ticket-only controls (Neptune.1)"),
        "{}",
        r.stderr
    );
    assert!(
        r.stdout.contains("Neptune.7 cluster [opt-in]: ModifyDBCluster EnableIAMDatabaseAuthentication=true; a ticket"),
        "what explain would do, not 'remediated by rule iam-auth': {}",
        r.stdout
    );
}

#[test]
fn an_environment_override_reaches_a_controls_table_and_is_named_when_wrong() {
    let var = "HUBTRIAGE__CONTROLS__NEPTUNE_5__MIN_RETENTION_DAYS";
    let r = check_config("", &[(var, "14")]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("(at least 14 days)"), "{}", r.stdout);
    let r = check_config(
        "[controls.\"Neptune.5\"]\nmin_retention_days = 10\n",
        &[(var, "99")],
    );
    assert_eq!(r.code, 64, "{}", r.stderr);
    assert!(r.stderr.contains(var), "{}", r.stderr);
}
