//! The change journal: every call hubtriage makes that changes AWS, and
//! every decision that changes a finding's workflow, as append-only entries
//! in a DynamoDB table (`[journal] table`), kept `[journal] keep_days`.
//!
//! - A change ([`Kind::Change`]) is written **before** its call, with result
//!   `started`, and completed after it: `done`, `failed` (with the error
//!   code), or `unknown` when the call's fate is not known (a timeout, a
//!   reset); a `started` or `unknown` entry is settled later, from live
//!   state, by the next pass over the resource. No entry, no call: a change
//!   whose entry cannot be written is not made, and the remediation tries
//!   again later. Dry-run writes the changes it would make as `planned`.
//! - A decision ([`Kind::Decision`]) is written once its update is on the
//!   finding: a ticket opened or linked, a suppression, a resolve, a
//!   remediation's progress and end. Batched (BatchWriteItem) in the
//!   background: it never delays or loses a finding.
//! - An undo ([`Kind::Undo`]) is written by `hubtriage undo` after it puts a
//!   change back.
//!
//! The entry is also what `hubtriage history --format json` prints, one
//! object a line. The table's keys are in `dynamo.rs`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::config::Mode;
use crate::control::change::Change;

mod dynamo;
mod writer;

pub use dynamo::{DynamoJournal, BY_ACCOUNT, BY_RESOURCE, OPEN_CHANGES};

/// What an entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A call that changes AWS.
    Change,
    /// A decision that changed a finding's workflow.
    Decision,
    /// A change put back by `hubtriage undo`.
    Undo,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Change => "change",
            Kind::Decision => "decision",
            Kind::Undo => "undo",
        }
    }

    /// `change`, `decision` or `undo`.
    pub fn parse(word: &str) -> Option<Kind> {
        [Kind::Change, Kind::Decision, Kind::Undo]
            .into_iter()
            .find(|k| k.as_str() == word)
    }
}

/// How an entry's call (or decision) ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Written before the call; the call's end is not known yet.
    Started,
    /// The call was made.
    Done,
    /// The call failed; `error` has its code.
    Failed,
    /// The call's fate is not known (a timeout, a reset); the next pass over
    /// the resource settles it from live state.
    Unknown,
    /// Dry-run: the change apply mode would make.
    Planned,
    /// A decision, recorded on its finding.
    Recorded,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Started => "started",
            Outcome::Done => "done",
            Outcome::Failed => "failed",
            Outcome::Unknown => "unknown",
            Outcome::Planned => "planned",
            Outcome::Recorded => "recorded",
        }
    }

    /// A change whose end is not known yet: started, or unknown.
    pub fn is_open(self) -> bool {
        matches!(self, Outcome::Started | Outcome::Unknown)
    }
}

/// One journal entry. Every listed field is always in the JSON (null when
/// it does not apply); the fields after `task` are hubtriage's additions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Unique, and sorted by time: `20261208T001256.123Z-1a2b3c4d`.
    pub id: String,
    #[serde(with = "rfc3339")]
    pub time: DateTime<Utc>,
    pub kind: Kind,
    pub mode: Mode,
    pub account: String,
    pub region: String,
    /// The cluster's or cluster snapshot's ARN.
    pub resource: String,
    pub control: Option<String>,
    #[serde(default)]
    pub finding_ids: Vec<String>,
    pub rule: Option<String>,
    /// The decision's action (`remediate`, `ticket`, `suppress`, `resolve`), or `undo`.
    pub action: Option<String>,
    /// The API called (changes and undos).
    pub call: Option<String>,
    pub setting: Option<String>,
    pub before: Option<String>,
    pub after: Option<String>,
    pub result: Outcome,
    pub error: Option<String>,
    #[serde(default, with = "rfc3339_opt")]
    pub verified_at: Option<DateTime<Utc>>,
    pub ticket: Option<String>,
    /// The task (host, process and start) that wrote the entry.
    pub task: String,
    /// What the call acted on when it is not `resource`: a parameter group,
    /// an instance, a log group, a snapshot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// A decision: the workflow status written on the finding.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflow: Option<String>,
    /// A decision: why, as the finding's note says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// A suppression's expiry, as the config writes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<String>,
    /// The remediation a change belongs to (the changes of one remediation share it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remediation: Option<String>,
    /// An undo: the id of the change it put back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub undoes: Option<String>,
}

