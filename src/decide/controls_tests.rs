//! Every Neptune control decided from plain values: compliant and not, the
//! plan or the ticket each safety class allows, rules limited to controls,
//! RDS controls on Neptune resources, and the ids findings use.

use super::tests::{config, finding, now, reach};
use super::*;
use crate::control::{self, ClusterSetting, SettingValue};
use crate::control::{Step, SKIP_TAG};
use crate::state::tests::sample_state;
use crate::state::{ClusterSettings, SnapshotState};

const SNAPSHOT_ARN: &str =
    "arn:aws:rds:us-east-1:111122223333:cluster-snapshot:orders-graph-2026-12-01";

/// The fixture's finding, made one of `control`'s.
fn finding_of(control: &str) -> Finding {
    let mut f = finding();
    f.control = Some(control.into());
    if control::deciding(control).is_some_and(|c| c.kind() == Kind::ClusterSnapshot) {
        f.snapshot_arn = Some(SNAPSHOT_ARN.into());
    }
    f
}

/// The fixture's cluster, compliant with every cluster control.
fn good_cluster() -> ClusterState {
    let mut s = sample_state();
    s.exported_logs.push("audit".into());
    s.audit_parameter.value = "1".into();
    s.settings = ClusterSettings {
        storage_encrypted: true,
        deletion_protection: true,
        backup_retention_period: 7,
        iam_database_authentication: true,
        copy_tags_to_snapshot: true,
        multi_az: true,
    };
    s
}

fn good_snapshot() -> SnapshotState {
    SnapshotState {
        identifier: "orders-graph-2026-12-01".into(),
        arn: SNAPSHOT_ARN.into(),
        cluster: "orders-graph".into(),
        engine: "neptune".into(),
        status: "available".into(),
        snapshot_type: "manual".into(),
        storage_encrypted: true,
        restore: vec!["444455556666".into()],
        tags: Default::default(),
    }
}

const REMEDIATE: &str = "[remediation]\nmode = \"apply\"\n[default]\naction = \"remediate\"\n";

fn on_cluster(control: &str, s: &ClusterState, toml: &str) -> Decision {
    decide_on(
        &finding_of(control),
        Some(LiveResource::Cluster(s)),
        &config(toml),
        &reach(),
        now(),
    )
}

fn on_snapshot(control: &str, s: &SnapshotState, toml: &str) -> Decision {
    decide_on(
        &finding_of(control),
        Some(LiveResource::Snapshot(s)),
        &config(toml),
        &reach(),
        now(),
    )
}

#[test]
fn every_cluster_control_resolves_a_compliant_cluster() {
    for id in [
        "Neptune.1",
        "Neptune.2",
        "Neptune.4",
        "Neptune.5",
        "Neptune.7",
        "Neptune.8",
        "Neptune.9",
    ] {
        let d = on_cluster(id, &good_cluster(), REMEDIATE);
        assert_eq!(d.action, Action::Resolve, "{id}: {}", d.reason);
        assert_eq!(d.control.as_deref(), Some(id));
        assert!(
            d.reason.starts_with("Live state is compliant: "),
            "{}",
            d.reason
        );
    }
    for id in ["Neptune.3", "Neptune.6"] {
        let d = on_snapshot(id, &good_snapshot(), REMEDIATE);
        assert_eq!(d.action, Action::Resolve, "{id}: {}", d.reason);
        assert_eq!(d.snapshot.as_deref(), Some("orders-graph-2026-12-01"));
        assert_eq!(
            d.cluster.as_deref(),
            Some("orders-graph"),
            "the snapshot's cluster"
        );
    }
}

