//! Counters a user would graph. Logged as one summary line at exit and every
//! minute; the ECS issue turns them into CloudWatch EMF lines.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use serde::Serialize;

use crate::decide::Action;

#[derive(Debug, Default)]
pub struct Metrics {
    pub messages_received: AtomicU64,
    pub messages_deleted: AtomicU64,
    pub messages_unparseable: AtomicU64,
    pub messages_failed: AtomicU64,
    pub findings_received: AtomicU64,
    pub own_updates_dropped: AtomicU64,
    pub duplicates_dropped: AtomicU64,
    pub decided_remediate: AtomicU64,
    pub decided_ticket: AtomicU64,
    pub decided_suppress: AtomicU64,
    pub decided_resolve: AtomicU64,
    pub decided_ignore: AtomicU64,
    pub recorded: AtomicU64,
    pub already_recorded: AtomicU64,
    pub failed: AtomicU64,
    pub remediations_failed: AtomicU64,
    pub remediations_verified: AtomicU64,
    pub remediations_started: AtomicU64,
    pub throttles: AtomicU64,
}

/// A point-in-time copy, for logs and tests.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct Snapshot {
    pub messages_received: u64,
    pub messages_deleted: u64,
    pub messages_unparseable: u64,
    pub messages_failed: u64,
    pub findings_received: u64,
    pub own_updates_dropped: u64,
    pub duplicates_dropped: u64,
    pub decided_remediate: u64,
    pub decided_ticket: u64,
    pub decided_suppress: u64,
    pub decided_resolve: u64,
    pub decided_ignore: u64,
    pub recorded: u64,
    pub already_recorded: u64,
    pub failed: u64,
    pub remediations_failed: u64,
    pub remediations_verified: u64,
    pub remediations_started: u64,
    pub throttles: u64,
}

impl Metrics {
    pub fn inc(counter: &AtomicU64) {
        counter.fetch_add(1, Relaxed);
    }

    pub fn decided(&self, action: Action) {
        Self::inc(match action {
            Action::Remediate => &self.decided_remediate,
            Action::Ticket => &self.decided_ticket,
            Action::Suppress => &self.decided_suppress,
            Action::Resolve => &self.decided_resolve,
            Action::Ignore => &self.decided_ignore,
        });
    }

    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            messages_received: self.messages_received.load(Relaxed),
            messages_deleted: self.messages_deleted.load(Relaxed),
            messages_unparseable: self.messages_unparseable.load(Relaxed),
            messages_failed: self.messages_failed.load(Relaxed),
            findings_received: self.findings_received.load(Relaxed),
            own_updates_dropped: self.own_updates_dropped.load(Relaxed),
            duplicates_dropped: self.duplicates_dropped.load(Relaxed),
            decided_remediate: self.decided_remediate.load(Relaxed),
            decided_ticket: self.decided_ticket.load(Relaxed),
            decided_suppress: self.decided_suppress.load(Relaxed),
            decided_resolve: self.decided_resolve.load(Relaxed),
            decided_ignore: self.decided_ignore.load(Relaxed),
            recorded: self.recorded.load(Relaxed),
            already_recorded: self.already_recorded.load(Relaxed),
            failed: self.failed.load(Relaxed),
            remediations_failed: self.remediations_failed.load(Relaxed),
            remediations_verified: self.remediations_verified.load(Relaxed),
            remediations_started: self.remediations_started.load(Relaxed),
            throttles: self.throttles.load(Relaxed),
        }
    }
}
