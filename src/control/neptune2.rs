//! Neptune.2: Neptune DB clusters should publish audit logs to CloudWatch
//! Logs. The control checks only that the `audit` export is on; hubtriage
//! calls a cluster compliant only when audit logs really flow: the export
//! on, `neptune_enable_audit_log` 1 in its cluster parameter group, and every
//! instance rebooted to apply it (`ClusterState::problems`). The plan: what
//! a non-compliant cluster still lacks, as steps in the order they must run.

use super::iac::StackChange;
use super::{not_skipped, Control, Criteria, Kind, Plan, Safety, Step, Target};
use crate::config::{RebootPolicy, Remediation, SharedGroupPolicy};
use crate::state::{ClusterState, LiveResource, IN_SYNC};

pub struct Neptune2;

pub static CONTROL: Neptune2 = Neptune2;

/// The calls a Neptune.2 remediation makes, as IAM actions.
const IAM: &[&str] = &[
    "iam:GetRole",
    "logs:DescribeLogGroups",
    "logs:DescribeLogStreams",
    "logs:PutRetentionPolicy",
    "rds:CreateDBClusterParameterGroup",
    "rds:DescribeDBClusterParameters",
    "rds:DescribeDBInstances",
    "rds:ModifyDBCluster",
    "rds:ModifyDBClusterParameterGroup",
    "rds:RebootDBInstance",
];

impl Control for Neptune2 {
    fn id(&self) -> &'static str {
        "Neptune.2"
    }

    fn title(&self) -> &'static str {
        "Neptune DB clusters should publish audit logs to CloudWatch Logs"
    }

    fn failing(&self) -> &'static str {
        "does not publish audit logs to CloudWatch Logs"
    }

    fn kind(&self) -> Kind {
        Kind::Cluster
    }

    fn safety(&self) -> Safety {
        Safety::Auto
    }

    fn problems(&self, live: LiveResource<'_>, _criteria: Criteria<'_>) -> Vec<String> {
        match live {
            LiveResource::Cluster(c) => c.audit_log_problems(),
            LiveResource::Snapshot(_) => Vec::new(),
        }
    }

    fn compliant(&self, _criteria: Criteria<'_>) -> String {
        "the audit log is exported, neptune_enable_audit_log is 1 and every instance has applied it.".into()
    }

    fn plan(&self, live: LiveResource<'_>, criteria: Criteria<'_>) -> Result<Plan, String> {
        let LiveResource::Cluster(state) = live else {
            return Err("Neptune.2 checks clusters.".into());
        };
        let (steps, note) = plan(state, &criteria.config.remediation)?;
        Ok(Plan { steps, note })
    }

    fn not_automatic(&self) -> &'static str {
        ""
    }

    fn manual_fix(&self, t: &Target<'_>) -> Vec<String> {
        vec![
            "Give the cluster a custom DB cluster parameter group of its family (default.* groups cannot be changed), copying any parameters its current group sets.".into(),
            "Set neptune_enable_audit_log = 1 in that group (a static parameter: it applies after a reboot).".into(),
            "Enable the audit log export: modify the cluster with CloudwatchLogsExportConfiguration EnableLogTypes = [\"audit\"].".into(),
            "Reboot the instances one at a time, in the maintenance window, until every member's parameter group status is in-sync.".into(),
            format!("Check that the log group {} receives audit records.", audit_log_group(t.cluster)),
        ]
    }

    fn iam_actions(&self) -> &'static [&'static str] {
        IAM
    }

    fn passes_when(&self) -> &'static str {
        "the `audit` export on, `neptune_enable_audit_log` 1 in the cluster's parameter group, every instance in sync with it"
    }

    fn fix_summary(&self) -> &'static str {
        "neptune_enable_audit_log=1 in a custom parameter group, the audit export, reboots per policy"
    }

    fn proof_log_group(&self, cluster: &str) -> Option<String> {
        Some(audit_log_group(cluster))
    }

    fn needs_rds_service_linked_role(&self) -> bool {
        true
    }

    fn stack_change(
        &self,
        _live: LiveResource<'_>,
        _criteria: Criteria<'_>,
    ) -> Option<StackChange> {
        Some(StackChange {
            cloudformation: vec![
                "AWS::Neptune::DBCluster EnableCloudwatchLogsExports: [audit]".into(),
                "its AWS::Neptune::DBClusterParameterGroup Parameters: {neptune_enable_audit_log: 1} (the instances apply it when they reboot)".into(),
            ],
            terraform: vec![
                "aws_neptune_cluster enable_cloudwatch_logs_exports = [\"audit\"]".into(),
                "its aws_neptune_cluster_parameter_group parameter { name = \"neptune_enable_audit_log\", value = \"1\" }".into(),
            ],
        })
    }

    fn verified(&self, _live: LiveResource<'_>, _criteria: Criteria<'_>) -> String {
        "audit log export on, neptune_enable_audit_log=1, every instance in-sync, audit log stream present".into()
    }
}

/// The log group Neptune writes audit logs to.
pub fn audit_log_group(cluster: &str) -> String {
    format!("/aws/neptune/{cluster}/audit")
}