impl Entry {
    /// An entry of `kind` about `resource`, written now by this task; the
    /// caller fills in the rest.
    pub fn new(kind: Kind, mode: Mode, account: &str, region: &str, resource: &str) -> Entry {
        let time = Utc::now();
        Entry {
            id: new_id(time),
            time,
            kind,
            mode,
            account: account.to_string(),
            region: region.to_string(),
            resource: resource.to_string(),
            control: None,
            finding_ids: Vec::new(),
            rule: None,
            action: None,
            call: None,
            setting: None,
            before: None,
            after: None,
            result: Outcome::Recorded,
            error: None,
            verified_at: None,
            ticket: None,
            task: task_id().to_string(),
            target: None,
            workflow: None,
            reason: None,
            expires: None,
            remediation: None,
            undoes: None,
        }
    }

    /// This entry (a template naming the resource, control, findings and
    /// rule) as a change entry of `change`, with a new id, at `now`.
    pub fn for_change(&self, change: &Change, result: Outcome) -> Entry {
        let time = Utc::now();
        Entry {
            id: new_id(time),
            time,
            kind: Kind::Change,
            call: Some(change.call.to_string()),
            setting: Some(change.setting.clone()),
            target: change.target.clone(),
            before: Some(change.before.clone()),
            after: Some(change.after.clone()),
            result,
            ..self.clone()
        }
    }

    /// The resource's name: the last part of its ARN.
    pub fn resource_name(&self) -> &str {
        resource_name(&self.resource)
    }
}

/// A cluster's or snapshot's name from its ARN (`…:cluster:orders-graph`),
/// or the text itself when it is not an ARN.
pub fn resource_name(arn_or_name: &str) -> &str {
    arn_or_name.rsplit(':').next().unwrap_or(arn_or_name)
}

/// A new entry id at `time`: the time to the millisecond, then 8 hex digits
/// that tell apart entries of the same millisecond (of this task, by a
/// counter; of others, by the task in the hash).
pub fn new_id(time: DateTime<Utc>) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut hash = Sha256::new();
    hash.update(task_id().as_bytes());
    hash.update(n.to_le_bytes());
    hash.update(time.timestamp_nanos_opt().unwrap_or_default().to_le_bytes());
    let digest = hash.finalize();
    let tail: String = digest.iter().take(4).map(|b| format!("{b:02x}")).collect();
    format!("{}-{tail}", id_time(time))
}

/// The time part of an id: ids sort by it.
pub fn id_time(time: DateTime<Utc>) -> String {
    time.format("%Y%m%dT%H%M%S%.3fZ").to_string()
}

/// This task: the host (the ECS task's), the process and when it started.
pub fn task_id() -> &'static str {
    static TASK: OnceLock<String> = OnceLock::new();
    TASK.get_or_init(|| {
        let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "local".into());
        let started = Utc::now().timestamp_nanos_opt().unwrap_or_default();
        format!("{host}/{}/{started:x}", std::process::id())
    })
}

/// Which entries `history` (and `report`) asks for: all that fall between
/// `since` and `until` and match every filter given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    pub since: DateTime<Utc>,
    pub until: DateTime<Utc>,
    pub account: Option<String>,
    pub region: Option<String>,
    pub control: Option<String>,
    /// An ARN, or a cluster's or snapshot's name.
    pub resource: Option<String>,
    pub kind: Option<Kind>,
}

impl Filter {
    /// Every entry between `since` and `until`.
    pub fn between(since: DateTime<Utc>, until: DateTime<Utc>) -> Filter {
        Filter {
            since,
            until,
            account: None,
            region: None,
            control: None,
            resource: None,
            kind: None,
        }
    }

    pub fn matches(&self, e: &Entry) -> bool {
        let is = |want: &Option<String>, have: &str| want.as_deref().is_none_or(|w| w == have);
        e.time >= self.since
            && e.time <= self.until
            && is(&self.account, &e.account)
            && is(&self.region, &e.region)
            && self
                .control
                .as_deref()
                .is_none_or(|c| e.control.as_deref() == Some(c))
            && self.resource.as_deref().is_none_or(|r| {
                if r.starts_with("arn:") {
                    e.resource == r
                } else {
                    e.resource_name() == r
                }
            })
            && self.kind.is_none_or(|k| e.kind == k)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("change journal: {0}")]
    Aws(Box<crate::aws::Error>),
    /// The table holds something hubtriage did not write.
    #[error("change journal: {0}")]
    Reply(String),
    /// A completion found the entry no longer open (settled by another pass).
    #[error("change journal: entry {0} is no longer started or unknown")]
    NotOpen(String),
}

impl From<crate::aws::Error> for JournalError {
    fn from(e: crate::aws::Error) -> Self {
        JournalError::Aws(Box::new(e))
    }
}

