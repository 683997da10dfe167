//! The new Security Hub's findings: OCSF 1.6 Compliance Findings (class_uid
//! 2003) in "Findings Imported V2" events, read into the one [`Finding`].
//!
//! | Finding | OCSF |
//! |---|---|
//! | `id` | `finding_info.uid` (the ASFF `Id` of the same check) |
//! | `product_arn` | `metadata.product.uid` (`arn:<partition>:securityhub:<region>::productv2/aws/securityhub`) |
//! | `format` | `metadata.uid` |
//! | `account`, `region` | `cloud.account.uid`, `cloud.region` |
//! | `control` | `compliance.control` |
//! | `compliance_status` | `compliance.status_id` (else `status`): 1 Pass → PASSED, 2 Warning → WARNING, 3 Fail → FAILED |
//! | `workflow_status` | `status_id`: 1 New, 2 In Progress (NOTIFIED), 3 Suppressed, 4 Resolved, 5 Archived, 99 Other |
//! | `record_state` | ARCHIVED when `status_id` is 5 or `activity_id` is 3 (Close), else ACTIVE |
//! | `severity_label` | `severity_id`: 1 INFORMATIONAL … 5 CRITICAL (6 Fatal as CRITICAL) |
//! | `cluster_arn` | the `resources[]` entry of type `AWS::RDS::DBCluster` (or `AwsRdsDbCluster`): `uid_alt` or `uid`, whichever is the cluster ARN; else `cluster_resource_id` from a `cluster-…` uid |
//! | `snapshot_arn` | the `resources[]` entry of type `AWS::RDS::DBClusterSnapshot` (or `AwsRdsDbClusterSnapshot`): `uid_alt` or `uid`, whichever is its ARN |
//! | `updated_at` | `finding_info.modified_time_dt` |
//! | `note`, `user_defined_fields` | hubtriage's own `comment` (see [`comment`]) |
//!
//! V2 findings have no UserDefinedFields and no note author, so what
//! hubtriage keeps in them for ASFF rides at the start of its comment:
//! `hubtriage[action=ticket;ticket=SEC-1;status=2] <the note's short form>`.

use std::collections::BTreeMap;

use super::node::{check_plain, opt_string, parameters, region_of, Node};
use super::{ClusterArn, Compliance, Finding, Format, Note, ParseError, RecordState, Workflow};
use crate::marks::{comment, UPDATED_BY};

/// Resource types of a Neptune (RDS) DB cluster: OCSF findings use the
/// CloudFormation name; early samples used ASFF's.
const CLUSTER_TYPES: [&str; 2] = ["AWS::RDS::DBCluster", "AwsRdsDbCluster"];
/// The same for a DB cluster snapshot.
const SNAPSHOT_TYPES: [&str; 2] = ["AWS::RDS::DBClusterSnapshot", "AwsRdsDbClusterSnapshot"];

/// One OCSF finding as GetFindingsV2 returns it (the same object as an
/// event's `detail.findings[0]`).
pub fn parse_document(finding: &serde_json::Value) -> Result<Finding, ParseError> {
    parse_finding(&Node::root(finding), None)
}