/// The remediation plan for a non-compliant cluster: the steps still needed, in
/// order, and a sentence to add to the reason. `Err` says why hubtriage must not
/// change the cluster (the decision becomes a ticket). The remediation driver
/// calls it again on every pass, so a plan is always what live state still lacks.
pub fn plan(
    state: &ClusterState,
    policy: &Remediation,
) -> Result<(Vec<Step>, Option<String>), String> {
    not_skipped(LiveResource::Cluster(state))?;

    let mut steps = parameter_steps(state, policy, audit_group(state, policy)?);
    // Any parameter step changes the parameter, which an instance applies only
    // when it reboots.
    let parameter_changes = !steps.is_empty();
    if !state.exports_audit() {
        steps.push(Step::EnableAuditExport);
    }
    let (reboots, note) = reboot_steps(state, policy, parameter_changes)?;
    steps.extend(reboots);
    steps.extend(retention_step(state, policy));
    steps.push(Step::Verify);
    Ok((steps, note))
}

/// The group that will hold `neptune_enable_audit_log = 1`.
enum AuditGroup {
    /// The cluster's own custom group, changed in place.
    Current,
    /// A new `<prefix><cluster>` group; with `copy_from`, a copy of that
    /// group's user-set parameters.
    New { copy_from: Option<String> },
}

/// A new group for a `default.*` group, and for a shared group under
/// `shared_parameter_group = "copy"`; `Err` for a shared group under `"ticket"`.
fn audit_group(state: &ClusterState, policy: &Remediation) -> Result<AuditGroup, String> {
    if state.uses_default_group() {
        return Ok(AuditGroup::New { copy_from: None });
    }
    if state.group_shared_with.is_empty() {
        return Ok(AuditGroup::Current);
    }
    match policy.shared_parameter_group {
        SharedGroupPolicy::Copy => Ok(AuditGroup::New {
            copy_from: Some(state.parameter_group.clone()),
        }),
        SharedGroupPolicy::Modify => Ok(AuditGroup::Current),
        SharedGroupPolicy::Ticket => Err(format!(
            "its parameter group {} is shared with {} and shared_parameter_group is \"ticket\".",
            state.parameter_group,
            state.group_shared_with.join(", ")
        )),
    }
}

/// Create, set and attach a new group; or set the parameter in the current
/// group when it is not 1 there yet.
fn parameter_steps(state: &ClusterState, policy: &Remediation, group: AuditGroup) -> Vec<Step> {
    match group {
        AuditGroup::New { copy_from } => {
            let name = format!("{}{}", policy.parameter_group_prefix, state.identifier);
            vec![
                Step::CreateParameterGroup {
                    name: name.clone(),
                    family: state.parameter_group_family(),
                    copy_from,
                },
                Step::SetAuditParameter {
                    group: name.clone(),
                },
                Step::AttachParameterGroup { group: name },
            ]
        }
        AuditGroup::Current if !state.audit_parameter.is_enabled() => {
            vec![Step::SetAuditParameter {
                group: state.parameter_group.clone(),
            }]
        }
        AuditGroup::Current => Vec::new(),
    }
}

/// The reboots, readers before the writer, under the reboot policy, and the
/// sentence for the reason when the policy leaves them undone. A parameter
/// change needs every instance rebooted; otherwise only those that have not
/// applied the group yet. `Err` when the policy waits for a maintenance window
/// the cluster does not have.
fn reboot_steps(
    state: &ClusterState,
    policy: &Remediation,
    parameter_changes: bool,
) -> Result<(Vec<Step>, Option<String>), String> {
    let reboots: Vec<Step> = state
        .reboot_order()
        .into_iter()
        .filter(|m| parameter_changes || m.parameter_group_status != IN_SYNC)
        .map(|m| Step::RebootInstance {
            instance: m.instance.clone(),
        })
        .collect();
    if reboots.is_empty() {
        return Ok((reboots, None));
    }
    match policy.reboot {
        RebootPolicy::Never => Ok((
            Vec::new(),
            Some("A reboot of every instance is still needed for the audit log to start; reboot policy is \"never\", so hubtriage will not reboot.".to_string()),
        )),
        RebootPolicy::Immediate => Ok((reboots, None)),
        RebootPolicy::MaintenanceWindow => {
            let Some(window) = state.maintenance_window.clone() else {
                return Err("reboot policy is \"maintenance-window\" but the cluster has no PreferredMaintenanceWindow.".into());
            };
            let mut steps = vec![Step::WaitForMaintenanceWindow { window }];
            steps.extend(reboots);
            Ok((steps, None))
        }
    }
}

/// `set_log_retention` when `log_retention_days` is set and the audit log
/// group does not have it yet.
fn retention_step(state: &ClusterState, policy: &Remediation) -> Option<Step> {
    let days = policy.log_retention_days?;
    (state.audit_log_retention_days != Some(days)).then(|| Step::SetLogRetention {
        log_group: audit_log_group(&state.identifier),
        days,
    })
}
