//! `hubtriage explain` decides every Neptune control offline, from saved AWS
//! CLI outputs: compliant and not, for consolidated, standard-specific
//! (FSBP, and Control Tower's `CT.` ids) and OCSF findings, with each
//! control's safety class enforced, RDS controls decided as the Neptune
//! control that checks the same thing, and a snapshot that is gone ignored.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_hubtriage");
const NOW: &str = "2026-11-25T12:00:00Z";
const CLUSTER_ARN: &str = "arn:aws:rds:us-east-1:111122223333:cluster:orders-graph";
const SNAPSHOT_ARN: &str = "arn:aws:rds:us-east-1:111122223333:cluster-snapshot:orders-graph-snap";
pub(crate) const REMEDIATE: &str =
    "[remediation]\nmode = \"apply\"\nreboot = \"immediate\"\n[default]\naction = \"remediate\"\n";

pub(crate) fn fixture(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The ways one control's finding arrives.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Flavour {
    Consolidated,
    /// FSBP's standard-specific finding: `ProductFields.ControlId`, no `SecurityControlId`.
    StandardSpecific,
    /// Control Tower's: `CT.Neptune.N`.
    ControlTower,
    Ocsf,
}

fn is_snapshot_control(control: &str) -> bool {
    matches!(control, "Neptune.3" | "Neptune.6" | "RDS.1" | "RDS.4")
}

/// A FAILED finding of `control` on the fixture's cluster (or its snapshot).
pub(crate) fn event(control: &str, flavour: Flavour) -> Value {
    let resource = if is_snapshot_control(control) {
        SNAPSHOT_ARN
    } else {
        CLUSTER_ARN
    };
    if let Flavour::Ocsf = flavour {
        let mut e = fixture("neptune2-v2-orders-event.json");
        let f = &mut e["detail"]["findings"][0];
        f["compliance"]["control"] = json!(control);
        if is_snapshot_control(control) {
            f["resources"][0] = json!({"type": "AWS::RDS::DBClusterSnapshot", "uid": resource, "region": "us-east-1"});
        }
        return e;
    }
    let mut e = fixture("neptune2-failed-event.json");
    let f = &mut e["detail"]["findings"][0];
    f["Id"] = json!(format!(
        "arn:aws:securityhub:us-east-1:111122223333:security-control/{control}/finding/1"
    ));
    f["Compliance"]["SecurityControlId"] = json!(control);
    f["GeneratorId"] = json!(format!("security-control/{control}"));
    let kind = if is_snapshot_control(control) {
        "AwsRdsDbClusterSnapshot"
    } else {
        "AwsRdsDbCluster"
    };
    f["Resources"] =
        json!([{"Type": kind, "Id": resource, "Partition": "aws", "Region": "us-east-1"}]);
    match flavour {
        Flavour::StandardSpecific | Flavour::ControlTower => {
            f["Compliance"]
                .as_object_mut()
                .unwrap()
                .remove("SecurityControlId");
            let (prefix, id) = match flavour {
                Flavour::ControlTower => (
                    "service-managed-aws-control-tower/v/1.0.0",
                    format!("CT.{control}"),
                ),
                _ => (
                    "aws-foundational-security-best-practices/v/1.0.0",
                    control.to_string(),
                ),
            };
            f["GeneratorId"] = json!(format!("{prefix}/{control}"));
            f["ProductFields"]["ControlId"] = json!(id);
        }
        _ => {}
    }
    e
}

/// The fixture's cluster with `edit` applied: every setting compliant but
/// IAM authentication, which the fixture has off.
pub(crate) fn clusters(edit: impl Fn(&mut Value)) -> Value {
    let mut c = fixture("describe-db-clusters.json");
    edit(&mut c["DBClusters"][0]);
    c
}

fn snapshots(encrypted: bool) -> Value {
    json!({"DBClusterSnapshots": [{
        "DBClusterSnapshotIdentifier": "orders-graph-snap",
        "DBClusterSnapshotArn": SNAPSHOT_ARN,
        "DBClusterIdentifier": "orders-graph",
        "Engine": "neptune",
        "Status": "available",
        "SnapshotType": "manual",
        "StorageEncrypted": encrypted
    }]})
}

fn attributes(restore: &[&str]) -> Value {
    json!({"DBClusterSnapshotAttributesResult": {
        "DBClusterSnapshotIdentifier": "orders-graph-snap",
        "DBClusterSnapshotAttributes": [{"AttributeName": "restore", "AttributeValues": restore}]
    }})
}

pub(crate) struct Inputs {
    dir: tempfile::TempDir,
}

