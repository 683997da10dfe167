//! A cluster's lease, as the remediation driver holds it: this process's
//! worker, and the coordination table's lease when there is one.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};

use crate::act::remediate::{Fence, Progress};
use crate::coordination::{CoordinationError, Coordinator, LeaseRenewal};

/// A cluster's lease: this process's worker, and the coordination table's
/// lease when there is one (renewed while held, released when dropped).
/// With the table it guards every change of a pass ([`Fence`]) and carries
/// the remediation's progress, so a task that takes over after a crash
/// carries on where the crashed one stopped.
pub struct ClusterLease {
    #[allow(dead_code)] // held for its drop
    pub(super) here: tokio::sync::OwnedMutexGuard<()>,
    pub(super) table: Option<(Arc<dyn Coordinator>, String, LeaseRenewal)>,
    /// The progress saved with the lease when it was taken (JSON).
    pub(super) saved: Option<String>,
}

/// Progress saved with a lease is carried on for this long after it was saved.
const SAVED_PROGRESS_TRUSTED_FOR_HOURS: i64 = 1;

impl ClusterLease {
    /// The remediation progress saved with the lease (by this or a stopped
    /// task), if it is recent enough to carry on.
    pub(super) fn saved(&self, now: DateTime<Utc>) -> Option<Progress> {
        let json = self.saved.as_deref()?;
        match serde_json::from_str::<Progress>(json) {
            Ok(p)
                if p.saved_at.is_some_and(|t| {
                    now - t < Duration::hours(SAVED_PROGRESS_TRUSTED_FOR_HOURS)
                }) =>
            {
                Some(p)
            }
            Ok(_) => None,
            Err(e) => {
                tracing::warn!(error = %e, "the progress saved with the cluster's lease is not what hubtriage writes; ignored");
                None
            }
        }
    }

    /// The remediation ended: its progress is forgotten.
    pub(super) async fn finished(&self) {
        if let Some((c, item, _)) = &self.table {
            if let Err(e) = c.clear_progress(item).await {
                tracing::warn!(error = %e, "could not clear the remediation's saved progress");
            }
        }
    }
}

#[async_trait::async_trait]
impl Fence for ClusterLease {
    async fn checkpoint(&self, progress: &Progress) -> Result<(), CoordinationError> {
        let Some((c, item, _)) = &self.table else {
            return Ok(());
        };
        let json = serde_json::to_string(progress)
            .map_err(|e| CoordinationError::Reply(format!("the progress cannot be saved: {e}")))?;
        c.save_progress(item, &json).await
    }
}

impl Drop for ClusterLease {
    fn drop(&mut self) {
        if let Some((c, item, renewing)) = self.table.take() {
            drop(renewing);
            // Released in the background; if that fails, it expires.
            tokio::spawn(async move {
                if let Err(e) = c.release(&item).await {
                    tracing::warn!(error = %e, "could not release the cluster's lease; it expires");
                }
            });
        }
    }
}
