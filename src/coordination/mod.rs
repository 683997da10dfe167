//! `[coordination] table`: what the tasks of one deployment share, in one
//! DynamoDB table (created by `deploy/hubtriage.yaml` or `hubtriage setup`,
//! never by `run`; pay per request; one string partition key `pk`; TTL
//! attribute `ttl`).
//!
//! One item per problem, `pk = "problem#<problem key>"`, and per cluster under
//! remediation, `pk = "cluster#<cluster ARN>"` (a lease only):
//! - `owner`, `expires` (epoch seconds): the problem's lease. A task takes it
//!   with a conditional write (free, expired, or already its own), renews it
//!   while it works, and removes it when done; a task that dies loses it when
//!   it expires (`[coordination] lease_seconds`, default 60).
//! - `ticket`, `url`: the problem's ticket, once one exists, so another task
//!   or a restarted one reads it by key instead of searching (Jira Cloud's
//!   search lags).
//! - `unsettled` (epoch seconds): a create that may have been written but was
//!   not found; no task creates another until search has had time to show it.
//! - `progress` (cluster items): the remediation's progress as JSON, saved
//!   before every change it makes, only while the task holds the lease (the
//!   write checks owner and expiry, so a task paused past its lease changes
//!   nothing more), and read by the task that takes over after a crash, so it
//!   carries on without redoing a reboot. Removed when the remediation ends.
//! - `ttl`: the item expires 400 days after its last write.
//!
//! And one item `pk = "remediation-slots"`: the remediations under way and the
//! last hour's starts (`state`, JSON of [`Slots`]), with a `version` that every
//! write checks, so `max_concurrent` and `max_per_hour` hold across tasks.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

mod dynamo;
mod slots;

pub use dynamo::DynamoCoordinator;

pub use slots::{Caps, Holder, SharedSlots, SlotChange, Slots, SlotsChanged};

#[derive(Debug, thiserror::Error)]
pub enum CoordinationError {
    #[error("another task holds the lease of problem {0}; the message returns to the queue")]
    Held(String),
    #[error("coordination table: {0}")]
    Aws(#[from] crate::aws::Error),
    #[error("coordination table: {0}")]
    Reply(String),
    #[error(
        "this task no longer holds the lease of {0}: another task took it over after it expired"
    )]
    Lost(String),
}

/// The item of a problem (tickets).
pub fn problem_item(problem_key: &str) -> String {
    format!("problem#{problem_key}")
}

/// The item of a cluster under remediation (one pass at a time).
pub fn cluster_item(cluster_arn: &str) -> String {
    format!("cluster#{cluster_arn}")
}

/// What the table knows of a problem when its lease is taken.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Lease {
    /// The problem's ticket key, if one was recorded.
    pub ticket: Option<String>,
    /// When a create that may have been written was not found (epoch seconds).
    pub unsettled: Option<i64>,
    /// A cluster's remediation progress as last saved (JSON), if any.
    pub progress: Option<String>,
}

/// The problem leases and ticket references of all tasks.
#[async_trait]
pub trait Coordinator: Send + Sync {
    /// Takes (or renews) the lease of `problem` for this task.
    async fn acquire(&self, problem: &str) -> Result<Lease, CoordinationError>;
    async fn record_ticket(
        &self,
        problem: &str,
        ticket: &str,
        url: &str,
    ) -> Result<(), CoordinationError>;
    async fn mark_unsettled(&self, problem: &str) -> Result<(), CoordinationError>;
    /// Gives the lease up (if it is still this task's).
    async fn release(&self, problem: &str) -> Result<(), CoordinationError>;
    /// Saves a remediation's progress (JSON) with the item, only while this
    /// task holds its lease (and renews it); else [`CoordinationError::Lost`].
    async fn save_progress(&self, item: &str, progress: &str) -> Result<(), CoordinationError>;
    /// Forgets the progress of a remediation that ended (if the lease is still this task's).
    async fn clear_progress(&self, item: &str) -> Result<(), CoordinationError>;
    /// How long a lease lasts without renewal.
    fn lease_duration(&self) -> Duration;
}

/// A taken lease, renewed in the background until dropped (then it is
/// released by the caller, or expires).
pub struct LeaseRenewal {
    renewer: tokio::task::JoinHandle<()>,
}

impl LeaseRenewal {
    /// Renews `problem`'s lease every third of its duration.
    pub fn renew(coordinator: Arc<dyn Coordinator>, problem: &str) -> LeaseRenewal {
        let problem = problem.to_string();
        let every = coordinator.lease_duration() / 3;
        let renewer = tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                if let Err(e) = coordinator.acquire(&problem).await {
                    tracing::warn!(problem_key = %problem, error = %e, "could not renew the problem's lease");
                }
            }
        });
        LeaseRenewal { renewer }
    }
}

impl Drop for LeaseRenewal {
    fn drop(&mut self) {
        self.renewer.abort();
    }
}