impl Inputs {
    pub(crate) fn new() -> Inputs {
        Inputs {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn file(&self, name: &str, v: &Value) -> String {
        let p: PathBuf = self.dir.path().join(name);
        std::fs::write(&p, v.to_string()).unwrap();
        p.to_str().unwrap().to_string()
    }

    /// The one decision `explain` prints for `event` over the saved outputs.
    pub(crate) fn explain(
        &self,
        config: &str,
        event: &Value,
        clusters: &Value,
        snaps: Option<(&Value, &Value)>,
    ) -> Value {
        self.explain_with(config, event, clusters, snaps, &[])
    }

    /// As `explain`, with the cluster's tags (`aws neptune list-tags-for-resource`).
    pub(crate) fn explain_with(
        &self,
        config: &str,
        event: &Value,
        clusters: &Value,
        snaps: Option<(&Value, &Value)>,
        tags: &[(&str, &str)],
    ) -> Value {
        let config_path = self.dir.path().join("config.toml");
        std::fs::write(&config_path, config).unwrap();
        let mut args = vec![
            "explain".to_string(),
            "--config".into(),
            config_path.to_str().unwrap().to_string(),
            "--event".into(),
            self.file("event.json", event),
            "--clusters".into(),
            self.file("clusters.json", clusters),
            "--parameters".into(),
            self.file(
                "params.json",
                &fixture("describe-db-cluster-parameters-audit-on.json"),
            ),
            "--now".into(),
            NOW.into(),
        ];
        if !tags.is_empty() {
            let list: Vec<Value> = tags
                .iter()
                .map(|(k, v)| json!({"Key": k, "Value": v}))
                .collect();
            args.push("--tags".into());
            args.push(self.file("tags.json", &json!({ "TagList": list })));
        }
        if let Some((s, a)) = snaps {
            args.push("--snapshots".into());
            args.push(self.file("snapshots.json", s));
            args.push("--snapshot-attributes".into());
            args.push(self.file("attributes.json", a));
        }
        let out = Command::new(BIN).args(&args).output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 1, "{text}");
        serde_json::from_str(lines[0]).unwrap()
    }
}

const FLAVOURS: [Flavour; 4] = [
    Flavour::Consolidated,
    Flavour::StandardSpecific,
    Flavour::ControlTower,
    Flavour::Ocsf,
];

/// Each control: how to make the cluster fail it, and what a remediate
/// config then decides (the first step's op for remediations).
const CLUSTER_CONTROLS: &[(&str, &str, &str, &str)] = &[
    ("Neptune.1", "StorageEncrypted", "ticket", ""),
    (
        "Neptune.4",
        "DeletionProtection",
        "remediate",
        "DeletionProtection",
    ),
    (
        "Neptune.5",
        "BackupRetentionPeriod",
        "remediate",
        "BackupRetentionPeriod",
    ),
    (
        "Neptune.7",
        "IAMDatabaseAuthenticationEnabled",
        "ticket",
        "",
    ),
    (
        "Neptune.8",
        "CopyTagsToSnapshot",
        "remediate",
        "CopyTagsToSnapshot",
    ),
    ("Neptune.9", "MultiAZ", "ticket", ""),
];

fn fail(field: &str) -> impl Fn(&mut Value) + '_ {
    move |c: &mut Value| {
        c[field] = if field == "BackupRetentionPeriod" {
            json!(1)
        } else {
            json!(false)
        };
    }
}

fn compliant(c: &mut Value) {
    c["IAMDatabaseAuthenticationEnabled"] = json!(true);
    c["EnabledCloudwatchLogsExports"] = json!(["audit"]);
}

#[test]
fn every_cluster_control_is_decided_from_saved_outputs_in_every_flavour() {
    let inputs = Inputs::new();
    for &(control, field, action, setting) in CLUSTER_CONTROLS {
        for flavour in FLAVOURS {
            let e = event(control, flavour);
            let good = inputs.explain(REMEDIATE, &e, &clusters(compliant), None);
            assert_eq!(good["action"], "resolve", "{control} {flavour:?}: {good}");
            assert_eq!(good["control"], control, "{flavour:?}");

            let bad = clusters(|c| {
                compliant(c);
                fail(field)(c);
            });
            let d = inputs.explain(REMEDIATE, &e, &bad, None);
            assert_eq!(d["action"], action, "{control} {flavour:?}: {d}");
            assert_eq!(d["control"], control);
            assert_eq!(d["cluster"], "orders-graph");
            if action == "remediate" {
                assert_eq!(d["plan"][0]["op"], "modify_cluster", "{d}");
                assert_eq!(d["plan"][0]["setting"], setting, "{d}");
                assert_eq!(d["plan"][1]["op"], "verify", "{d}");
            } else {
                assert!(d["plan"].as_array().unwrap().is_empty(), "{d}");
            }
        }
    }
}

#[test]
fn neptune2_is_decided_as_before_in_every_flavour() {
    let inputs = Inputs::new();
    for flavour in FLAVOURS {
        let e = event("Neptune.2", flavour);
        let d = inputs.explain(REMEDIATE, &e, &clusters(|_| {}), None);
        assert_eq!(d["action"], "remediate", "{flavour:?}: {d}");
        assert_eq!(d["plan"][0]["op"], "create_parameter_group", "{d}");
    }
}

