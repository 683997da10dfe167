//! The Security Hub adapter behind [`FindingsApi`]: BatchUpdateFindings and
//! GetFindings for ASFF findings, BatchUpdateFindingsV2 and GetFindingsV2 for
//! the new Security Hub's OCSF findings.

use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_securityhub::types::{
    AllowedOperators, AwsSecurityFindingIdentifier, CompositeFilter, NoteUpdate,
    OcsfFindingFilters, OcsfFindingIdentifier, OcsfStringField, OcsfStringFilter, StringFilter,
    StringFilterComparison, WorkflowUpdate,
};
use aws_sdk_securityhub::Client;

use super::{FindingId, FindingUpdate, FindingsApi, Unprocessed};
use crate::aws::{AwsResult, Error};
use crate::finding::{Compliance, Finding, Note, RecordState, Workflow};
use crate::marks::UPDATED_BY;
use crate::pace::{Api, Pacer};

pub struct SecurityHub {
    client: Client,
    /// Calls are paced per this region (the administrator's Security Hub).
    region: String,
    pacer: Arc<Pacer>,
}

impl SecurityHub {
    /// The administrator's Security Hub, in `[securityhub] region` (else the SDK's).
    pub fn from_config(
        sdk: &aws_config::SdkConfig,
        securityhub: &crate::config::SecurityHub,
        pacer: Arc<Pacer>,
    ) -> Self {
        // Standard, not adaptive, retries: the client is paced to Security Hub's
        // quota already (GCRA, `[pacing]`) and the recorder retries with its own
        // backoff. Measured with the emulator: in adaptive mode one throttled
        // BatchUpdateFindings made the SDK's rate limiter hold the next attempts
        // about 20 s each, as the batched call rate is too low for it to learn from.
        let mut hub_config = aws_sdk_securityhub::config::Builder::from(sdk)
            .retry_config(aws_config::retry::RetryConfig::standard());
        if let Some(region) = &securityhub.region {
            hub_config = hub_config.region(aws_config::Region::new(region.clone()));
        }
        SecurityHub::new(
            aws_sdk_securityhub::Client::from_conf(hub_config.build()),
            pacer,
        )
    }

    pub fn new(client: Client, pacer: Arc<Pacer>) -> Self {
        let region = client
            .config()
            .region()
            .map(|r| r.to_string())
            .unwrap_or_default();
        SecurityHub {
            client,
            region,
            pacer,
        }
    }
}

#[async_trait]
impl FindingsApi for SecurityHub {
    /// One call per API: BatchUpdateFindings for ASFF findings,
    /// BatchUpdateFindingsV2 for OCSF ones ([`FindingId::is_v2`]).
    async fn batch_update(
        &self,
        ids: &[FindingId],
        update: &FindingUpdate,
    ) -> Result<Vec<Unprocessed>, Error> {
        let (v2, v1): (Vec<FindingId>, Vec<FindingId>) =
            ids.iter().cloned().partition(FindingId::is_v2);
        let mut unprocessed = Vec::new();
        if !v1.is_empty() {
            unprocessed.extend(self.batch_update_v1(&v1, update).await?);
        }
        if !v2.is_empty() {
            unprocessed.extend(self.batch_update_v2(&v2, update).await?);
        }
        Ok(unprocessed)
    }

    async fn get_finding(&self, id: &FindingId) -> Result<Option<Finding>, Error> {
        if id.is_v2() {
            return self.find_v2(id).await;
        }
        self.find(&id.id, Some(&id.product_arn)).await
    }
}

/// The request's finding that an answer names (its account is not in V1's answer).
fn asked<'a>(ids: &'a [FindingId], id: &str, product_arn: &str) -> Option<&'a FindingId> {
    ids.iter()
        .find(|f| f.id == id && f.product_arn == product_arn)
}

impl SecurityHub {
    async fn batch_update_v1(
        &self,
        ids: &[FindingId],
        update: &FindingUpdate,
    ) -> Result<Vec<Unprocessed>, Error> {
        let identifiers: Vec<AwsSecurityFindingIdentifier> = ids
            .iter()
            .map(|f| {
                AwsSecurityFindingIdentifier::builder()
                    .id(&f.id)
                    .product_arn(&f.product_arn)
                    .build()
            })
            .collect();
        self.pacer
            .wait(Api::BatchUpdateFindings, None, &self.region)
            .await;
        let out = self
            .client
            .batch_update_findings()
            .set_finding_identifiers(Some(identifiers))
            .workflow(
                WorkflowUpdate::builder()
                    .status(update.workflow.as_str().into())
                    .build(),
            )
            .note(
                NoteUpdate::builder()
                    .text(&update.note)
                    .updated_by(UPDATED_BY)
                    .build(),
            )
            .set_user_defined_fields(Some(update.fields.clone().into_iter().collect()))
            .send()
            .await
            .aws("Security Hub", "BatchUpdateFindings", "")?;
        Ok(out
            .unprocessed_findings()
            .iter()
            .map(|u| {
                let id = u
                    .finding_identifier()
                    .and_then(|f| f.id())
                    .unwrap_or_default();
                let product = u
                    .finding_identifier()
                    .and_then(|f| f.product_arn())
                    .unwrap_or_default();
                Unprocessed {
                    finding: asked(ids, id, product).cloned().unwrap_or(FindingId {
                        id: id.to_string(),
                        product_arn: product.to_string(),
                        account: String::new(),
                    }),
                    code: u.error_code().unwrap_or("Unknown").to_string(),
                    message: u.error_message().unwrap_or_default().to_string(),
                }
            })
            .collect())
    }

