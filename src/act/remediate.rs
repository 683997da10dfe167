//! The remediation executor, for every control that may be fixed.
//!
//! A remediation runs in *passes*. Each pass reads live state, recomputes the
//! control's plan (only what is still missing), and carries out steps in
//! order until one needs time (for Neptune.2: a cluster modification, a
//! reboot, the maintenance window, logs to start flowing). Then it returns
//! `Waiting` and the daemon schedules a re-check on the queue, so no worker
//! and no message is held for minutes, and a restart or another replica
//! resumes from live state. Every step is idempotent: a pass run twice
//! changes nothing the second time.
//!
//! The one-setting fixes (ModifyDBCluster for Neptune.4, .5, .7 and .8,
//! ModifyDBClusterSnapshotAttribute for Neptune.3) apply at once: their pass
//! makes the change, reads the resource again, and verifies in the same pass.

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};

use crate::aws::Error;
use crate::config::{Config, RebootPolicy, Remediation};
use crate::control::change::{change_of, Change};
use crate::control::neptune2::audit_log_group;
use crate::control::{Control, Kind, Step};
use crate::finding::ClusterArn;
use crate::journal::JournalError;
use crate::state::{ClusterState, Live, AUDIT_PARAMETER};

pub use super::fix_api::{FixApi, FixApis, ParameterValue};
use crate::window::Window;

/// The guard of a pass's changes: before each change the pass saves its
/// progress with the cluster's lease, and stops if this task no longer holds
/// it (it was paused past its lease, and another task took the cluster over).
#[async_trait]
pub trait Fence: Send + Sync {
    async fn checkpoint(&self, progress: &Progress) -> Result<(), String>;
}

/// No coordination table: this process's lock is the only guard.
pub struct Unfenced;

#[async_trait]
impl Fence for Unfenced {
    async fn checkpoint(&self, _progress: &Progress) -> Result<(), String> {
        Ok(())
    }
}

/// Why a pass stopped before its end; nothing after the failed call was changed.
#[derive(Debug, thiserror::Error)]
pub enum PassError {
    #[error("{0}")]
    Aws(#[from] Error),
    #[error("the cluster's lease is lost ({0}); no further change made")]
    Fenced(String),
    /// The change's journal entry could not be written, so the change was
    /// not made; the remediation tries again later.
    #[error("{0}; the change was not made and is tried again later")]
    Journal(#[from] JournalError),
}

/// A reboot hubtriage asked for (or may have: the call was cut off) is given
/// this long to show before the same instance, still waiting for a reboot,
/// is rebooted again. RDS shows an instance `rebooting` as soon as it accepts
/// the reboot, and the pass waits for that anyway; this covers the moment
/// before, and a member status that lags the reboot's end.
pub const REBOOT_SETTLE_MINUTES: i64 = 3;

fn deadline(policy: &Remediation) -> Duration {
    Duration::minutes(i64::try_from(policy.verify_deadline_minutes).unwrap_or(60))
}

/// How a pass ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PassResult {
    /// Check again in `recheck_in`. `window`: waiting for the maintenance window
    /// (the verify deadline does not run meanwhile).
    Waiting {
        why: String,
        recheck_in: std::time::Duration,
        window: bool,
    },
    /// Verified: the control finds nothing wrong (Neptune.2: and an audit
    /// log stream exists); `seen` says what was seen, for the note.
    Verified { seen: String },
    /// All done but the reboot, which policy `never` leaves to people.
    RebootPending { why: String },
    /// hubtriage must not change this cluster: the finding gets a ticket.
    Refused { why: String },
}

/// What a pass works on: the control, the resource the finding names, its
/// live state, the config, and where its changes are journaled.
#[derive(Clone, Copy)]
pub struct Job<'a> {
    pub control: &'a dyn Control,
    /// The cluster's or snapshot's ARN, as the finding names it.
    pub resource_arn: &'a str,
    /// Its live state; it must be that very resource's (same ARN), or nothing
    /// is changed.
    pub live: Live<'a>,
    pub config: &'a Config,
    /// `[journal]`: every change is written there before it is made.
    pub log: Option<ChangeLog<'a>>,
}

