//! A pass's changes in the change journal: each written `started` before
//! its call ([`Pass::journal_started`]; no entry, no call) and completed
//! after it ([`Pass::journal_ended`]); and, at the start of every pass, the
//! changes of the resource whose end is not known (a task killed between
//! its entry and its call, a call cut off) settled from live state
//! ([`Pass::settle_open_changes`]): `done` when live state shows the value
//! asked for, else `failed`.

use chrono::Duration;

use super::{FixApi, Pass, PassError};
use crate::aws::Error;
use crate::control::change::{current_value, Change, NONE};
use crate::journal::{Entry, Filter, Journal, JournalError, Kind, Outcome};
use crate::state::{LiveResource, AUDIT_PARAMETER, IN_SYNC};

/// The retention a log group without one has, as the journal writes it.
pub const NEVER_EXPIRE: &str = "never expire";

/// Open changes older than this are not settled any more (they are left
/// as they are, for a person to read).
const SETTLE_WITHIN_DAYS: i64 = 14;

/// Where a pass journals its changes: the journal, and the entry each
/// change starts from (the resource, its control, the finding, the rule
/// and the remediation).
#[derive(Clone, Copy)]
pub struct ChangeLog<'a> {
    pub journal: &'a dyn Journal,
    pub template: &'a Entry,
}

/// How a call ended, as the journal says it: done; failed, with the error
/// code; or unknown (a timeout, a reset, a 5xx: it may have been made).
fn outcome_of<T>(result: &Result<T, Error>) -> (Outcome, Option<String>) {
    match result {
        Ok(_) => (Outcome::Done, None),
        Err(e) => {
            let code = e.code.clone().unwrap_or_else(|| e.message.clone());
            if e.retryable && !e.throttled {
                (Outcome::Unknown, Some(code))
            } else {
                (Outcome::Failed, Some(code))
            }
        }
    }
}

impl Pass<'_> {
    /// The change's entry, written `started`; its id (`None` without a journal).
    pub(super) async fn journal_started(
        &mut self,
        change: &Change,
    ) -> Result<Option<String>, PassError> {
        let Some(log) = self.job.log else {
            return Ok(None);
        };
        let entry = log.template.for_change(change, Outcome::Started);
        log.journal.append(&entry).await.map_err(|e| {
            tracing::warn!(error = %e, call = change.call, "the change's journal entry cannot be written; the change is not made");
            PassError::Journal(e)
        })?;
        Ok(Some(entry.id))
    }

    /// Completes the change's entry with how its call ended. A completion
    /// that cannot be written leaves the entry `started`: the next pass
    /// settles it from live state.
    pub(super) async fn journal_ended<T>(
        &mut self,
        entry: Option<String>,
        result: &Result<T, Error>,
    ) {
        let (Some(id), Some(log)) = (entry, self.job.log) else {
            return;
        };
        let (outcome, error) = outcome_of(result);
        match log.journal.complete(&id, outcome, error.as_deref()).await {
            Ok(()) => {}
            Err(e) => {
                tracing::warn!(entry = %id, error = %e, "the change's journal entry stays started; the next pass settles it")
            }
        }
        if outcome != Outcome::Failed {
            self.progress.journal.push(id);
        }
    }

    /// Settles the resource's open changes (`started`, `unknown`) from the
    /// live state this pass read (and, for what it does not show, a fresh
    /// read). Nothing here stops the pass: a journal that cannot be read
    /// now is read again by the next pass.
    pub(super) async fn settle_open_changes(&mut self) {
        let Some(log) = self.job.log else {
            return;
        };
        let mut filter = Filter::between(self.now - Duration::days(SETTLE_WITHIN_DAYS), self.now);
        filter.resource = Some(self.job.resource_arn.to_string());
        filter.kind = Some(Kind::Change);
        let open: Vec<Entry> = match log.journal.query(&filter).await {
            Ok(entries) => entries.into_iter().filter(|e| e.result.is_open()).collect(),
            Err(e) => {
                tracing::warn!(error = %e, "the journal cannot be read; open changes are settled later");
                return;
            }
        };
        for entry in open {
            self.settle(log.journal, &entry).await;
        }
    }

    async fn settle(&mut self, journal: &dyn Journal, entry: &Entry) {
        let settled = settle(journal, self.api, self.arn.region, self.job.live, entry).await;
        if settled == Some(Outcome::Done) && entry.remediation == self.progress.remediation {
            self.progress.journal.push(entry.id.clone());
        }
    }
}

