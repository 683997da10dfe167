//! One finding, start to end: drop own echoes and duplicates → screen → enrich
//! (live Neptune state) → decide → act → record → publish the decision event.
//! Remediations are carried out by the driver (`act::driver`); the pipeline
//! records how each of their turns ends, and routes re-check messages to it.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};

use chrono::Utc;

use crate::act::driver::{self, DriverError, Executor, Turn};
use crate::act::recheck::Recheck;
use crate::act::ticket::{TicketError, TicketSink};
use crate::config::{Config, Mode};
use crate::decide::{decide, out_of_reach, screen, untrusted, Action, Decision, Reach};
use crate::enrich::neptune::ClusterReader;
use crate::events::{Outcome, Publisher};
use crate::finding::Finding;
use crate::lock;
use crate::metrics::Metrics;
use crate::record::{
    is_own_update, Acted, FindingId, FindingUpdate, FindingsApi, RecordError, Recorder,
};
use crate::state::ClusterState;

/// Why a finding could not be handled; its message stays on the queue.
#[derive(Debug, thiserror::Error)]
pub enum FindingError {
    /// Reading the cluster's live state.
    #[error(transparent)]
    Enrich(Box<crate::aws::Error>),
    #[error(transparent)]
    Ticket(#[from] TicketError),
    /// A remediation's call or its re-check failed.
    #[error(transparent)]
    Remediation(#[from] DriverError),
    #[error("recording the decision: {0}")]
    Record(#[from] RecordError),
    #[error("reading the finding back: {0}")]
    Lookup(Box<crate::aws::Error>),
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

/// A work slot: held while a finding is decided and acted on, given back
/// before its update waits for its batch to be written.
struct Slot<'a>(Option<tokio::sync::SemaphorePermit<'a>>);

impl Slot<'_> {
    fn release(&mut self) {
        self.0 = None;
    }
}

/// Recently recorded findings, by what identifies one delivery of them (a
/// 64-bit hash of it: 50,000 of them fit in under 2 MiB, where the texts took
/// tens of MiB in a storm).
struct Seen {
    keys: HashSet<u64>,
    order: VecDeque<u64>,
    capacity: usize,
}

impl Seen {
    fn key(f: &Finding) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        // The ASFF and the OCSF finding of one check share the id, not the product.
        f.id.hash(&mut h);
        f.product_arn.hash(&mut h);
        f.updated_at.hash(&mut h);
        f.workflow_status.as_str().hash(&mut h);
        f.note.as_ref().map(|n| n.text.as_str()).hash(&mut h);
        f.compliance_status.hash(&mut h);
        h.finish()
    }

    fn contains(&self, f: &Finding) -> bool {
        self.keys.contains(&Self::key(f))
    }

    fn insert(&mut self, f: &Finding) {
        let key = Self::key(f);
        if self.keys.insert(key) {
            self.order.push_back(key);
            while self.order.len() > self.capacity {
                if let Some(old) = self.order.pop_front() {
                    self.keys.remove(&old);
                }
            }
        }
    }
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
    /// Findings (by their `Seen` key) being handled now: a second copy of one
    /// waits for the first, then finds it seen.
    handling: Mutex<HashMap<u64, Arc<tokio::sync::Mutex<()>>>>,
    /// Work slots (`[daemon] concurrency`): held while deciding and acting.
    work: tokio::sync::Semaphore,
    pub metrics: Arc<Metrics>,
}

impl Pipeline {
    pub fn new(p: Parts) -> Self {
        let concurrency = p.config.daemon.concurrency;
        Pipeline {
            config: p.config,
            reach: p.reach,
            clusters: p.clusters,
            findings: p.findings,
            tickets: p.tickets,
            executor: p.executor,
            recorder: Mutex::new(Some(p.recorder)),
            events: p.events,
            work: tokio::sync::Semaphore::new(concurrency),
            seen: Mutex::new(Seen {
                keys: HashSet::new(),
                order: VecDeque::new(),
                capacity: 50_000,
            }),
            handling: Mutex::default(),
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
        // Two copies of one event worked on at once: the second waits here for
        // the first, and then finds it recorded.
        let key = Seen::key(f);
        let one = lock(&self.handling).entry(key).or_default().clone();
        let handled = {
            let _only = one.lock().await;
            self.handle_one(f, redelivered).await
        };
        let mut handling = lock(&self.handling);
        if Arc::strong_count(&one) == 2 {
            handling.remove(&key);
        }
        handled
    }

    async fn handle_one(&self, f: &Finding, redelivered: bool) -> Result<Handled, FindingError> {
        let mut slot = self.slot().await;
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
        let resolved;
        let f = match self.cluster_by_resource_id(f).await? {
            Some(with_arn) => {
                resolved = with_arn;
                &resolved
            }
            None => f,
        };
        self.triage(f, &mut slot).await
    }

    /// An OCSF finding that names its cluster only by `DbClusterResourceId`:
    /// the same finding with the ARN of the Neptune cluster that has it in the
    /// finding's account and region, when it is one hubtriage may look at.
    async fn cluster_by_resource_id(&self, f: &Finding) -> Result<Option<Finding>, FindingError> {
        let (None, Some(resource_id)) = (&f.cluster_arn, &f.cluster_resource_id) else {
            return Ok(None);
        };
        if !f.is_neptune2() || out_of_reach(f, &self.config, &self.reach).is_some() {
            return Ok(None);
        }
        let arn = self
            .clusters
            .cluster_arn_by_resource_id(&f.account, &f.region, resource_id)
            .await
            .inspect_err(|e| self.count_throttle(e))
            .map_err(|e| FindingError::Enrich(Box::new(e)))?;
        tracing::info!(
            resource_id = %resource_id,
            cluster_arn = arn.as_deref().unwrap_or("none"),
            "looked the cluster up by its resource id"
        );
        Ok(arn.map(|arn| Finding {
            cluster_arn: Some(arn),
            ..f.clone()
        }))
    }

    /// A work slot, held while a finding is decided and acted on.
    async fn slot(&self) -> Slot<'_> {
        Slot(self.work.acquire().await.ok())
    }

