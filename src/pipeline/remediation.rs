//! Remediations, as the pipeline sees them: the driver (`act::driver`) does
//! the work in turns; here each turn's end is recorded, and re-check
//! messages are routed to the driver.

use chrono::{DateTime, Utc};

use super::{FindingError, Handled, Pipeline, Slot};
use crate::act::driver::resource_arn;
use crate::act::driver::{ClusterLease, Turn};
use crate::act::recheck::Recheck;
use crate::control::{self, Kind};
use crate::decide::{decide_on, deciding_control, out_of_reach, untrusted, Action, Decision};
use crate::finding::Finding;
use crate::record::FindingId;
use crate::state::LiveState;

/// A decision that goes ahead: made again under the cluster's lease when
/// other tasks may change the cluster, the state it was made from, and the
/// lease when it remediates.
pub(super) struct Leased {
    pub decision: Decision,
    pub state: Option<LiveState>,
    pub lease: Option<ClusterLease>,
}

/// What a re-check's finding says now.
enum Recheckable {
    /// Still this remediation's: the finding as Security Hub holds it now.
    Current(Box<Finding>),
    /// The remediation stops, for this reason.
    Stop(String),
}

impl Pipeline {
    /// A remediation decides under the cluster's lease, from state read then:
    /// another task may just have changed the cluster. Other decisions need
    /// no lease. `None`: another worker or task holds the cluster, and a
    /// re-check carries the finding on.
    pub(super) async fn under_lease(
        &self,
        f: &Finding,
        decision: Decision,
        state: Option<LiveState>,
        now: DateTime<Utc>,
    ) -> Result<Option<Leased>, FindingError> {
        let (Some(driver), Action::Remediate, Some(arn)) = (
            &self.driver,
            decision.action,
            state.as_ref().map(|s| s.live().arn().to_string()),
        ) else {
            return Ok(Some(Leased {
                decision,
                state,
                lease: None,
            }));
        };
        let Some(lease) = driver.lease(&arn).await? else {
            driver.check_later(f, &arn, None).await?;
            return Ok(None);
        };
        if !driver.coordinated() {
            return Ok(Some(Leased {
                decision,
                state,
                lease: Some(lease),
            }));
        }
        self.clusters.forget(&arn);
        let state = self.read_live(f).await?;
        let live = state.as_ref().map(LiveState::live);
        let decision = decide_on(f, live, &self.config, &self.reach, now);
        Ok(Some(Leased {
            decision,
            state,
            lease: Some(lease),
        }))
    }

    /// The first turn of a remediation decided under `lease`, recorded.
    pub(super) async fn start_remediation(
        &self,
        f: &Finding,
        decision: Decision,
        state: &LiveState,
        lease: &ClusterLease,
        slot: &mut Slot<'_>,
    ) -> Result<Handled, FindingError> {
        let Some(driver) = &self.driver else {
            return Ok(Handled::Stopped("remediation mode is dry-run".into()));
        };
        let turn = Box::pin(driver.start(f, decision, state.live(), lease)).await;
        // The first pass may have changed the cluster.
        self.clusters.forget(state.live().arn());
        self.carry_out(f, turn?, slot).await
    }

    /// Records how a remediation's turn ended.
    pub(super) async fn carry_out(
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
        let Some(driver) = &self.driver else {
            return Ok(Handled::Stopped(
                "remediation mode is dry-run; re-check dropped".into(),
            ));
        };
        if r.not_before > Utc::now() {
            driver.requeue_not_due(r).await?;
            return Ok(Handled::Remediating);
        }
        let stop = |why: String| async move {
            driver.finish(&r.cluster_arn, &r.finding_id).await;
            tracing::info!(why = %why, "remediation stopped");
            Ok(Handled::Stopped(why))
        };
        let mut slot = self.slot().await;
        let current = match self.recheck_finding(r).await? {
            Recheckable::Current(current) => current,
            Recheckable::Stop(why) => return stop(why).await,
        };
        let Some(progress) = r.progress.clone() else {
            // It waited for a slot: decide again from live state (triage reads it).
            return Box::pin(self.triage(&current, &mut slot)).await;
        };
        // One task at a time reads and changes the cluster.
        let Some(cluster_lease) = driver.lease(&r.cluster_arn).await? else {
            driver
                .check_later(&current, &r.cluster_arn, Some(progress))
                .await?;
            return Ok(Handled::Remediating);
        };
        // A remediation decides from state read now, never from a cached read.
        self.clusters.forget(&r.cluster_arn);
        let kind = recheck_kind(r);
        let Some(state) = self.read_resource(kind, &r.cluster_arn).await? else {
            return stop(format!("the {} no longer exists", kind.noun())).await;
        };
        // The decision that started it, seen from live state now (for its rule and plan).
        let now = Utc::now();
        let decision = decide_on(&current, Some(state.live()), &self.config, &self.reach, now);
        let turn =
            Box::pin(driver.resume(&current, decision, state.live(), progress, &cluster_lease))
                .await;
        // The pass may have changed the cluster: what was read before is stale.
        self.clusters.forget(&r.cluster_arn);
        let turn = turn?;
        self.carry_out(&current, turn, &mut slot).await
    }

    /// The re-check's finding as Security Hub has it now, or why its remediation
    /// stops: it is gone or closed by a person, no longer one hubtriage may work
    /// on, or it names another cluster than the re-check.
    async fn recheck_finding(&self, r: &Recheck) -> Result<Recheckable, FindingError> {
        let id = FindingId {
            id: r.finding_id.clone(),
            product_arn: r.product_arn.clone(),
            account: r.account.clone(),
        };
        let found = self.findings.get_finding(&id).await;
        let Some(current) = found.map_err(|e| FindingError::Lookup(Box::new(e)))? else {
            return Ok(Recheckable::Stop("the finding no longer exists".into()));
        };
        if current.workflow_status.is_closed() {
            return Ok(Recheckable::Stop(format!(
                "the finding is now {}",
                current.workflow_status
            )));
        }
        if let Some(why) =
            untrusted(&current).or_else(|| out_of_reach(&current, &self.config, &self.reach))
        {
            return Ok(Recheckable::Stop(why));
        }
        let named = deciding_control(&current)
            .map(|c| resource_arn(&current, c))
            .unwrap_or_default();
        if named != r.cluster_arn {
            let named = if named.is_empty() {
                "no resource"
            } else {
                named
            };
            return Ok(Recheckable::Stop(format!(
                "the finding names {named}, not the re-check's {} {}",
                recheck_kind(r).noun(),
                r.cluster_arn
            )));
        }
        Ok(Recheckable::Current(Box::new(current)))
    }
}

/// The kind of resource a re-check carries on.
fn recheck_kind(r: &Recheck) -> Kind {
    control::named_or_legacy(r.control.as_deref()).kind()
}
