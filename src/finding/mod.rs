//! Parse step: an EventBridge event (an SQS message body) → internal `Finding`s.
//!
//! Two formats come in: Security Hub CSPM's ASFF findings (detail-type
//! "Security Hub Findings - Imported", [`asff`]) and the new Security Hub's
//! OCSF Compliance Findings ("Findings Imported V2", [`ocsf`]). Both become
//! one [`Finding`] (this file: the finding model, its statuses as enums), so
//! one problem gets one decision whichever format told of it. [`node`] reads
//! JSON with paths for both.
//!
//! Only the fields hubtriage uses are read; unknown fields are ignored. A missing
//! or mistyped required field is a [`ParseError`] naming its path, e.g.
//! `detail.findings[0].Resources: missing`. `Resources[].Details` is never read:
//! it is optional and can be stale, so decisions use live state instead.

use std::collections::BTreeMap;

use serde_json::Value;

use self::node::Node;

/// Detail-types of the Security Hub events hubtriage accepts.
pub const DETAIL_TYPE_IMPORTED: &str = "Security Hub Findings - Imported";
pub const DETAIL_TYPE_CUSTOM_ACTION: &str = "Security Hub Findings - Custom Action";
pub const DETAIL_TYPE_V2: &str = "Findings Imported V2";

mod asff;
mod node;
pub mod ocsf;

/// Why an event could not be parsed. `path` is a dotted JSON path into the event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("not JSON: {0}")]
    NotJson(String),
    #[error("{path}: missing")]
    Missing { path: String },
    #[error("{path}: expected {expected}, found {found}")]
    WrongType {
        path: String,
        expected: &'static str,
        found: &'static str,
    },
    #[error("{path}: expected {expected}, found {found:?}")]
    WrongValue {
        path: String,
        expected: String,
        found: String,
    },
}

/// One finding (ASFF or OCSF), reduced to what triage needs. For an OCSF
/// finding, `id` is `finding_info.uid` (the ASFF `Id` of the same check),
/// `product_arn` is `metadata.product.uid` (`…::productv2/aws/securityhub`),
/// `account` and `region` come from `cloud`, and `note` and
/// `user_defined_fields` from hubtriage's own `comment`, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub format: Format,
    pub id: String,
    pub product_arn: String,
    pub generator_id: String,
    pub account: String,
    pub region: String,
    /// `Compliance.SecurityControlId`, else `ProductFields.ControlId` (without
    /// Control Tower's `CT.` prefix), else the last `/`-separated part of
    /// `GeneratorId` when it names a control hubtriage triages.
    pub control: Option<String>,
    /// The `Id` of the first `Resources[]` entry of type `AwsRdsDbCluster`.
    pub cluster_arn: Option<String>,
    /// OCSF only: the cluster's `DbClusterResourceId` (`cluster-…`) when the
    /// finding gives no ARN; the pipeline looks the cluster up by it.
    pub cluster_resource_id: Option<String>,
    /// The `Id` of the first `Resources[]` entry of type
    /// `AwsRdsDbClusterSnapshot` (OCSF: `AWS::RDS::DBClusterSnapshot`).
    pub snapshot_arn: Option<String>,
    pub compliance_status: Option<Compliance>,
    /// The control's parameters as the finding carries them (ASFF
    /// `Compliance.SecurityControlParameters`, OCSF
    /// `compliance.control_parameters`): name → values, as text.
    pub control_parameters: BTreeMap<String, Vec<String>>,
    pub record_state: RecordState,
    pub workflow_status: Workflow,
    pub severity_label: Option<String>,
    pub user_defined_fields: BTreeMap<String, String>,
    pub note: Option<Note>,
    pub updated_at: Option<String>,
}

/// The format a finding came in, which is the one it is answered in
/// (`[securityhub] api = "auto"`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Format {
    /// ASFF, Security Hub CSPM (BatchUpdateFindings).
    Asff,
    /// OCSF, the new Security Hub (BatchUpdateFindingsV2); `metadata.uid`.
    Ocsf { metadata_uid: String },
}

