//! The remediation driver: starts a remediation under the limiter, runs its
//! passes (`remediate::pass`), schedules the re-checks that carry it on, and
//! says how each turn ends as a [`Turn`] that the pipeline records. It changes
//! clusters only through [`FixApi`] and writes nothing on findings itself.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};

use super::neptune_api::RDS_SERVICE_LINKED_ROLE;
use super::recheck::{Limiter, Recheck, RecheckQueue};
use super::remediate::{pass, ChangeLog, FixApis, Job, PassError, PassResult, Progress};
use crate::config::{Config, Mode, Remediation};
use crate::control::{self, Control, Criteria};
use crate::coordination::{cluster_item, CoordinationError, Coordinator, LeaseRenewal};
use crate::decide::{Action, Decision};
use crate::finding::Finding;
use crate::journal::{Entry, Journal, JournalError};
use crate::lock;
use crate::marks::{FIELD_REMEDIATION, FIELD_REMEDIATION_STARTED};
use crate::metrics::Metrics;
use crate::record::{describe_plan, FindingUpdate};
use crate::state::LiveResource;

/// A remediation marked in progress is trusted to be carried on by its
/// re-checks for this long (a week's maintenance window, and a day).
const IN_PROGRESS_TRUSTED_FOR_DAYS: i64 = 8;

/// What remediation in `apply` mode needs.
pub struct RemediationDriver {
    /// The remediation's calls, in the finding's account.
    api: Arc<dyn FixApis>,
    rechecks: Arc<dyn RecheckQueue>,
    limiter: Limiter,
    /// `[coordination] table`: one task at a time works on a cluster.
    coordination: Option<Arc<dyn Coordinator>>,
    /// Clusters a worker of this process is reading and changing now.
    working: std::sync::Mutex<std::collections::HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// The config: `[remediation]` (reboots, deadlines, re-check intervals)
    /// and what the controls' plans read.
    config: Arc<Config>,
    metrics: Arc<Metrics>,
    /// `[journal]`: every change is written there before it is made.
    journal: Option<Arc<dyn Journal>>,
}

/// Whether a pass is the remediation's first (its in-progress note is
/// written then) or carries one on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PassOrder {
    First,
    Later,
}

/// Why a remediation's turn failed; the message stays on the queue.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    #[error("remediation: {0}")]
    Fix(Box<crate::aws::Error>),
    #[error("scheduling a re-check: {0}")]
    Schedule(Box<crate::aws::Error>),
    #[error("{0}")]
    Coordination(#[from] CoordinationError),
    /// A change's journal entry could not be written: the change was not made.
    #[error("remediation: {0}")]
    Journal(#[from] JournalError),
}

/// A pass's wait, as `PassResult::Waiting` says it, and whether it was the first pass.
struct Waiting {
    why: String,
    recheck_in: std::time::Duration,
    window: bool,
    first: bool,
}

/// How a remediation's turn ended, for the pipeline to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Turn {
    /// Write this update; the decision says how the remediation ended.
    Record(Decision, FindingUpdate),
    /// Not remediated: open a ticket for this decision and record it.
    Ticket(Decision),
    /// A re-check carries it on. `Some`: first write this (the in-progress note).
    Waiting(Option<(Decision, FindingUpdate)>),
}

impl RemediationDriver {
    /// `coordination`: `[coordination] table`'s, for leases across tasks
    /// (the limiter should count in the same table: [`Limiter::shared`]).
    pub fn new(
        api: Arc<dyn FixApis>,
        rechecks: Arc<dyn RecheckQueue>,
        limiter: Limiter,
        coordination: Option<Arc<dyn Coordinator>>,
        config: Arc<Config>,
        metrics: Arc<Metrics>,
    ) -> RemediationDriver {
        RemediationDriver {
            api,
            rechecks,
            limiter,
            coordination,
            working: Default::default(),
            config,
            metrics,
            journal: None,
        }
    }

    /// Journals every change in `journal` before it is made.
    pub fn with_journal(mut self, journal: Option<Arc<dyn Journal>>) -> RemediationDriver {
        self.journal = journal;
        self
    }

    fn policy(&self) -> &Remediation {
        &self.config.remediation
    }

    /// `finding`'s remediation of `cluster` stopped: its slot is free (when
    /// it held it).
    pub async fn finish(&self, cluster: &str, finding: &str) {
        self.limiter.finish(cluster, finding).await;
    }