impl JournalError {
    /// Throttled, or worth trying again later.
    pub fn is_transient(&self) -> bool {
        match self {
            JournalError::Aws(e) => e.retryable,
            JournalError::Reply(_) | JournalError::NotOpen(_) => false,
        }
    }
}

/// The change journal.
#[async_trait]
pub trait Journal: Send + Sync {
    /// Writes a new entry (a change before its call, with result `started`;
    /// an undo). Never overwrites: an id already there is an error.
    async fn append(&self, entry: &Entry) -> Result<(), JournalError>;
    /// Completes an open change (`started` or `unknown`) with its result
    /// and the error, if any; [`JournalError::NotOpen`] when it is not open.
    async fn complete(
        &self,
        id: &str,
        result: Outcome,
        error: Option<&str>,
    ) -> Result<(), JournalError>;
    /// Marks a `done` change verified (once).
    async fn mark_verified(&self, id: &str, at: DateTime<Utc>) -> Result<(), JournalError>;
    /// Queues entries for a batched write and returns at once (decisions,
    /// planned changes): never delays the finding.
    fn record(&self, entries: Vec<Entry>);
    /// The entries `filter` asks for, newest first.
    async fn query(&self, filter: &Filter) -> Result<Vec<Entry>, JournalError>;
    /// The changes whose end is not known yet (`started`, `unknown`),
    /// written between `since` and `until`, newest first.
    async fn open_changes(
        &self,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Vec<Entry>, JournalError>;
    /// One entry by id.
    async fn get(&self, id: &str) -> Result<Option<Entry>, JournalError>;
    /// Waits up to `limit` for queued entries to be written.
    async fn flush(&self, limit: std::time::Duration);
}

/// RFC 3339 to the millisecond, `Z`.
pub fn rfc3339_text(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

mod rfc3339 {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::rfc3339_text(*t))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let text = String::deserialize(d)?;
        DateTime::parse_from_rfc3339(&text)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|e| serde::de::Error::custom(format!("{text:?} is not an RFC 3339 time: {e}")))
    }
}

mod rfc3339_opt {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => s.serialize_str(&super::rfc3339_text(*t)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
        let Some(text) = Option::<String>::deserialize(d)? else {
            return Ok(None);
        };
        DateTime::parse_from_rfc3339(&text)
            .map(|t| Some(t.with_timezone(&Utc)))
            .map_err(|e| serde::de::Error::custom(format!("{text:?} is not an RFC 3339 time: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_sort_by_time_and_never_repeat() {
        let t = DateTime::parse_from_rfc3339("2026-12-08T00:12:56.123Z")
            .unwrap()
            .with_timezone(&Utc);
        let a = new_id(t);
        let b = new_id(t);
        assert_ne!(a, b);
        assert!(a.starts_with("20261208T001256.123Z-"), "{a}");
        assert!(new_id(t + chrono::Duration::milliseconds(1)) > a.max(b));
    }

    #[test]
    fn an_entry_is_json_with_every_field_and_reads_back() {
        let mut e = Entry::new(
            Kind::Change,
            Mode::Apply,
            "111122223333",
            "us-east-1",
            "arn:aws:rds:us-east-1:111122223333:cluster:orders-graph",
        );
        e.result = Outcome::Started;
        let json = serde_json::to_value(&e).unwrap();
        for field in [
            "id",
            "time",
            "kind",
            "mode",
            "account",
            "region",
            "resource",
            "control",
            "finding_ids",
            "rule",
            "action",
            "call",
            "setting",
            "before",
            "after",
            "result",
            "error",
            "verified_at",
            "ticket",
            "task",
        ] {
            assert!(json.get(field).is_some(), "{field} missing from {json}");
        }
        assert_eq!(json["mode"], "apply");
        assert_eq!(json["result"], "started");
        let back: Entry = serde_json::from_value(json).unwrap();
        assert_eq!(
            back,
            Entry {
                time: back.time,
                ..e.clone()
            }
        );
        assert_eq!(e.resource_name(), "orders-graph");
    }

    #[test]
    fn a_filter_takes_a_name_or_an_arn() {
        let e = Entry::new(
            Kind::Change,
            Mode::Apply,
            "111122223333",
            "us-east-1",
            "arn:aws:rds:us-east-1:111122223333:cluster:orders-graph",
        );
        let mut f = Filter::between(e.time - chrono::Duration::hours(1), e.time);
        assert!(f.matches(&e));
        f.resource = Some("orders-graph".into());
        assert!(f.matches(&e));
        f.resource = Some("arn:aws:rds:us-east-1:222222222222:cluster:orders-graph".into());
        assert!(!f.matches(&e));
        f.resource = None;
        f.kind = Some(Kind::Decision);
        assert!(!f.matches(&e));
    }
}
