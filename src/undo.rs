//! `hubtriage undo ID`: puts a change from the journal back.
//!
//! Without `--apply` it says what it would do and changes nothing. With it:
//! the resource's live state is read (in its account, through the member
//! role as `run` reaches it); if a value is no longer what the change set,
//! nothing is changed and the error names both values ([`UndoError::ChangedSince`],
//! exit 3). Else each value is set back: a cluster setting; for Neptune.2,
//! the whole remediation (the `audit` export off, the earlier parameter
//! group attached again, a parameter changed in place put back, the log
//! group's retention put back; a group hubtriage made is kept and named;
//! reboots are not undone); a snapshot made public again only with
//! `--make-public`. Then the resource is tagged `hubtriage:skip` with the
//! change's id and the reason, so that hubtriage tickets it from then on
//! instead of fixing it again, and each change put back is journaled as an
//! `undo` entry.

use std::sync::Arc;

use chrono::{Duration, Utc};

use crate::act::remediate::{FixApi, FixApis, NEVER_EXPIRE};
use crate::config::{Config, Mode};
use crate::control::change::{current_value, Change, NONE};
use crate::control::{ClusterSetting, SettingValue, SKIP_TAG};
use crate::enrich::neptune::ClusterReader;
use crate::journal::{Entry, Filter, Journal, JournalError, Kind, Outcome};
use crate::state::{LiveResource, LiveState, AUDIT_PARAMETER};

/// The calls only `undo` makes in a member account, as IAM actions (the
/// others are the fixes' own).
pub const IAM_ACTIONS: &[&str] = &["logs:DeleteRetentionPolicy", "rds:AddTagsToResource"];

#[derive(Debug, thiserror::Error)]
pub enum UndoError {
    /// The id names nothing that can be undone, or a flag is missing (exit 64).
    #[error("{0}")]
    Usage(String),
    /// A value is no longer what the change set (exit 3): nothing was changed.
    #[error("{0}")]
    ChangedSince(String),
    #[error("{0}")]
    Aws(Box<crate::aws::Error>),
    #[error("{0}")]
    Journal(#[from] JournalError),
}

impl From<crate::aws::Error> for UndoError {
    fn from(e: crate::aws::Error) -> Self {
        UndoError::Aws(Box::new(e))
    }
}

/// The command line's choices.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub apply: bool,
    pub reason: Option<String>,
    pub make_public: bool,
}

/// How a value is put back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Revert {
    Setting {
        setting: ClusterSetting,
        value: SettingValue,
    },
    AttachGroup {
        group: String,
    },
    AuditExportOff,
    AuditParameter {
        group: String,
        value: String,
    },
    Retention {
        log_group: String,
        days: Option<i32>,
    },
    MakePublic {
        snapshot: String,
    },
}

/// One change to put back: the change's entry, the value it shows now
/// (what the change set), and how.
#[derive(Debug, Clone)]
pub struct Step {
    pub change: Entry,
    pub revert: Revert,
}

/// What an undo does: the values put back, and what it leaves (a group
/// kept, reboots).
#[derive(Debug, Clone, Default)]
pub struct Plan {
    pub steps: Vec<Step>,
    pub notes: Vec<String>,
}

/// The changes an undo of `entry` puts back: itself, or, for a change of a
/// remediation (Neptune.2's several calls), every change of that
/// remediation made (`done`), newest first.
pub fn changes_to_undo<'a>(entry: &'a Entry, journal: &'a [Entry]) -> Vec<&'a Entry> {
    let mut out: Vec<&Entry> = match &entry.remediation {
        // A remediation of several changes (Neptune.2's) is undone whole.
        Some(r) => journal
            .iter()
            .filter(|e| {
                e.kind == Kind::Change
                    && e.result == Outcome::Done
                    && e.mode == Mode::Apply
                    && e.remediation.as_ref() == Some(r)
                    && e.resource == entry.resource
            })
            .collect(),
        _ => vec![entry],
    };
    if !out.iter().any(|e| e.id == entry.id) {
        out.push(entry);
    }
    out.sort_by(|a, b| b.id.cmp(&a.id));
    out
}

/// Why `entry` cannot be undone, if so.
pub fn not_undoable(entry: &Entry, journal: &[Entry]) -> Option<String> {
    let id = &entry.id;
    if entry.kind != Kind::Change {
        return Some(format!(
            "{id} is a {} entry, not a change: only changes are undone",
            entry.kind.as_str()
        ));
    }
    if entry.mode != Mode::Apply || entry.result != Outcome::Done {
        return Some(format!(
            "{id} was not made (its result is {}): there is nothing to undo",
            entry.result.as_str()
        ));
    }
    journal
        .iter()
        .find(|u| u.kind == Kind::Undo && u.undoes.as_deref() == Some(id.as_str()))
        .map(|u| {
            format!(
                "{id} was already undone by {} at {}",
                u.id,
                u.time.format("%Y-%m-%d %H:%M UTC")
            )
        })
}