/// One pass over a resource being remediated. Every call names the resource
/// by the finding's ARN.
pub async fn pass(
    api: &dyn FixApi,
    fence: &dyn Fence,
    job: Job<'_>,
    progress: &mut Progress,
    now: DateTime<Utc>,
) -> Result<PassResult, PassError> {
    let resource_arn = job.resource_arn;
    let arn = match job.control.kind() {
        Kind::Cluster => ClusterArn::parse(resource_arn),
        Kind::ClusterSnapshot => ClusterArn::parse_snapshot(resource_arn),
    };
    let Some(arn) = arn else {
        return Ok(PassResult::Refused {
            why: format!("the ARN {resource_arn} cannot be read."),
        });
    };
    if job.live.arn() != resource_arn {
        tracing::warn!(
            wanted = resource_arn,
            read = %job.live.arn(),
            "live state is for another resource; nothing changed"
        );
        return Ok(PassResult::Refused {
            why: format!(
                "the live state read is for {}, not {resource_arn}.",
                job.live.arn()
            ),
        });
    }
    let mut pass = Pass {
        api,
        fence,
        arn,
        job,
        policy: &job.config.remediation,
        progress,
        now,
        changed: false,
    };
    if job.live.status() != "available" {
        return Ok(pass.waiting(format!("it is {}", job.live.status())));
    }
    pass.settle_open_changes().await;
    let steps = match job.control.plan(job.live, job.config) {
        Ok(plan) => plan.steps,
        Err(why) => return Ok(PassResult::Refused { why }),
    };
    for step in &steps {
        if let Some(end) = pass.step(step).await? {
            return Ok(end);
        }
    }
    Ok(pass.waiting("plan incomplete; checking again".into()))
}

/// One pass in progress: the steps of the plan run in order until one ends it.
struct Pass<'a> {
    api: &'a dyn FixApi,
    fence: &'a dyn Fence,
    /// The resource the finding names (region, account, identifier).
    arn: ClusterArn<'a>,
    job: Job<'a>,
    policy: &'a Remediation,
    progress: &'a mut Progress,
    now: DateTime<Utc>,
    /// A parameter group was changed in this pass (verify waits a turn).
    changed: bool,
}

