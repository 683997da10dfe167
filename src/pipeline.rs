//! One finding, start to end: drop own echoes and duplicates → screen → enrich
//! (live Neptune state) → decide → act → record → publish the decision event.
//! And the remediation driver: start a remediation, run its passes from
//! re-check messages, and record how it ends.

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, Utc};

use crate::act::recheck::{Limiter, Recheck, RecheckQueue};
use crate::act::remediate::{pass, FixApi, PassResult, Progress};
use crate::act::ticket::{TicketError, TicketSink};
use crate::config::{Config, Mode};
use crate::decide::{decide, out_of_reach, screen, untrusted, Action, Decision, Reach};
use crate::enrich::neptune::ClusterReader;
use crate::events::{Outcome, Publisher};
use crate::finding::{Finding, NEPTUNE_2};
use crate::lock;
use crate::metrics::Metrics;
use crate::record::{
    is_own_update, Acted, FindingId, FindingUpdate, FindingsApi, RecordError, Recorder, Workflow,
    FIELD_REMEDIATION, FIELD_REMEDIATION_STARTED,
};
use crate::state::ClusterState;

/// A remediation marked in progress is trusted to be carried on by its
/// re-checks for this long (a week's maintenance window, and a day).
const IN_PROGRESS_TRUSTED_FOR_DAYS: i64 = 8;

/// Why a finding could not be handled; its message stays on the queue.
#[derive(Debug, thiserror::Error)]
pub enum FindingError {
    /// Reading the cluster's live state.
    #[error(transparent)]
    Enrich(Box<crate::aws::Error>),
    #[error(transparent)]
    Ticket(#[from] TicketError),
    #[error("remediation: {0}")]
    Fix(Box<crate::aws::Error>),
    #[error("recording the decision: {0}")]
    Record(#[from] RecordError),
    #[error("reading the finding back: {0}")]
    Lookup(Box<crate::aws::Error>),
    #[error("scheduling a re-check: {0}")]
    Schedule(String),
}

/// What became of a finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Handled {
    /// The event only reflects hubtriage's own update.
    OwnUpdate,
    /// Already handled in this process (a duplicate delivery).
    Duplicate,
    Ignored(Decision),
    Recorded(Decision, FindingUpdate),
    /// The finding already carried this update: nothing written.
    AlreadyRecorded(Decision),
    /// A remediation is under way; a re-check message carries it on.
    Remediating,
    /// Nothing to do any more (the finding or cluster is gone, or a person closed it).
    Stopped(String),
}

/// Recently recorded findings, by what identifies one delivery of them.
struct Seen {
    keys: HashSet<String>,
    order: VecDeque<String>,
    capacity: usize,
}

impl Seen {
    fn key(f: &Finding) -> String {
        format!(
            "{}\u{1f}{}\u{1f}{}\u{1f}{}\u{1f}{}",
            f.id,
            f.updated_at.as_deref().unwrap_or(""),
            f.workflow_status,
            f.note.as_ref().map(|n| n.text.as_str()).unwrap_or(""),
            f.compliance_status.as_deref().unwrap_or("")
        )
    }

    fn contains(&self, f: &Finding) -> bool {
        self.keys.contains(&Self::key(f))
    }