#[test]
fn auto_controls_plan_one_setting_then_verify() {
    type Case = (&'static str, fn(&mut ClusterSettings), Step);
    let cases: [Case; 3] = [
        (
            "Neptune.4",
            |s| s.deletion_protection = false,
            Step::ModifyCluster {
                setting: ClusterSetting::DeletionProtection,
                value: SettingValue::Flag(true),
            },
        ),
        (
            "Neptune.5",
            |s| s.backup_retention_period = 3,
            Step::ModifyCluster {
                setting: ClusterSetting::BackupRetentionPeriod,
                value: SettingValue::Days(7),
            },
        ),
        (
            "Neptune.8",
            |s| s.copy_tags_to_snapshot = false,
            Step::ModifyCluster {
                setting: ClusterSetting::CopyTagsToSnapshot,
                value: SettingValue::Flag(true),
            },
        ),
    ];
    for (id, break_it, step) in cases {
        let mut s = good_cluster();
        break_it(&mut s.settings);
        let d = on_cluster(id, &s, REMEDIATE);
        assert_eq!(d.action, Action::Remediate, "{id}: {}", d.reason);
        assert_eq!(d.plan, vec![step, Step::Verify], "{id}");
        assert_eq!(d.problems.len(), 1, "{id}");
    }
}

#[test]
fn neptune5_reads_its_minimum_from_the_config_and_never_lowers_retention() {
    let mut s = good_cluster();
    s.settings.backup_retention_period = 10;
    let strict = format!("{REMEDIATE}[controls.\"Neptune.5\"]\nmin_retention_days = 14\n");
    let d = on_cluster("Neptune.5", &s, &strict);
    assert_eq!(
        d.problems,
        vec!["automated backups are kept 10 days, fewer than 14"]
    );
    assert_eq!(
        d.plan[0],
        Step::ModifyCluster {
            setting: ClusterSetting::BackupRetentionPeriod,
            value: SettingValue::Days(14)
        }
    );
    // 10 days pass the default minimum of 7: nothing to lower.
    assert_eq!(
        on_cluster("Neptune.5", &s, REMEDIATE).action,
        Action::Resolve
    );
}

#[test]
fn an_opt_in_control_is_remediated_only_by_a_rule_that_names_it() {
    let mut s = good_cluster();
    s.settings.iam_database_authentication = false;
    let d = on_cluster("Neptune.7", &s, REMEDIATE);
    assert_eq!(d.action, Action::Ticket, "the default names no control");
    assert!(
        d.reason.contains("changes how clients connect"),
        "{}",
        d.reason
    );
    assert!(d.plan.is_empty());

    let all = "[[rule]]\nname = \"fix-all\"\naction = \"remediate\"\n";
    assert_eq!(on_cluster("Neptune.7", &s, all).action, Action::Ticket);

    let named =
        "[[rule]]\nname = \"iam-auth\"\naction = \"remediate\"\ncontrols = [\"Neptune.7\"]\n";
    let d = on_cluster("Neptune.7", &s, named);
    assert_eq!(d.action, Action::Remediate, "{}", d.reason);
    assert_eq!(
        d.plan[0],
        Step::ModifyCluster {
            setting: ClusterSetting::EnableIamDatabaseAuthentication,
            value: SettingValue::Flag(true)
        }
    );
}

#[test]
fn ticket_only_controls_become_tickets_with_their_reason() {
    let mut s = good_cluster();
    s.settings.storage_encrypted = false;
    s.settings.multi_az = false;
    for (id, words) in [
        ("Neptune.1", "no fix in place"),
        ("Neptune.9", "a person decides"),
    ] {
        let d = on_cluster(id, &s, REMEDIATE);
        assert_eq!(d.action, Action::Ticket, "{id}");
        assert!(d.reason.contains(words), "{id}: {}", d.reason);
        assert!(d.plan.is_empty());
    }
    let mut snap = good_snapshot();
    snap.storage_encrypted = false;
    let d = on_snapshot("Neptune.6", &snap, REMEDIATE);
    assert_eq!(d.action, Action::Ticket);
    assert_eq!(d.problems, vec!["the snapshot is not encrypted at rest"]);
}

#[test]
fn a_public_snapshot_is_made_private_keeping_its_named_accounts() {
    let mut snap = good_snapshot();
    snap.restore.push("all".into());
    let d = on_snapshot("Neptune.3", &snap, REMEDIATE);
    assert_eq!(d.action, Action::Remediate, "{}", d.reason);
    assert_eq!(
        d.plan,
        vec![
            Step::MakeSnapshotPrivate {
                snapshot: "orders-graph-2026-12-01".into()
            },
            Step::Verify
        ]
    );
    assert!(d.reason.contains("exposure"), "{}", d.reason);
    // Without a remediate rule or default: a ticket.
    assert_eq!(on_snapshot("Neptune.3", &snap, "").action, Action::Ticket);
    // Tagged to be left alone: a ticket naming the tag.
    snap.tags.insert(SKIP_TAG.into(), String::new());
    let d = on_snapshot("Neptune.3", &snap, REMEDIATE);
    assert_eq!(d.action, Action::Ticket);
    assert!(
        d.reason.contains("the snapshot is tagged hubtriage:skip"),
        "{}",
        d.reason
    );
}

#[test]
fn a_snapshot_that_no_longer_exists_or_is_not_neptunes_is_ignored() {
    let d = decide_on(
        &finding_of("Neptune.3"),
        None,
        &config(REMEDIATE),
        &reach(),
        now(),
    );
    assert_eq!(d.action, Action::Ignore);
    assert!(
        d.reason.contains("snapshot no longer exists"),
        "{}",
        d.reason
    );
    let mut aurora = good_snapshot();
    aurora.engine = "aurora-postgresql".into();
    let d = on_snapshot("Neptune.3", &aurora, REMEDIATE);
    assert_eq!(d.action, Action::Ignore);
    // A snapshot finding whose resource is missing or another account's.
    let mut f = finding_of("Neptune.3");
    f.snapshot_arn = None;
    let d = decide_on(&f, None, &config(REMEDIATE), &reach(), now());
    assert!(
        d.reason.contains("no AwsRdsDbClusterSnapshot"),
        "{}",
        d.reason
    );
    f.snapshot_arn = Some("arn:aws:rds:us-east-1:999999999999:cluster-snapshot:elsewhere".into());
    let d = decide_on(&f, None, &config(REMEDIATE), &reach(), now());
    assert!(d.reason.contains("not trusted"), "{}", d.reason);
}

#[test]
fn rules_and_suppressions_limited_to_controls_apply_to_those_only() {
    let mut s = good_cluster();
    s.settings.deletion_protection = false;
    s.settings.copy_tags_to_snapshot = false;
    let toml = "[[suppress]]\nname = \"no-tags\"\nreason = \"tags are copied by a backup plan\"\nexpires = \"2099-12-31\"\ncontrols = [\"Neptune.8\"]\n\
                [[rule]]\nname = \"protect\"\naction = \"remediate\"\ncontrols = [\"Neptune.4\"]\n\
                [remediation]\nmode = \"apply\"\n";
    assert_eq!(on_cluster("Neptune.8", &s, toml).action, Action::Suppress);
    let d = on_cluster("Neptune.4", &s, toml);
    assert_eq!(
        (d.action, d.rule.as_deref()),
        (Action::Remediate, Some("protect"))
    );
    // Neptune.2 meets neither: the default (ticket).
    let d = on_cluster("Neptune.2", &sample_state(), toml);
    assert_eq!((d.action, d.rule), (Action::Ticket, None));
}

#[test]
fn rds_controls_on_neptune_resources_are_decided_as_the_neptune_control() {
    let mut s = good_cluster();
    s.settings.deletion_protection = false;
    let d = on_cluster("RDS.7", &s, REMEDIATE);
    assert_eq!(d.control.as_deref(), Some("Neptune.4"));
    assert_eq!(d.finding_control.as_deref(), Some("RDS.7"));
    assert_eq!(d.action, Action::Remediate);
    // The same problem as Neptune.4's: one ticket, one remediation.
    let n4 = on_cluster("Neptune.4", &s, REMEDIATE);
    assert_eq!((d.plan, d.problems), (n4.plan, n4.problems));

    let mut snap = good_snapshot();
    snap.restore.push("all".into());
    let d = on_snapshot("RDS.1", &snap, REMEDIATE);
    assert_eq!(d.control.as_deref(), Some("Neptune.3"));

    let d = on_cluster("RDS.3", &s, REMEDIATE);
    assert_eq!(d.action, Action::Ignore);
    assert!(
        d.reason.contains("Neptune.1 checks on the cluster"),
        "{}",
        d.reason
    );
}

#[test]
fn control_tower_and_generator_ids_name_the_same_control() {
    let mut f = finding();
    f.control = crate::finding::control_of(None, Some("CT.Neptune.4".into()), "x");
    assert_eq!(f.control.as_deref(), Some("Neptune.4"));
    let generated = crate::finding::control_of(
        None,
        None,
        "aws-foundational-security-best-practices/v/1.0.0/Neptune.8",
    );
    assert_eq!(generated.as_deref(), Some("Neptune.8"));
    // Another service's control is named as such, and not triaged.
    let other = crate::finding::control_of(None, None, "nist/v/5/EC2.1");
    assert_eq!(other.as_deref(), Some("EC2.1"));
    let d = on_cluster("EC2.1", &sample_state(), REMEDIATE);
    assert_eq!(d.action, Action::Ignore);
    assert!(
        d.reason
            .contains("for EC2.1, which hubtriage does not triage"),
        "{}",
        d.reason
    );
}

#[test]
fn every_control_has_a_manual_fix_naming_its_resource() {
    let t = control::Target {
        account: "111122223333",
        region: "eu-west-1",
        cluster: "orders-graph",
        snapshot: Some("orders-graph-2026-12-01"),
    };
    for c in control::all() {
        let fix = c.manual_fix(&t).join("\n");
        let named = match c.kind() {
            Kind::Cluster => "orders-graph",
            Kind::ClusterSnapshot => "orders-graph-2026-12-01",
        };
        assert!(fix.contains(named), "{}: {fix}", c.id());
        if c.id() != "Neptune.2" {
            assert!(fix.contains("--region eu-west-1"), "{}: {fix}", c.id());
        }
    }
}