fn change_of(e: &Entry) -> Option<Change> {
    let call = match e.call.as_deref()? {
        "ModifyDBCluster" => "ModifyDBCluster",
        "ModifyDBClusterParameterGroup" => "ModifyDBClusterParameterGroup",
        "ModifyDBClusterSnapshotAttribute" => "ModifyDBClusterSnapshotAttribute",
        "PutRetentionPolicy" => "PutRetentionPolicy",
        _ => return None,
    };
    Some(Change {
        call,
        setting: e.setting.clone()?,
        target: e.target.clone(),
        before: e.before.clone()?,
        after: e.after.clone()?,
    })
}

/// The value `change` set, as the resource shows it now (reading what live
/// state does not hold: a group's parameter, a log group's retention).
async fn now_value(
    api: &dyn FixApi,
    region: &str,
    change: &Change,
    live: LiveResource<'_>,
) -> Result<String, UndoError> {
    if let Some(v) = current_value(change, live) {
        return Ok(v);
    }
    let target = change.target.clone().unwrap_or_default();
    match change.call {
        "ModifyDBClusterParameterGroup" => Ok(api
            .user_parameters(region, &target)
            .await?
            .iter()
            .find(|p| p.name == AUDIT_PARAMETER)
            .map_or("0".to_string(), |p| p.value.clone())),
        "PutRetentionPolicy" => Ok(match api.log_group_retention(region, &target).await? {
            Some(Some(days)) => days.to_string(),
            Some(None) => NEVER_EXPIRE.to_string(),
            None => NONE.to_string(),
        }),
        _ => Ok(NONE.to_string()),
    }
}

/// How `e` is put back, or the note that says it is not.
fn revert_of(
    e: &Entry,
    created: &[String],
    options: &Options,
) -> Result<Result<Revert, String>, UndoError> {
    let setting = e.setting.as_deref().unwrap_or_default();
    let before = e.before.clone().unwrap_or_default();
    let target = e.target.clone().unwrap_or_default();
    let kept = |what: String| Ok(Err(what));
    match e.call.as_deref().unwrap_or_default() {
        "RebootDBInstance" => kept(format!("instance {target} was rebooted ({}): a reboot is not undone", e.id)),
        "CreateDBClusterParameterGroup" => kept(format!("parameter group {target} that hubtriage made is kept ({})", e.id)),
        "ModifyDBClusterParameterGroup" if created.contains(&target) => {
            kept(format!("{setting} in {target} is left as it is: the group is kept, no longer attached ({})", e.id))
        }
        "ModifyDBClusterParameterGroup" if setting == AUDIT_PARAMETER => {
            Ok(Ok(Revert::AuditParameter { group: target, value: before }))
        }
        "ModifyDBCluster" if setting == "DBClusterParameterGroupName" => Ok(Ok(Revert::AttachGroup { group: before })),
        "ModifyDBCluster" if setting == "EnableCloudwatchLogsExports" => Ok(Ok(Revert::AuditExportOff)),
        "ModifyDBCluster" => {
            let setting = ClusterSetting::named(setting)
                .ok_or_else(|| UndoError::Usage(format!("{}: hubtriage cannot set {setting} back", e.id)))?;
            let value = match before.as_str() {
                "true" => SettingValue::Flag(true),
                "false" => SettingValue::Flag(false),
                n => SettingValue::Days(n.parse().map_err(|_| {
                    UndoError::Usage(format!("{}: {setting:?} was {n:?} before, which hubtriage cannot set", e.id))
                })?),
            };
            Ok(Ok(Revert::Setting { setting, value }))
        }
        "ModifyDBClusterSnapshotAttribute" if !options.make_public => Err(UndoError::Usage(format!(
            "{} made the snapshot {target} private; putting it back makes it public again (its restore attribute holds all): add --make-public to do that",
            e.id
        ))),
        "ModifyDBClusterSnapshotAttribute" => Ok(Ok(Revert::MakePublic { snapshot: target })),
        "PutRetentionPolicy" => match before.as_str() {
            NEVER_EXPIRE => Ok(Ok(Revert::Retention { log_group: target, days: None })),
            n => match n.parse::<i32>() {
                Ok(days) => Ok(Ok(Revert::Retention { log_group: target, days: Some(days) })),
                Err(_) => kept(format!("the retention of {target} before ({n}) is not known: left at {}", e.after.clone().unwrap_or_default())),
            },
        },
        other => Err(UndoError::Usage(format!("{}: hubtriage cannot undo {other}", e.id))),
    }
}