    fn insert(&mut self, f: &Finding) {
        let key = Self::key(f);
        if self.keys.insert(key.clone()) {
            self.order.push_back(key);
            while self.order.len() > self.capacity {
                if let Some(old) = self.order.pop_front() {
                    self.keys.remove(&old);
                }
            }
        }
    }
}

/// What remediation in `apply` mode needs.
pub struct Executor {
    pub api: Arc<dyn FixApi>,
    pub rechecks: Arc<dyn RecheckQueue>,
    pub limiter: Limiter,
}

/// Everything the pipeline works with.
pub struct Parts {
    pub config: Arc<Config>,
    /// The accounts whose clusters may be read and changed.
    pub reach: Reach,
    pub clusters: Arc<dyn ClusterReader>,
    pub findings: Arc<dyn FindingsApi>,
    pub tickets: Arc<dyn TicketSink>,
    /// `None` in dry-run: plans are recorded, nothing is changed.
    pub executor: Option<Executor>,
    pub recorder: Recorder,
    pub events: Option<Arc<Publisher>>,
    pub metrics: Arc<Metrics>,
}

pub struct Pipeline {
    config: Arc<Config>,
    reach: Reach,
    clusters: Arc<dyn ClusterReader>,
    findings: Arc<dyn FindingsApi>,
    tickets: Arc<dyn TicketSink>,
    executor: Option<Executor>,
    recorder: Mutex<Option<Recorder>>,
    events: Option<Arc<Publisher>>,
    seen: Mutex<Seen>,
    pub metrics: Arc<Metrics>,
}

impl Pipeline {
    pub fn new(p: Parts) -> Self {
        Pipeline {
            config: p.config,
            reach: p.reach,
            clusters: p.clusters,
            findings: p.findings,
            tickets: p.tickets,
            executor: p.executor,
            recorder: Mutex::new(Some(p.recorder)),
            events: p.events,
            seen: Mutex::new(Seen {
                keys: HashSet::new(),
                order: VecDeque::new(),
                capacity: 50_000,
            }),
            metrics: p.metrics,
        }
    }

    /// Drops the pipeline's handle on the recorder so that it flushes and stops
    /// once the last in-flight finding is done (shutdown).
    pub fn close_recorder(&self) {
        lock(&self.recorder).take();
    }

    pub fn events(&self) -> Option<&Arc<Publisher>> {
        self.events.as_ref()
    }

    /// Handles one finding from an event. `redelivered`: SQS has handed this
    /// message out before, so an earlier attempt may already have recorded it.
    pub async fn handle(&self, f: &Finding, redelivered: bool) -> Result<Handled, FindingError> {
        Metrics::inc(&self.metrics.findings_received);
        if is_own_update(f) {
            Metrics::inc(&self.metrics.own_updates_dropped);
            tracing::info!("event reflects hubtriage's own update; dropped");
            return Ok(Handled::OwnUpdate);
        }
        if lock(&self.seen).contains(f) {
            Metrics::inc(&self.metrics.duplicates_dropped);
            tracing::info!("duplicate delivery of a finding already recorded; dropped");
            return Ok(Handled::Duplicate);
        }
        if redelivered {
            // An earlier attempt may have recorded it and then lost the message
            // (crash before delete): the finding as Security Hub has it now says.
            if let Some(current) = self
                .findings
                .get_finding(&FindingId::of(f))
                .await
                .map_err(|e| FindingError::Lookup(Box::new(e)))?
            {
                if is_own_update(&current) && current.updated_at == f.updated_at {
                    Metrics::inc(&self.metrics.duplicates_dropped);
                    tracing::info!("redelivered finding was already recorded; dropped");
                    return Ok(Handled::Duplicate);
                }
            }
        }
        self.triage(f).await
    }

    /// Screen → enrich → decide → act → record.
    async fn triage(&self, f: &Finding) -> Result<Handled, FindingError> {
        let now = Utc::now();
        let (decision, state) = match screen(f, &self.config, &self.reach) {
            Some(d) => (d, None),
            None => {
                let state = self.read_cluster(f.cluster_arn.as_deref()).await?;
                if self.executor.is_some() && remediation_in_progress(f, now) {
                    tracing::info!(
                        "a remediation of this finding is in progress; its re-checks carry it on"
                    );
                    return Ok(Handled::Remediating);
                }
                (
                    decide(f, state.as_ref(), &self.config, &self.reach, now),
                    state,
                )
            }
        };
        self.metrics.decided(decision.action);
        log_decision(&decision);

        match (decision.action, &self.executor, state) {
            (Action::Ignore, _, _) => Ok(Handled::Ignored(decision)),
            (Action::Resolve | Action::Suppress, _, _) => {
                self.record(f, decision, &Acted::Nothing).await
            }
            (Action::Ticket, _, _) => self.ticket(f, decision).await,
            (Action::Remediate, Some(executor), Some(state)) => {
                self.start_remediation(executor, f, decision, &state).await
            }
            (Action::Remediate, _, _) => {
                tracing::info!(plan = %crate::record::describe_plan(&decision.plan), "remediation planned (dry-run); no change made");
                let acted = Acted::Planned {
                    dry_run: self.config.remediation.mode == Mode::DryRun,
                };
                self.record(f, decision, &acted).await
            }
        }
    }

