//! One finding, start to end: drop own echoes and duplicates → screen → enrich
//! (live Neptune state) → decide → act → record → publish the decision event.

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex};

use chrono::Utc;

use crate::act::remediate::{RemediateError, Remediator};
use crate::act::ticket::{TicketError, TicketSink};
use crate::config::Config;
use crate::decide::{decide, screen, Action, Decision};
use crate::enrich::neptune::{ClusterReader, EnrichError};
use crate::events::{Outcome, Publisher};
use crate::finding::Finding;
use crate::lock;
use crate::metrics::Metrics;
use crate::record::{
    is_own_update, Acted, ApiError, FindingId, FindingUpdate, FindingsApi, RecordError, Recorder,
};

/// Why a finding could not be handled; its message stays on the queue.
#[derive(Debug, thiserror::Error)]
pub enum FindingError {
    #[error(transparent)]
    Enrich(#[from] EnrichError),
    #[error(transparent)]
    Ticket(#[from] TicketError),
    #[error(transparent)]
    Remediate(#[from] RemediateError),
    #[error("recording the decision: {0}")]
    Record(#[from] RecordError),
    #[error("reading the finding back: {0}")]
    Lookup(#[from] ApiError),
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

pub struct Pipeline {
    config: Arc<Config>,
    clusters: Arc<dyn ClusterReader>,
    findings: Arc<dyn FindingsApi>,
    tickets: Arc<dyn TicketSink>,
    remediator: Arc<dyn Remediator>,
    recorder: Mutex<Option<Recorder>>,
    events: Option<Arc<Publisher>>,
    seen: Mutex<Seen>,
    pub metrics: Arc<Metrics>,
}

impl Pipeline {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        config: Arc<Config>,
        clusters: Arc<dyn ClusterReader>,
        findings: Arc<dyn FindingsApi>,
        tickets: Arc<dyn TicketSink>,
        remediator: Arc<dyn Remediator>,
        recorder: Recorder,
        events: Option<Arc<Publisher>>,
        metrics: Arc<Metrics>,
    ) -> Self {
        Pipeline {
            config,
            clusters,
            findings,
            tickets,
            remediator,
            recorder: Mutex::new(Some(recorder)),
            events,
            seen: Mutex::new(Seen {
                keys: HashSet::new(),
                order: VecDeque::new(),
                capacity: 50_000,
            }),
            metrics,
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

    /// Handles one finding. `redelivered`: SQS has handed this message out before,
    /// so an earlier attempt may already have recorded it.
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
            if let Some(current) = self.findings.get_finding(&FindingId::of(f)).await? {
                if is_own_update(&current) && current.updated_at == f.updated_at {
                    Metrics::inc(&self.metrics.duplicates_dropped);
                    tracing::info!("redelivered finding was already recorded; dropped");
                    return Ok(Handled::Duplicate);
                }
            }
        }

        let decision = match screen(f, &self.config) {
            Some(d) => d,
            None => {
                let state = match f.cluster_arn.as_deref() {
                    Some(arn) => self.clusters.cluster_state(arn).await.inspect_err(|e| {
                        if e.throttled {
                            Metrics::inc(&self.metrics.throttles);
                        }
                    })?,
                    None => None,
                };
                decide(f, state.as_ref(), &self.config, Utc::now())
            }
        };
        self.metrics.decided(decision.action);
        tracing::info!(
            action = decision.action.as_str(),
            rule = decision.rule.as_deref().unwrap_or(""),
            reason = %decision.reason,
            plan = %crate::record::describe_plan(&decision.plan),
            "decided"
        );

        let acted = match decision.action {
            Action::Ignore => return Ok(Handled::Ignored(decision)),
            Action::Resolve | Action::Suppress => Acted::Nothing,
            Action::Ticket => {
                let ticket = self.tickets.open(&decision).await?;
                Acted::Ticketed { key: ticket.key }
            }
            Action::Remediate => self.remediator.remediate(&decision).await?,
        };
        let Some(update) = FindingUpdate::for_decision(&decision, &acted) else {
            return Ok(Handled::Ignored(decision));
        };
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
            let ticket = update.fields.get(crate::record::FIELD_TICKET).cloned();
            events.publish(
                &decision,
                &Outcome {
                    workflow: update.workflow.as_str().to_string(),
                    note: update.note.clone(),
                    ticket,
                },
            );
        }
        Ok(Handled::Recorded(decision, update))
    }
}
