//! `hubtriage explain`: the decision, fed from saved AWS CLI outputs instead of
//! live API calls, so an operator can see what hubtriage would do.

pub mod live;

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;

use crate::config::Config;
use crate::control::Control;
use crate::control::Kind;
use crate::decide::{
    decide_on, deciding_control, out_of_reach, resource_kind, screen, AccountReach, Decision,
};
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

/// Why `explain` gives no answer: it never answers from a file it was not
/// given, or from a value a saved output lacks.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ExplainError {
    /// A flag the findings need is missing (exit 64).
    #[error("{0}")]
    Usage(String),
    /// An input file that cannot be read, parsed, or used as given (exit 65).
    #[error(transparent)]
    Data(#[from] InputError),
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

/// `--now`, `--until`: an RFC 3339 time.
pub fn parse_time(s: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("expected an RFC 3339 time such as 2026-11-25T12:00:00Z: {e}"))
}

/// `--account`: a 12-digit AWS account id.
pub fn parse_account(s: &str) -> Result<String, String> {
    if s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit()) {
        Ok(s.to_string())
    } else {
        Err(format!("expected a 12-digit AWS account id, found {s:?}"))
    }
}

/// The account `explain` decides for: `--account`, else a non-empty
/// `$AWS_ACCOUNT_ID`, else none (the clusters' account).
pub fn account(flag: Option<String>) -> Result<Option<String>, String> {
    if flag.is_some() {
        return Ok(flag);
    }
    match std::env::var("AWS_ACCOUNT_ID") {
        Ok(a) if !a.is_empty() => parse_account(&a)
            .map(Some)
            .map_err(|e| format!("AWS_ACCOUNT_ID: {e}")),
        _ => Ok(None),
    }
}

/// One decision per finding in the event, in the event's order.
pub fn explain(
    config: &Config,
    inputs: &Inputs,
    now: DateTime<Utc>,
) -> Result<Vec<Decision>, ExplainError> {
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

    listed_once(
        listing.clusters.iter().map(|c| (c.arn.as_str(), c)),
        &inputs.clusters,
        "cluster",
    )?;
    listed_once(
        snapshots.snapshots.iter().map(|s| (s.arn.as_str(), s)),
        &inputs.snapshots,
        "cluster snapshot",
    )?;
    let saved = Saved {
        inputs,
        listing: &listing,
        snapshots: &snapshots,
        attributes: attributes.as_ref(),
    };
    findings
        .iter()
        .map(|f| {
            // With no account given and no cluster listed, the outputs are taken
            // to come from the finding's own account.
            let reach = AccountReach::own(own_account.as_deref().unwrap_or(&f.account))
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
                return Ok(d);
            }
            saved.check(f)?;
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
            Ok(decide_on(
                f,
                state.as_ref().map(LiveState::live),
                config,
                &reach,
                now,
            ))
        })
        .collect()
}

/// A listing that names one resource twice must say the same of it both
/// times: two saved outputs pasted together disagree, and no answer is safe.
fn listed_once<'a, T: PartialEq + 'a>(
    items: impl Iterator<Item = (&'a str, &'a T)>,
    path: &Option<PathBuf>,
    noun: &str,
) -> Result<(), InputError> {
    let mut seen: Vec<(&str, &T)> = Vec::new();
    for (arn, item) in items {
        if seen.iter().any(|(a, i)| *a == arn && *i != item) {
            return Err(InputError {
                file: path.as_ref().map(|p| p.display().to_string()).unwrap_or_default(),
                message: format!(
                    "{noun} {arn} is listed twice, with different values: save one output and pass it alone"
                ),
            });
        }
        seen.push((arn, item));
    }
    Ok(())
}

/// The saved outputs `explain` was given.
struct Saved<'a> {
    inputs: &'a Inputs,
    listing: &'a cli::DescribeDbClusters,
    snapshots: &'a cli::DescribeDbClusterSnapshots,
    attributes: Option<&'a cli::DescribeDbClusterSnapshotAttributes>,
}

fn file(p: &Path) -> String {
    p.display().to_string()
}

impl Saved<'_> {
    /// That the outputs a finding's decision reads were given, whole and of
    /// its resource: else the flag to pass (usage) or what is wrong with the
    /// file (data). Never a default that would read as compliant.
    fn check(&self, f: &Finding) -> Result<(), ExplainError> {
        let Some(control) = deciding_control(f) else {
            return Ok(());
        };
        let id = control.id();
        match control.kind() {
            Kind::Cluster => {
                let Some(path) = &self.inputs.clusters else {
                    return Err(ExplainError::Usage(format!(
                        "finding {}: {id} checks a cluster: pass --clusters (the output of aws neptune describe-db-clusters); without it there is no cluster to judge",
                        f.id
                    )));
                };
                let cluster = self
                    .listing
                    .clusters
                    .iter()
                    .find(|c| Some(&c.arn) == f.cluster_arn.as_ref());
                if let Some(c) = cluster {
                    if let Some(field) = control.reads().iter().find(|field| !c.has(field)) {
                        return Err(InputError {
                            file: file(path),
                            message: format!(
                                "cluster {} has no {field}, which {id} reads (an output saved with --query?): save the whole describe-db-clusters output",
                                c.identifier
                            ),
                        }
                        .into());
                    }
                }
                Ok(())
            }
            Kind::ClusterSnapshot => self.check_snapshot(f, control),
        }
    }

    fn check_snapshot(&self, f: &Finding, control: &dyn Control) -> Result<(), ExplainError> {
        let id = control.id();
        let Some(path) = &self.inputs.snapshots else {
            return Err(ExplainError::Usage(format!(
                "finding {}: {id} checks a cluster snapshot: pass --snapshots (the output of aws neptune describe-db-cluster-snapshots); without it there is no snapshot to judge",
                f.id
            )));
        };
        let reads_restore = control.reads().contains(&"restore");
        if reads_restore && self.attributes.is_none() {
            return Err(ExplainError::Usage(format!(
                "finding {}: {id} reads the snapshot's restore attribute: pass --snapshot-attributes (the output of aws neptune describe-db-cluster-snapshot-attributes); without it hubtriage cannot tell whether the snapshot is public",
                f.id
            )));
        }
        let snapshot = self
            .snapshots
            .snapshots
            .iter()
            .find(|s| Some(&s.arn) == f.snapshot_arn.as_ref());
        let Some(s) = snapshot else { return Ok(()) };
        if control.reads().contains(&"StorageEncrypted") && s.storage_encrypted.is_none() {
            return Err(InputError {
                file: file(path),
                message: format!(
                    "snapshot {} has no StorageEncrypted, which {id} reads: save the whole describe-db-cluster-snapshots output",
                    s.identifier
                ),
            }
            .into());
        }
        match (self.attributes, &self.inputs.snapshot_attributes) {
            (Some(a), Some(p)) if reads_restore && a.restore_of(s).is_none() => Err(InputError {
                file: file(p),
                message: format!(
                    "it holds the attributes of snapshot {}, not of the finding's snapshot {}",
                    a.result.snapshot, s.identifier
                ),
            }
            .into()),
            _ => Ok(()),
        }
    }
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