    async fn read_cluster(&self, arn: Option<&str>) -> Result<Option<ClusterState>, FindingError> {
        let Some(arn) = arn else { return Ok(None) };
        self.clusters
            .cluster_state(arn)
            .await
            .inspect_err(|e| self.count_throttle(e))
            .map_err(|e| FindingError::Enrich(Box::new(e)))
    }

    async fn ticket(&self, f: &Finding, decision: Decision) -> Result<Handled, FindingError> {
        let ticket = self.tickets.open(&decision).await?;
        Metrics::inc(&self.metrics.tickets_opened);
        self.record(f, decision, &Acted::Ticketed { key: ticket.key })
            .await
    }

    /// Writes the update a decision implies, unless the finding already carries it.
    async fn record(
        &self,
        f: &Finding,
        decision: Decision,
        acted: &Acted,
    ) -> Result<Handled, FindingError> {
        let Some(update) = FindingUpdate::for_decision(&decision, acted) else {
            return Ok(Handled::Ignored(decision));
        };
        self.write(f, decision, update).await
    }

    async fn write(
        &self,
        f: &Finding,
        decision: Decision,
        update: FindingUpdate,
    ) -> Result<Handled, FindingError> {
        if update.already_on(f) {
            Metrics::inc(&self.metrics.already_recorded);
            tracing::info!("finding already carries this decision; nothing written");
            lock(&self.seen).insert(f);
            return Ok(Handled::AlreadyRecorded(decision));
        }
        let recorder = lock(&self.recorder).clone().ok_or(RecordError::Stopped)?;
        recorder.record(FindingId::of(f), update.clone()).await?;
        Metrics::inc(&self.metrics.recorded);
        lock(&self.seen).insert(f);
        tracing::info!(
            workflow = update.workflow.as_str(),
            "recorded on the finding"
        );
        if let Some(events) = &self.events {
            events.publish(
                &decision,
                &Outcome {
                    workflow: update.workflow.as_str().to_string(),
                    note: update.note.clone(),
                    ticket: update.fields.get(crate::record::FIELD_TICKET).cloned(),
                },
            );
        }
        Ok(Handled::Recorded(decision, update))
    }

    // ---- remediation -----------------------------------------------------------------

    async fn start_remediation(
        &self,
        executor: &Executor,
        f: &Finding,
        mut decision: Decision,
        state: &ClusterState,
    ) -> Result<Handled, FindingError> {
        let now = Utc::now();
        if let Err(why) = executor.limiter.try_start(&state.arn, &f.id, now) {
            tracing::info!(why = %why, "remediation waits for a slot; checking again later");
            self.schedule(
                executor,
                recheck_for(f, &state.arn, None),
                self.recheck_delay(),
                now,
            )
            .await?;
            return Ok(Handled::Remediating);
        }
        if !executor
            .api
            .service_linked_role_exists()
            .await
            .map_err(|e| FindingError::Fix(Box::new(e)))?
        {
            executor.limiter.finish(&state.arn);
            decision.action = Action::Ticket;
            decision.plan.clear();
            decision.reason = format!(
                "{} Not remediated: the RDS service-linked role {} does not exist, so Neptune cannot publish logs.",
                decision.reason,
                crate::act::neptune_api::RDS_SERVICE_LINKED_ROLE
            );
            return self.ticket(f, decision).await;
        }
        Metrics::inc(&self.metrics.remediations_started);
        tracing::info!(plan = %crate::record::describe_plan(&decision.plan), "remediation started");
        let progress = Progress::start(state, &self.config.remediation, now);
        self.continue_remediation(executor, f, decision, state, progress, true)
            .await
    }