    /// The cluster's lease, when a coordination table is configured, for one
    /// task at a time to read and change the cluster (held until dropped);
    /// `None` when another task holds it. Without a table: always granted.
    pub async fn lease(&self, cluster: &str) -> Result<Option<ClusterLease>, DriverError> {
        // One worker of this process at a time (the table's lease is this
        // process's, whichever worker took it).
        let here = lock(&self.working)
            .entry(cluster.to_string())
            .or_default()
            .clone();
        let Ok(here) = here.try_lock_owned() else {
            return Ok(None);
        };
        let Some(c) = &self.coordination else {
            return Ok(Some(ClusterLease {
                here,
                table: None,
                saved: None,
            }));
        };
        let item = cluster_item(cluster);
        match c.acquire(&item).await {
            Ok(lease) => {
                let renewing = LeaseRenewal::renew(c.clone(), &item);
                Ok(Some(ClusterLease {
                    here,
                    table: Some((c.clone(), item, renewing)),
                    saved: lease.progress,
                }))
            }
            Err(CoordinationError::Held(_)) => Ok(None),
            Err(e) => Err(DriverError::Coordination(e)),
        }
    }

    /// Whether other tasks may change clusters too (a coordination table).
    pub fn coordinated(&self) -> bool {
        self.coordination.is_some()
    }

    /// Another task is working on the cluster: this finding (or re-check,
    /// with its progress) is checked again later.
    pub async fn check_later(
        &self,
        f: &Finding,
        cluster: &str,
        progress: Option<Progress>,
    ) -> Result<(), DriverError> {
        tracing::info!("another task is working on this cluster; checking again later");
        let recheck = Recheck::new(f, cluster, progress);
        self.schedule(recheck, recheck_delay(self.policy()), Utc::now())
            .await
    }

    /// Starts remediating `f`'s cluster, or queues a re-check when the limiter
    /// says wait. The first pass runs at once. A remediation that a stopped
    /// task left mid-pass (its progress saved with the lease) is carried on.
    pub async fn start(
        &self,
        f: &Finding,
        mut decision: Decision,
        live: LiveResource<'_>,
        lease: &ClusterLease,
    ) -> Result<Turn, DriverError> {
        let now = Utc::now();
        if let Err(why) = self.limiter.try_start(live.arn(), &f.id, now).await {
            tracing::info!(why = %why, "remediation waits for a slot; checking again later");
            let recheck = Recheck::new(f, live.arn(), None);
            self.schedule(recheck, recheck_delay(self.policy()), now)
                .await?;
            return Ok(Turn::Waiting(None));
        }
        if control_of(&decision).needs_rds_service_linked_role()
            && !self.service_linked_role(f).await?
        {
            self.limiter.finish(live.arn(), &f.id).await;
            decision.action = Action::Ticket;
            decision.plan.clear();
            decision.reason = format!(
                "{} Not remediated: the RDS service-linked role {RDS_SERVICE_LINKED_ROLE} does not exist, so Neptune cannot publish logs.",
                decision.reason,
            );
            return Ok(Turn::Ticket(decision));
        }
        let progress = match lease.saved(now) {
            Some(saved) => {
                tracing::info!(
                    started_at = %saved.started_at,
                    "carrying on the remediation that a stopped task left mid-pass"
                );
                saved
            }
            None => {
                Metrics::inc(&self.metrics.remediations_started);
                tracing::info!(plan = %describe_plan(&decision.plan), "remediation started");
                Progress::start(live, self.policy(), now)
            }
        };
        self.turn(f, decision, live, progress, lease, PassOrder::First)
            .await
    }

    /// Whether the RDS service-linked role exists in the finding's account
    /// (Neptune needs it to publish logs).
    async fn service_linked_role(&self, f: &Finding) -> Result<bool, DriverError> {
        let role = self.api.at(&f.account).service_linked_role_exists().await;
        role.map_err(|e| DriverError::Fix(Box::new(e)))
    }

    /// Carries on a remediation from its re-check: `decision` is the one that
    /// started it, seen from live state now.
    pub async fn resume(
        &self,
        f: &Finding,
        mut decision: Decision,
        live: LiveResource<'_>,
        progress: Progress,
        lease: &ClusterLease,
    ) -> Result<Turn, DriverError> {
        let now = Utc::now();
        self.limiter.hold(live.arn(), &f.id, now).await;
        decision.action = Action::Remediate;
        decision.reason = "A remediation hubtriage started is under way.".into();
        // A task that stopped mid-pass may have got further than the re-check says.
        let progress = progress.newest(lease.saved(now));
        self.turn(f, decision, live, progress, lease, PassOrder::Later)
            .await
    }