/// A finding's workflow status: ASFF `Workflow.Status`, or else the legacy
/// `WorkflowState`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Workflow {
    New,
    Notified,
    Suppressed,
    Resolved,
    /// A legacy `WorkflowState` without a `Workflow.Status` twin (`ASSIGNED`,
    /// `IN_PROGRESS`, `DEFERRED`), kept as written.
    Other(String),
}

impl Workflow {
    pub fn parse(s: &str) -> Workflow {
        match s {
            "NEW" => Workflow::New,
            "NOTIFIED" => Workflow::Notified,
            "SUPPRESSED" => Workflow::Suppressed,
            "RESOLVED" => Workflow::Resolved,
            other => Workflow::Other(other.to_string()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Workflow::New => "NEW",
            Workflow::Notified => "NOTIFIED",
            Workflow::Suppressed => "SUPPRESSED",
            Workflow::Resolved => "RESOLVED",
            Workflow::Other(s) => s,
        }
    }

    /// Closed by a person (or by hubtriage): SUPPRESSED or RESOLVED.
    pub fn is_closed(&self) -> bool {
        matches!(self, Workflow::Suppressed | Workflow::Resolved)
    }
}

impl From<&str> for Workflow {
    fn from(s: &str) -> Workflow {
        Workflow::parse(s)
    }
}

impl std::fmt::Display for Workflow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `Compliance.Status` (OCSF: `compliance.status_id`, else `status`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Compliance {
    Passed,
    Warning,
    Failed,
    NotAvailable,
    /// A value Security Hub does not document, kept as written.
    Other(String),
}

impl Compliance {
    pub fn parse(s: &str) -> Compliance {
        match s {
            "PASSED" => Compliance::Passed,
            "WARNING" => Compliance::Warning,
            "FAILED" => Compliance::Failed,
            "NOT_AVAILABLE" => Compliance::NotAvailable,
            other => Compliance::Other(other.to_string()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Compliance::Passed => "PASSED",
            Compliance::Warning => "WARNING",
            Compliance::Failed => "FAILED",
            Compliance::NotAvailable => "NOT_AVAILABLE",
            Compliance::Other(s) => s,
        }
    }

    /// The words of the statuses a routed event carries (FAILED and PASSED),
    /// as ASFF and as OCSF write them, for the EventBridge pattern.
    pub fn routed() -> ([&'static str; 2], [&'static str; 2]) {
        (["FAILED", "PASSED"], ["Fail", "Pass"])
    }
}

impl std::fmt::Display for Compliance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `RecordState` (OCSF: ARCHIVED when `status_id` is 5 or `activity_id` is 3).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RecordState {
    Active,
    Archived,
    /// A value Security Hub does not document, kept as written.
    Other(String),
}

impl RecordState {
    pub fn parse(s: &str) -> RecordState {
        match s {
            "ACTIVE" => RecordState::Active,
            "ARCHIVED" => RecordState::Archived,
            other => RecordState::Other(other.to_string()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    pub text: String,
    pub updated_by: String,
    /// When Security Hub stamped the note (RFC 3339).
    pub updated_at: Option<String>,
}

impl Finding {
    /// The cluster identifier from the resource ARN (`...:cluster:<id>`), if any.
    pub fn cluster_id(&self) -> Option<&str> {
        self.cluster_arn
            .as_deref()
            .and_then(|arn| ClusterArn::parse(arn).map(|a| a.identifier))
    }

    /// The snapshot identifier from the resource ARN (`...:cluster-snapshot:<id>`), if any.
    pub fn snapshot_id(&self) -> Option<&str> {
        self.snapshot_arn
            .as_deref()
            .and_then(|arn| ClusterArn::parse_snapshot(arn).map(|a| a.identifier))
    }
}

/// The parts of `arn:<partition>:rds:<region>:<account>:cluster:<identifier>`
/// (or `cluster-snapshot:<identifier>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClusterArn<'a> {
    pub partition: &'a str,
    pub region: &'a str,
    pub account: &'a str,
    pub identifier: &'a str,
}

impl<'a> ClusterArn<'a> {
    /// `arn:<partition>:rds:<region>:<account>:cluster:<identifier>`.
    pub fn parse(arn: &'a str) -> Option<Self> {
        Self::parse_kind(arn, "cluster")
    }

    /// A cluster snapshot's: `arn:<partition>:rds:<region>:<account>:cluster-snapshot:<identifier>`.
    pub fn parse_snapshot(arn: &'a str) -> Option<Self> {
        Self::parse_kind(arn, "cluster-snapshot")
    }

    fn parse_kind(arn: &'a str, kind: &str) -> Option<Self> {
        let parts: Vec<&str> = arn.splitn(7, ':').collect();
        match parts.as_slice() {
            ["arn", partition, "rds", region, account, k, identifier]
                if *k == kind
                    && !partition.is_empty()
                    && !region.is_empty()
                    && !account.is_empty()
                    && !identifier.is_empty() =>
            {
                Some(ClusterArn {
                    partition,
                    region,
                    account,
                    identifier,
                })
            }
            _ => None,
        }
    }
}

/// Parses an EventBridge event carrying Security Hub findings (an SQS message body).
pub fn parse_event(body: &[u8]) -> Result<Vec<Finding>, ParseError> {
    let event: Value =
        serde_json::from_slice(body).map_err(|e| ParseError::NotJson(e.to_string()))?;
    let root = Node::root(&event);
    let object = root.object()?;
    let source = root.field("source")?.string()?;
    if source != "aws.securityhub" {
        return Err(ParseError::WrongValue {
            path: "source".into(),
            expected: "\"aws.securityhub\"".into(),
            found: source.into(),
        });
    }
    let detail_type = root.field("detail-type")?.string()?;
    if ![
        DETAIL_TYPE_IMPORTED,
        DETAIL_TYPE_CUSTOM_ACTION,
        DETAIL_TYPE_V2,
    ]
    .contains(&detail_type)
    {
        return Err(ParseError::WrongValue {
            path: "detail-type".into(),
            expected: format!(
                "\"{DETAIL_TYPE_IMPORTED}\", \"{DETAIL_TYPE_CUSTOM_ACTION}\" or \"{DETAIL_TYPE_V2}\""
            ),
            found: detail_type.into(),
        });
    }
    let event_region = match object.get("region") {
        Some(Value::String(r)) => Some(r.as_str()),
        _ => None,
    };
    let findings = root.field("detail")?.field("findings")?.array()?;
    findings
        .iter()
        .map(|f| {
            if detail_type == DETAIL_TYPE_V2 {
                ocsf::parse_finding(f, event_region)
            } else {
                asff::parse_finding(f, event_region)
            }
        })
        .collect()
}

/// A control id as findings write it, without the AWS Control Tower
/// standard's prefix: `CT.Neptune.4` → `Neptune.4`.
pub fn normalize_control_id(id: &str) -> &str {
    id.strip_prefix("CT.").unwrap_or(id)
}

/// Whether `id` has the shape of a Security Hub control id: a service name
/// (letters and digits, starting with a letter), a dot, a number
/// (`Neptune.4`, `RDS.7`, `EC2.1`); a generator id's last part that is not
/// one (`1.1` of a CIS rule) names no control.
fn is_control_id(id: &str) -> bool {
    let Some((service, number)) = id.split_once('.') else {
        return false;
    };
    service
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic())
        && service.chars().all(|c| c.is_ascii_alphanumeric())
        && !number.is_empty()
        && number.chars().all(|c| c.is_ascii_digit())
}

/// The finding's control from its parts, whichever source the finding came
/// from (an event, or GetFindings): the consolidated `SecurityControlId`, else
/// the standard-specific `ProductFields.ControlId`, else the `GeneratorId`.
pub fn control_of(
    security_control_id: Option<String>,
    product_control_id: Option<String>,
    generator_id: &str,
) -> Option<String> {
    let generator_control = generator_id
        .rsplit('/')
        .next()
        .filter(|last| generator_id.contains('/') && is_control_id(normalize_control_id(last)))
        .map(|last| normalize_control_id(last).to_string());
    security_control_id
        .or(product_control_id.map(|id| normalize_control_id(&id).to_string()))
        .or(generator_control)
}

#[cfg(test)]
mod tests;