/// The plan: what each change set is still there (else
/// [`UndoError::ChangedSince`], naming both values), and how it is put back.
pub async fn plan(
    api: &dyn FixApi,
    changes: &[&Entry],
    live: LiveResource<'_>,
    options: &Options,
) -> Result<Plan, UndoError> {
    let created: Vec<String> = changes
        .iter()
        .filter(|e| e.call.as_deref() == Some("CreateDBClusterParameterGroup"))
        .filter_map(|e| e.target.clone())
        .collect();
    let mut plan = Plan::default();
    for e in changes {
        let revert = match revert_of(e, &created, options)? {
            Ok(r) => r,
            Err(note) => {
                plan.notes.push(note);
                continue;
            }
        };
        let Some(change) = change_of(e) else { continue };
        let now = now_value(api, &e.region, &change, live).await?;
        if now != change.after {
            return Err(UndoError::ChangedSince(format!(
                "{} set {}{} to {}, but it is {now} now: it was changed since, so nothing was undone",
                e.id,
                change.setting,
                change.target.as_deref().map(|t| format!(" of {t}")).unwrap_or_default(),
                change.after
            )));
        }
        plan.steps.push(Step {
            change: (*e).clone(),
            revert,
        });
    }
    Ok(plan)
}

/// The call a revert makes.
async fn put_back(
    api: &dyn FixApi,
    region: &str,
    cluster: &str,
    revert: &Revert,
) -> Result<(), crate::aws::Error> {
    match revert {
        Revert::Setting { setting, value } => {
            api.modify_cluster(region, cluster, *setting, *value).await
        }
        Revert::AttachGroup { group } => api.attach_group(region, cluster, group).await,
        Revert::AuditExportOff => api.disable_audit_export(region, cluster).await,
        Revert::AuditParameter { group, value } => {
            let p = crate::act::remediate::ParameterValue {
                name: AUDIT_PARAMETER.into(),
                value: value.clone(),
                apply_method: crate::state::PENDING_REBOOT.into(),
            };
            api.set_parameters(region, group, &[p]).await
        }
        Revert::Retention {
            log_group,
            days: Some(days),
        } => api.put_retention(region, log_group, *days).await,
        Revert::Retention {
            log_group,
            days: None,
        } => api.delete_retention(region, log_group).await,
        Revert::MakePublic { snapshot } => api.make_snapshot_public(region, snapshot).await,
    }
}

/// The undo entry of a change put back.
fn undo_entry(step: &Step, reason: &str) -> Entry {
    let c = &step.change;
    let mut e = Entry::new(Kind::Undo, Mode::Apply, &c.account, &c.region, &c.resource);
    e.control = c.control.clone();
    e.finding_ids = c.finding_ids.clone();
    e.rule = c.rule.clone();
    e.action = Some("undo".into());
    e.call = c.call.clone();
    e.setting = c.setting.clone();
    e.target = c.target.clone();
    e.before = c.after.clone();
    e.after = c.before.clone();
    e.result = Outcome::Done;
    e.reason = Some(reason.to_string());
    e.remediation = c.remediation.clone();
    e.undoes = Some(c.id.clone());
    e
}

/// A tag value RDS takes: at most 256 of letters, digits, spaces and `_.:/=+-@`.
pub fn skip_tag_value(id: &str, reason: &str) -> String {
    let text = format!("undo {id}: {reason}");
    text.chars()
        .map(|c| {
            if c.is_alphanumeric() || " _.:/=+-@".contains(c) {
                c
            } else {
                ' '
            }
        })
        .take(256)
        .collect()
}

/// What `undo` prints of a step.
fn describe(step: &Step) -> String {
    let c = &step.change;
    format!(
        "{} {}{}: {} → {} ({})",
        c.call.as_deref().unwrap_or_default(),
        c.setting.as_deref().unwrap_or_default(),
        c.target
            .as_deref()
            .map(|t| format!(" of {t}"))
            .unwrap_or_default(),
        c.after.as_deref().unwrap_or_default(),
        c.before.as_deref().unwrap_or_default(),
        c.id
    )
}

