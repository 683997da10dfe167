//! `hubtriage explain --live --finding-id ARN`: the decision for one finding as
//! Security Hub holds it now, from the cluster's live state read through the
//! same account reach as `run` (its own account, or a member account's role).
//! Read calls only: GetCallerIdentity, AssumeRole, GetFindings and Neptune's
//! Describe/List calls. Nothing is changed and nothing is recorded.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::aws::accounts::{own_identity, Accounts, Identity, RoleSettings};
use crate::config::Config;
use crate::control::Kind;
use crate::decide::{decide_on, resource_kind, screen, AccountReach, Decision};
use crate::enrich::neptune::{ClusterReader, NeptuneReader};
use crate::pace::Pacer;
use crate::record::securityhub::SecurityHub;
use crate::state::LiveState;

/// Why a live explanation could not be made.
#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    /// The environment or config cannot work (exit 64).
    #[error("{0}")]
    Usage(String),
    /// No finding with that Id in the administrator's Security Hub (exit 65).
    #[error("no finding with Id {0} in Security Hub ([securityhub] region)")]
    NotFound(String),
    /// An AWS call failed; the error names the account and role (exit 1).
    #[error("{0}")]
    Aws(String),
}

/// The decision `run` would make for the finding `finding_id` now.
pub async fn explain_live(
    config: &Config,
    finding_id: &str,
    now: DateTime<Utc>,
) -> Result<Decision, LiveError> {
    let sdk = crate::aws::load().await;
    if sdk.region().is_none() {
        return Err(LiveError::Usage(
            "no AWS region: set AWS_REGION (or a profile's region)".into(),
        ));
    }
    let role = RoleSettings::from_config(&config.accounts).map_err(LiveError::Usage)?;
    let Identity { account, partition } = own_identity(&sdk)
        .await
        .map_err(|e| LiveError::Aws(e.to_string()))?;
    let reach = AccountReach::own(&account)
        .in_partition(partition)
        .with_role(role.is_some());
    let accounts = Arc::new(Accounts::new(
        &sdk,
        account,
        config.accounts.own_account,
        role,
    ));
    let pacer = Arc::new(Pacer::new(config.pacing));

    let hub = SecurityHub::from_config(&sdk, &config.securityhub, pacer.clone());
    let finding = hub
        .find(finding_id, None)
        .await
        .map_err(|e| LiveError::Aws(e.to_string()))?
        .ok_or_else(|| LiveError::NotFound(finding_id.to_string()))?;
    if let Some(d) = screen(&finding, config, &reach) {
        return Ok(d);
    }
    let reader = NeptuneReader::new(
        Arc::new(crate::aws::neptune_clients(&sdk, accounts.clone())),
        accounts,
        pacer,
        std::time::Duration::ZERO,
    );
    let aws = |e: crate::aws::Error| LiveError::Aws(e.to_string());
    let state = match (
        resource_kind(&finding),
        &finding.cluster_arn,
        &finding.snapshot_arn,
    ) {
        (Some(Kind::ClusterSnapshot), _, Some(arn)) => reader
            .snapshot_state(arn)
            .await
            .map_err(aws)?
            .map(LiveState::Snapshot),
        (Some(Kind::Cluster), Some(arn), _) => reader
            .cluster_state(arn)
            .await
            .map_err(aws)?
            .map(LiveState::Cluster),
        _ => None,
    };
    let live = state.as_ref().map(LiveState::live);
    Ok(decide_on(&finding, live, config, &reach, now))
}