    /// Re-queues a re-check that is not due yet.
    pub async fn requeue_not_due(&self, r: &Recheck) -> Result<(), DriverError> {
        self.schedule(r.clone(), Duration::zero(), Utc::now()).await
    }

    /// One pass, and what it means for the finding (`lease`: the cluster's,
    /// guarding every change).
    async fn turn(
        &self,
        f: &Finding,
        decision: Decision,
        live: LiveResource<'_>,
        mut progress: Progress,
        lease: &ClusterLease,
        pass_of: PassOrder,
    ) -> Result<Turn, DriverError> {
        let now = Utc::now();
        let control = control_of(&decision);
        let template = self.change_template(f, &decision, control, &progress);
        // The resource the finding names; `pass` refuses state read for any other.
        let job = Job {
            control,
            resource_arn: resource_arn(f, control),
            live,
            config: &self.config,
            parameters: &f.control_parameters,
            log: change_log(self.journal.as_deref(), template.as_ref()),
        };
        let api = self.api.at(&f.account);
        let result = pass(api.as_ref(), lease, job, &mut progress, now)
            .await
            .map_err(|e| match e {
                PassError::Aws(e) => {
                    if e.throttled {
                        Metrics::inc(&self.metrics.throttles);
                    }
                    DriverError::Fix(Box::new(e))
                }
                PassError::Fenced(lost) => {
                    tracing::warn!(error = %lost, "stopped: another task took the cluster over");
                    DriverError::Coordination(lost)
                }
                PassError::Journal(e) => DriverError::Journal(e),
            })?;
        if !matches!(result, PassResult::Waiting { .. }) {
            lease.finished().await;
        }
        let rule = decision.rule.clone();
        let rule = rule.as_deref();
        match result {
            PassResult::Verified { seen } => {
                self.limiter.finish(live.arn(), &f.id).await;
                Metrics::inc(&self.metrics.remediations_verified);
                self.mark_verified(&progress).await;
                let changes = progress.changes(control, live);
                tracing::info!(changes = %changes.join("; "), seen = %seen, "remediation verified");
                let update = FindingUpdate::remediated(&changes, &seen, rule);
                Ok(Turn::Record(remediated(decision, Action::Resolve), update))
            }
            PassResult::Waiting {
                why,
                recheck_in,
                window,
            } => {
                let wait = Waiting {
                    why,
                    recheck_in,
                    window,
                    first: pass_of == PassOrder::First,
                };
                self.waiting(f, decision, live, progress, wait).await
            }
            PassResult::RebootPending { why } => {
                self.limiter.finish(live.arn(), &f.id).await;
                let changes = progress.changes(control, live);
                let update = FindingUpdate::reboot_pending(&changes, &why, rule);
                Ok(Turn::Record(decision, update))
            }
            PassResult::Refused { why } => {
                self.limiter.finish(live.arn(), &f.id).await;
                let mut d = remediated(decision, Action::Ticket);
                d.reason = format!("{} Not remediated: {why}", d.reason);
                Ok(Turn::Ticket(d))
            }
        }
    }

    /// A pass that waits: past the verify deadline it becomes a ticket; else a
    /// re-check is queued (and the first pass writes the in-progress note).
    async fn waiting(
        &self,
        f: &Finding,
        decision: Decision,
        live: LiveResource<'_>,
        progress: Progress,
        wait: Waiting,
    ) -> Result<Turn, DriverError> {
        let now = Utc::now();
        let Waiting {
            why,
            recheck_in,
            window,
            first,
        } = wait;
        if !window && now > progress.deadline {
            self.limiter.finish(live.arn(), &f.id).await;
            Metrics::inc(&self.metrics.remediations_failed);
            let mut d = remediated(decision, Action::Ticket);
            d.reason = format!(
                "Remediation did not verify by its deadline ({} minutes after the last change): {why}.",
                self.policy().verify_deadline_minutes
            );
            d.problems =
                control_of(&d).problems(live, Criteria::new(&self.config, &f.control_parameters));
            tracing::warn!(why = %why, "remediation did not verify in time; opening a ticket");
            return Ok(Turn::Ticket(d));
        }
        tracing::info!(why = %why, recheck_in_seconds = recheck_in.as_secs(), "remediation waiting");
        let wait = Duration::from_std(recheck_in).unwrap_or_else(|_| recheck_delay(self.policy()));
        let recheck = Recheck::new(f, live.arn(), Some(progress.clone()));
        self.schedule(recheck, wait, now).await?;
        // The slot stays taken until the re-check is due (and a while after).
        self.limiter.hold(live.arn(), &f.id, now + wait).await;
        let note = first.then(|| {
            let rule = decision.rule.as_deref();
            let update = FindingUpdate::remediating(
                &decision.reason,
                &decision.plan,
                &why,
                rule,
                progress.started_at,
            );
            (decision, update)
        });
        Ok(Turn::Waiting(note))
    }

