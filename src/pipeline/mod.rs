//! One finding, start to end: drop own echoes and duplicates → screen → enrich
//! (live Neptune state) → decide → act → record → publish the decision event.
//! Remediations are carried out by the driver (`act::driver`); the pipeline
//! records how each of their turns ends, and routes re-check messages to it.

use std::sync::{Arc, Mutex};

use chrono::Utc;

use self::dedupe::Deliveries;
use self::remediation::Leased;
use crate::act::driver::{self, DriverError, RemediationDriver};
use crate::act::ticket::{TicketError, TicketSink};
use crate::config::Config;
use crate::control::Kind;
use crate::decide::{
    decide_on, deciding_control, out_of_reach, resource_kind, screen, AccountReach, Decision,
};
use crate::enrich::neptune::ClusterReader;
use crate::events::Publisher;
use crate::finding::Finding;
use crate::journal::Journal;
use crate::lock;
use crate::metrics::Metrics;
use crate::record::{is_own_update, FindingId, FindingUpdate, FindingsApi, RecordError, Recorder};
use crate::state::{ClusterState, LiveState};

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

/// Everything the pipeline works with.
pub struct Parts {
    pub config: Arc<Config>,
    /// The accounts whose clusters may be read and changed.
    pub reach: AccountReach,
    pub clusters: Arc<dyn ClusterReader>,
    pub findings: Arc<dyn FindingsApi>,
    pub tickets: Arc<dyn TicketSink>,
    /// `None` in dry-run: plans are recorded, nothing is changed.
    pub driver: Option<RemediationDriver>,
    pub recorder: Recorder,
    pub events: Option<Arc<Publisher>>,
    pub metrics: Arc<Metrics>,
    /// `[journal]`: decisions (and dry-run's planned changes) are written there.
    pub journal: Option<Arc<dyn Journal>>,
}

mod dedupe;
mod journaling;
mod outcome;
mod remediation;

pub struct Pipeline {
    config: Arc<Config>,
    reach: AccountReach,
    clusters: Arc<dyn ClusterReader>,
    findings: Arc<dyn FindingsApi>,
    tickets: Arc<dyn TicketSink>,
    driver: Option<RemediationDriver>,
    recorder: Mutex<Option<Recorder>>,
    events: Option<Arc<Publisher>>,
    /// Deliveries recorded lately, and those being handled now.
    deliveries: Deliveries,
    /// Work slots (`[daemon] concurrency`): held while deciding and acting.
    work: tokio::sync::Semaphore,
    pub metrics: Arc<Metrics>,
    journal: Option<Arc<dyn Journal>>,
    /// The controls' warnings already logged (each once).
    warned: Mutex<std::collections::HashSet<String>>,
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
            driver: p.driver,
            recorder: Mutex::new(Some(p.recorder)),
            events: p.events,
            work: tokio::sync::Semaphore::new(concurrency),
            deliveries: Deliveries::new(50_000),
            metrics: p.metrics,
            journal: p.journal,
            warned: Mutex::default(),
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

    pub fn journal(&self) -> Option<&Arc<dyn Journal>> {
        self.journal.as_ref()
    }

    /// Handles one finding from an event. `redelivered`: SQS has handed this
    /// message out before, so an earlier attempt may already have recorded it.
    pub async fn handle(&self, f: &Finding, redelivered: bool) -> Result<Handled, FindingError> {
        // Two copies of one event worked on at once: the second waits here for
        // the first, and then finds it recorded. (Boxed: the whole of a
        // finding's work is one large future, kept off the worker's stack.)
        self.deliveries
            .one_at_a_time(f, Box::pin(self.handle_one(f, redelivered)))
            .await
    }

    async fn handle_one(&self, f: &Finding, redelivered: bool) -> Result<Handled, FindingError> {
        let mut slot = self.slot().await;
        Metrics::inc(&self.metrics.findings_received);
        if is_own_update(f) {
            Metrics::inc(&self.metrics.own_updates_dropped);
            tracing::info!("event reflects hubtriage's own update; dropped");
            return Ok(Handled::OwnUpdate);
        }
        if self.deliveries.seen(f) {
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
        let cluster_control = resource_kind(f) == Some(Kind::Cluster);
        if !cluster_control || out_of_reach(f, &self.config, &self.reach).is_some() {
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
        let (decision, state) = match screen(f, &self.config, &self.reach) {
            Some(d) => (d, None),
            None => {
                let state = self.read_live(f).await?;
                if self.driver.is_some() && driver::in_progress(f, now) {
                    tracing::info!(
                        "a remediation of this finding is in progress; its re-checks carry it on"
                    );
                    return Ok(Handled::Remediating);
                }
                let live = state.as_ref().map(LiveState::live);
                let decision = decide_on(f, live, &self.config, &self.reach, now);
                self.warn_once(f);
                (decision, state)
            }
        };
        let Some(Leased {
            decision,
            state,
            lease,
        }) = self.under_lease(f, decision, state, now).await?
        else {
            return Ok(Handled::Remediating);
        };
        self.metrics
            .decided(decision.action, decision.control.as_deref());
        log_decision(&decision);
        self.act_on(f, decision, state, lease, slot).await
    }

    /// The live state of the resource the finding's control checks: its
    /// cluster (cached, read once by its findings), or its cluster snapshot.
    async fn read_live(&self, f: &Finding) -> Result<Option<LiveState>, FindingError> {
        let Some(control) = deciding_control(f) else {
            return Ok(None);
        };
        let arn = driver::resource_arn(f, control);
        if arn.is_empty() {
            return Ok(None);
        }
        self.read_resource(control.kind(), arn).await
    }

    /// A cluster's or a cluster snapshot's live state, by its ARN.
    async fn read_resource(
        &self,
        kind: Kind,
        arn: &str,
    ) -> Result<Option<LiveState>, FindingError> {
        match kind {
            Kind::Cluster => Ok(self.read_cluster(arn).await?.map(LiveState::Cluster)),
            Kind::ClusterSnapshot => Ok(self
                .clusters
                .snapshot_state(arn)
                .await
                .inspect_err(|e| self.count_throttle(e))
                .map_err(|e| FindingError::Enrich(Box::new(e)))?
                .map(LiveState::Snapshot)),
        }
    }

    async fn read_cluster(&self, arn: &str) -> Result<Option<ClusterState>, FindingError> {
        self.clusters
            .cluster_state(arn)
            .await
            .inspect_err(|e| {
                self.count_throttle(e);
                if e.is_unassumable_role() {
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

    /// Logs what the finding's control says of its criteria (the finding's
    /// parameter and the config differ), once per text.
    fn warn_once(&self, f: &Finding) {
        let Some(control) = deciding_control(f) else {
            return;
        };
        let criteria = crate::control::Criteria::new(&self.config, &f.control_parameters);
        for warning in control.warnings(criteria) {
            if lock(&self.warned).insert(warning.clone()) {
                tracing::warn!(control = control.id(), "{warning}");
            }
        }
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
mod new_control_tests;
#[cfg(test)]
mod tests;
