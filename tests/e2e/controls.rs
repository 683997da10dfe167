//! The Neptune family end to end: one storm of findings of mixed controls
//! over clusters and a cluster snapshot in two accounts (the administrator's
//! and a member's, through its role), first in dry-run, then in apply mode.
//! Each auto fix is made once, verified and RESOLVED; opt-in and ticket-only
//! controls are ticketed once, with their manual fix; nothing is changed in
//! dry-run; a resource is changed only for its own control's finding.

use crate::support;

use std::time::Duration;

use serde_json::{json, Value};

use support::{jira_table, show, TicketFakes, World, WorldOptions, ACCOUNT, JIRA_ENV, REGION};

const LIMIT: Duration = Duration::from_secs(150);
const MEMBER: &str = "222222222222";
const SHARED_WITH: &str = "444455556666";
const EXTERNAL_ID_ENV: &str = "HUBTRIAGE_TEST_EXTERNAL_ID";
const EXTERNAL_ID: &str = "org-7f3a-hubtriage";

/// A one-instance dev cluster (one Availability Zone) with every setting the
/// controls check off: unencrypted, no deletion protection, backups kept one
/// day, no IAM authentication, tags not copied to snapshots.
pub(crate) async fn weak_cluster(neptune: &aws_sdk_neptune::Client, id: &str) -> String {
    neptune
        .create_db_cluster()
        .db_cluster_identifier(id)
        .engine("neptune")
        .engine_version("1.3.2.1")
        .storage_encrypted(false)
        .deletion_protection(false)
        .backup_retention_period(1)
        .copy_tags_to_snapshot(false)
        .tags(dev_tag())
        .send()
        .await
        .unwrap()
        .db_cluster
        .unwrap()
        .db_cluster_arn
        .unwrap()
}

pub(crate) async fn instance(neptune: &aws_sdk_neptune::Client, cluster: &str) {
    neptune
        .create_db_instance()
        .db_instance_identifier(format!("{cluster}-1"))
        .db_instance_class("db.r5.large")
        .engine("neptune")
        .db_cluster_identifier(cluster)
        .send()
        .await
        .unwrap();
}

/// A finding of `control` on `resource` (a cluster's or a snapshot's ARN) in
/// `account`; `n` keeps ids apart.
pub(crate) fn finding_of(
    w: &World,
    control: &str,
    account: &str,
    resource: &str,
    n: &str,
) -> Value {
    let kind = if resource.contains(":cluster-snapshot:") {
        "AwsRdsDbClusterSnapshot"
    } else {
        "AwsRdsDbCluster"
    };
    w.finding("any", |f| {
        f["Id"] = json!(format!(
            "arn:aws:securityhub:{REGION}:{account}:security-control/{control}/finding/{n}"
        ));
        f["AwsAccountId"] = json!(account);
        f["GeneratorId"] = json!(format!("security-control/{control}"));
        f["Compliance"]["SecurityControlId"] = json!(control);
        f["Resources"] =
            json!([{"Type": kind, "Id": resource, "Partition": "aws", "Region": REGION}]);
        f["ProductFields"]["Resources:0/Id"] = json!(resource);
    })
}

