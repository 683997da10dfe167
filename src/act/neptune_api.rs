//! `FixApi` on the AWS SDK: Neptune (RDS API), CloudWatch Logs and IAM.

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_neptune::types::{ApplyMethod, CloudwatchLogsExportConfiguration, Parameter};

use super::remediate::{FixApi, FixError, ParameterValue};
use crate::aws::{describe, PerRegion};

/// The service-linked role RDS (and so Neptune) needs to publish logs.
pub const RDS_SERVICE_LINKED_ROLE: &str = "AWSServiceRoleForRDS";

pub struct AwsFixApi {
    neptune: PerRegion<aws_sdk_neptune::Client>,
    logs: PerRegion<aws_sdk_cloudwatchlogs::Client>,
    iam: aws_sdk_iam::Client,
}

impl AwsFixApi {
    pub fn new(sdk: &SdkConfig) -> Self {
        AwsFixApi {
            neptune: PerRegion::new(sdk.clone(), |sdk, region| {
                aws_sdk_neptune::Client::from_conf(
                    aws_sdk_neptune::config::Builder::from(sdk)
                        .region(region)
                        .build(),
                )
            }),
            logs: PerRegion::new(sdk.clone(), |sdk, region| {
                aws_sdk_cloudwatchlogs::Client::from_conf(
                    aws_sdk_cloudwatchlogs::config::Builder::from(sdk)
                        .region(region)
                        .build(),
                )
            }),
            iam: aws_sdk_iam::Client::new(sdk),
        }
    }
}

fn error<E>(
    operation: &'static str,
    target: &str,
    err: &aws_sdk_neptune::error::SdkError<E>,
) -> FixError
where
    E: aws_sdk_neptune::error::ProvideErrorMetadata + std::error::Error + 'static,
{
    use aws_sdk_neptune::error::ProvideErrorMetadata;
    FixError {
        operation,
        target: target.to_string(),
        message: describe(err),
        throttled: crate::aws::is_throttling(err.code()),
    }
}