    /// Handles a re-check message: carries a remediation on (or starts one that waited).
    pub async fn handle_recheck(&self, r: &Recheck) -> Result<Handled, FindingError> {
        let Some(executor) = &self.executor else {
            return Ok(Handled::Stopped(
                "remediation mode is dry-run; re-check dropped".into(),
            ));
        };
        let now = Utc::now();
        if r.not_before > now {
            self.schedule(executor, r.clone(), Duration::zero(), now)
                .await?;
            return Ok(Handled::Remediating);
        }
        let id = FindingId {
            id: r.finding_id.clone(),
            product_arn: r.product_arn.clone(),
        };
        let stop = |why: String| {
            executor.limiter.finish(&r.cluster_arn);
            tracing::info!(why = %why, "remediation stopped");
            Ok(Handled::Stopped(why))
        };
        let Some(current) = self
            .findings
            .get_finding(&id)
            .await
            .map_err(|e| FindingError::Lookup(Box::new(e)))?
        else {
            return stop("the finding no longer exists".into());
        };
        if matches!(current.workflow_status.as_str(), "RESOLVED" | "SUPPRESSED") {
            return stop(format!("the finding is now {}", current.workflow_status));
        }
        // The finding, as Security Hub has it now, must still be one hubtriage may
        // work on, and name the very cluster the re-check is for.
        if let Some(why) =
            untrusted(&current).or_else(|| out_of_reach(&current, &self.config, &self.reach))
        {
            return stop(why);
        }
        if current.cluster_arn.as_deref() != Some(r.cluster_arn.as_str()) {
            return stop(format!(
                "the finding names {}, not the re-check's cluster {}",
                current.cluster_arn.as_deref().unwrap_or("no cluster"),
                r.cluster_arn
            ));
        }
        let Some(progress) = r.progress.clone() else {
            // It waited for a slot: decide again from live state (triage reads it).
            return self.triage(&current).await;
        };
        let Some(state) = self.read_cluster(Some(&r.cluster_arn)).await? else {
            return stop("the cluster no longer exists".into());
        };
        executor.limiter.resume(&r.cluster_arn, &r.finding_id);
        // The decision that started it, seen from live state now (for its rule and plan).
        let mut decision = decide(&current, Some(&state), &self.config, &self.reach, now);
        decision.action = Action::Remediate;
        decision.reason = "A remediation hubtriage started is under way.".into();
        self.continue_remediation(executor, &current, decision, &state, progress, false)
            .await
    }