pub(crate) fn status(w: &World, f: &Value) -> String {
    w.stored(f["Id"].as_str().unwrap())["Workflow"]["Status"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

pub(crate) fn note(w: &World, f: &Value) -> String {
    w.stored(f["Id"].as_str().unwrap())["Note"]["Text"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// The findings again, as Security Hub's next evaluation imports them.
pub(crate) fn evaluated_again(findings: &[Value]) -> Vec<Value> {
    findings
        .iter()
        .map(|f| {
            let mut f = f.clone();
            f["UpdatedAt"] = json!("2099-01-01T00:00:00.000Z");
            f
        })
        .collect()
}

/// ModifyDBCluster calls that set `setting`, per cluster identifier.
fn modifications(w: &World, setting: &str) -> Vec<String> {
    w.emu
        .calls("rds", "ModifyDBCluster")
        .iter()
        .filter(|c| c["request"].get(setting).is_some())
        .filter_map(|c| {
            c["request"]["DBClusterIdentifier"]
                .as_str()
                .map(str::to_string)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_storm_of_mixed_controls_is_fixed_once_ticketed_once_and_untouched_in_dry_run() {
    let w = World::with_rds_role(WorldOptions::default()).await;
    let fakes = TicketFakes::start();

    // The administrator's account: a weak cluster and a public snapshot of it,
    // and a second weak cluster with a Neptune.1 finding only.
    let a = weak_cluster(&w.neptune, "ctl-a").await;
    instance(&w.neptune, "ctl-a").await;
    let b = weak_cluster(&w.neptune, "ctl-b").await;
    instance(&w.neptune, "ctl-b").await;
    let snap = w
        .neptune
        .create_db_cluster_snapshot()
        .db_cluster_identifier("ctl-a")
        .db_cluster_snapshot_identifier("ctl-a-snap")
        .tags(dev_tag())
        .send()
        .await
        .unwrap()
        .db_cluster_snapshot
        .unwrap()
        .db_cluster_snapshot_arn
        .unwrap();
    w.neptune
        .modify_db_cluster_snapshot_attribute()
        .db_cluster_snapshot_identifier("ctl-a-snap")
        .attribute_name("restore")
        .values_to_add("all")
        .values_to_add(SHARED_WITH)
        .send()
        .await
        .unwrap();
    // A member account's weak cluster, reached through its role.
    let member = w.neptune_at(MEMBER, REGION).await;
    let m = weak_cluster(&member, "ctl-m").await;
    instance(&member, "ctl-m").await;

    let auto = vec![
        finding_of(&w, "Neptune.4", ACCOUNT, &a, "a4"),
        finding_of(&w, "RDS.7", ACCOUNT, &a, "a-rds7"),
        finding_of(&w, "Neptune.5", ACCOUNT, &a, "a5"),
        finding_of(&w, "Neptune.8", ACCOUNT, &a, "a8"),
        finding_of(&w, "Neptune.3", ACCOUNT, &snap, "s3"),
        finding_of(&w, "Neptune.4", MEMBER, &m, "m4"),
    ];
    let ticketed = vec![
        finding_of(&w, "Neptune.7", ACCOUNT, &a, "a7"),
        finding_of(&w, "Neptune.1", ACCOUNT, &a, "a1"),
        finding_of(&w, "Neptune.9", ACCOUNT, &a, "a9"),
        finding_of(&w, "Neptune.6", ACCOUNT, &snap, "s6"),
        finding_of(&w, "Neptune.1", ACCOUNT, &b, "b1"),
    ];
    let suppressed = finding_of(&w, "Neptune.8", MEMBER, &m, "m8");
    let mut all: Vec<Value> = auto.iter().chain(&ticketed).cloned().collect();
    all.push(suppressed.clone());

    let extra = format!(
        "{}\n[accounts]\nrole_arn = \"arn:aws:iam::{{account}}:role/hubtriage-member\"\nexternal_id_env = \"{EXTERNAL_ID_ENV}\"\n\
         [[suppress]]\nname = \"member-tags\"\nreason = \"The member's backup plan copies tags (RISK-77)\"\nexpires = \"2099-12-31\"\ncontrols = [\"Neptune.8\"]\nmatch = {{ accounts = [\"{MEMBER}\"] }}\n",
        jira_table("jira", &fakes.url("jira"))
    );
    let env: Vec<(&str, &str)> = JIRA_ENV
        .iter()
        .copied()
        .chain([(EXTERNAL_ID_ENV, EXTERNAL_ID)])
        .collect();

    // Dry-run: every decision recorded, nothing changed.
    w.import(&all);
    w.emu.http("DELETE", "/_emu/calls", None);
    let out = w.drain_with_env(
        &w.config_with("mode = \"dry-run\"\nreboot = \"immediate\"", &extra),
        &env,
        LIMIT,
    );
    assert!(
        w.mutating_calls("rds").is_empty(),
        "dry-run changed {:?}\n{}",
        w.mutating_calls("rds"),
        show(&out)
    );
    for f in &auto {
        assert!(
            note(&w, f).contains("dry-run"),
            "{}: {}",
            f["Id"],
            note(&w, f)
        );
    }

    // Security Hub evaluates again; apply mode.
    w.import(&evaluated_again(&all));
    let out = w.drain_with_env(
        &w.config_with(
            "mode = \"apply\"\nreboot = \"immediate\"\nrecheck_seconds = 1",
            &extra,
        ),
        &env,
        LIMIT,
    );
    let log = show(&out);

    // Each auto fix made once, verified and RESOLVED (a second finding of a
    // problem already fixed is resolved from live state).
    for f in &auto {
        assert_eq!(
            status(&w, f),
            "RESOLVED",
            "{}: {}\n{log}",
            f["Id"],
            note(&w, f)
        );
        let n = note(&w, f);
        assert!(
            n.contains("Verified:") || n.contains("Live state is compliant"),
            "{n}"
        );
    }
    let ctl_a_notes = format!("{} {}", note(&w, &auto[0]), note(&w, &auto[1]));
    assert!(
        ctl_a_notes
            .contains("set DeletionProtection to true. Verified: DeletionProtection is true"),
        "{ctl_a_notes}"
    );
    assert!(note(&w, &auto[4]).contains("removed all from the snapshot's restore attribute"));
    let mut protected = modifications(&w, "DeletionProtection");
    protected.sort();
    assert_eq!(
        protected,
        ["ctl-a", "ctl-m"],
        "Neptune.4 and RDS.7 of ctl-a: one change"
    );
    assert_eq!(modifications(&w, "BackupRetentionPeriod"), ["ctl-a"]);
    assert_eq!(
        modifications(&w, "CopyTagsToSnapshot"),
        ["ctl-a"],
        "not the suppressed member's"
    );
    assert!(
        modifications(&w, "EnableIAMDatabaseAuthentication").is_empty(),
        "opt-in"
    );
    let after = w.cluster("ctl-a").await;
    assert_eq!(after.deletion_protection(), Some(true));
    assert_eq!(after.backup_retention_period(), Some(7));
    assert_eq!(after.copy_tags_to_snapshot(), Some(true));
    assert_eq!(after.iam_database_authentication_enabled(), Some(false));
    let ctl_b = w.cluster("ctl-b").await;
    assert_eq!(
        ctl_b.deletion_protection(),
        Some(false),
        "ctl-b's finding is Neptune.1's: nothing else of it changes"
    );
    let member_after = member
        .describe_db_clusters()
        .db_cluster_identifier("ctl-m")
        .send()
        .await
        .unwrap();
    let member_after = &member_after.db_clusters()[0];
    assert_eq!(
        member_after.deletion_protection(),
        Some(true),
        "through the role"
    );
    assert_eq!(
        member_after.copy_tags_to_snapshot(),
        Some(false),
        "suppressed"
    );
    assert_eq!(status(&w, &suppressed), "SUPPRESSED");
    let restore = w
        .neptune
        .describe_db_cluster_snapshot_attributes()
        .db_cluster_snapshot_identifier("ctl-a-snap")
        .send()
        .await
        .unwrap();
    let values: Vec<String> = restore
        .db_cluster_snapshot_attributes_result()
        .unwrap()
        .db_cluster_snapshot_attributes()
        .iter()
        .flat_map(|a| a.attribute_values().to_vec())
        .collect();
    assert_eq!(
        values,
        [SHARED_WITH],
        "public no more; the named account keeps access"
    );
    // No Neptune.2 work on clusters with no Neptune.2 finding.
    let rds = w.mutating_calls("rds");
    assert!(
        !rds.iter()
            .any(|c| c == "CreateDBClusterParameterGroup" || c == "RebootDBInstance"),
        "{rds:?}"
    );

    // Opt-in and ticket-only controls: one issue per problem, with its manual fix.
    for f in &ticketed {
        assert_eq!(status(&w, f), "NOTIFIED", "{}: {}", f["Id"], note(&w, f));
    }
    let issues = fakes.state("jira")["issues"].as_array().unwrap().clone();
    assert_eq!(issues.len(), ticketed.len(), "{issues:#?}\n{log}");
    let text = |summary: &str| -> String {
        issues
            .iter()
            .find(|i| {
                i["fields"]["summary"]
                    .as_str()
                    .unwrap_or_default()
                    .starts_with(summary)
            })
            .map(|i| i["fields"]["description"].to_string())
            .unwrap_or_else(|| panic!("no issue titled {summary}: {issues:#?}"))
    };
    assert!(text("Neptune.7: Neptune cluster ctl-a").contains(
        "aws neptune modify-db-cluster --region us-east-1 --db-cluster-identifier ctl-a --enable-iam-database-authentication"
    ));
    assert!(text("Neptune.1: Neptune cluster ctl-a").contains(
        "--db-cluster-identifier ctl-a --db-cluster-snapshot-identifier ctl-a-before-encryption"
    ));
    assert!(text("Neptune.1: Neptune cluster ctl-b").contains("--db-cluster-identifier ctl-b"));
    assert!(text("Neptune.9: Neptune cluster ctl-a").contains("--availability-zone"));
    assert!(text("Neptune.6: Neptune cluster snapshot ctl-a-snap").contains(
        "restore-db-cluster-from-snapshot --region us-east-1 --db-cluster-identifier ctl-a-snap-encrypted --snapshot-identifier ctl-a-snap"
    ));
    assert_eq!(w.depth(&w.queue_url).await, 0);
    assert_eq!(w.depth(&w.dlq_url).await, 0);
}

/// The tag `env=dev`, which the test's rules match.
pub(crate) fn dev_tag() -> aws_sdk_neptune::types::Tag {
    aws_sdk_neptune::types::Tag::builder()
        .key("env")
        .value("dev")
        .build()
}