    /// `StatusId` and a `Comment` (hubtriage's fields, then the note's short form).
    async fn batch_update_v2(
        &self,
        ids: &[FindingId],
        update: &FindingUpdate,
    ) -> Result<Vec<Unprocessed>, Error> {
        let identifiers: Vec<OcsfFindingIdentifier> = ids
            .iter()
            .map(|f| {
                OcsfFindingIdentifier::builder()
                    .cloud_account_uid(&f.account)
                    .finding_info_uid(&f.id)
                    .metadata_product_uid(&f.product_arn)
                    .build()
            })
            .collect();
        self.pacer
            .wait(Api::BatchUpdateFindingsV2, None, &self.region)
            .await;
        let out = self
            .client
            .batch_update_findings_v2()
            .set_finding_identifiers(Some(identifiers))
            .status_id(update.v2_status_id())
            .comment(update.v2_comment())
            .send()
            .await
            .aws("Security Hub", "BatchUpdateFindingsV2", "")?;
        Ok(out
            .unprocessed_findings()
            .iter()
            .map(|u| {
                let f = u.finding_identifier();
                let id = f.and_then(|f| f.finding_info_uid()).unwrap_or_default();
                let product = f.and_then(|f| f.metadata_product_uid()).unwrap_or_default();
                Unprocessed {
                    finding: FindingId {
                        id: id.to_string(),
                        product_arn: product.to_string(),
                        account: f
                            .and_then(|f| f.cloud_account_uid())
                            .unwrap_or_default()
                            .to_string(),
                    },
                    code: u.error_code().map_or("Unknown", |c| c.as_str()).to_string(),
                    message: u.error_message().unwrap_or_default().to_string(),
                }
            })
            .collect())
    }

    /// The finding with this `Id` (and `ProductArn`, when given) as Security
    /// Hub holds it now; `None` when there is none.
    pub async fn find(
        &self,
        id: &str,
        product_arn: Option<&str>,
    ) -> Result<Option<Finding>, Error> {
        let filter = |v: &str| {
            StringFilter::builder()
                .value(v)
                .comparison(StringFilterComparison::Equals)
                .build()
        };
        let mut filters =
            aws_sdk_securityhub::types::AwsSecurityFindingFilters::builder().id(filter(id));
        if let Some(p) = product_arn {
            filters = filters.product_arn(filter(p));
        }
        self.pacer.wait(Api::GetFindings, None, &self.region).await;
        let out = self
            .client
            .get_findings()
            .filters(filters.build())
            .max_results(1)
            .send()
            .await
            .aws("Security Hub", "GetFindings", id)?;
        Ok(out.findings().first().map(to_finding))
    }

    /// The V2 finding as Security Hub holds it now (GetFindingsV2 by its three uids).
    async fn find_v2(&self, id: &FindingId) -> Result<Option<Finding>, Error> {
        let equals = |field: OcsfStringField, value: &str| {
            OcsfStringFilter::builder()
                .field_name(field)
                .filter(
                    StringFilter::builder()
                        .value(value)
                        .comparison(StringFilterComparison::Equals)
                        .build(),
                )
                .build()
        };
        let filters = OcsfFindingFilters::builder()
            .composite_operator(AllowedOperators::And)
            .composite_filters(
                CompositeFilter::builder()
                    .operator(AllowedOperators::And)
                    .string_filters(equals(OcsfStringField::FindingInfoUid, &id.id))
                    .string_filters(equals(OcsfStringField::MetadataProductUid, &id.product_arn))
                    .string_filters(equals(OcsfStringField::CloudAccountUid, &id.account))
                    .build(),
            )
            .build();
        self.pacer
            .wait(Api::GetFindingsV2, None, &self.region)
            .await;
        let out = self
            .client
            .get_findings_v2()
            .filters(filters)
            .max_results(1)
            .send()
            .await
            .aws("Security Hub", "GetFindingsV2", &id.id)?;
        let Some(document) = out.findings().first() else {
            return Ok(None);
        };
        crate::finding::ocsf::parse_document(&json_of(document))
            .map(Some)
            .map_err(|e| {
                Error::other(
                    "Security Hub",
                    "GetFindingsV2",
                    &id.id,
                    format!("the finding returned is not one hubtriage can read: {e}"),
                )
            })
    }
}

