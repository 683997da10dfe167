//! Parse step: an EventBridge event (an SQS message body) → internal `Finding`s.
//!
//! Two formats come in: Security Hub CSPM's ASFF findings (detail-type
//! "Security Hub Findings - Imported", here) and the new Security Hub's OCSF
//! Compliance Findings ("Findings Imported V2", [`ocsf`]). Both become one
//! [`Finding`], so one problem gets one decision whichever format told of it.
//!
//! Only the fields hubtriage uses are read; unknown fields are ignored. A missing
//! or mistyped required field is a [`ParseError`] naming its path, e.g.
//! `detail.findings[0].Resources: missing`. `Resources[].Details` is never read:
//! it is optional and can be stale, so decisions use live state instead.

use std::collections::BTreeMap;

use serde_json::Value;

/// The control this crate triages.
pub const NEPTUNE_2: &str = "Neptune.2";

/// Detail-types of the Security Hub events hubtriage accepts.
pub const DETAIL_TYPE_IMPORTED: &str = "Security Hub Findings - Imported";
pub const DETAIL_TYPE_CUSTOM_ACTION: &str = "Security Hub Findings - Custom Action";
pub const DETAIL_TYPE_V2: &str = "Findings Imported V2";

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
    /// `Compliance.SecurityControlId`, else `ProductFields.ControlId`, else the
    /// last `/`-separated part of `GeneratorId` when it names Neptune.2.
    pub control: Option<String>,
    /// The `Id` of the first `Resources[]` entry of type `AwsRdsDbCluster`.
    pub cluster_arn: Option<String>,
    /// OCSF only: the cluster's `DbClusterResourceId` (`cluster-…`) when the
    /// finding gives no ARN; the pipeline looks the cluster up by it.
    pub cluster_resource_id: Option<String>,
    pub compliance_status: Option<String>,
    pub record_state: String,
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

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    pub text: String,
    pub updated_by: String,
    /// When Security Hub stamped the note (RFC 3339).
    pub updated_at: Option<String>,
}

impl Finding {
    pub fn is_neptune2(&self) -> bool {
        self.control.as_deref() == Some(NEPTUNE_2)
    }

    /// The cluster identifier from the resource ARN (`...:cluster:<id>`), if any.
    pub fn cluster_id(&self) -> Option<&str> {
        self.cluster_arn
            .as_deref()
            .and_then(|arn| ClusterArn::parse(arn).map(|a| a.identifier))
    }
}

/// The parts of `arn:<partition>:rds:<region>:<account>:cluster:<identifier>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClusterArn<'a> {
    pub partition: &'a str,
    pub region: &'a str,
    pub account: &'a str,
    pub identifier: &'a str,
}

impl<'a> ClusterArn<'a> {
    pub fn parse(arn: &'a str) -> Option<Self> {
        let parts: Vec<&str> = arn.splitn(7, ':').collect();
        match parts.as_slice() {
            ["arn", partition, "rds", region, account, "cluster", identifier]
                if !partition.is_empty()
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
                parse_finding(f, event_region)
            }
        })
        .collect()
}

fn parse_finding(node: &Node<'_>, event_region: Option<&str>) -> Result<Finding, ParseError> {
    node.object()?;
    let id = node.field("Id")?.string()?.to_string();
    let product_arn = node.field("ProductArn")?.string()?.to_string();
    let generator_id = node.field("GeneratorId")?.string()?.to_string();
    let account = node.field("AwsAccountId")?.string()?.to_string();
    let region = region_of(node, "Region", event_region)?;

    let compliance = node.opt_field("Compliance");
    let compliance_status = opt_string(compliance.as_ref().and_then(|c| c.opt_field("Status")))?;
    let control = control(node, compliance.as_ref(), &generator_id)?;
    let cluster_arn = cluster_arn(node)?;

    let workflow_status = match node
        .opt_field("Workflow")
        .and_then(|w| w.opt_field("Status"))
    {
        Some(s) => Workflow::parse(s.string()?),
        None => opt_string(node.opt_field("WorkflowState"))?
            .map_or(Workflow::New, |s| Workflow::parse(&s)),
    };
    let record_state =
        opt_string(node.opt_field("RecordState"))?.unwrap_or_else(|| "ACTIVE".into());
    let severity_label = opt_string(
        node.opt_field("Severity")
            .and_then(|s| s.opt_field("Label")),
    )?;

    let mut user_defined_fields = BTreeMap::new();
    if let Some(fields) = node.opt_field("UserDefinedFields") {
        for (key, value) in fields.object()? {
            let child = fields.child(key, value);
            user_defined_fields.insert(key.clone(), child.string()?.to_string());
        }
    }
    let note = match node.opt_field("Note") {
        Some(n) => Some(Note {
            text: n.field("Text")?.string()?.to_string(),
            updated_by: n.field("UpdatedBy")?.string()?.to_string(),
            updated_at: opt_string(n.opt_field("UpdatedAt"))?,
        }),
        None => None,
    };
    let updated_at = opt_string(node.opt_field("UpdatedAt"))?;

    // What decisions, notes, tickets and logs repeat is held to AWS's own
    // shapes: bounded, and without control characters.
    for (path, value, max) in [
        ("Id", Some(&id), 512),
        ("ProductArn", Some(&product_arn), 512),
        ("GeneratorId", Some(&generator_id), 512),
        ("AwsAccountId", Some(&account), 64),
        ("Region", Some(&region), 32),
        ("Compliance.SecurityControlId", control.as_ref(), 64),
        ("Resources[].Id", cluster_arn.as_ref(), 2048),
        ("Compliance.Status", compliance_status.as_ref(), 32),
        ("RecordState", Some(&record_state), 32),
        ("Severity.Label", severity_label.as_ref(), 32),
        ("UpdatedAt", updated_at.as_ref(), 64),
    ] {
        if let Some(value) = value {
            plain(&node.path_of(path), value, max)?;
        }
    }
    for (key, value) in &user_defined_fields {
        plain(
            &node.path_of(&format!("UserDefinedFields.{key}")),
            value,
            1024,
        )?;
    }

    Ok(Finding {
        format: Format::Asff,
        id,
        product_arn,
        generator_id,
        account,
        region,
        control,
        cluster_arn,
        cluster_resource_id: None,
        compliance_status,
        record_state,
        workflow_status,
        severity_label,
        user_defined_fields,
        note,
        updated_at,
    })
}

