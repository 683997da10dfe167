//! The remediation slots: which clusters are being changed now and when the
//! last hour's remediations started, which `max_concurrent` and
//! `max_per_hour` count. Kept in one process, or in the coordination table
//! for every task (then as JSON, written with a version check).

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::CoordinationError;

/// Remediations under way and recent starts: what `max_concurrent` and
/// `max_per_hour` count. Kept in the process, or, with `[coordination] table`,
/// in the table, shared by every task (then it travels as JSON).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Slots {
    /// cluster ARN → the remediation changing it.
    pub active: BTreeMap<String, Holder>,
    /// When remediations started (the last hour's).
    pub starts: Vec<DateTime<Utc>>,
}

/// `[remediation] max_concurrent` and `max_per_hour`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caps {
    /// Clusters changed at once.
    pub max_concurrent: usize,
    /// Remediations started in the last hour.
    pub max_per_hour: usize,
}

/// The remediation that holds a cluster's slot, until when without a sign of
/// life (a task that died mid-pass frees it then).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    pub finding: String,
    pub until: DateTime<Utc>,
}

impl Slots {
    /// Forgets expired holders and starts older than an hour.
    fn prune(&mut self, now: DateTime<Utc>) {
        self.active.retain(|_, h| h.until > now);
        self.starts.retain(|t| *t > now - Duration::hours(1));
    }

    /// Takes `cluster`'s slot for `finding` until `until`, or says why it must wait.
    pub fn try_start(
        &mut self,
        cluster: &str,
        finding: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
        caps: Caps,
    ) -> Result<(), String> {
        self.prune(now);
        match self.active.get_mut(cluster) {
            Some(h) if h.finding == finding => {
                h.until = h.until.max(until);
                return Ok(());
            }
            Some(_) => return Err("another finding's remediation is changing this cluster".into()),
            None => {}
        }
        if self.active.len() >= caps.max_concurrent {
            return Err(format!(
                "{} clusters are being changed (max_concurrent)",
                self.active.len()
            ));
        }
        if self.starts.len() >= caps.max_per_hour {
            return Err(format!(
                "{} remediations started in the last hour (max_per_hour)",
                self.starts.len()
            ));
        }
        self.hold(cluster, finding, until);
        self.starts.push(now);
        Ok(())
    }

    /// A remediation under way holds its cluster until `until` (a re-check
    /// carrying it on, or after a restart), within the caps or not: a
    /// half-changed cluster is carried on.
    pub fn hold(&mut self, cluster: &str, finding: &str, until: DateTime<Utc>) {
        let h = self
            .active
            .entry(cluster.to_string())
            .or_insert_with(|| Holder {
                finding: finding.to_string(),
                until,
            });
        if h.finding == finding {
            h.until = h.until.max(until);
        }
    }

    /// `finding`'s remediation of `cluster` ended: its slot is free. Another
    /// finding's end (a re-check that waited for this slot and stopped) frees
    /// nothing: the slot is the remediation's that holds it.
    pub fn finish(&mut self, cluster: &str, finding: &str) {
        if self
            .active
            .get(cluster)
            .is_some_and(|h| h.finding == finding)
        {
            self.active.remove(cluster);
        }
    }
}

/// What an edit of the slots said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SlotsChanged {
    /// The edit was made (a slot taken, held or freed), or needed nothing.
    Done,
    /// The remediation must wait, for this reason; nothing was changed.
    Wait(String),
}

impl From<Result<(), String>> for SlotsChanged {
    fn from(r: Result<(), String>) -> Self {
        match r {
            Ok(()) => SlotsChanged::Done,
            Err(why) => SlotsChanged::Wait(why),
        }
    }
}

/// An edit of the slots.
pub type SlotChange<'a> = dyn for<'s> Fn(&'s mut Slots) -> SlotsChanged + Send + Sync + 'a;

/// Where the slots are kept and changed.
#[async_trait]
pub trait SharedSlots: Send + Sync {
    /// Reads the slots, lets `change` edit them, and writes them back unless
    /// another task changed them meanwhile (then it reads and tries again).
    /// Returns what `change` said.
    async fn change_slots(
        &self,
        change: &SlotChange<'_>,
    ) -> Result<SlotsChanged, CoordinationError>;
}
