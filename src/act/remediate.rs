//! Remediation of a `remediate` decision's plan. Today the plan is recorded on
//! the finding, not carried out (as in dry-run); the Neptune.2 executor will
//! implement `Remediator` to run it step by step.

use async_trait::async_trait;

use crate::config::Mode;
use crate::decide::Decision;
use crate::record::Acted;

#[derive(Debug, thiserror::Error)]
#[error("remediation of {cluster}: {message}")]
pub struct RemediateError {
    pub cluster: String,
    pub message: String,
}

#[async_trait]
pub trait Remediator: Send + Sync {
    async fn remediate(&self, decision: &Decision) -> Result<Acted, RemediateError>;
}

/// Records the plan without changing anything.
pub struct PlanOnly {
    pub mode: Mode,
}

#[async_trait]
impl Remediator for PlanOnly {
    async fn remediate(&self, d: &Decision) -> Result<Acted, RemediateError> {
        tracing::info!(plan = %crate::record::describe_plan(&d.plan), mode = ?self.mode, "remediation planned; no change made");
        Ok(Acted::Planned {
            dry_run: self.mode == Mode::DryRun,
        })
    }
}
