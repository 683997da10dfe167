//! Neptune.2's steps: a custom parameter group with the audit parameter,
//! the group attached, the audit export, reboots one at a time (readers
//! first) under the reboot policy and the maintenance window, the audit log
//! group's retention, and the verification that audit logs really flow.

use super::{
    deadline, not_a_cluster, reboot_settle, Change, ParameterValue, Pass, PassError, PassResult,
    NEVER_EXPIRE,
};
use crate::config::RebootPolicy;
use crate::state::AUDIT_PARAMETER;
use crate::window::Window;

impl Pass<'_> {
    pub(super) async fn create_group(
        &mut self,
        name: &str,
        family: &str,
        copy_from: Option<&str>,
        change: Change,
    ) -> Result<Option<PassResult>, PassError> {
        let region = self.arn.region;
        let entry = self.changing(&change).await?;
        let created = self.api.create_group(region, name, family).await;
        self.journal_ended(entry, &created).await;
        created?;
        self.progress.created_group = Some(name.to_string());
        if let Some(source) = copy_from {
            let params: Vec<ParameterValue> = self
                .api
                .user_parameters(region, source)
                .await?
                .into_iter()
                .filter(|p| p.name != AUDIT_PARAMETER)
                .collect();
            if !params.is_empty() {
                let names: Vec<String> = params.iter().map(|p| p.name.clone()).collect();
                let copy = Change {
                    call: "ModifyDBClusterParameterGroup",
                    setting: format!("parameters copied from {source}"),
                    target: Some(name.to_string()),
                    before: crate::control::change::NONE.to_string(),
                    after: crate::control::change::list(&names),
                };
                let entry = self.changing(&copy).await?;
                let copied = self.api.set_parameters(region, name, &params).await;
                self.journal_ended(entry, &copied).await;
                copied?;
            }
            self.progress.copied_parameters = params.len();
        }
        self.changed = true;
        Ok(None)
    }

    pub(super) async fn set_audit_parameter(
        &mut self,
        group: &str,
        change: Change,
    ) -> Result<Option<PassResult>, PassError> {
        let entry = self.changing(&change).await?;
        let p = ParameterValue {
            name: AUDIT_PARAMETER.to_string(),
            value: "1".to_string(),
            apply_method: crate::state::PENDING_REBOOT.to_string(),
        };
        let set = self.api.set_parameters(self.arn.region, group, &[p]).await;
        self.journal_ended(entry, &set).await;
        set?;
        self.changed = true;
        Ok(None)
    }

    pub(super) async fn attach_group(
        &mut self,
        group: &str,
        change: Change,
    ) -> Result<Option<PassResult>, PassError> {
        let entry = self.changing(&change).await?;
        let (region, cluster) = (self.arn.region, self.arn.identifier);
        let attached = self.api.attach_group(region, cluster, group).await;
        self.journal_ended(entry, &attached).await;
        attached?;
        self.changed_now();
        Ok(Some(self.waiting(format!(
            "attached {group}; waiting for the cluster"
        ))))
    }

    pub(super) async fn enable_audit_export(
        &mut self,
        change: Change,
    ) -> Result<Option<PassResult>, PassError> {
        let entry = self.changing(&change).await?;
        let (region, cluster) = (self.arn.region, self.arn.identifier);
        let enabled = self.api.enable_audit_export(region, cluster).await;
        self.journal_ended(entry, &enabled).await;
        enabled?;
        self.changed_now();
        Ok(Some(self.waiting(
            "enabled the audit log export; waiting for the cluster".into(),
        )))
    }

    /// Outside the window the pass waits for it (the verify deadline does not run meanwhile).
    pub(super) fn wait_for_window(&mut self, window: &str) -> Option<PassResult> {
        let w = match Window::parse(window) {
            Ok(w) => w,
            Err(why) => return Some(PassResult::Refused { why }),
        };
        if w.contains(self.now) {
            return None;
        }
        let until = w.until_open(self.now);
        self.progress.deadline = self.now + until + deadline(self.policy);
        let recheck = std::time::Duration::from_secs(self.policy.recheck_seconds);
        Some(PassResult::Waiting {
            why: format!("waiting for the maintenance window {window} to reboot"),
            recheck_in: until
                .to_std()
                .unwrap_or(recheck)
                .max(std::time::Duration::from_secs(1)),
            window: true,
        })
    }

    /// One at a time: every instance must be available before the next
    /// reboot. A reboot asked for less than [`reboot_settle`] ago (by
    /// this task, or one that stopped) is waited for, not repeated.
    pub(super) async fn reboot(
        &mut self,
        instance: &str,
        change: Change,
    ) -> Result<Option<PassResult>, PassError> {
        if let Some(at) = self.progress.reboots_issued.get(instance) {
            if self.now < *at + reboot_settle(self.policy) {
                return Ok(Some(self.waiting(format!(
                    "instance {instance} was rebooted at {}; waiting for the reboot to apply",
                    at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                ))));
            }
        }
        let region = self.arn.region;
        let Some(state) = self.cluster() else {
            return Ok(Some(not_a_cluster()));
        };
        for m in &state.members {
            let status = self.api.instance_status(region, &m.instance).await?;
            if status.as_deref() != Some("available") {
                return Ok(Some(self.waiting(format!(
                    "instance {} is {}",
                    m.instance,
                    status.as_deref().unwrap_or("missing")
                ))));
            }
        }
        // Saved with the lease before the call: a task that takes over after
        // a crash right after it knows the reboot was asked for.
        self.progress
            .reboots_issued
            .insert(instance.to_string(), self.now);
        let entry = self.changing(&change).await?;
        let rebooted = self.api.reboot(region, instance).await;
        self.journal_ended(entry, &rebooted).await;
        if let Err(e) = rebooted {
            // Refused (throttled, or a 4xx): no reboot was made, so it is saved
            // again without it and the retry need not wait. After a reset, a
            // timeout or a 5xx the reboot may have been made: it stays
            // recorded, and the retry waits for it to apply.
            if !e.retryable || e.throttled {
                self.progress.reboots_issued.remove(instance);
                if let Err(lost) = self.fence.checkpoint(self.progress).await {
                    tracing::warn!(error = %lost, "could not save the progress after a refused reboot");
                }
            }
            return Err(e.into());
        }
        if !self.progress.rebooted.iter().any(|r| r == instance) {
            self.progress.rebooted.push(instance.to_string());
        }
        self.changed_now();
        Ok(Some(self.waiting(format!("rebooting {instance}"))))
    }

    /// The group appears once Neptune writes audit logs; until then, later passes retry.
    pub(super) async fn set_retention(
        &mut self,
        log_group: &str,
        days: i32,
        mut change: Change,
    ) -> Result<Option<PassResult>, PassError> {
        let region = self.arn.region;
        if let Some(current) = self.api.log_group_retention(region, log_group).await? {
            if current != Some(days) {
                change.before = current.map_or_else(|| NEVER_EXPIRE.to_string(), |d| d.to_string());
                let entry = self.changing(&change).await?;
                let put = self.api.put_retention(region, log_group, days).await;
                self.journal_ended(entry, &put).await;
                put?;
            }
            self.progress.retention_set = Some(days);
        }
        Ok(None)
    }

    /// Always last: compliant, and an audit log stream exists.
    pub(super) async fn verify(&mut self) -> Result<PassResult, PassError> {
        if self.changed {
            self.changed_now();
            return Ok(self.waiting("changed the parameter group; checking again".into()));
        }
        let Some(state) = self.cluster() else {
            return Ok(not_a_cluster());
        };
        let problems = state.audit_log_problems();
        if !problems.is_empty() {
            if self.policy.reboot == RebootPolicy::Never
                && state.exports_audit()
                && state.audit_parameter.is_enabled()
            {
                return Ok(PassResult::RebootPending {
                    why: format!("{}; reboot policy is \"never\"", problems.join("; ")),
                });
            }
            return Ok(self.waiting(format!("verify: {}", problems.join("; "))));
        }
        let Some(log_group) = self.job.control.proof_log_group(self.arn.identifier) else {
            return Ok(not_a_cluster());
        };
        if !self.api.has_log_stream(self.arn.region, &log_group).await? {
            return Ok(self.waiting(format!("verify: no audit log stream in {log_group} yet")));
        }
        let seen = self
            .job
            .control
            .verified(self.job.live, self.job.criteria());
        Ok(PassResult::Verified { seen })
    }
}