    /// Screen → enrich → decide → act → record.
    async fn triage(&self, f: &Finding, slot: &mut Slot<'_>) -> Result<Handled, FindingError> {
        let now = Utc::now();
        let (mut decision, mut state) = match screen(f, &self.config, &self.reach) {
            Some(d) => (d, None),
            None => {
                let state = self.read_cluster(f.cluster_arn.as_deref()).await?;
                if self.executor.is_some() && driver::in_progress(f, now) {
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
        // A remediation decides under the cluster's lease, from state read
        // then: another task may just have changed the cluster.
        let mut cluster_lease = None;
        if let (Some(executor), Action::Remediate, Some(arn)) = (
            &self.executor,
            decision.action,
            state.as_ref().map(|s| s.arn.clone()),
        ) {
            let Some(lease) = executor.lease(&arn).await? else {
                executor.check_later(f, &arn, None).await?;
                return Ok(Handled::Remediating);
            };
            cluster_lease = Some(lease);
            if executor.coordinated() {
                self.clusters.forget(&arn);
                state = self.read_cluster(Some(&arn)).await?;
                decision = decide(f, state.as_ref(), &self.config, &self.reach, now);
            }
        }
        self.metrics.decided(decision.action);
        log_decision(&decision);

        match (decision.action, &self.executor, state) {
            (Action::Ignore, _, _) => {
                self.resolve_ticket(f, &decision).await?;
                Ok(Handled::Ignored(decision))
            }
            (Action::Resolve, _, _) => {
                // Live state is compliant: the problem's ticket is done too.
                self.resolve_ticket(f, &decision).await?;
                self.record(f, decision, &Acted::Nothing, slot).await
            }
            (Action::Suppress, _, _) => self.record(f, decision, &Acted::Nothing, slot).await,
            (Action::Ticket, _, _) => self.ticket(f, decision, slot).await,
            (Action::Remediate, Some(executor), Some(state)) => {
                // Taken above: the first decision was to remediate too.
                let Some(lease) = cluster_lease else {
                    executor.check_later(f, &state.arn, None).await?;
                    return Ok(Handled::Remediating);
                };
                let turn = executor.start(f, decision, &state, &lease).await;
                // The first pass may have changed the cluster.
                self.clusters.forget(&state.arn);
                let turn = turn?;
                self.carry_out(f, turn, slot).await
            }
            (Action::Remediate, _, _) => {
                tracing::info!(plan = %crate::record::describe_plan(&decision.plan), "remediation planned (dry-run); no change made");
                let acted = Acted::Planned {
                    dry_run: self.config.remediation.mode == Mode::DryRun,
                };
                self.record(f, decision, &acted, slot).await
            }
        }
    }

    /// A finding whose ticket hubtriage opened now passes, a person resolved
    /// it, or live state shows it fixed: the ticket hears of it, per `[ticket]
    /// on_resolve`. Only for a
    /// trusted finding in reach; a failure keeps the message on the queue.
    async fn resolve_ticket(&self, f: &Finding, decision: &Decision) -> Result<(), FindingError> {
        let Some(ticket) = f.user_defined_fields.get(crate::marks::FIELD_TICKET) else {
            return Ok(());
        };
        let passed = f.compliance_status.as_deref() == Some("PASSED");
        let resolved = f.workflow_status == crate::finding::Workflow::Resolved
            || decision.action == Action::Resolve;
        if !(passed || resolved)
            || crate::decide::untrusted(f).is_some()
            || crate::decide::out_of_reach(f, &self.config, &self.reach).is_some()
        {
            return Ok(());
        }
        self.tickets
            .resolve(decision, ticket, self.config.ticket.on_resolve)
            .await
            .inspect_err(|e| self.ticket_failed(e))?;
        Ok(())
    }

    /// Counts a ticket system's failure by status and says which config key
    /// to look at; the finding's message stays on the queue.
    fn ticket_failed(&self, e: &TicketError) {
        self.metrics.ticket_error(e.status);
        tracing::error!(
            system = e.system,
            status = e.status.unwrap_or(0),
            error = %e,
            "the ticket system failed; the message goes back to the queue"
        );
    }

    async fn read_cluster(&self, arn: Option<&str>) -> Result<Option<ClusterState>, FindingError> {
        let Some(arn) = arn else { return Ok(None) };
        self.clusters
            .cluster_state(arn)
            .await
            .inspect_err(|e| {
                self.count_throttle(e);
                if e.service == "STS" && e.operation == "AssumeRole" {
                    Metrics::inc(&self.metrics.account_unreachable);
                    tracing::error!(
                        account = e.account.as_deref().unwrap_or(""),
                        role = %e.target,
                        error_code = e.code.as_deref().unwrap_or(""),
                        error = %e,
                        "the finding's account cannot be reached through its role; the message goes back to the queue"
                    );
                }
            })
            .map_err(|e| FindingError::Enrich(Box::new(e)))
    }

    async fn ticket(
        &self,
        f: &Finding,
        decision: Decision,
        slot: &mut Slot<'_>,
    ) -> Result<Handled, FindingError> {
        let named = f
            .user_defined_fields
            .get(crate::marks::FIELD_TICKET)
            .map(String::as_str);
        let ticket = self
            .tickets
            .open(&decision, f.severity_label.as_deref(), named)
            .await
            .inspect_err(|e| self.ticket_failed(e))?;
        Metrics::inc(&self.metrics.tickets_opened);
        let acted = Acted::Ticketed {
            key: ticket.key,
            url: ticket.url,
        };
        self.record(f, decision, &acted, slot).await
    }

    /// Writes the update a decision implies, unless the finding already carries it.
    async fn record(
        &self,
        f: &Finding,
        decision: Decision,
        acted: &Acted,
        slot: &mut Slot<'_>,
    ) -> Result<Handled, FindingError> {
        let Some(update) = FindingUpdate::for_decision(&decision, acted) else {
            return Ok(Handled::Ignored(decision));
        };
        self.write(f, decision, update, slot).await
    }

    async fn write(
        &self,
        f: &Finding,
        decision: Decision,
        update: FindingUpdate,
        slot: &mut Slot<'_>,
    ) -> Result<Handled, FindingError> {
        if update.already_on(f) {
            Metrics::inc(&self.metrics.already_recorded);
            tracing::info!("finding already carries this decision; nothing written");
            lock(&self.seen).insert(f);
            return Ok(Handled::AlreadyRecorded(decision));
        }
        let recorder = lock(&self.recorder).clone().ok_or(RecordError::Stopped)?;
        let id = FindingId::answering(f, self.config.securityhub.api);
        let pending = recorder.submit(id, update.clone()).await?;
        // Waiting for the batch to be written needs no work slot.
        slot.release();
        pending.written().await?;
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
                    ticket: update.fields.get(crate::marks::FIELD_TICKET).cloned(),
                },
            );
        }
        Ok(Handled::Recorded(decision, update))
    }

