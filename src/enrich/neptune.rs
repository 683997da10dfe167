//! Live Neptune state → `ClusterState`, through the Neptune (RDS) API:
//! DescribeDBClusters, DescribeDBClusterParameters, ListTagsForResource.
//!
//! Clients are made per region on first use, so one process serves findings
//! from every region in scope. (Per-account roles will key this cache too.)

use std::collections::BTreeMap;

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_neptune::types::{DbCluster, Filter};
use aws_sdk_neptune::Client;

use crate::aws::{describe, PerRegion};
use crate::finding::ClusterArn;
use crate::state::{AuditParameter, ClusterState, Member, AUDIT_PARAMETER, IN_SYNC};

#[derive(Debug, thiserror::Error)]
#[error("Neptune {operation} for {cluster}: {message}")]
pub struct EnrichError {
    pub operation: &'static str,
    pub cluster: String,
    pub message: String,
    /// Throttling: worth counting and backing off.
    pub throttled: bool,
}

/// Reads a cluster's live state. `Ok(None)`: the cluster does not exist.
#[async_trait]
pub trait ClusterReader: Send + Sync {
    async fn cluster_state(&self, cluster_arn: &str) -> Result<Option<ClusterState>, EnrichError>;
}

pub struct NeptuneReader {
    clients: PerRegion<Client>,
}

impl NeptuneReader {
    pub fn new(sdk: SdkConfig) -> Self {
        NeptuneReader {
            clients: PerRegion::new(sdk, |sdk, region| {
                Client::from_conf(
                    aws_sdk_neptune::config::Builder::from(sdk)
                        .region(region)
                        .build(),
                )
            }),
        }
    }

    fn client(&self, region: &str) -> Client {
        self.clients.get(region)
    }
}

fn error<E>(
    operation: &'static str,
    cluster: &str,
    err: &aws_sdk_neptune::error::SdkError<E>,
) -> EnrichError
where
    E: aws_sdk_neptune::error::ProvideErrorMetadata + std::error::Error + 'static,
{
    use aws_sdk_neptune::error::ProvideErrorMetadata;
    let throttled = crate::aws::is_throttling(err.code());
    EnrichError {
        operation,
        cluster: cluster.to_string(),
        message: describe(err),
        throttled,
    }
}

#[async_trait]
impl ClusterReader for NeptuneReader {
    async fn cluster_state(&self, cluster_arn: &str) -> Result<Option<ClusterState>, EnrichError> {
        let Some(arn) = ClusterArn::parse(cluster_arn) else {
            return Ok(None);
        };
        let client = self.client(arn.region);
        let id = arn.identifier;

        let described = client
            .describe_db_clusters()
            .db_cluster_identifier(id)
            .send()
            .await;
        let cluster = match described {
            Ok(out) => match out.db_clusters.unwrap_or_default().into_iter().next() {
                Some(c) => c,
                None => return Ok(None),
            },
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_db_cluster_not_found_fault()) =>
            {
                return Ok(None)
            }
            Err(e) => return Err(error("DescribeDBClusters", id, &e)),
        };
        if cluster.engine() != Some("neptune") {
            // Not ours to read further; the decision ignores it.
            return Ok(Some(to_state(
                &cluster,
                AuditParameter::engine_default(),
                BTreeMap::new(),
                vec![],
            )));
        }

        let group = cluster
            .db_cluster_parameter_group()
            .unwrap_or_default()
            .to_string();
        let audit = audit_parameter(&client, id, &group).await?;

        let tags = client
            .list_tags_for_resource()
            .resource_name(cluster.db_cluster_arn().unwrap_or(cluster_arn))
            .send()
            .await
            .map_err(|e| error("ListTagsForResource", id, &e))?
            .tag_list
            .unwrap_or_default()
            .into_iter()
            .filter_map(|t| Some((t.key?, t.value.unwrap_or_default())))
            .collect();

        // Who else uses the group matters only for custom groups.
        let shared_with = if group.starts_with("default.") || group.is_empty() {
            Vec::new()
        } else {
            clusters_on_group(&client, id, &group).await?
        };
        Ok(Some(to_state(&cluster, audit, tags, shared_with)))
    }
}

async fn audit_parameter(
    client: &Client,
    cluster: &str,
    group: &str,
) -> Result<AuditParameter, EnrichError> {
    let mut pages = client
        .describe_db_cluster_parameters()
        .db_cluster_parameter_group_name(group)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| error("DescribeDBClusterParameters", cluster, &e))?;
        if let Some(p) = page
            .parameters()
            .iter()
            .find(|p| p.parameter_name() == Some(AUDIT_PARAMETER))
        {
            return Ok(AuditParameter {
                value: p.parameter_value().unwrap_or("0").to_string(),
                source: p.source().map(str::to_string),
                apply_method: p.apply_method().map(|m| m.as_str().to_string()),
            });
        }
    }
    Ok(AuditParameter::engine_default())
}

async fn clusters_on_group(
    client: &Client,
    cluster: &str,
    group: &str,
) -> Result<Vec<String>, EnrichError> {
    let mut others = Vec::new();
    let engine = Filter::builder().name("engine").values("neptune").build();
    let mut pages = client
        .describe_db_clusters()
        .filters(engine)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| error("DescribeDBClusters", cluster, &e))?;
        for c in page.db_clusters() {
            let id = c.db_cluster_identifier().unwrap_or_default();
            if id != cluster && c.db_cluster_parameter_group() == Some(group) {
                others.push(id.to_string());
            }
        }
    }
    Ok(others)
}

fn to_state(
    c: &DbCluster,
    audit_parameter: AuditParameter,
    tags: BTreeMap<String, String>,
    group_shared_with: Vec<String>,
) -> ClusterState {
    ClusterState {
        identifier: c.db_cluster_identifier().unwrap_or_default().to_string(),
        arn: c.db_cluster_arn().unwrap_or_default().to_string(),
        engine: c.engine().unwrap_or_default().to_string(),
        engine_version: c.engine_version().unwrap_or_default().to_string(),
        status: c.status().unwrap_or_default().to_string(),
        parameter_group: c
            .db_cluster_parameter_group()
            .unwrap_or_default()
            .to_string(),
        exported_logs: c.enabled_cloudwatch_logs_exports().to_vec(),
        members: c
            .db_cluster_members()
            .iter()
            .map(|m| Member {
                instance: m.db_instance_identifier().unwrap_or_default().to_string(),
                is_writer: m.is_cluster_writer().unwrap_or(false),
                parameter_group_status: m
                    .db_cluster_parameter_group_status()
                    .unwrap_or(IN_SYNC)
                    .to_string(),
            })
            .collect(),
        maintenance_window: c.preferred_maintenance_window().map(str::to_string),
        audit_parameter,
        tags,
        group_shared_with,
        audit_log_retention_days: None,
    }
}