pub(super) fn parse_finding(
    node: &Node<'_>,
    event_region: Option<&str>,
) -> Result<Finding, ParseError> {
    node.object()?;
    let info = node.field("finding_info")?;
    let id = info.field("uid")?.string()?.to_string();
    let metadata = node.field("metadata")?;
    let metadata_uid = metadata.field("uid")?.string()?.to_string();
    let product_arn = metadata
        .field("product")?
        .field("uid")?
        .string()?
        .to_string();
    let generator_id = match info.opt_field("analytic").and_then(|a| a.opt_field("name")) {
        Some(n) => n.string()?.to_string(),
        None => String::new(),
    };
    let cloud = node.field("cloud")?;
    let account = cloud.field("account")?.field("uid")?.string()?.to_string();
    let region = region_of(&cloud, "region", event_region)?;

    let (control, compliance_status, control_parameters) = compliance(node)?;
    let status_id = opt_integer(node, "status_id")?;
    let activity_id = opt_integer(node, "activity_id")?;
    let severity_label = opt_integer(node, "severity_id")?
        .and_then(severity)
        .map(str::to_string);
    let (cluster_arn, cluster_resource_id) = cluster(node)?;
    let snapshot_arn = snapshot(node)?;
    let updated_at = opt_string(info.opt_field("modified_time_dt"))?;
    let (note, user_defined_fields) = comment_of(node)?;

    check_plain(
        node,
        &[
            ("finding_info.uid", Some(&id), 512),
            ("metadata.uid", Some(&metadata_uid), 512),
            ("metadata.product.uid", Some(&product_arn), 512),
            ("finding_info.analytic.name", Some(&generator_id), 512),
            ("cloud.account.uid", Some(&account), 64),
            ("cloud.region", Some(&region), 32),
            ("compliance.control", control.as_ref(), 64),
            ("resources[].uid_alt", cluster_arn.as_ref(), 2048),
            ("resources[].uid", cluster_resource_id.as_ref(), 256),
            ("resources[].uid", snapshot_arn.as_ref(), 2048),
            ("finding_info.modified_time_dt", updated_at.as_ref(), 64),
        ],
    )?;
    for (key, value) in &user_defined_fields {
        let path = format!("comment.{key}");
        check_plain(node, &[(path.as_str(), Some(value), 1024)])?;
    }

    Ok(Finding {
        format: Format::Ocsf { metadata_uid },
        id,
        product_arn,
        generator_id,
        account,
        region,
        control,
        cluster_arn,
        cluster_resource_id,
        snapshot_arn,
        compliance_status,
        control_parameters,
        record_state: record_state(status_id, activity_id),
        workflow_status: workflow(status_id),
        severity_label,
        user_defined_fields,
        note,
        updated_at,
    })
}

/// An optional integer field (OCSF's enum ids).
fn opt_integer(node: &Node<'_>, key: &str) -> Result<Option<i64>, ParseError> {
    node.opt_field(key).map(|n| n.integer()).transpose()
}

/// `status_id`: 1 New, 2 In Progress (NOTIFIED), 3 Suppressed, 4 Resolved,
/// 5 Archived, 6 Deleted, 99 Other.
fn workflow(status_id: Option<i64>) -> Workflow {
    match status_id {
        None | Some(1) => Workflow::New,
        Some(2) => Workflow::Notified,
        Some(3) => Workflow::Suppressed,
        Some(4) => Workflow::Resolved,
        Some(5) => Workflow::Other("ARCHIVED".into()),
        Some(6) => Workflow::Other("DELETED".into()),
        Some(other) => Workflow::Other(format!("OTHER({other})")),
    }
}

/// ARCHIVED when `status_id` is 5 (Archived) or `activity_id` is 3 (Close).
fn record_state(status_id: Option<i64>, activity_id: Option<i64>) -> RecordState {
    if status_id == Some(5) || activity_id == Some(3) {
        RecordState::Archived
    } else {
        RecordState::Active
    }
}

/// `severity_id`: 1 INFORMATIONAL … 5 CRITICAL (6 Fatal as CRITICAL).
fn severity(id: i64) -> Option<&'static str> {
    match id {
        1 => Some("INFORMATIONAL"),
        2 => Some("LOW"),
        3 => Some("MEDIUM"),
        4 => Some("HIGH"),
        5 | 6 => Some("CRITICAL"),
        _ => None,
    }
}