/// A Smithy document (GetFindingsV2's untyped findings) as JSON.
fn json_of(d: &aws_smithy_types::Document) -> serde_json::Value {
    use aws_smithy_types::{Document, Number};
    match d {
        Document::Object(m) => m.iter().map(|(k, v)| (k.clone(), json_of(v))).collect(),
        Document::Array(a) => a.iter().map(json_of).collect(),
        Document::Number(Number::PosInt(n)) => (*n).into(),
        Document::Number(Number::NegInt(n)) => (*n).into(),
        Document::Number(Number::Float(f)) => (*f).into(),
        Document::String(s) => s.clone().into(),
        Document::Bool(b) => (*b).into(),
        Document::Null => serde_json::Value::Null,
    }
}

/// A finding from GetFindings, in the shape the pipeline uses.
fn to_finding(f: &aws_sdk_securityhub::types::AwsSecurityFinding) -> Finding {
    Finding {
        format: crate::finding::Format::Asff,
        id: f.id().unwrap_or_default().to_string(),
        product_arn: f.product_arn().unwrap_or_default().to_string(),
        generator_id: f.generator_id().unwrap_or_default().to_string(),
        account: f.aws_account_id().unwrap_or_default().to_string(),
        region: f.region().unwrap_or_default().to_string(),
        control: crate::finding::control_of(
            f.compliance()
                .and_then(|c| c.security_control_id())
                .map(str::to_string),
            f.product_fields().and_then(|p| p.get("ControlId")).cloned(),
            f.generator_id().unwrap_or_default(),
        ),
        cluster_arn: f
            .resources()
            .iter()
            .find(|r| r.r#type() == Some("AwsRdsDbCluster"))
            .and_then(|r| r.id())
            .map(str::to_string),
        cluster_resource_id: None,
        snapshot_arn: f
            .resources()
            .iter()
            .find(|r| r.r#type() == Some("AwsRdsDbClusterSnapshot"))
            .and_then(|r| r.id())
            .map(str::to_string),
        compliance_status: f
            .compliance()
            .and_then(|c| c.status())
            .map(|s| Compliance::parse(s.as_str())),
        control_parameters: f
            .compliance()
            .map(|c| {
                c.security_control_parameters()
                    .iter()
                    .filter_map(|p| Some((p.name()?.to_string(), p.value().to_vec())))
                    .collect()
            })
            .unwrap_or_default(),
        record_state: f
            .record_state()
            .map_or(RecordState::Active, |s| RecordState::parse(s.as_str())),
        workflow_status: f
            .workflow()
            .and_then(|w| w.status())
            .map_or(Workflow::New, |s| Workflow::parse(s.as_str())),
        severity_label: f
            .severity()
            .and_then(|s| s.label())
            .map(|l| l.as_str().to_string()),
        user_defined_fields: f
            .user_defined_fields()
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default(),
        note: f.note().map(|n| Note {
            text: n.text().unwrap_or_default().to_string(),
            updated_by: n.updated_by().unwrap_or_default().to_string(),
            updated_at: n.updated_at().map(str::to_string),
        }),
        updated_at: f.updated_at().map(str::to_string),
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_securityhub::types::{AwsSecurityFinding, Compliance, ComplianceStatus};

    use super::*;

    #[test]
    fn a_standard_specific_finding_read_back_keeps_its_control() {
        // Only ProductFields.ControlId names the control, as in the findings of a
        // standard when consolidated control findings are off.
        let f = AwsSecurityFinding::builder()
            .id("arn:aws:securityhub:us-east-1:111122223333:subscription/aws-foundational-security-best-practices/v/1.0.0/Neptune.2/finding/1")
            .generator_id("aws-foundational-security-best-practices/v/1.0.0/Neptune.2")
            .product_fields("ControlId", "Neptune.2")
            .compliance(Compliance::builder().status(ComplianceStatus::Failed).build())
            .build();
        assert_eq!(to_finding(&f).control.as_deref(), Some("Neptune.2"));
        let consolidated = AwsSecurityFinding::builder()
            .compliance(
                Compliance::builder()
                    .security_control_id("Neptune.2")
                    .build(),
            )
            .product_fields("ControlId", "Neptune.9")
            .build();
        assert_eq!(
            to_finding(&consolidated).control.as_deref(),
            Some("Neptune.2")
        );
    }
}