impl Pass<'_> {
    /// Runs one step; `Some` ends the pass there.
    async fn step(&mut self, step: &Step) -> Result<Option<PassResult>, PassError> {
        // What the step changes, as the journal records it.
        let change = change_of(step, self.job.live);
        match (step, change) {
            (
                Step::CreateParameterGroup {
                    name,
                    family,
                    copy_from,
                },
                Some(c),
            ) => {
                self.create_group(name, family, copy_from.as_deref(), c)
                    .await
            }
            (Step::SetAuditParameter { group }, Some(c)) => {
                self.set_audit_parameter(group, c).await
            }
            (Step::AttachParameterGroup { group }, Some(c)) => self.attach_group(group, c).await,
            (Step::EnableAuditExport, Some(c)) => self.enable_audit_export(c).await,
            (Step::WaitForMaintenanceWindow { window }, _) => Ok(self.wait_for_window(window)),
            (Step::RebootInstance { instance }, Some(c)) => self.reboot(instance, c).await,
            (Step::SetLogRetention { log_group, days }, Some(c)) => {
                self.set_retention(log_group, *days, c).await
            }
            (Step::ModifyCluster { setting, value }, Some(c)) => {
                self.modify_cluster(*setting, *value, c).await
            }
            (Step::MakeSnapshotPrivate { snapshot }, Some(c)) => {
                self.make_private(snapshot, c).await
            }
            (
                Step::CreateParameterGroup { .. }
                | Step::SetAuditParameter { .. }
                | Step::AttachParameterGroup { .. }
                | Step::EnableAuditExport
                | Step::RebootInstance { .. }
                | Step::SetLogRetention { .. }
                | Step::ModifyCluster { .. }
                | Step::MakeSnapshotPrivate { .. },
                None,
            ) => Ok(Some(not_a_cluster())),
            (Step::Verify, _) if self.job.control.id() == "Neptune.2" => {
                self.verify().await.map(Some)
            }
            (Step::Verify, _) => self.verify_again().await.map(Some),
        }
    }

    /// The cluster a Neptune.2 step works on (plans give cluster steps to
    /// clusters only).
    fn cluster(&self) -> Option<&'_ ClusterState> {
        match self.job.live {
            Live::Cluster(c) => Some(c),
            Live::Snapshot(_) => None,
        }
    }

    fn waiting(&self, why: String) -> PassResult {
        PassResult::Waiting {
            why,
            recheck_in: std::time::Duration::from_secs(self.policy.recheck_seconds),
            window: false,
        }
    }

    /// A change was made: verification has until a fresh deadline.
    fn changed_now(&mut self) {
        self.progress.deadline = self.now + deadline(self.policy);
    }

    /// Before a change: saves the progress with the lease (stopping if it
    /// is lost), writes the change's journal entry (stopping if it cannot:
    /// no change without its entry), then logs the change. Returns the
    /// entry's id.
    async fn changing(&mut self, change: &Change) -> Result<Option<String>, PassError> {
        self.progress.saved_at = Some(self.now.max(Utc::now()));
        self.fence
            .checkpoint(self.progress)
            .await
            .map_err(PassError::Fenced)?;
        let entry = self.journal_started(change).await?;
        let (id, account, region) = (self.arn.identifier, self.arn.account, self.arn.region);
        let control = self.job.control.id();
        let call = change.call;
        let params = match &change.target {
            Some(target) => format!("{target}: {}={}", change.setting, change.after),
            None => format!("{}={}", change.setting, change.after),
        };
        match self.job.live {
            Live::Cluster(_) => {
                tracing::info!(cluster = id, account, region, control, call, params = %params, "changing the cluster")
            }
            Live::Snapshot(_) => {
                tracing::info!(snapshot = id, account, region, control, call, params = %params, "changing the snapshot")
            }
        }
        Ok(entry)
    }

    async fn create_group(
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

    async fn set_audit_parameter(
        &mut self,
        group: &str,
        change: Change,
    ) -> Result<Option<PassResult>, PassError> {
        let entry = self.changing(&change).await?;
        let p = ParameterValue {
            name: AUDIT_PARAMETER.to_string(),
            value: "1".to_string(),
            apply_method: "pending-reboot".to_string(),
        };
        let set = self.api.set_parameters(self.arn.region, group, &[p]).await;
        self.journal_ended(entry, &set).await;
        set?;
        self.changed = true;
        Ok(None)
    }

    async fn attach_group(
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

    async fn enable_audit_export(
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
    fn wait_for_window(&mut self, window: &str) -> Option<PassResult> {
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
    /// reboot. A reboot asked for less than [`REBOOT_SETTLE_MINUTES`] ago (by
    /// this task, or one that stopped) is waited for, not repeated.
    async fn reboot(
        &mut self,
        instance: &str,
        change: Change,
    ) -> Result<Option<PassResult>, PassError> {
        if let Some(at) = self.progress.reboots_issued.get(instance) {
            if self.now < *at + Duration::minutes(REBOOT_SETTLE_MINUTES) {
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
    async fn set_retention(
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
    async fn verify(&mut self) -> Result<PassResult, PassError> {
        if self.changed {
            self.changed_now();
            return Ok(self.waiting("changed the parameter group; checking again".into()));
        }
        let Some(state) = self.cluster() else {
            return Ok(not_a_cluster());
        };
        let problems = state.problems();
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
        let log_group = audit_log_group(self.arn.identifier);
        if !self.api.has_log_stream(self.arn.region, &log_group).await? {
            return Ok(self.waiting(format!("verify: no audit log stream in {log_group} yet")));
        }
        let seen = self.job.control.verified(self.job.live, self.job.config);
        Ok(PassResult::Verified { seen })
    }
}

/// A cluster step met a snapshot: nothing is changed.
fn not_a_cluster() -> PassResult {
    PassResult::Refused {
        why: "a cluster's step was planned for a snapshot.".into(),
    }
}

mod journaling;
mod progress;
mod settings;

pub use journaling::{settle, ChangeLog, NEVER_EXPIRE};
pub use progress::{Original, Progress};

#[cfg(test)]
mod tests;

#[cfg(test)]
mod journal_tests;
