//! How a decision ends on the finding: its ticket opened (or resolved), and
//! the update it implies written, unless the finding already carries it.

use super::{FindingError, Handled, Pipeline, Slot};
use crate::act::driver::ClusterLease;
use crate::act::driver::DriverError;
use crate::act::ticket::TicketError;
use crate::config::Mode;
use crate::decide::{out_of_reach, untrusted, Action, Decision};
use crate::events::Outcome;
use crate::finding::{Compliance, Finding, Workflow};
use crate::lock;
use crate::marks::FIELD_TICKET;
use crate::metrics::Metrics;
use crate::record::{describe_plan, Acted, FindingId, FindingUpdate, RecordError};
use crate::state::LiveState;

impl Pipeline {
    /// Carries the decision out (its ticket, the remediation's first turn, or
    /// nothing) and records it. `lease`: the cluster's, taken for a remediation.
    pub(super) async fn act_on(
        &self,
        f: &Finding,
        decision: Decision,
        state: Option<LiveState>,
        lease: Option<ClusterLease>,
        slot: &mut Slot<'_>,
    ) -> Result<Handled, FindingError> {
        match (decision.action, &self.driver, state, lease) {
            (Action::Ignore, _, _, _) => {
                self.resolve_ticket(f, &decision).await?;
                Ok(Handled::Ignored(decision))
            }
            (Action::Resolve, _, _, _) => {
                // Live state is compliant: the problem's ticket is done too.
                self.resolve_ticket(f, &decision).await?;
                self.record(f, decision, &Acted::Nothing, slot).await
            }
            (Action::Suppress, _, _, _) => self.record(f, decision, &Acted::Nothing, slot).await,
            (Action::Ticket, _, _, _) => self.ticket(f, decision, slot).await,
            (Action::Remediate, Some(_), Some(state), Some(lease)) => {
                let mut decision = decision;
                self.stop_repeated_fix(f, &mut decision, state.live().arn())
                    .await
                    .map_err(|e| FindingError::Remediation(DriverError::Journal(e)))?;
                if decision.action == Action::Ticket {
                    return self.ticket(f, decision, slot).await;
                }
                self.start_remediation(f, decision, &state, &lease, slot)
                    .await
            }
            (Action::Remediate, _, state, _) => {
                tracing::info!(plan = %describe_plan(&decision.plan), "remediation planned (dry-run); no change made");
                let dry_run = self.config.remediation.mode == Mode::DryRun;
                let planned = if dry_run {
                    self.planned_changes(f, &decision, state.as_ref())
                } else {
                    Vec::new()
                };
                let handled = self
                    .record(f, decision, &Acted::Planned { dry_run }, slot)
                    .await?;
                if matches!(handled, Handled::Recorded(..)) {
                    self.journal_planned(planned);
                }
                Ok(handled)
            }
        }
    }

    /// A finding whose ticket hubtriage opened now passes, a person resolved
    /// it, or live state shows it fixed: the ticket hears of it, per `[ticket]
    /// on_resolve`. Only for a
    /// trusted finding in reach; a failure keeps the message on the queue.
    pub(super) async fn resolve_ticket(
        &self,
        f: &Finding,
        decision: &Decision,
    ) -> Result<(), FindingError> {
        let Some(ticket) = f.user_defined_fields.get(FIELD_TICKET) else {
            return Ok(());
        };
        let passed = f.compliance_status == Some(Compliance::Passed);
        let resolved =
            f.workflow_status == Workflow::Resolved || decision.action == Action::Resolve;
        if !(passed || resolved)
            || untrusted(f).is_some()
            || out_of_reach(f, &self.config, &self.reach).is_some()
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
    pub(super) fn ticket_failed(&self, e: &TicketError) {
        self.metrics.ticket_error(e.status);
        tracing::error!(
            system = e.system,
            status = e.status.unwrap_or(0),
            error = %e,
            "the ticket system failed; the message goes back to the queue"
        );
    }

    pub(super) async fn ticket(
        &self,
        f: &Finding,
        decision: Decision,
        slot: &mut Slot<'_>,
    ) -> Result<Handled, FindingError> {
        let named = f.user_defined_fields.get(FIELD_TICKET).map(String::as_str);
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
    pub(super) async fn record(
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

    pub(super) async fn write(
        &self,
        f: &Finding,
        decision: Decision,
        update: FindingUpdate,
        slot: &mut Slot<'_>,
    ) -> Result<Handled, FindingError> {
        if update.already_on(f) {
            Metrics::inc(&self.metrics.already_recorded);
            tracing::info!("finding already carries this decision; nothing written");
            self.deliveries.remember(f);
            return Ok(Handled::AlreadyRecorded(decision));
        }
        let recorder = lock(&self.recorder).clone().ok_or(RecordError::Stopped)?;
        let id = FindingId::answering(f, self.config.securityhub.api);
        let pending = recorder.submit(id, update.clone()).await?;
        // Waiting for the batch to be written needs no work slot.
        slot.release();
        pending.written().await?;
        Metrics::inc(&self.metrics.recorded);
        self.deliveries.remember(f);
        tracing::info!(
            workflow = update.workflow.as_str(),
            "recorded on the finding"
        );
        self.journal_decision(f, &decision, &update);
        if let Some(events) = &self.events {
            events.publish(
                &decision,
                &Outcome {
                    workflow: update.workflow.as_str().to_string(),
                    note: update.note.clone(),
                    ticket: update.fields.get(FIELD_TICKET).cloned(),
                },
            );
        }
        Ok(Handled::Recorded(decision, update))
    }
}
