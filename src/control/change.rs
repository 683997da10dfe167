//! What a plan step changes, in the terms of the change journal: the API
//! call, the setting it changes (as the API names it), what it acts on when
//! that is not the resource itself (a parameter group, an instance, a log
//! group), and the value live state shows now (`before`) and the value asked
//! for (`after`). Pure: read from the plan step and the live state the step
//! was planned from.
//!
//! Values are text: flags `true`/`false`, numbers in decimal, lists joined
//! with `,` in sorted order, and [`NONE`] for "nothing" (no group yet, no
//! export, an empty attribute).

use super::Step;
use crate::state::{ClusterState, LiveResource, AUDIT_EXPORT, AUDIT_PARAMETER, IN_SYNC, PUBLIC};

/// The text of an absent value: no group, no export, an empty list.
pub const NONE: &str = "(none)";

/// One AWS call that changes something, as the journal records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The API call: `ModifyDBCluster`, `RebootDBInstance`, ...
    pub call: &'static str,
    /// The setting it changes, as the API names it: `DeletionProtection`,
    /// `neptune_enable_audit_log`, `restore`, ...
    pub setting: String,
    /// What the call acts on when it is not the resource the finding names
    /// (a parameter group, an instance, a log group); `None`: the resource.
    pub target: Option<String>,
    /// The value live state showed when the change was decided.
    pub before: String,
    /// The value asked for.
    pub after: String,
}

impl Change {
    fn new(call: &'static str, setting: &str, before: String, after: String) -> Change {
        Change {
            call,
            setting: setting.to_string(),
            target: None,
            before,
            after,
        }
    }

    fn on(mut self, target: &str) -> Change {
        self.target = Some(target.to_string());
        self
    }
}

/// The call `step` makes and what it changes, seen from `live`; `None` for
/// the steps that change nothing (waits, `verify`).
pub fn change_of(step: &Step, live: LiveResource<'_>) -> Option<Change> {
    match (step, live) {
        (Step::ModifyCluster { setting, value }, LiveResource::Cluster(c)) => Some(Change::new(
            "ModifyDBCluster",
            setting.as_str(),
            setting.value_in(&c.settings).to_string(),
            value.to_string(),
        )),
        (Step::MakeSnapshotPrivate { snapshot }, LiveResource::Snapshot(s)) => {
            let kept: Vec<String> = s.restore.iter().filter(|v| *v != PUBLIC).cloned().collect();
            Some(
                Change::new(
                    "ModifyDBClusterSnapshotAttribute",
                    "restore",
                    list(&s.restore),
                    list(&kept),
                )
                .on(snapshot),
            )
        }
        (step, LiveResource::Cluster(c)) => audit_change(step, c),
        _ => None,
    }
}

/// Neptune.2's steps.
fn audit_change(step: &Step, c: &ClusterState) -> Option<Change> {
    match step {
        Step::CreateParameterGroup { name, family, .. } => Some(
            Change::new(
                "CreateDBClusterParameterGroup",
                "DBClusterParameterGroupName",
                NONE.into(),
                format!("{name} ({family})"),
            )
            .on(name),
        ),
        Step::SetAuditParameter { group } => {
            // A group other than the cluster's own is the one just made: the
            // engine's default holds there.
            let before = if *group == c.parameter_group {
                c.audit_parameter.value.trim().to_string()
            } else {
                "0".to_string()
            };
            Some(
                Change::new(
                    "ModifyDBClusterParameterGroup",
                    AUDIT_PARAMETER,
                    before,
                    "1".into(),
                )
                .on(group),
            )
        }
        Step::AttachParameterGroup { group } => Some(Change::new(
            "ModifyDBCluster",
            "DBClusterParameterGroupName",
            c.parameter_group.clone(),
            group.clone(),
        )),
        Step::EnableAuditExport => {
            let mut after = c.exported_logs.clone();
            after.push(AUDIT_EXPORT.to_string());
            Some(Change::new(
                "ModifyDBCluster",
                "EnableCloudwatchLogsExports",
                list(&c.exported_logs),
                list(&after),
            ))
        }
        Step::RebootInstance { instance } => {
            let status = c
                .members
                .iter()
                .find(|m| m.instance == *instance)
                .map_or(NONE, |m| m.parameter_group_status.as_str());
            Some(
                Change::new(
                    "RebootDBInstance",
                    "DBClusterParameterGroupStatus",
                    status.to_string(),
                    IN_SYNC.into(),
                )
                .on(instance),
            )
        }
        Step::SetLogRetention { log_group, days } => Some(
            Change::new(
                "PutRetentionPolicy",
                "retentionInDays",
                c.audit_log_retention_days
                    .map_or_else(|| "(not read)".to_string(), |d| d.to_string()),
                days.to_string(),
            )
            .on(log_group),
        ),
        Step::WaitForMaintenanceWindow { .. }
        | Step::WaitForAvailable { .. }
        | Step::Verify
        | Step::ModifyCluster { .. }
        | Step::MakeSnapshotPrivate { .. } => None,
    }
}

