//! What the pipeline writes in the change journal: each decision that
//! changed a finding's workflow, once its update is written, and in dry-run
//! the changes a remediation would make (`planned`). Queued for a batched
//! write: never delaying or losing the finding.

use chrono::Utc;

use super::Pipeline;
use crate::act::driver::resource_arn;
use crate::control::change::change_of;
use crate::decide::{deciding_control, stop_repeated_fix, Action, Decision, EarlierFix};
use crate::finding::Finding;
use crate::journal::{Entry, Kind, Outcome};
use crate::marks::{FIELD_REMEDIATION, FIELD_TICKET};
use crate::record::FindingUpdate;
use crate::state::LiveState;

impl Pipeline {
    /// An entry about `f`'s resource, its control, the finding and the rule.
    fn entry_about(&self, kind: Kind, f: &Finding, decision: &Decision) -> Entry {
        let resource = deciding_control(f)
            .map(|c| resource_arn(f, c))
            .filter(|arn| !arn.is_empty())
            .or(f.cluster_arn.as_deref())
            .unwrap_or_default();
        let mut e = Entry::new(
            kind,
            self.config.remediation.mode,
            &f.account,
            &f.region,
            resource,
        );
        e.control = decision.control.clone();
        e.finding_ids = vec![f.id.clone()];
        e.rule = decision.rule.clone();
        e.action = Some(decision.action.as_str().to_string());
        e
    }

    /// The decision whose update was just written on `f`.
    pub(super) fn journal_decision(
        &self,
        f: &Finding,
        decision: &Decision,
        update: &FindingUpdate,
    ) {
        let Some(journal) = &self.journal else {
            return;
        };
        let mut e = self.entry_about(Kind::Decision, f, decision);
        e.result = Outcome::Recorded;
        e.workflow = Some(update.workflow.as_str().to_string());
        e.ticket = update.fields.get(FIELD_TICKET).cloned();
        e.reason = Some(decision.reason.clone());
        e.expires = decision.expires.clone();
        if update.fields.get(FIELD_REMEDIATION).map(String::as_str) == Some("done") {
            // A remediation's end: fixed and verified.
            e.action = Some(Action::Remediate.as_str().to_string());
            e.verified_at = Some(Utc::now());
        }
        journal.record(vec![e]);
    }

    /// The changes a dry-run remediation would make, as `planned` entries.
    pub(super) fn planned_changes(
        &self,
        f: &Finding,
        decision: &Decision,
        state: Option<&LiveState>,
    ) -> Vec<Entry> {
        let (Some(_), Some(state)) = (&self.journal, state) else {
            return Vec::new();
        };
        let template = self.entry_about(Kind::Change, f, decision);
        decision
            .plan
            .iter()
            .filter_map(|step| change_of(step, state.live()))
            .map(|change| template.for_change(&change, Outcome::Planned))
            .collect()
    }

    /// A remediation about to start whose fix the journal shows hubtriage
    /// already made `max_repeats` times lately becomes a ticket
    /// (`decide::stop_repeated_fix`); without a journal, nothing is checked.
    pub(super) async fn stop_repeated_fix(
        &self,
        f: &Finding,
        decision: &mut Decision,
        resource: &str,
    ) -> Result<(), crate::journal::JournalError> {
        let (Some(journal), Some(control)) = (&self.journal, decision.control.clone()) else {
            return Ok(());
        };
        let policy = &self.config.remediation;
        let now = Utc::now();
        let mut filter = crate::journal::Filter::between(
            now - chrono::Duration::days(i64::from(policy.repeat_window_days)),
            now,
        );
        filter.resource = Some(resource.to_string());
        filter.control = Some(control);
        filter.kind = Some(Kind::Change);
        let earlier: Vec<EarlierFix> = journal
            .query(&filter)
            .await?
            .into_iter()
            .filter(|e| e.result == Outcome::Done && e.mode == crate::config::Mode::Apply)
            .map(|e| EarlierFix {
                setting: e.setting.clone().unwrap_or_default(),
                after: e.after.clone().unwrap_or_default(),
                id: e.id,
                time: e.time,
                remediation: e.remediation,
            })
            .collect();
        stop_repeated_fix(decision, &earlier, policy, now);
        if decision.action == Action::Ticket {
            tracing::warn!(finding_id = %f.id, reason = %decision.reason, "a fix keeps being reverted; a ticket instead");
        }
        Ok(())
    }

    pub(super) fn journal_planned(&self, entries: Vec<Entry>) {
        if let (Some(journal), false) = (&self.journal, entries.is_empty()) {
            journal.record(entries);
        }
    }
}