    async fn continue_remediation(
        &self,
        executor: &Executor,
        f: &Finding,
        decision: Decision,
        state: &ClusterState,
        mut progress: Progress,
        first: bool,
    ) -> Result<Handled, FindingError> {
        let now = Utc::now();
        let Some(cluster_arn) = f.cluster_arn.as_deref() else {
            executor.limiter.finish(&state.arn);
            return Ok(Handled::Stopped("the finding names no cluster".into()));
        };
        let result = pass(
            executor.api.as_ref(),
            cluster_arn,
            state,
            &self.config.remediation,
            &mut progress,
            now,
        )
        .await
        .inspect_err(|e| self.count_throttle(e))
        .map_err(|e| FindingError::Fix(Box::new(e)))?;
        let rule = decision.rule.clone();
        match result {
            PassResult::Verified => {
                executor.limiter.finish(&state.arn);
                Metrics::inc(&self.metrics.remediations_verified);
                let changes = progress.changes(state);
                let note = format!(
                    "hubtriage remediated this finding: {}. Verified: audit log export on, neptune_enable_audit_log=1, every instance in-sync, audit log stream present.",
                    if changes.is_empty() { "no change was needed".to_string() } else { changes.join("; ") }
                );
                tracing::info!(changes = %changes.join("; "), "remediation verified");
                let update = FindingUpdate::remediation(
                    Workflow::Resolved,
                    note,
                    rule.as_deref(),
                    "done",
                    None,
                );
                self.write(f, remediated(decision, Action::Resolve), update)
                    .await
            }
            PassResult::Waiting {
                why,
                recheck_in,
                window,
            } => {
                if !window && now > progress.deadline {
                    executor.limiter.finish(&state.arn);
                    Metrics::inc(&self.metrics.remediations_failed);
                    let mut d = remediated(decision, Action::Ticket);
                    d.reason = format!(
                        "Remediation did not verify by its deadline ({} minutes after the last change): {why}.",
                        self.config.remediation.verify_deadline_minutes
                    );
                    d.problems = state.problems();
                    tracing::warn!(why = %why, "remediation did not verify in time; opening a ticket");
                    return self.ticket(f, d).await;
                }
                tracing::info!(why = %why, recheck_in_seconds = recheck_in.as_secs(), "remediation waiting");
                let wait = Duration::from_std(recheck_in).unwrap_or_else(|_| self.recheck_delay());
                self.schedule(
                    executor,
                    recheck_for(f, &state.arn, Some(progress.clone())),
                    wait,
                    now,
                )
                .await?;
                if first {
                    let note = format!(
                        "hubtriage is remediating this finding. {} Plan: {}. Now: {why}.",
                        decision.reason,
                        crate::record::describe_plan(&decision.plan)
                    );
                    let update = FindingUpdate::remediation(
                        Workflow::Notified,
                        note,
                        rule.as_deref(),
                        "in-progress",
                        Some(progress.started_at),
                    );
                    self.write(f, decision, update).await?;
                }
                Ok(Handled::Remediating)
            }
            PassResult::RebootPending { why } => {
                executor.limiter.finish(&state.arn);
                let changes = progress.changes(state);
                let note = format!(
                    "hubtriage fixed what it may ({}), but a reboot of every instance is still needed for the audit log to start: {why}.",
                    if changes.is_empty() { "nothing else was needed".to_string() } else { changes.join("; ") }
                );
                let update = FindingUpdate::remediation(
                    Workflow::Notified,
                    note,
                    rule.as_deref(),
                    "reboot-pending",
                    None,
                );
                self.write(f, decision, update).await
            }
            PassResult::Refused { why } => {
                executor.limiter.finish(&state.arn);
                let mut d = remediated(decision, Action::Ticket);
                d.reason = format!("{} Not remediated: {why}", d.reason);
                self.ticket(f, d).await
            }
        }
    }

    fn count_throttle(&self, e: &crate::aws::Error) {
        if e.throttled {
            Metrics::inc(&self.metrics.throttles);
        }
    }

    fn recheck_delay(&self) -> Duration {
        Duration::seconds(i64::try_from(self.config.remediation.recheck_seconds).unwrap_or(60))
    }

    /// Queues `recheck` to be acted on after `wait` (chained past 15 minutes).
    async fn schedule(
        &self,
        executor: &Executor,
        mut recheck: Recheck,
        wait: Duration,
        now: DateTime<Utc>,
    ) -> Result<(), FindingError> {
        if wait > Duration::zero() {
            recheck.not_before = now + wait;
        }
        let delay = recheck.delay_seconds(now);
        executor
            .rechecks
            .schedule(&recheck, delay)
            .await
            .map_err(FindingError::Schedule)
    }
}

fn log_decision(d: &Decision) {
    tracing::info!(
        action = d.action.as_str(),
        rule = d.rule.as_deref().unwrap_or(""),
        reason = %d.reason,
        plan = %crate::record::describe_plan(&d.plan),
        "decided"
    );
}

/// The decision as a remediation ends it.
fn remediated(mut d: Decision, action: Action) -> Decision {
    d.action = action;
    d.control = Some(NEPTUNE_2.into());
    d
}

fn recheck_for(f: &Finding, cluster_arn: &str, progress: Option<Progress>) -> Recheck {
    Recheck {
        hubtriage_recheck: 1,
        finding_id: f.id.clone(),
        product_arn: f.product_arn.clone(),
        account: f.account.clone(),
        region: f.region.clone(),
        cluster_arn: cluster_arn.to_string(),
        not_before: Utc::now(),
        progress,
    }
}

/// The finding says a remediation started recently and has not ended.
fn remediation_in_progress(f: &Finding, now: DateTime<Utc>) -> bool {
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