#[async_trait]
impl FixApi for AwsFixApi {
    async fn service_linked_role_exists(&self) -> Result<bool, FixError> {
        match self
            .iam
            .get_role()
            .role_name(RDS_SERVICE_LINKED_ROLE)
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_no_such_entity_exception()) =>
            {
                Ok(false)
            }
            Err(e) => Err(error("GetRole", RDS_SERVICE_LINKED_ROLE, &e)),
        }
    }

    async fn create_group(&self, region: &str, name: &str, family: &str) -> Result<bool, FixError> {
        let result = self
            .neptune
            .get(region)
            .create_db_cluster_parameter_group()
            .db_cluster_parameter_group_name(name)
            .db_parameter_group_family(family)
            .description("Created by hubtriage: Neptune audit logs (Security Hub Neptune.2)")
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_db_parameter_group_already_exists_fault()) =>
            {
                Ok(false)
            }
            Err(e) => Err(error("CreateDBClusterParameterGroup", name, &e)),
        }
    }

    async fn user_parameters(
        &self,
        region: &str,
        group: &str,
    ) -> Result<Vec<ParameterValue>, FixError> {
        let mut out = Vec::new();
        let mut pages = self
            .neptune
            .get(region)
            .describe_db_cluster_parameters()
            .db_cluster_parameter_group_name(group)
            .source("user")
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| error("DescribeDBClusterParameters", group, &e))?;
            for p in page.parameters() {
                if let (Some(name), Some(value)) = (p.parameter_name(), p.parameter_value()) {
                    let method = p
                        .apply_method()
                        .map(|m| m.as_str())
                        .unwrap_or("pending-reboot");
                    out.push((name.to_string(), value.to_string(), method.to_string()));
                }
            }
        }
        Ok(out)
    }

    async fn set_parameters(
        &self,
        region: &str,
        group: &str,
        params: &[ParameterValue],
    ) -> Result<(), FixError> {
        // ModifyDBClusterParameterGroup takes at most 20 parameters per call.
        for chunk in params.chunks(20) {
            let parameters = chunk
                .iter()
                .map(|(name, value, method)| {
                    Parameter::builder()
                        .parameter_name(name)
                        .parameter_value(value)
                        .apply_method(ApplyMethod::from(method.as_str()))
                        .build()
                })
                .collect();
            self.neptune
                .get(region)
                .modify_db_cluster_parameter_group()
                .db_cluster_parameter_group_name(group)
                .set_parameters(Some(parameters))
                .send()
                .await
                .map_err(|e| error("ModifyDBClusterParameterGroup", group, &e))?;
        }
        Ok(())
    }

    async fn attach_group(&self, region: &str, cluster: &str, group: &str) -> Result<(), FixError> {
        self.neptune
            .get(region)
            .modify_db_cluster()
            .db_cluster_identifier(cluster)
            .db_cluster_parameter_group_name(group)
            .apply_immediately(true)
            .send()
            .await
            .map_err(|e| error("ModifyDBCluster", cluster, &e))?;
        Ok(())
    }

    async fn enable_audit_export(&self, region: &str, cluster: &str) -> Result<(), FixError> {
        self.neptune
            .get(region)
            .modify_db_cluster()
            .db_cluster_identifier(cluster)
            .cloudwatch_logs_export_configuration(
                CloudwatchLogsExportConfiguration::builder()
                    .enable_log_types("audit")
                    .build(),
            )
            .apply_immediately(true)
            .send()
            .await
            .map_err(|e| error("ModifyDBCluster", cluster, &e))?;
        Ok(())
    }

    async fn instance_status(
        &self,
        region: &str,
        instance: &str,
    ) -> Result<Option<String>, FixError> {
        let result = self
            .neptune
            .get(region)
            .describe_db_instances()
            .db_instance_identifier(instance)
            .send()
            .await;
        match result {
            Ok(out) => Ok(out
                .db_instances()
                .first()
                .and_then(|i| i.db_instance_status())
                .map(str::to_string)),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_db_instance_not_found_fault()) =>
            {
                Ok(None)
            }
            Err(e) => Err(error("DescribeDBInstances", instance, &e)),
        }
    }

    async fn reboot(&self, region: &str, instance: &str) -> Result<(), FixError> {
        self.neptune
            .get(region)
            .reboot_db_instance()
            .db_instance_identifier(instance)
            .send()
            .await
            .map_err(|e| error("RebootDBInstance", instance, &e))?;
        Ok(())
    }

    async fn log_group_retention(
        &self,
        region: &str,
        log_group: &str,
    ) -> Result<Option<Option<i32>>, FixError> {
        let out = self
            .logs
            .get(region)
            .describe_log_groups()
            .log_group_name_prefix(log_group)
            .send()
            .await
            .map_err(|e| error("DescribeLogGroups", log_group, &e))?;
        Ok(out
            .log_groups()
            .iter()
            .find(|g| g.log_group_name() == Some(log_group))
            .map(|g| g.retention_in_days()))
    }

    async fn put_retention(
        &self,
        region: &str,
        log_group: &str,
        days: i32,
    ) -> Result<(), FixError> {
        self.logs
            .get(region)
            .put_retention_policy()
            .log_group_name(log_group)
            .retention_in_days(days)
            .send()
            .await
            .map_err(|e| error("PutRetentionPolicy", log_group, &e))?;
        Ok(())
    }

    async fn has_log_stream(&self, region: &str, log_group: &str) -> Result<bool, FixError> {
        let result = self
            .logs
            .get(region)
            .describe_log_streams()
            .log_group_name(log_group)
            .limit(1)
            .send()
            .await;
        match result {
            Ok(out) => Ok(!out.log_streams().is_empty()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_not_found_exception()) =>
            {
                Ok(false)
            }
            Err(e) => Err(error("DescribeLogStreams", log_group, &e)),
        }
    }
}
