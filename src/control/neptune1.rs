//! Neptune.1: Neptune DB clusters should be encrypted at rest
//! (`StorageEncrypted`). No fix in place: a cluster's encryption is set when
//! it is made, so the fix is a snapshot restored with a KMS key into a new
//! cluster and a cut-over of its clients. Ticket only.

use super::setting::{modify_command, SettingControl};
use super::{Safety, SettingValue, Target};

pub static CONTROL: SettingControl = SettingControl {
    id: "Neptune.1",
    title: "Neptune DB clusters should be encrypted at rest",
    failing: "is not encrypted at rest",
    safety: Safety::TicketOnly,
    setting: None,
    problem: |s, _| (!s.storage_encrypted).then(|| "storage is not encrypted at rest".to_string()),
    target: |_, _| SettingValue::Flag(true),
    compliant: |_| "the cluster's storage is encrypted at rest.".into(),
    not_automatic: "Neptune.1 has no fix in place: an unencrypted cluster is replaced by an encrypted copy, which needs a cut-over of its clients.",
    manual_fix,
    iam_actions: &[],
    fix_summary: "none in place: snapshot, restore with a KMS key, cut clients over",
    passes_when: "`StorageEncrypted`",
    reads: &["StorageEncrypted"],
    stack: None,
};

fn manual_fix(t: &Target<'_>) -> Vec<String> {
    let (c, r) = (t.cluster, t.region);
    vec![
        format!("Stop writes to {c}, then snapshot it: aws neptune create-db-cluster-snapshot --region {r} --db-cluster-identifier {c} --db-cluster-snapshot-identifier {c}-before-encryption"),
        format!("Restore the snapshot into an encrypted cluster, giving again its parameter group, security groups, subnet group, log exports, IAM authentication, deletion protection and tag copying: aws neptune restore-db-cluster-from-snapshot --region {r} --db-cluster-identifier {c}-encrypted --snapshot-identifier {c}-before-encryption --engine neptune --kms-key-id <KMS key ARN>"),
        format!("Create its instances (a restore makes none): aws neptune create-db-instance --region {r} --db-cluster-identifier {c}-encrypted --db-instance-identifier {c}-encrypted-1 --engine neptune --db-instance-class <the writer's class>"),
        format!("Point the clients at the new cluster's endpoints, then delete {c} (turning its deletion protection off first): {}", modify_command(t, "--no-deletion-protection")),
    ]
}
