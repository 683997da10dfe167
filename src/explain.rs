//! `hubtriage explain`: the decision, fed from saved AWS CLI outputs instead of
//! live API calls, so an operator can see what hubtriage would do.

pub mod live;

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;

use crate::config::Config;
use crate::decide::{decide, out_of_reach, screen, Decision, Reach};
use crate::finding::{parse_event, Finding};
use crate::state::{cli, AuditParameter};

/// The files `explain` reads.
#[derive(Debug, Clone)]
pub struct Inputs {
    /// The event JSON, as an SQS message body.
    pub event: PathBuf,
    /// `aws neptune describe-db-clusters` output.
    pub clusters: PathBuf,
    /// `aws neptune describe-db-cluster-parameters` output for the cluster's group.
    pub parameters: Option<PathBuf>,
    /// `aws neptune list-tags-for-resource` output for the cluster.
    pub tags: Option<PathBuf>,
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
    let listing: cli::DescribeDbClusters = read_json(
        &inputs.clusters,
        "`aws neptune describe-db-clusters` output",
    )?;
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

    let own_account = match &inputs.account {
        Some(a) => Some(a.clone()),
        None => listing_account(&listing).map_err(|message| InputError {
            file: inputs.clusters.display().to_string(),
            message,
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
                    if f.is_neptune2() && out_of_reach(f, config, &reach).is_none() =>
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
            let state = f.cluster_arn.as_deref().and_then(|arn| {
                cli::cluster_state(&listing, arn, audit_parameter.clone(), tags.clone())
            });
            decide(f, state.as_ref(), config, &reach, now)
        })
        .collect())
}

/// The one account the saved describe-db-clusters output was taken in (from
/// its clusters' ARNs); `None` when it lists no cluster.
fn listing_account(listing: &cli::DescribeDbClusters) -> Result<Option<String>, String> {
    let mut accounts: Vec<&str> = listing
        .clusters
        .iter()
        .filter_map(|c| crate::finding::ClusterArn::parse(&c.arn).map(|a| a.account))
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
