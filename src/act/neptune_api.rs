//! `FixApi` on the AWS SDK: Neptune (RDS API), CloudWatch Logs and IAM.

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_neptune::types::{ApplyMethod, CloudwatchLogsExportConfiguration, Parameter};

use super::remediate::{FixApi, FixApis, ParameterValue};
use std::sync::Arc;

use crate::aws::accounts::Accounts;
use crate::aws::{client_maker, AwsResult, Clients, Error, InRegion, NeptuneClients, Place};
use crate::control::{ClusterSetting, SettingValue};
use crate::enrich::neptune::{settings_of, snapshot_restore};
use crate::pace::{Api, Pacer};
use crate::state::{ClusterSettings, PUBLIC};

/// The service-linked role RDS (and so Neptune) needs to publish logs.
pub const RDS_SERVICE_LINKED_ROLE: &str = "AWSServiceRoleForRDS";

/// The remediation's calls in one account: the daemon's own (`account: None`)
/// or a member account through its role. [`FixApis::at`] gives the one for a
/// finding's account; all share the client caches.
#[derive(Clone)]
pub struct AwsFixApi {
    neptune: Arc<NeptuneClients>,
    logs: Arc<Clients<aws_sdk_cloudwatchlogs::Client>>,
    iam: Arc<Clients<aws_sdk_iam::Client>>,
    /// IAM is global; its calls are signed for the SDK's region.
    iam_region: String,
    accounts: Arc<Accounts>,
    account: Option<String>,
    /// Paces the read calls a remediation repeats (instance status, parameters).
    pacer: Arc<Pacer>,
}

impl AwsFixApi {
    pub fn new(
        sdk: &SdkConfig,
        neptune: Arc<NeptuneClients>,
        accounts: Arc<Accounts>,
        pacer: Arc<Pacer>,
    ) -> Self {
        AwsFixApi {
            neptune,
            logs: Arc::new(Clients::new(
                sdk.clone(),
                accounts.clone(),
                client_maker!(aws_sdk_cloudwatchlogs),
            )),
            iam: Arc::new(Clients::new(
                sdk.clone(),
                accounts.clone(),
                client_maker!(aws_sdk_iam),
            )),
            iam_region: sdk
                .region()
                .map(|r| r.to_string())
                .unwrap_or_else(|| "us-east-1".into()),
            accounts,
            account: None,
            pacer,
        }
    }

    /// Where a call in `region` goes: this API's account, that region.
    fn place(&self, region: &str) -> Place {
        Place {
            account: self.account.clone(),
            region: region.to_string(),
        }
    }

    /// The Neptune client for a read in `region`, once the read pacer lets it go.
    async fn paced_read(&self, region: &str) -> aws_sdk_neptune::Client {
        self.pacer
            .wait(Api::NeptuneRead, self.account.as_deref(), region)
            .await;
        self.neptune.get(&self.place(region))
    }
}

impl FixApis for AwsFixApi {
    fn at(&self, account: &str) -> Arc<dyn FixApi> {
        let mut api = self.clone();
        api.account = self.accounts.place(account, &self.iam_region).account;
        Arc::new(api)
    }
}

#[async_trait]
impl FixApi for AwsFixApi {
    async fn service_linked_role_exists(&self) -> Result<bool, Error> {
        let role = self
            .iam
            .get(&self.place(&self.iam_region))
            .get_role()
            .role_name(RDS_SERVICE_LINKED_ROLE)
            .send()
            .await
            .absent_if(|e| e.is_no_such_entity_exception())
            .aws("IAM", "GetRole", RDS_SERVICE_LINKED_ROLE)?;
        Ok(role.is_some())
    }

    async fn create_group(&self, region: &str, name: &str, family: &str) -> Result<bool, Error> {
        let created = self
            .neptune
            .get(&self.place(region))
            .create_db_cluster_parameter_group()
            .db_cluster_parameter_group_name(name)
            .db_parameter_group_family(family)
            .description("Created by hubtriage: Neptune audit logs (Security Hub Neptune.2)")
            .send()
            .await
            .absent_if(|e| e.is_db_parameter_group_already_exists_fault())
            .aws("Neptune", "CreateDBClusterParameterGroup", name)
            .in_region(region)?;
        Ok(created.is_some())
    }