    /// Queues `recheck` to be acted on after `wait` (chained past 15 minutes).
    async fn schedule(
        &self,
        mut recheck: Recheck,
        wait: Duration,
        now: DateTime<Utc>,
    ) -> Result<(), DriverError> {
        if wait > Duration::zero() {
            recheck.not_before = now + wait;
        }
        let delay = recheck.delay_seconds(now);
        self.rechecks
            .schedule(&recheck, delay)
            .await
            .map_err(|e| DriverError::Schedule(Box::new(e)))
    }
}

fn recheck_delay(policy: &Remediation) -> Duration {
    Duration::seconds(i64::try_from(policy.recheck_seconds).unwrap_or(60))
}

impl RemediationDriver {
    /// The entry a remediation's changes start from: the resource, its
    /// control, the finding, the rule and the remediation (`None` without a journal).
    fn change_template(
        &self,
        f: &Finding,
        decision: &Decision,
        control: &dyn Control,
        progress: &Progress,
    ) -> Option<Entry> {
        self.journal.as_ref()?;
        let mut e = Entry::new(
            crate::journal::Kind::Change,
            Mode::Apply,
            &f.account,
            &f.region,
            resource_arn(f, control),
        );
        e.control = Some(control.id().to_string());
        e.finding_ids = vec![f.id.clone()];
        e.rule = decision.rule.clone();
        e.action = Some(Action::Remediate.as_str().to_string());
        e.remediation = progress.remediation.clone();
        Some(e)
    }

    /// The remediation verified: its changes' entries say when.
    async fn mark_verified(&self, progress: &Progress) {
        let Some(journal) = &self.journal else {
            return;
        };
        let now = Utc::now();
        for id in &progress.journal {
            if let Err(e) = journal.mark_verified(id, now).await {
                tracing::warn!(entry = %id, error = %e, "could not mark the change verified in the journal");
            }
        }
    }
}

/// Where a pass journals its changes, when there is a journal.
fn change_log<'a>(
    journal: Option<&'a dyn Journal>,
    template: Option<&'a Entry>,
) -> Option<ChangeLog<'a>> {
    Some(ChangeLog {
        journal: journal?,
        template: template?,
    })
}

/// The decision as a remediation ends it.
fn remediated(mut d: Decision, action: Action) -> Decision {
    d.action = action;
    d
}

/// The control a remediation's decision is about.
fn control_of(d: &Decision) -> &'static dyn Control {
    control::named_or_legacy(d.control.as_deref())
}

/// The resource a finding of `control` names: its cluster's or snapshot's ARN.
pub fn resource_arn<'a>(f: &'a Finding, control: &dyn Control) -> &'a str {
    match control.kind() {
        control::Kind::Cluster => f.cluster_arn.as_deref(),
        control::Kind::ClusterSnapshot => f.snapshot_arn.as_deref(),
    }
    .unwrap_or_default()
}

/// The finding says a remediation started recently and has not ended.
pub fn in_progress(f: &Finding, now: DateTime<Utc>) -> bool {
    if f.user_defined_fields
        .get(FIELD_REMEDIATION)
        .map(String::as_str)
        != Some("in-progress")
    {
        return false;
    }
    f.user_defined_fields
        .get(FIELD_REMEDIATION_STARTED)
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .is_some_and(|t| now - t.with_timezone(&Utc) < Duration::days(IN_PROGRESS_TRUSTED_FOR_DAYS))
}

mod lease;

pub use lease::ClusterLease;

#[cfg(test)]
mod tests;
