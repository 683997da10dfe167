//! Security Hub CSPM's findings: ASFF, in "Security Hub Findings - Imported"
//! (and "Custom Action") events, read into the one [`Finding`].
//!
//! | Finding | ASFF |
//! |---|---|
//! | `id`, `product_arn`, `generator_id` | `Id`, `ProductArn`, `GeneratorId` |
//! | `account`, `region` | `AwsAccountId`, `Region` (else the event's) |
//! | `control` | `Compliance.SecurityControlId`, else `ProductFields.ControlId`, else the end of `GeneratorId` |
//! | `compliance_status` | `Compliance.Status` (`Compliance` is required: hubtriage reads control findings) |
//! | `workflow_status` | `Workflow.Status`, else the legacy `WorkflowState` |
//! | `record_state` | `RecordState` (absent: ACTIVE) |
//! | `cluster_arn` | the `Id` of the first `Resources[]` entry of type `AwsRdsDbCluster` |
//! | `snapshot_arn` | the `Id` of the first `Resources[]` entry of type `AwsRdsDbClusterSnapshot` |
//! | `note`, `user_defined_fields`, `updated_at` | `Note`, `UserDefinedFields`, `UpdatedAt` |

use std::collections::BTreeMap;

use super::node::{check_plain, opt_string, parameters, region_of, Node};
use super::{control_of, Compliance, Finding, Format, Note, ParseError, RecordState, Workflow};

pub(super) fn parse_finding(
    node: &Node<'_>,
    event_region: Option<&str>,
) -> Result<Finding, ParseError> {
    node.object()?;
    let id = node.field("Id")?.string()?.to_string();
    let product_arn = node.field("ProductArn")?.string()?.to_string();
    let generator_id = node.field("GeneratorId")?.string()?.to_string();
    let account = node.field("AwsAccountId")?.string()?.to_string();
    let region = region_of(node, "Region", event_region)?;

    let compliance = node.field("Compliance")?;
    compliance.object()?;
    let status = opt_string(compliance.opt_field("Status"))?;
    let control = control(node, &compliance, &generator_id)?;
    let control_parameters = parameters(
        compliance.opt_field("SecurityControlParameters"),
        "Name",
        "Value",
        None,
    )?;
    let cluster_arn = resource_id(node, "AwsRdsDbCluster")?;
    let snapshot_arn = resource_id(node, "AwsRdsDbClusterSnapshot")?;
    let workflow_status = workflow(node)?;
    let record_state =
        opt_string(node.opt_field("RecordState"))?.unwrap_or_else(|| "ACTIVE".into());
    let severity_label = opt_string(
        node.opt_field("Severity")
            .and_then(|s| s.opt_field("Label")),
    )?;
    let user_defined_fields = user_defined_fields(node)?;
    let note = note(node)?;
    let updated_at = opt_string(node.opt_field("UpdatedAt"))?;

    check_plain(
        node,
        &[
            ("Id", Some(&id), 512),
            ("ProductArn", Some(&product_arn), 512),
            ("GeneratorId", Some(&generator_id), 512),
            ("AwsAccountId", Some(&account), 64),
            ("Region", Some(&region), 32),
            ("Compliance.SecurityControlId", control.as_ref(), 64),
            ("Resources[].Id", cluster_arn.as_ref(), 2048),
            ("Resources[].Id", snapshot_arn.as_ref(), 2048),
            ("Compliance.Status", status.as_ref(), 32),
            ("RecordState", Some(&record_state), 32),
            ("Severity.Label", severity_label.as_ref(), 32),
            ("UpdatedAt", updated_at.as_ref(), 64),
        ],
    )?;

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
        snapshot_arn,
        compliance_status: status.as_deref().map(Compliance::parse),
        control_parameters,
        record_state: RecordState::parse(&record_state),
        workflow_status,
        severity_label,
        user_defined_fields,
        note,
        updated_at,
    })
}

/// `Compliance.SecurityControlId`, else `ProductFields.ControlId`, else the
/// last part of `GeneratorId` when it has a control id's shape.
fn control(
    node: &Node<'_>,
    compliance: &Node<'_>,
    generator_id: &str,
) -> Result<Option<String>, ParseError> {
    let security_control_id = opt_string(compliance.opt_field("SecurityControlId"))?;
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

/// `Workflow.Status`, else the legacy `WorkflowState`, else NEW.
fn workflow(node: &Node<'_>) -> Result<Workflow, ParseError> {
    match node
        .opt_field("Workflow")
        .and_then(|w| w.opt_field("Status"))
    {
        Some(s) => Ok(Workflow::parse(s.string()?)),
        None => Ok(opt_string(node.opt_field("WorkflowState"))?
            .map_or(Workflow::New, |s| Workflow::parse(&s))),
    }
}

/// `UserDefinedFields`: string values only, each held to 1024 characters
/// without control characters.
fn user_defined_fields(node: &Node<'_>) -> Result<BTreeMap<String, String>, ParseError> {
    let mut fields = BTreeMap::new();
    let Some(map) = node.opt_field("UserDefinedFields") else {
        return Ok(fields);
    };
    for (key, value) in map.object()? {
        let child = map.child(key, value);
        fields.insert(key.clone(), child.string()?.to_string());
    }
    for (key, value) in &fields {
        let path = format!("UserDefinedFields.{key}");
        check_plain(node, &[(path.as_str(), Some(value), 1024)])?;
    }
    Ok(fields)
}

fn note(node: &Node<'_>) -> Result<Option<Note>, ParseError> {
    let Some(n) = node.opt_field("Note") else {
        return Ok(None);
    };
    Ok(Some(Note {
        text: n.field("Text")?.string()?.to_string(),
        updated_by: n.field("UpdatedBy")?.string()?.to_string(),
        updated_at: opt_string(n.opt_field("UpdatedAt"))?,
    }))
}

/// The `Id` of the first `Resources[]` entry of type `kind`.
fn resource_id(node: &Node<'_>, kind: &str) -> Result<Option<String>, ParseError> {
    for resource in &node.field("Resources")?.array()? {
        resource.object()?;
        if resource.field("Type")?.string()? == kind {
            return Ok(Some(resource.field("Id")?.string()?.to_string()));
        }
    }
    Ok(None)
}
