//! What a remediation in progress carries from pass to pass (in its
//! re-check message, and saved with the cluster's lease), and the changes
//! it reports.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::deadline;
use crate::config::Remediation;
use crate::control::Control;
use crate::state::{ClusterState, LiveResource, AUDIT_PARAMETER};

/// The cluster as it was when the remediation started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateBefore {
    pub parameter_group: String,
    pub audit_exported: bool,
    pub audit_value: String,
}

/// What a remediation in progress carries from pass to pass (in its re-check message).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    pub started_at: DateTime<Utc>,
    /// Verification must succeed by then; moved on by each change and by window waits.
    pub deadline: DateTime<Utc>,
    pub original: StateBefore,
    #[serde(default)]
    pub created_group: Option<String>,
    #[serde(default)]
    pub copied_parameters: usize,
    #[serde(default)]
    pub rebooted: Vec<String>,
    #[serde(default)]
    pub retention_set: Option<i32>,
    /// Instance → when hubtriage asked for its reboot (written with the
    /// cluster's lease before the call, so a task that takes over after a
    /// crash does not reboot it again while that reboot applies).
    #[serde(default)]
    pub reboots_issued: BTreeMap<String, DateTime<Utc>>,
    /// When this progress was last saved with the cluster's lease.
    #[serde(default)]
    pub saved_at: Option<DateTime<Utc>>,
    /// The one-setting fixes made, in words (`set DeletionProtection to true`).
    #[serde(default)]
    pub modified: Vec<String>,
    /// The remediation's id in the change journal: its changes' entries carry it.
    #[serde(default)]
    pub remediation: Option<String>,
    /// The journal entries of the changes made (`done`), marked verified when
    /// the remediation verifies.
    #[serde(default)]
    pub journal: Vec<String>,
    /// Since when the resource has been on its way back to `available`
    /// (`None`: it is available); past `wait_for_available_minutes`, a ticket.
    #[serde(default)]
    pub unavailable_since: Option<DateTime<Utc>>,
}

impl Progress {
    pub fn start(live: LiveResource<'_>, policy: &Remediation, now: DateTime<Utc>) -> Self {
        let original = match live {
            LiveResource::Cluster(state) => StateBefore {
                parameter_group: state.parameter_group.clone(),
                audit_exported: state.exports_audit(),
                audit_value: state.audit_parameter.value.clone(),
            },
            LiveResource::Snapshot(_) => StateBefore {
                parameter_group: String::new(),
                audit_exported: false,
                audit_value: String::new(),
            },
        };
        Progress {
            started_at: now,
            deadline: now + deadline(policy),
            original,
            created_group: None,
            copied_parameters: 0,
            rebooted: Vec::new(),
            retention_set: None,
            reboots_issued: BTreeMap::new(),
            saved_at: None,
            modified: Vec::new(),
            remediation: Some(format!("r-{}", crate::journal::new_id(now))),
            journal: Vec::new(),
            unavailable_since: None,
        }
    }

    /// The later of two records of one remediation: the re-check's and the
    /// one saved with the cluster's lease (newer when a task stopped mid-pass).
    pub fn newest(self, saved: Option<Progress>) -> Progress {
        match saved {
            Some(s) if s.started_at == self.started_at && s.saved_at > self.saved_at => s,
            _ => self,
        }
    }

    /// What changed, in words for the finding's note: a Neptune.2
    /// remediation's changes seen in the cluster, else the fixes made.
    pub fn changes(&self, control: &dyn Control, live: LiveResource<'_>) -> Vec<String> {
        match live {
            // A one-setting fix says what it set; Neptune.2's changes are
            // read from the cluster as it was and as it is.
            LiveResource::Cluster(state) => match control.proof_log_group(&state.identifier) {
                Some(log_group) => self.audit_changes(state, &log_group),
                None => self.modified.clone(),
            },
            _ => self.modified.clone(),
        }
    }

    /// Neptune.2's changes, from the cluster as it was and as it is.
    fn audit_changes(&self, state: &ClusterState, log_group: &str) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(group) = &self.created_group {
            let mut s = format!(
                "created parameter group {group} ({})",
                state.parameter_group_family()
            );
            if self.copied_parameters > 0 {
                s.push_str(&format!(
                    " with {} parameters copied from {}",
                    self.copied_parameters, self.original.parameter_group
                ));
            }
            out.push(s);
        }
        if state.parameter_group != self.original.parameter_group {
            out.push(format!(
                "attached {} in place of {}",
                state.parameter_group, self.original.parameter_group
            ));
        }
        if self.original.audit_value.trim() != "1" && state.audit_parameter.is_enabled() {
            out.push(format!(
                "set {AUDIT_PARAMETER}=1 in {}",
                state.parameter_group
            ));
        }
        if !self.original.audit_exported && state.exports_audit() {
            out.push("enabled the audit log export to CloudWatch Logs".into());
        }
        if !self.rebooted.is_empty() {
            out.push(format!("rebooted {}", self.rebooted.join(", ")));
        }
        if let Some(days) = self.retention_set {
            out.push(format!("set {log_group} retention to {days} days"));
        }
        out
    }
}