    // ---- remediation (the driver in act::driver does the work) --------------------

    /// Records how a remediation's turn ended.
    async fn carry_out(
        &self,
        f: &Finding,
        turn: Turn,
        slot: &mut Slot<'_>,
    ) -> Result<Handled, FindingError> {
        match turn {
            Turn::Record(decision, update) => self.write(f, decision, update, slot).await,
            Turn::Ticket(decision) => self.ticket(f, decision, slot).await,
            Turn::Waiting(note) => {
                if let Some((decision, update)) = note {
                    self.write(f, decision, update, slot).await?;
                }
                Ok(Handled::Remediating)
            }
        }
    }

    /// Handles a re-check message: carries a remediation on (or starts one that waited).
    pub async fn handle_recheck(&self, r: &Recheck) -> Result<Handled, FindingError> {
        let Some(executor) = &self.executor else {
            return Ok(Handled::Stopped(
                "remediation mode is dry-run; re-check dropped".into(),
            ));
        };
        if r.not_before > Utc::now() {
            executor.not_yet(r).await?;
            return Ok(Handled::Remediating);
        }
        let stop = |why: String| async move {
            executor.limiter.finish(&r.cluster_arn).await;
            tracing::info!(why = %why, "remediation stopped");
            Ok(Handled::Stopped(why))
        };
        let mut slot = self.slot().await;
        let current = match self.recheck_finding(r).await? {
            Ok(current) => current,
            Err(why) => return stop(why).await,
        };
        let Some(progress) = r.progress.clone() else {
            // It waited for a slot: decide again from live state (triage reads it).
            return self.triage(&current, &mut slot).await;
        };
        // One task at a time reads and changes the cluster.
        let Some(cluster_lease) = executor.lease(&r.cluster_arn).await? else {
            executor
                .check_later(&current, &r.cluster_arn, Some(progress))
                .await?;
            return Ok(Handled::Remediating);
        };
        // A remediation decides from state read now, never from a cached read.
        self.clusters.forget(&r.cluster_arn);
        let Some(state) = self.read_cluster(Some(&r.cluster_arn)).await? else {
            return stop("the cluster no longer exists".into()).await;
        };
        // The decision that started it, seen from live state now (for its rule and plan).
        let decision = decide(
            &current,
            Some(&state),
            &self.config,
            &self.reach,
            Utc::now(),
        );
        let turn = executor
            .resume(&current, decision, &state, progress, &cluster_lease)
            .await;
        // The pass may have changed the cluster: what was read before is stale.
        self.clusters.forget(&r.cluster_arn);
        let turn = turn?;
        self.carry_out(&current, turn, &mut slot).await
    }