#[test]
fn the_safety_classes_are_enforced() {
    let inputs = Inputs::new();
    let no_iam = clusters(compliant).to_string().replace(
        "\"IAMDatabaseAuthenticationEnabled\":true",
        "\"IAMDatabaseAuthenticationEnabled\":false",
    );
    let no_iam: Value = serde_json::from_str(&no_iam).unwrap();
    let e = event("Neptune.7", Flavour::Consolidated);
    let d = inputs.explain(REMEDIATE, &e, &no_iam, None);
    assert_eq!(d["action"], "ticket");
    assert!(
        d["reason"]
            .as_str()
            .unwrap()
            .contains("remediate it only with a rule that names it"),
        "{d}"
    );
    let named = format!("{REMEDIATE}[[rule]]\nname = \"iam-auth\"\naction = \"remediate\"\ncontrols = [\"Neptune.7\"]\n");
    let d = inputs.explain(&named, &e, &no_iam, None);
    assert_eq!(d["action"], "remediate", "{d}");
    assert_eq!(d["plan"][0]["setting"], "EnableIAMDatabaseAuthentication");
    assert_eq!(d["plan"][0]["value"], true);
    // A rule that names every control but not by name: still a ticket.
    let d = inputs.explain(
        "[remediation]\nmode = \"apply\"\n[[rule]]\nname = \"all\"\naction = \"remediate\"\n",
        &e,
        &no_iam,
        None,
    );
    assert_eq!(d["action"], "ticket");
}

#[test]
fn snapshot_controls_are_decided_from_the_snapshot_outputs() {
    let inputs = Inputs::new();
    let listing = clusters(compliant);
    for flavour in FLAVOURS {
        let e3 = event("Neptune.3", flavour);
        let public = attributes(&["all", "444455556666"]);
        let d = inputs.explain(REMEDIATE, &e3, &listing, Some((&snapshots(false), &public)));
        assert_eq!(d["action"], "remediate", "{flavour:?}: {d}");
        assert_eq!(d["control"], "Neptune.3");
        assert_eq!(d["snapshot"], "orders-graph-snap");
        assert_eq!(
            d["plan"],
            json!([{"op": "make_snapshot_private", "snapshot": "orders-graph-snap"}, {"op": "verify"}])
        );
        let private = attributes(&["444455556666"]);
        let d = inputs.explain(
            REMEDIATE,
            &e3,
            &listing,
            Some((&snapshots(false), &private)),
        );
        assert_eq!(d["action"], "resolve", "{flavour:?}: {d}");

        let e6 = event("Neptune.6", flavour);
        let d = inputs.explain(
            REMEDIATE,
            &e6,
            &listing,
            Some((&snapshots(false), &private)),
        );
        assert_eq!(d["action"], "ticket", "{flavour:?}: {d}");
        assert!(
            d["reason"].as_str().unwrap().contains("no fix in place"),
            "{d}"
        );
        let d = inputs.explain(REMEDIATE, &e6, &listing, Some((&snapshots(true), &private)));
        assert_eq!(d["action"], "resolve", "{flavour:?}: {d}");
    }
    // A snapshot that no longer exists: ignore, nothing to change.
    let gone = json!({"DBClusterSnapshots": []});
    let d = inputs.explain(
        REMEDIATE,
        &event("Neptune.3", Flavour::Consolidated),
        &listing,
        Some((&gone, &attributes(&[]))),
    );
    assert_eq!(d["action"], "ignore");
    assert!(
        d["reason"]
            .as_str()
            .unwrap()
            .contains("snapshot no longer exists"),
        "{d}"
    );
    assert!(d["plan"].as_array().unwrap().is_empty());
}

#[test]
fn rds_controls_on_neptune_resources_are_decided_as_the_neptune_control() {
    let inputs = Inputs::new();
    let unprotected = clusters(|c| {
        compliant(c);
        c["DeletionProtection"] = json!(false);
    });
    let d = inputs.explain(
        REMEDIATE,
        &event("RDS.7", Flavour::Consolidated),
        &unprotected,
        None,
    );
    assert_eq!(
        (&d["control"], &d["finding_control"]),
        (&json!("Neptune.4"), &json!("RDS.7"))
    );
    assert_eq!(d["action"], "remediate");
    let listing = clusters(compliant);
    let d = inputs.explain(
        REMEDIATE,
        &event("RDS.4", Flavour::Consolidated),
        &listing,
        Some((&snapshots(false), &attributes(&[]))),
    );
    assert_eq!(d["control"], "Neptune.6");
    assert_eq!(d["action"], "ticket");
    let d = inputs.explain(
        REMEDIATE,
        &event("RDS.3", Flavour::Consolidated),
        &listing,
        None,
    );
    assert_eq!(d["action"], "ignore");
    assert!(
        d["reason"]
            .as_str()
            .unwrap()
            .starts_with("The finding is for RDS.3"),
        "{d}"
    );
    // Another engine's cluster stays ignored.
    let aurora = clusters(|c| c["Engine"] = json!("aurora-postgresql"));
    let d = inputs.explain(
        REMEDIATE,
        &event("RDS.7", Flavour::Consolidated),
        &aurora,
        None,
    );
    assert_eq!(d["action"], "ignore");
    assert!(d["reason"].as_str().unwrap().contains("not neptune"), "{d}");
}