/// The finding's `comment`: hubtriage's own (its note and the fields it
/// keeps there), or a person's (a note by nobody hubtriage knows).
fn comment_of(node: &Node<'_>) -> Result<(Option<Note>, BTreeMap<String, String>), ParseError> {
    let Some(c) = node.opt_field("comment") else {
        return Ok((None, BTreeMap::new()));
    };
    let text = c.string()?;
    let (updated_by, fields) = match comment::fields(text) {
        Some(fields) => (UPDATED_BY.to_string(), fields),
        None => (String::new(), BTreeMap::new()),
    };
    let note = Note {
        text: text.to_string(),
        updated_by,
        updated_at: None,
    };
    Ok((Some(note), fields))
}

/// The finding's `compliance`: its control, its result and the control's
/// parameters. The Compliance Finding class requires `compliance`: without
/// it the finding cannot be judged, and is malformed (as ASFF without
/// Compliance).
type ComplianceParts = (
    Option<String>,
    Option<Compliance>,
    BTreeMap<String, Vec<String>>,
);

fn compliance(node: &Node<'_>) -> Result<ComplianceParts, ParseError> {
    let compliance = node.field("compliance")?;
    compliance.object()?;
    let control = opt_string(compliance.opt_field("control"))?;
    let status = compliance_status(&compliance)?;
    // OCSF key_value_object: `name`, and `values` (a list) or `value`.
    let parameters = parameters(
        compliance.opt_field("control_parameters"),
        "name",
        "values",
        Some("value"),
    )?;
    Ok((control, status, parameters))
}

/// `compliance.status_id` (1 Pass, 2 Warning, 3 Fail), else `compliance.status`.
fn compliance_status(c: &Node<'_>) -> Result<Option<Compliance>, ParseError> {
    let from_id = match opt_integer(c, "status_id")? {
        Some(1) => Some(Compliance::Passed),
        Some(2) => Some(Compliance::Warning),
        Some(3) => Some(Compliance::Failed),
        Some(_) => Some(Compliance::NotAvailable),
        None => None,
    };
    let from_name = match c.opt_field("status") {
        Some(s) => Some(match s.string()? {
            "Pass" => Compliance::Passed,
            "Warning" => Compliance::Warning,
            "Fail" => Compliance::Failed,
            _ => Compliance::NotAvailable,
        }),
        None => None,
    };
    Ok(from_id.or(from_name))
}

/// The first cluster resource: its ARN (`uid_alt` or `uid`, whichever is
/// one), else its resource id (`cluster-…`).
fn cluster(node: &Node<'_>) -> Result<(Option<String>, Option<String>), ParseError> {
    let Some(resources) = node.opt_field("resources") else {
        return Err(node.missing("resources"));
    };
    for resource in &resources.array()? {
        resource.object()?;
        if !CLUSTER_TYPES.contains(&resource.field("type")?.string()?) {
            continue;
        }
        let mut resource_id = None;
        for key in ["uid_alt", "uid"] {
            let Some(value) = resource.opt_field(key) else {
                continue;
            };
            let value = value.string()?;
            if ClusterArn::parse(value).is_some() {
                return Ok((Some(value.to_string()), None));
            }
            if value.starts_with("cluster-") {
                resource_id = Some(value.to_string());
            }
        }
        return Ok((None, resource_id));
    }
    Ok((None, None))
}

/// The first cluster snapshot resource's ARN (`uid_alt` or `uid`, whichever is one).
fn snapshot(node: &Node<'_>) -> Result<Option<String>, ParseError> {
    let Some(resources) = node.opt_field("resources") else {
        return Err(node.missing("resources"));
    };
    for resource in &resources.array()? {
        resource.object()?;
        if !SNAPSHOT_TYPES.contains(&resource.field("type")?.string()?) {
            continue;
        }
        for key in ["uid_alt", "uid"] {
            if let Some(value) = resource.opt_field(key) {
                let value = value.string()?;
                if ClusterArn::parse_snapshot(value).is_some() {
                    return Ok(Some(value.to_string()));
                }
            }
        }
        return Ok(None);
    }
    Ok(None)
}

#[cfg(test)]
mod tests;