/// The value `change` set, as live state shows it now; `None` when live
/// state does not show it (a new group's parameters, a log group's
/// retention: the caller reads those).
pub fn current_value(change: &Change, live: LiveResource<'_>) -> Option<String> {
    match (change.call, change.setting.as_str(), live) {
        ("ModifyDBCluster", "DBClusterParameterGroupName", LiveResource::Cluster(c)) => {
            Some(c.parameter_group.clone())
        }
        ("ModifyDBCluster", "EnableCloudwatchLogsExports", LiveResource::Cluster(c)) => {
            Some(list(&c.exported_logs))
        }
        ("ModifyDBCluster", setting, LiveResource::Cluster(c)) => {
            super::ClusterSetting::named(setting).map(|s| s.value_in(&c.settings).to_string())
        }
        ("ModifyDBClusterSnapshotAttribute", "restore", LiveResource::Snapshot(s)) => {
            Some(list(&s.restore))
        }
        ("ModifyDBClusterParameterGroup", AUDIT_PARAMETER, LiveResource::Cluster(c))
            if change.target.as_deref() == Some(c.parameter_group.as_str()) =>
        {
            Some(c.audit_parameter.value.trim().to_string())
        }
        ("RebootDBInstance", _, LiveResource::Cluster(c)) => c
            .members
            .iter()
            .find(|m| Some(m.instance.as_str()) == change.target.as_deref())
            .map(|m| m.parameter_group_status.clone()),
        _ => None,
    }
}

/// A list as the journal writes it: sorted, joined with `,`; [`NONE`] when empty.
pub fn list(values: &[String]) -> String {
    if values.is_empty() {
        return NONE.to_string();
    }
    let mut v = values.to_vec();
    v.sort();
    v.dedup();
    v.join(",")
}

/// A list the journal wrote, read back.
pub fn unlist(text: &str) -> Vec<String> {
    if text == NONE || text.is_empty() {
        return Vec::new();
    }
    text.split(',').map(str::to_string).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::{ClusterSetting, SettingValue};
    use crate::state::tests::sample_state;
    use crate::state::SnapshotState;

    #[test]
    fn each_change_says_what_it_was_and_what_it_asks_for() {
        let c = sample_state();
        let live = LiveResource::Cluster(&c);
        let modify = Step::ModifyCluster {
            setting: ClusterSetting::DeletionProtection,
            value: SettingValue::Flag(true),
        };
        let change = change_of(&modify, live).unwrap();
        assert_eq!(
            (
                change.call,
                change.setting.as_str(),
                change.before.as_str(),
                change.after.as_str()
            ),
            ("ModifyDBCluster", "DeletionProtection", "false", "true")
        );
        assert_eq!(current_value(&change, live).as_deref(), Some("false"));

        let export = change_of(&Step::EnableAuditExport, live).unwrap();
        assert_eq!(
            (export.before.as_str(), export.after.as_str()),
            ("slowquery", "audit,slowquery")
        );
        let attach = change_of(
            &Step::AttachParameterGroup {
                group: "hubtriage-audit-orders-graph".into(),
            },
            live,
        )
        .unwrap();
        assert_eq!(attach.before, "default.neptune1.3");
        let set = change_of(
            &Step::SetAuditParameter {
                group: "hubtriage-audit-orders-graph".into(),
            },
            live,
        )
        .unwrap();
        assert_eq!(set.target.as_deref(), Some("hubtriage-audit-orders-graph"));
        assert_eq!((set.before.as_str(), set.after.as_str()), ("0", "1"));
        assert_eq!(
            current_value(&set, live),
            None,
            "a group not the cluster's own"
        );
        assert!(change_of(&Step::Verify, live).is_none());
        let reboot = change_of(
            &Step::RebootInstance {
                instance: "orders-graph-2".into(),
            },
            live,
        )
        .unwrap();
        assert_eq!(
            (reboot.before.as_str(), reboot.after.as_str()),
            ("in-sync", "in-sync")
        );
    }

    #[test]
    fn making_a_snapshot_private_keeps_the_named_accounts() {
        let s = SnapshotState {
            identifier: "snap".into(),
            arn: "arn:aws:rds:us-east-1:111122223333:cluster-snapshot:snap".into(),
            cluster: "orders-graph".into(),
            engine: "neptune".into(),
            status: "available".into(),
            snapshot_type: "manual".into(),
            storage_encrypted: false,
            restore: vec!["all".into(), "444455556666".into()],
            tags: Default::default(),
        };
        let change = change_of(
            &Step::MakeSnapshotPrivate {
                snapshot: "snap".into(),
            },
            LiveResource::Snapshot(&s),
        )
        .unwrap();
        assert_eq!(change.before, "444455556666,all");
        assert_eq!(change.after, "444455556666");
        assert_eq!(unlist(&change.after), ["444455556666"]);
        assert_eq!(unlist(NONE), Vec::<String>::new());
    }
}