/// Settles an open change from `live` (the resource's state, read after
/// the change's call ended or was cut off) and what `api` reads of the
/// rest: `done` when it shows the value asked for, else `failed`. `None`
/// when it cannot be told yet, or was settled meanwhile by another task.
pub async fn settle(
    journal: &dyn Journal,
    api: &dyn FixApi,
    region: &str,
    live: LiveResource<'_>,
    entry: &Entry,
) -> Option<Outcome> {
    let change = change_in(entry)?;
    let seen = observed(api, region, &change, live).await?;
    let (outcome, error) = if seen == change.after {
        (Outcome::Done, None)
    } else {
        let why = format!(
            "settled from live state: {} is {seen}, not {}; the call was not carried out",
            change.setting, change.after
        );
        (Outcome::Failed, Some(why))
    };
    match journal.complete(&entry.id, outcome, error.as_deref()).await {
        Ok(()) => {
            tracing::info!(entry = %entry.id, result = outcome.as_str(), "settled a change whose end was not known, from live state");
            Some(outcome)
        }
        Err(JournalError::NotOpen(_)) => None,
        Err(e) => {
            tracing::warn!(entry = %entry.id, error = %e, "could not settle the change; tried again later");
            None
        }
    }
}

/// The value `change` set, as the resource shows it now; `None` when it
/// cannot be told yet (an instance still rebooting, a failed read).
async fn observed(
    api: &dyn FixApi,
    region: &str,
    change: &Change,
    live: LiveResource<'_>,
) -> Option<String> {
    if change.call == "RebootDBInstance" {
        return observed_reboot(api, region, change, live).await;
    }
    if let Some(v) = current_value(change, live) {
        return Some(v);
    }
    let target = change.target.as_deref()?;
    match change.call {
        "CreateDBClusterParameterGroup" | "ModifyDBClusterParameterGroup" => {
            let params = match api.user_parameters(region, target).await {
                Ok(p) => p,
                Err(e) if e.code.as_deref() == Some("DBParameterGroupNotFound") => {
                    return Some(NONE.to_string())
                }
                Err(_) => return None,
            };
            Some(match change.setting.as_str() {
                AUDIT_PARAMETER => params
                    .iter()
                    .find(|p| p.name == AUDIT_PARAMETER)
                    .map_or("0".to_string(), |p| p.value.clone()),
                "DBClusterParameterGroupName" => change.after.clone(),
                _ => {
                    let names: Vec<String> = params.iter().map(|p| p.name.clone()).collect();
                    crate::control::change::list(&names)
                }
            })
        }
        "PutRetentionPolicy" => match api.log_group_retention(region, target).await {
            Ok(Some(days)) => Some(days.map_or(NEVER_EXPIRE.to_string(), |d| d.to_string())),
            Ok(None) => Some(NONE.to_string()),
            Err(_) => None,
        },
        _ => None,
    }
}

/// A reboot is done once its member has applied the group; an instance
/// still rebooting is told later.
async fn observed_reboot(
    api: &dyn FixApi,
    region: &str,
    change: &Change,
    live: LiveResource<'_>,
) -> Option<String> {
    let target = change.target.as_deref()?;
    let member = match live {
        LiveResource::Cluster(c) => c.members.iter().find(|m| m.instance == target)?,
        LiveResource::Snapshot(_) => return None,
    };
    if member.parameter_group_status == IN_SYNC {
        return Some(IN_SYNC.to_string());
    }
    match api.instance_status(region, target).await {
        Ok(Some(status)) if status == "rebooting" => None,
        Ok(_) => Some(member.parameter_group_status.clone()),
        Err(_) => None,
    }
}

/// The change an entry records.
fn change_in(e: &Entry) -> Option<Change> {
    let call = match e.call.as_deref()? {
        "ModifyDBCluster" => "ModifyDBCluster",
        "ModifyDBClusterParameterGroup" => "ModifyDBClusterParameterGroup",
        "CreateDBClusterParameterGroup" => "CreateDBClusterParameterGroup",
        "ModifyDBClusterSnapshotAttribute" => "ModifyDBClusterSnapshotAttribute",
        "RebootDBInstance" => "RebootDBInstance",
        "PutRetentionPolicy" => "PutRetentionPolicy",
        _ => return None,
    };
    Some(Change {
        call,
        setting: e.setting.clone()?,
        target: e.target.clone(),
        before: e.before.clone().unwrap_or_default(),
        after: e.after.clone()?,
    })
}
