//! The remediation plan: what a non-compliant cluster still lacks, as steps in
//! the order they must run. Pure, like the rest of the decide step.

use crate::config::{RebootPolicy, Remediation, SharedGroupPolicy};
use crate::state::ClusterState;

use super::Step;

/// The tag that keeps hubtriage from changing a cluster (any value).
pub const SKIP_TAG: &str = "hubtriage:skip";

/// The log group Neptune writes audit logs to.
pub fn audit_log_group(cluster: &str) -> String {
    format!("/aws/neptune/{cluster}/audit")
}

/// The remediation plan for a non-compliant cluster: the steps still needed, in
/// order, and a sentence to add to the reason. `Err` says why hubtriage must not
/// change the cluster (the decision becomes a ticket). The remediation executor
/// calls it again on every pass, so a plan is always what live state still lacks.
pub fn plan(
    state: &ClusterState,
    policy: &Remediation,
) -> Result<(Vec<Step>, Option<String>), String> {
    if state.tags.contains_key(SKIP_TAG) {
        return Err(format!("the cluster is tagged {SKIP_TAG}."));
    }

    let mut steps = Vec::new();
    let own_group = format!("{}{}", policy.parameter_group_prefix, state.identifier);
    let family = state.parameter_group_family();
    let shared = !state.group_shared_with.is_empty();

    // Which group will hold neptune_enable_audit_log = 1, and is it new?
    let new_group = if state.uses_default_group() {
        Some(None)
    } else if shared {
        match policy.shared_parameter_group {
            SharedGroupPolicy::Copy => Some(Some(state.parameter_group.clone())),
            SharedGroupPolicy::Modify => None,
            SharedGroupPolicy::Ticket => {
                return Err(format!(
                    "its parameter group {} is shared with {} and shared_parameter_group is \"ticket\".",
                    state.parameter_group,
                    state.group_shared_with.join(", ")
                ));
            }
        }
    } else {
        None
    };
    let parameter_changes = match new_group {
        Some(copy_from) => {
            steps.push(Step::CreateParameterGroup {
                name: own_group.clone(),
                family,
                copy_from,
            });
            steps.push(Step::SetAuditParameter {
                group: own_group.clone(),
            });
            steps.push(Step::AttachParameterGroup { group: own_group });
            true
        }
        None if !state.audit_parameter.is_enabled() => {
            steps.push(Step::SetAuditParameter {
                group: state.parameter_group.clone(),
            });
            true
        }
        None => false,
    };

    if !state.exports_audit() {
        steps.push(Step::EnableAuditExport);
    }

    let mut note = None;
    // A parameter change needs every instance rebooted; otherwise only those
    // that have not applied the group yet.
    let to_reboot: Vec<&crate::state::Member> = state
        .reboot_order()
        .into_iter()
        .filter(|m| parameter_changes || m.parameter_group_status != crate::state::IN_SYNC)
        .collect();
    let needs_reboot = !to_reboot.is_empty();
    if needs_reboot {
        match policy.reboot {
            RebootPolicy::Never => {
                note = Some(
                    "A reboot of every instance is still needed for the audit log to start; reboot policy is \"never\", so hubtriage will not reboot.".to_string(),
                );
            }
            RebootPolicy::MaintenanceWindow | RebootPolicy::Immediate => {
                if policy.reboot == RebootPolicy::MaintenanceWindow {
                    let Some(window) = state.maintenance_window.clone() else {
                        return Err("reboot policy is \"maintenance-window\" but the cluster has no PreferredMaintenanceWindow.".into());
                    };
                    steps.push(Step::WaitForMaintenanceWindow { window });
                }
                for member in to_reboot {
                    steps.push(Step::RebootInstance {
                        instance: member.instance.clone(),
                    });
                }
            }
        }
    }

    if let Some(days) = policy.log_retention_days {
        if state.audit_log_retention_days != Some(days) {
            steps.push(Step::SetLogRetention {
                log_group: audit_log_group(&state.identifier),
                days,
            });
        }
    }
    steps.push(Step::Verify);
    Ok((steps, note))
}