    /// The re-check's finding as Security Hub has it now, or why its remediation
    /// stops: it is gone or closed by a person, no longer one hubtriage may work
    /// on, or it names another cluster than the re-check.
    async fn recheck_finding(&self, r: &Recheck) -> Result<Result<Finding, String>, FindingError> {
        let id = FindingId {
            id: r.finding_id.clone(),
            product_arn: r.product_arn.clone(),
            account: r.account.clone(),
        };
        let found = self.findings.get_finding(&id).await;
        let Some(current) = found.map_err(|e| FindingError::Lookup(Box::new(e)))? else {
            return Ok(Err("the finding no longer exists".into()));
        };
        if current.workflow_status.is_closed() {
            return Ok(Err(format!(
                "the finding is now {}",
                current.workflow_status
            )));
        }
        if let Some(why) =
            untrusted(&current).or_else(|| out_of_reach(&current, &self.config, &self.reach))
        {
            return Ok(Err(why));
        }
        if current.cluster_arn.as_deref() != Some(r.cluster_arn.as_str()) {
            return Ok(Err(format!(
                "the finding names {}, not the re-check's cluster {}",
                current.cluster_arn.as_deref().unwrap_or("no cluster"),
                r.cluster_arn
            )));
        }
        Ok(Ok(current))
    }

    fn count_throttle(&self, e: &crate::aws::Error) {
        if e.throttled {
            Metrics::inc(&self.metrics.throttles);
        }
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

#[cfg(test)]
mod tests;