/// Carries the plan out (or, without `--apply`, says what it would do):
/// the lines to print.
pub async fn carry_out(
    api: &dyn FixApi,
    journal: &dyn Journal,
    entry: &Entry,
    plan: &Plan,
    live: &LiveState,
    options: &Options,
) -> Result<Vec<String>, UndoError> {
    let name = live.live().identifier().to_string();
    let reason = options
        .reason
        .clone()
        .unwrap_or_else(|| "no reason given".into());
    let verb = if options.apply { "" } else { "would " };
    let mut lines = Vec::new();
    for note in &plan.notes {
        lines.push(format!("{verb}leave: {note}"));
    }
    let tag = skip_tag_value(&entry.id, &reason);
    if !options.apply {
        lines.extend(
            plan.steps
                .iter()
                .map(|s| format!("would put back: {}", describe(s))),
        );
        lines.push(format!("would tag {name} {SKIP_TAG}={tag}"));
        lines.push("nothing was changed: add --apply to undo".into());
        return Ok(lines);
    }
    let region = entry.region.as_str();
    for step in &plan.steps {
        put_back(api, region, &name, &step.revert).await?;
        let undo = undo_entry(step, &reason);
        lines.push(format!(
            "put back: {} [undo entry {}]",
            describe(step),
            undo.id
        ));
        if let Err(e) = journal.append(&undo).await {
            lines.push(format!("warning: the undo was made but not journaled: {e}"));
        }
    }
    api.tag(region, live.live().arn(), SKIP_TAG, &tag).await?;
    lines.push(format!("tagged {name} {SKIP_TAG}={tag}: hubtriage opens a ticket for it from now on instead of fixing it"));
    Ok(lines)
}

/// The journal's entries about `entry`'s resource (changes and undos), for
/// its remediation and earlier undos.
pub async fn resource_entries(
    journal: &dyn Journal,
    entry: &Entry,
) -> Result<Vec<Entry>, UndoError> {
    let mut filter = Filter::between(entry.time - Duration::days(1), Utc::now());
    filter.resource = Some(entry.resource.clone());
    Ok(journal.query(&filter).await?)
}

/// Everything `hubtriage undo ID` does, over the edges given (the command
/// line builds them from the config; tests give fakes).
pub async fn undo(
    journal: &dyn Journal,
    apis: &dyn FixApis,
    reader: &dyn ClusterReader,
    id: &str,
    options: &Options,
) -> Result<Vec<String>, UndoError> {
    let entry = journal
        .get(id)
        .await?
        .ok_or_else(|| UndoError::Usage(format!("no journal entry {id}")))?;
    let around = resource_entries(journal, &entry).await?;
    if let Some(why) = not_undoable(&entry, &around) {
        return Err(UndoError::Usage(why));
    }
    let changes = changes_to_undo(&entry, &around);
    let api = apis.at(&entry.account);
    let live = if entry.resource.contains(":cluster-snapshot:") {
        reader
            .snapshot_state(&entry.resource)
            .await?
            .map(LiveState::Snapshot)
    } else {
        reader
            .cluster_state(&entry.resource)
            .await?
            .map(LiveState::Cluster)
    };
    let live = live.ok_or_else(|| {
        UndoError::Usage(format!(
            "{} no longer exists: there is nothing to put back",
            entry.resource
        ))
    })?;
    let plan = plan(api.as_ref(), &changes, live.live(), options).await?;
    carry_out(api.as_ref(), journal, &entry, &plan, &live, options).await
}

/// `hubtriage undo` with the config's journal, and the resource read and
/// changed in its account as `run` reaches it (its own credentials, or the
/// member role of `[accounts]`).
pub async fn run(config: &Config, id: &str, options: &Options) -> Result<Vec<String>, UndoError> {
    use crate::aws::accounts::{own_identity, Accounts, RoleSettings};
    let table = config.journal.as_ref().ok_or_else(|| {
        UndoError::Usage(
            "[journal] table is not set: undo reads the change from the journal".into(),
        )
    })?;
    let role = RoleSettings::from_config(&config.accounts).map_err(UndoError::Usage)?;
    let sdk = crate::aws::load().await;
    let journal = crate::journal::DynamoJournal::new(&sdk, &table.table, table.keep_days);
    let identity = own_identity(&sdk).await?;
    let reach = crate::decide::AccountReach::own(&identity.account).with_role(role.is_some());
    if let Some(entry) = journal.get(id).await? {
        if let Some(why) = reach.refuses(&entry.account) {
            return Err(UndoError::Usage(why));
        }
    }
    let accounts = Arc::new(Accounts::new(
        &sdk,
        identity.account,
        config.accounts.own_account,
        role,
    ));
    let neptune = Arc::new(crate::aws::neptune_clients(&sdk, accounts.clone()));
    let pacer = Arc::new(crate::pace::Pacer::new(config.pacing));
    let apis = crate::act::neptune_api::AwsFixApi::new(
        &sdk,
        neptune.clone(),
        accounts.clone(),
        pacer.clone(),
    );
    let reader = crate::enrich::neptune::NeptuneReader::new(
        neptune,
        accounts,
        pacer,
        std::time::Duration::ZERO,
    );
    undo(journal.as_ref(), &apis, &reader, id, options).await
}

#[cfg(test)]
mod tests;