    async fn user_parameters(
        &self,
        region: &str,
        group: &str,
    ) -> Result<Vec<ParameterValue>, Error> {
        let mut out = Vec::new();
        let mut pages = self
            .paced_read(region)
            .await
            .describe_db_cluster_parameters()
            .db_cluster_parameter_group_name(group)
            .source("user")
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page
                .aws("Neptune", "DescribeDBClusterParameters", group)
                .in_region(region)?;
            for p in page.parameters() {
                if let (Some(name), Some(value)) = (p.parameter_name(), p.parameter_value()) {
                    let method = p
                        .apply_method()
                        .map(|m| m.as_str())
                        .unwrap_or(crate::state::PENDING_REBOOT);
                    out.push(ParameterValue {
                        name: name.to_string(),
                        value: value.to_string(),
                        apply_method: method.to_string(),
                    });
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
    ) -> Result<(), Error> {
        // ModifyDBClusterParameterGroup takes at most 20 parameters per call.
        for chunk in params.chunks(20) {
            let parameters = chunk
                .iter()
                .map(|p| {
                    Parameter::builder()
                        .parameter_name(&p.name)
                        .parameter_value(&p.value)
                        .apply_method(ApplyMethod::from(p.apply_method.as_str()))
                        .build()
                })
                .collect();
            self.neptune
                .get(&self.place(region))
                .modify_db_cluster_parameter_group()
                .db_cluster_parameter_group_name(group)
                .set_parameters(Some(parameters))
                .send()
                .await
                .aws("Neptune", "ModifyDBClusterParameterGroup", group)
                .in_region(region)?;
        }
        Ok(())
    }

    async fn attach_group(&self, region: &str, cluster: &str, group: &str) -> Result<(), Error> {
        self.neptune
            .get(&self.place(region))
            .modify_db_cluster()
            .db_cluster_identifier(cluster)
            .db_cluster_parameter_group_name(group)
            .apply_immediately(true)
            .send()
            .await
            .aws("Neptune", "ModifyDBCluster", cluster)
            .in_region(region)?;
        Ok(())
    }

    async fn enable_audit_export(&self, region: &str, cluster: &str) -> Result<(), Error> {
        self.neptune
            .get(&self.place(region))
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
            .aws("Neptune", "ModifyDBCluster", cluster)
            .in_region(region)?;
        Ok(())
    }

    async fn instance_status(&self, region: &str, instance: &str) -> Result<Option<String>, Error> {
        let described = self
            .paced_read(region)
            .await
            .describe_db_instances()
            .db_instance_identifier(instance)
            .send()
            .await
            .absent_if(|e| e.is_db_instance_not_found_fault())
            .aws("Neptune", "DescribeDBInstances", instance)
            .in_region(region)?;
        Ok(described.and_then(|out| {
            out.db_instances()
                .first()
                .and_then(|i| i.db_instance_status())
                .map(str::to_string)
        }))
    }

    /// Sent once, never retried by the SDK: after a reset or a timeout the
    /// reboot may have been made, and a retry a moment later could reboot the
    /// instance again (measured in the fault storm, with reboots that take a
    /// second). The pass that failed is run again later, from live state and
    /// the reboot recorded with the cluster's lease.
    async fn reboot(&self, region: &str, instance: &str) -> Result<(), Error> {
        self.neptune
            .get(&self.place(region))
            .reboot_db_instance()
            .db_instance_identifier(instance)
            .customize()
            .config_override(
                aws_sdk_neptune::config::Builder::default()
                    .retry_config(aws_config::retry::RetryConfig::disabled()),
            )
            .send()
            .await
            .aws("Neptune", "RebootDBInstance", instance)
            .in_region(region)?;
        Ok(())
    }

    async fn log_group_retention(
        &self,
        region: &str,
        log_group: &str,
    ) -> Result<Option<Option<i32>>, Error> {
        let out = self
            .logs
            .get(&self.place(region))
            .describe_log_groups()
            .log_group_name_prefix(log_group)
            .send()
            .await
            .aws("CloudWatch Logs", "DescribeLogGroups", log_group)
            .in_region(region)?;
        Ok(out
            .log_groups()
            .iter()
            .find(|g| g.log_group_name() == Some(log_group))
            .map(|g| g.retention_in_days()))
    }

    async fn put_retention(&self, region: &str, log_group: &str, days: i32) -> Result<(), Error> {
        self.logs
            .get(&self.place(region))
            .put_retention_policy()
            .log_group_name(log_group)
            .retention_in_days(days)
            .send()
            .await
            .aws("CloudWatch Logs", "PutRetentionPolicy", log_group)
            .in_region(region)?;
        Ok(())
    }

    async fn has_log_stream(&self, region: &str, log_group: &str) -> Result<bool, Error> {
        let streams = self
            .logs
            .get(&self.place(region))
            .describe_log_streams()
            .log_group_name(log_group)
            .limit(1)
            .send()
            .await
            .absent_if(|e| e.is_resource_not_found_exception())
            .aws("CloudWatch Logs", "DescribeLogStreams", log_group)
            .in_region(region)?;
        Ok(streams.is_some_and(|out| !out.log_streams().is_empty()))
    }

    async fn modify_cluster(
        &self,
        region: &str,
        cluster: &str,
        setting: ClusterSetting,
        value: SettingValue,
    ) -> Result<(), Error> {
        let call = self
            .neptune
            .get(&self.place(region))
            .modify_db_cluster()
            .db_cluster_identifier(cluster);
        let wrong = || {
            Error::other(
                "Neptune",
                "ModifyDBCluster",
                cluster,
                format!("{} cannot be set to {value}", setting.as_str()),
            )
        };
        // Every setting, by name: a new one must be handled here.
        let call = match setting {
            ClusterSetting::DeletionProtection => {
                call.deletion_protection(value.flag().ok_or_else(wrong)?)
            }
            ClusterSetting::BackupRetentionPeriod => {
                call.backup_retention_period(value.days().ok_or_else(wrong)?)
            }
            ClusterSetting::CopyTagsToSnapshot => {
                call.copy_tags_to_snapshot(value.flag().ok_or_else(wrong)?)
            }
            ClusterSetting::EnableIamDatabaseAuthentication => {
                call.enable_iam_database_authentication(value.flag().ok_or_else(wrong)?)
            }
        };
        call.send()
            .await
            .aws("Neptune", "ModifyDBCluster", cluster)
            .in_region(region)?;
        Ok(())
    }

    async fn cluster_settings(
        &self,
        region: &str,
        cluster: &str,
    ) -> Result<Option<ClusterSettings>, Error> {
        let described = self
            .paced_read(region)
            .await
            .describe_db_clusters()
            .db_cluster_identifier(cluster)
            .send()
            .await
            .absent_if(|e| e.is_db_cluster_not_found_fault())
            .aws("Neptune", "DescribeDBClusters", cluster)
            .in_region(region)?;
        Ok(described.and_then(|out| {
            out.db_clusters()
                .iter()
                .find(|c| c.db_cluster_identifier() == Some(cluster))
                .map(settings_of)
        }))
    }

    async fn make_snapshot_private(&self, region: &str, snapshot: &str) -> Result<(), Error> {
        self.neptune
            .get(&self.place(region))
            .modify_db_cluster_snapshot_attribute()
            .db_cluster_snapshot_identifier(snapshot)
            .attribute_name("restore")
            .values_to_remove(PUBLIC)
            .send()
            .await
            .aws("Neptune", "ModifyDBClusterSnapshotAttribute", snapshot)
            .in_region(region)?;
        Ok(())
    }

    async fn snapshot_restore(
        &self,
        region: &str,
        snapshot: &str,
    ) -> Result<Option<Vec<String>>, Error> {
        let client = self.paced_read(region).await;
        snapshot_restore(&client, snapshot).await.in_region(region)
    }

    async fn disable_audit_export(&self, region: &str, cluster: &str) -> Result<(), Error> {
        self.neptune
            .get(&self.place(region))
            .modify_db_cluster()
            .db_cluster_identifier(cluster)
            .cloudwatch_logs_export_configuration(
                CloudwatchLogsExportConfiguration::builder()
                    .disable_log_types("audit")
                    .build(),
            )
            .apply_immediately(true)
            .send()
            .await
            .aws("Neptune", "ModifyDBCluster", cluster)
            .in_region(region)?;
        Ok(())
    }

    async fn make_snapshot_public(&self, region: &str, snapshot: &str) -> Result<(), Error> {
        self.neptune
            .get(&self.place(region))
            .modify_db_cluster_snapshot_attribute()
            .db_cluster_snapshot_identifier(snapshot)
            .attribute_name("restore")
            .values_to_add(PUBLIC)
            .send()
            .await
            .aws("Neptune", "ModifyDBClusterSnapshotAttribute", snapshot)
            .in_region(region)?;
        Ok(())
    }

    async fn delete_retention(&self, region: &str, log_group: &str) -> Result<(), Error> {
        self.logs
            .get(&self.place(region))
            .delete_retention_policy()
            .log_group_name(log_group)
            .send()
            .await
            .aws("CloudWatch Logs", "DeleteRetentionPolicy", log_group)
            .in_region(region)?;
        Ok(())
    }

    async fn tag(&self, region: &str, arn: &str, key: &str, value: &str) -> Result<(), Error> {
        let tag = aws_sdk_neptune::types::Tag::builder()
            .key(key)
            .value(value)
            .build();
        self.neptune
            .get(&self.place(region))
            .add_tags_to_resource()
            .resource_name(arn)
            .tags(tag)
            .send()
            .await
            .aws("Neptune", "AddTagsToResource", arn)
            .in_region(region)?;
        Ok(())
    }
}