/// `Compliance.SecurityControlId`, else `ProductFields.ControlId`, else the
/// last part of `GeneratorId` when it names Neptune.2.
fn control(
    node: &Node<'_>,
    compliance: Option<&Node<'_>>,
    generator_id: &str,
) -> Result<Option<String>, ParseError> {
    let security_control_id =
        opt_string(compliance.and_then(|c| c.opt_field("SecurityControlId")))?;
    let product_control_id = opt_string(
        node.opt_field("ProductFields")
            .and_then(|p| p.opt_field("ControlId")),
    )?;
    Ok(control_of(
        security_control_id,
        product_control_id,
        generator_id,
    ))
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
        .ends_with(&format!("/{NEPTUNE_2}"))
        .then(|| NEPTUNE_2.to_string());
    security_control_id
        .or(product_control_id)
        .or(generator_control)
}

/// The `Id` of the first `Resources[]` entry of type `AwsRdsDbCluster`.
fn cluster_arn(node: &Node<'_>) -> Result<Option<String>, ParseError> {
    for resource in &node.field("Resources")?.array()? {
        resource.object()?;
        if resource.field("Type")?.string()? == "AwsRdsDbCluster" {
            return Ok(Some(resource.field("Id")?.string()?.to_string()));
        }
    }
    Ok(None)
}

/// `value` has at most `max` characters and no control characters; the error
/// shows its start, escaped.
fn plain(path: &str, value: &str, max: usize) -> Result<(), ParseError> {
    if value.chars().count() <= max && !value.chars().any(char::is_control) {
        return Ok(());
    }
    Err(ParseError::WrongValue {
        path: path.to_string(),
        expected: format!("at most {max} characters without control characters"),
        found: value.chars().take(40).collect(),
    })
}

/// The finding's region at `key` below `node`, else the event's `region`.
fn region_of(node: &Node<'_>, key: &str, event_region: Option<&str>) -> Result<String, ParseError> {
    match (node.opt_field(key), event_region) {
        (Some(r), _) => Ok(r.string()?.to_string()),
        (None, Some(r)) => Ok(r.to_string()),
        (None, None) => Err(node.missing(key)),
    }
}

fn opt_string(node: Option<Node<'_>>) -> Result<Option<String>, ParseError> {
    node.map(|n| n.string().map(str::to_string)).transpose()
}

/// A JSON value together with its path, so every error can say where it is.
struct Node<'a> {
    path: String,
    value: &'a Value,
}

impl<'a> Node<'a> {
    fn root(value: &'a Value) -> Self {
        Node {
            path: String::new(),
            value,
        }
    }

    fn child(&self, key: &str, value: &'a Value) -> Node<'a> {
        let path = if self.path.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.path)
        };
        Node { path, value }
    }

    /// The path of `key` below this node (as errors name it).
    fn path_of(&self, key: &str) -> String {
        self.child(key, &Value::Null).path
    }

    fn missing(&self, key: &str) -> ParseError {
        ParseError::Missing {
            path: self.child(key, &Value::Null).path,
        }
    }

    fn wrong_type(&self, expected: &'static str) -> ParseError {
        ParseError::WrongType {
            path: if self.path.is_empty() {
                "(event)".into()
            } else {
                self.path.clone()
            },
            expected,
            found: kind_of(self.value),
        }
    }

    fn object(&self) -> Result<&'a serde_json::Map<String, Value>, ParseError> {
        self.value
            .as_object()
            .ok_or_else(|| self.wrong_type("an object"))
    }

    /// A field that must be present and not null.
    fn field(&self, key: &str) -> Result<Node<'a>, ParseError> {
        self.opt_field(key).ok_or_else(|| self.missing(key))
    }

    /// A field that may be absent (or null). Not an object → treated as absent here;
    /// required fields go through [`Node::field`], which reports the type.
    fn opt_field(&self, key: &str) -> Option<Node<'a>> {
        match self.value.as_object()?.get(key) {
            None | Some(Value::Null) => None,
            Some(value) => Some(self.child(key, value)),
        }
    }

    /// An integer (OCSF's enum ids).
    fn integer(&self) -> Result<i64, ParseError> {
        self.value
            .as_i64()
            .ok_or_else(|| self.wrong_type("an integer"))
    }

    fn string(&self) -> Result<&'a str, ParseError> {
        self.value
            .as_str()
            .ok_or_else(|| self.wrong_type("a string"))
    }

    fn array(&self) -> Result<Vec<Node<'a>>, ParseError> {
        let items = self
            .value
            .as_array()
            .ok_or_else(|| self.wrong_type("an array"))?;
        Ok(items
            .iter()
            .enumerate()
            .map(|(i, value)| Node {
                path: format!("{}[{i}]", self.path),
                value,
            })
            .collect())
    }
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests;
