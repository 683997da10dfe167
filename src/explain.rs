//! `hubtriage explain`: the decision, fed from saved AWS CLI outputs instead of
//! live API calls, so an operator can see what hubtriage would do.

pub mod live;

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;

use crate::config::Config;
use crate::control::Kind;
use crate::decide::{decide_on, out_of_reach, resource_kind, screen, Decision, Reach};
use crate::finding::{parse_event, Finding};
use crate::state::{cli, AuditParameter, LiveState};

/// The files `explain` reads.
#[derive(Debug, Clone)]
pub struct Inputs {
    /// The event JSON, as an SQS message body.
    pub event: PathBuf,
    /// `aws neptune describe-db-clusters` output (absent: no cluster listed).
    pub clusters: Option<PathBuf>,
    /// `aws neptune describe-db-cluster-parameters` output for the cluster's group.
    pub parameters: Option<PathBuf>,
    /// `aws neptune list-tags-for-resource` output for the cluster (or the snapshot).
    pub tags: Option<PathBuf>,
    /// `aws neptune describe-db-cluster-snapshots` output, for snapshot controls.
    pub snapshots: Option<PathBuf>,
    /// `aws neptune describe-db-cluster-snapshot-attributes` output for the snapshot.
    pub snapshot_attributes: Option<PathBuf>,
    /// The account hubtriage would run in (`--account`, else `AWS_ACCOUNT_ID`);
    /// `None`: the account of the clusters in the saved describe-db-clusters output.
    pub account: Option<String>,
}

/// An input file that cannot be read or parsed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{file}: {message}")]
pub struct InputError {
    pub file: String,
    pub message: String,
}

fn read(path: &Path) -> Result<Vec<u8>, InputError> {
    std::fs::read(path).map_err(|e| InputError {
        file: path.display().to_string(),
        message: format!("cannot read: {e}"),
    })
}

/// Reads a JSON document; errors name the JSON path that did not fit.
pub fn read_json<T: DeserializeOwned>(path: &Path, what: &str) -> Result<T, InputError> {
    let bytes = read(path)?;
    let mut de = serde_json::Deserializer::from_slice(&bytes);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let at = e.path().to_string();
        let inner = e.into_inner();
        let message = if at.is_empty() || at == "." {
            format!("not {what}: {inner}")
        } else {
            format!("not {what}: {at}: {inner}")
        };
        InputError {
            file: path.display().to_string(),
            message,
        }
    })
}

/// One decision per finding in the event, in the event's order.
pub fn explain(
    config: &Config,
    inputs: &Inputs,
    now: DateTime<Utc>,
) -> Result<Vec<Decision>, InputError> {
    let findings = parse_event(&read(&inputs.event)?).map_err(|e| InputError {
        file: inputs.event.display().to_string(),
        message: format!("not a Security Hub findings event: {e}"),
    })?;
    let listing: cli::DescribeDbClusters = match &inputs.clusters {
        Some(p) => read_json(p, "`aws neptune describe-db-clusters` output")?,
        None => cli::DescribeDbClusters { clusters: vec![] },
    };
    let audit_parameter = match &inputs.parameters {
        Some(p) => read_json::<cli::DescribeDbClusterParameters>(
            p,
            "`aws neptune describe-db-cluster-parameters` output",
        )?
        .audit_parameter(),
        None => AuditParameter::engine_default(),
    };
    let tags = match &inputs.tags {
        Some(p) => {
            read_json::<cli::ListTagsForResource>(p, "`aws neptune list-tags-for-resource` output")?
                .into_map()
        }
        None => Default::default(),
    };

    let snapshots = match &inputs.snapshots {
        Some(p) => read_json::<cli::DescribeDbClusterSnapshots>(
            p,
            "`aws neptune describe-db-cluster-snapshots` output",
        )?,
        None => Default::default(),
    };
    let attributes = match &inputs.snapshot_attributes {
        Some(p) => Some(read_json::<cli::DescribeDbClusterSnapshotAttributes>(
            p,
            "`aws neptune describe-db-cluster-snapshot-attributes` output",
        )?),
        None => None,
    };

    let cluster_arns = listing.clusters.iter().map(|c| c.arn.as_str());
    let snapshot_arns = snapshots.snapshots.iter().map(|s| s.arn.as_str());
    let own_account = match &inputs.account {
        Some(a) => Some(a.clone()),
        None => listing_account(cluster_arns.chain(snapshot_arns)).map_err(|message| {
            let file = inputs.clusters.as_ref().or(inputs.snapshots.as_ref());
            InputError {
                file: file.map(|p| p.display().to_string()).unwrap_or_default(),
                message,
            }
        })?,
    };

    Ok(findings
        .iter()
        .map(|f| {
            // With no account given and no cluster listed, the outputs are taken
            // to come from the finding's own account.
            let reach = Reach::own(own_account.as_deref().unwrap_or(&f.account))
                .with_role(config.accounts.role_arn.is_some());
            // A cluster named only by its resource id is looked up in the
            // listing, as the daemon looks it up live.
            let resolved;
            let f = match (&f.cluster_arn, &f.cluster_resource_id) {
                (None, Some(id))
                    if resource_kind(f) == Some(Kind::Cluster)
                        && out_of_reach(f, config, &reach).is_none() =>
                {
                    match cli::arn_by_resource_id(&listing, &f.account, &f.region, id) {
                        Some(arn) => {
                            resolved = Finding {
                                cluster_arn: Some(arn),
                                ..f.clone()
                            };
                            &resolved
                        }
                        None => f,
                    }
                }
                _ => f,
            };
            if let Some(d) = screen(f, config, &reach) {
                return d;
            }
            let state = match resource_kind(f) {
                Some(Kind::ClusterSnapshot) => f.snapshot_arn.as_deref().and_then(|arn| {
                    cli::snapshot_state(&snapshots, arn, attributes.as_ref(), tags.clone())
                        .map(LiveState::Snapshot)
                }),
                _ => f.cluster_arn.as_deref().and_then(|arn| {
                    cli::cluster_state(&listing, arn, audit_parameter.clone(), tags.clone())
                        .map(LiveState::Cluster)
                }),
            };
            decide_on(f, state.as_ref().map(LiveState::live), config, &reach, now)
        })
        .collect())
}

/// The one account the saved outputs were taken in (from the ARNs of their
/// clusters and snapshots); `None` when they list none.
fn listing_account<'a>(arns: impl Iterator<Item = &'a str>) -> Result<Option<String>, String> {
    let mut accounts: Vec<&str> = arns
        .filter_map(|arn| {
            crate::finding::ClusterArn::parse(arn)
                .or_else(|| crate::finding::ClusterArn::parse_snapshot(arn))
                .map(|a| a.account)
        })
        .collect();
    accounts.sort_unstable();
    accounts.dedup();
    match accounts.as_slice() {
        [] => Ok(None),
        [one] => Ok(Some(one.to_string())),
        many => Err(format!(
            "its clusters are in several accounts ({}); one `aws neptune describe-db-clusters` call lists one account: pass --account",
            many.join(", ")
        )),
    }
}
