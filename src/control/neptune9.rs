//! Neptune.9: Neptune DB clusters should be deployed across multiple
//! Availability Zones (`MultiAZ`: instances in more than one zone). The fix
//! adds a read replica in another zone, a whole instance's cost: ticket only.

use super::setting::SettingControl;
use super::{Safety, SettingValue, Target};

pub static CONTROL: SettingControl = SettingControl {
    id: "Neptune.9",
    title: "Neptune DB clusters should be deployed across multiple Availability Zones",
    failing: "has all its instances in one Availability Zone",
    safety: Safety::TicketOnly,
    setting: None,
    problem: |s, _| {
        (!s.multi_az).then(|| "all of its instances are in one Availability Zone".to_string())
    },
    target: |_, _| SettingValue::Flag(true),
    compliant: |_| "the cluster has instances in more than one Availability Zone.".into(),
    not_automatic: "Neptune.9 is fixed by adding an instance in another Availability Zone, which costs as much as the instance: a person decides.",
    manual_fix,
    iam_actions: &[],
    fix_summary: "none automatic: a reader in another Availability Zone (an instance's cost)",
    passes_when: "`MultiAZ` (instances in more than one Availability Zone)",
    reads: &["MultiAZ"],
    stack: None,
};

fn manual_fix(t: &Target<'_>) -> Vec<String> {
    let (c, r) = (t.cluster, t.region);
    vec![
        format!("Find the writer's class and zone: aws neptune describe-db-instances --region {r} --filters Name=db-cluster-id,Values={c}"),
        format!("Add a reader of the same class in another zone of the cluster's subnet group: aws neptune create-db-instance --region {r} --db-cluster-identifier {c} --db-instance-identifier {c}-replica-2 --engine neptune --db-instance-class <the writer's class> --availability-zone <another zone>"),
    ]
}
