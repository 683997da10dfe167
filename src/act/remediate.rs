//! The remediation driver, for every control that may be fixed.
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
use crate::config::{Config, Remediation};
use crate::control::change::{change_of, Change};
use crate::control::{Control, Criteria, Kind, Parameters, Step};
use crate::coordination::CoordinationError;
use crate::finding::ClusterArn;
use crate::journal::JournalError;
use crate::state::{Availability, ClusterState, LiveResource};

pub use super::fix_api::{FixApi, FixApis, ParameterValue};

/// The guard of a pass's changes: before each change the pass saves its
/// progress with the cluster's lease, and stops if this task no longer holds
/// it (it was paused past its lease, and another task took the cluster over).
#[async_trait]
pub trait Fence: Send + Sync {
    async fn checkpoint(&self, progress: &Progress) -> Result<(), CoordinationError>;
}

/// No coordination table: this process's lock is the only guard.
pub struct Unfenced;

#[async_trait]
impl Fence for Unfenced {
    async fn checkpoint(&self, _progress: &Progress) -> Result<(), CoordinationError> {
        Ok(())
    }
}

/// Why a pass stopped before its end; nothing after the failed call was changed.
#[derive(Debug, thiserror::Error)]
pub enum PassError {
    #[error("{0}")]
    Aws(#[from] Error),
    #[error("the cluster's lease is lost ({0}); no further change made")]
    Fenced(CoordinationError),
    /// The change's journal entry could not be written, so the change was
    /// not made; the remediation tries again later.
    #[error("{0}; the change was not made and is tried again later")]
    Journal(#[from] JournalError),
}

/// A reboot hubtriage asked for (or may have: the call was cut off) is given
/// `[remediation] reboot_settle_seconds` to show before the same instance,
/// still waiting for a reboot, is rebooted again. RDS shows an instance
/// `rebooting` as soon as it accepts the reboot, and the pass waits for that
/// anyway; this covers the moment before, and a member status that lags the
/// reboot's end.
fn reboot_settle(policy: &Remediation) -> Duration {
    Duration::seconds(i64::try_from(policy.reboot_settle_seconds).unwrap_or(180))
}

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
    pub live: LiveResource<'a>,
    pub config: &'a Config,
    /// The control parameters the finding carries.
    pub parameters: &'a Parameters,
    /// `[journal]`: every change is written there before it is made.
    pub log: Option<ChangeLog<'a>>,
}

impl<'a> Job<'a> {
    /// What the control judges the resource by: the config and the finding's parameters.
    pub fn criteria(&self) -> Criteria<'a> {
        Criteria::new(self.config, self.parameters)
    }
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
    if let Some(end) = pass.unless_available() {
        return Ok(end);
    }
    pass.settle_open_changes().await;
    let steps = match job.control.plan(job.live, job.criteria()) {
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
            // The pass checks the status before any step.
            (Step::WaitForAvailable { .. }, _) => Ok(None),
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
            (Step::Verify, _) if self.job.control.proof_log_group("").is_some() => {
                self.verify().await.map(Some)
            }
            (Step::Verify, _) => self.verify_again().await.map(Some),
        }
    }

    /// The cluster a Neptune.2 step works on (plans give cluster steps to
    /// clusters only).
    fn cluster(&self) -> Option<&'_ ClusterState> {
        match self.job.live {
            LiveResource::Cluster(c) => Some(c),
            LiveResource::Snapshot(_) => None,
        }
    }

    fn waiting(&self, why: String) -> PassResult {
        PassResult::Waiting {
            why,
            recheck_in: std::time::Duration::from_secs(self.policy.recheck_seconds),
            window: false,
        }
    }

    /// `None` when the resource is available; else how the pass ends: it
    /// waits for a resource on its way back to `available` (up to
    /// `wait_for_available_minutes`, then a ticket naming the status), and
    /// refuses one that waiting will not make available (stopped, being
    /// deleted, failed).
    fn unless_available(&mut self) -> Option<PassResult> {
        let live = self.job.live;
        if let Some(why) = live.unchangeable() {
            return Some(PassResult::Refused { why });
        }
        if live.availability() == Availability::Available {
            self.progress.unavailable_since = None;
            return None;
        }
        let (noun, status) = (live.noun(), live.status());
        let since = *self.progress.unavailable_since.get_or_insert(self.now);
        let minutes = self.policy.wait_for_available_minutes;
        if self.now - since >= Duration::minutes(i64::try_from(minutes).unwrap_or(60)) {
            return Some(PassResult::Refused {
                why: format!(
                    "the {noun} stayed {status} for {minutes} minutes ([remediation] wait_for_available_minutes), so nothing was changed."
                ),
            });
        }
        // The verify deadline runs from when it is available again.
        self.progress.deadline = self.now + deadline(self.policy);
        Some(PassResult::Waiting {
            why: format!("waiting for the {noun} to be available (it is {status})"),
            recheck_in: std::time::Duration::from_secs(self.policy.recheck_seconds),
            window: true,
        })
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
            LiveResource::Cluster(_) => {
                tracing::info!(cluster = id, account, region, control, call, params = %params, "changing the cluster")
            }
            LiveResource::Snapshot(_) => {
                tracing::info!(snapshot = id, account, region, control, call, params = %params, "changing the snapshot")
            }
        }
        Ok(entry)
    }
}

/// A cluster step met a snapshot: nothing is changed.
fn not_a_cluster() -> PassResult {
    PassResult::Refused {
        why: "a cluster's step was planned for a snapshot.".into(),
    }
}

mod audit;
mod journaling;
mod progress;
mod settings;

pub use journaling::{settle, ChangeLog, NEVER_EXPIRE};
pub use progress::{Progress, StateBefore};

#[cfg(test)]
mod tests;

#[cfg(test)]
mod journal_tests;
