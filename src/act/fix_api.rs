//! The calls remediation (and `hubtriage undo`) make, behind one trait per
//! account: Neptune, CloudWatch Logs and IAM (`neptune_api.rs` is the SDK
//! behind it; `testing::FakeNeptune` the fake).

use async_trait::async_trait;

use crate::aws::Error;
use crate::control::{ClusterSetting, SettingValue};
use crate::state::ClusterSettings;

/// A cluster parameter as a group holds it, or as it is to be set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParameterValue {
    pub name: String,
    pub value: String,
    /// `immediate` or `pending-reboot`.
    pub apply_method: String,
}

/// The calls remediation makes (Neptune, CloudWatch Logs, IAM), per region.
#[async_trait]
pub trait FixApi: Send + Sync {
    /// IAM: does `AWSServiceRoleForRDS` exist?
    async fn service_linked_role_exists(&self) -> Result<bool, Error>;
    /// Creates the group; `Ok(false)` when it already exists.
    async fn create_group(&self, region: &str, name: &str, family: &str) -> Result<bool, Error>;
    /// Parameters a user set in the group (`Source` = user).
    async fn user_parameters(
        &self,
        region: &str,
        group: &str,
    ) -> Result<Vec<ParameterValue>, Error>;
    async fn set_parameters(
        &self,
        region: &str,
        group: &str,
        params: &[ParameterValue],
    ) -> Result<(), Error>;
    async fn attach_group(&self, region: &str, cluster: &str, group: &str) -> Result<(), Error>;
    async fn enable_audit_export(&self, region: &str, cluster: &str) -> Result<(), Error>;
    /// `DBInstanceStatus`, `None` when the instance does not exist.
    async fn instance_status(&self, region: &str, instance: &str) -> Result<Option<String>, Error>;
    async fn reboot(&self, region: &str, instance: &str) -> Result<(), Error>;
    /// `None`: the log group does not exist; `Some(days)`: its retention (None = never expire).
    async fn log_group_retention(
        &self,
        region: &str,
        log_group: &str,
    ) -> Result<Option<Option<i32>>, Error>;
    async fn put_retention(&self, region: &str, log_group: &str, days: i32) -> Result<(), Error>;
    async fn has_log_stream(&self, region: &str, log_group: &str) -> Result<bool, Error>;
    /// ModifyDBCluster with one setting (applied at once).
    async fn modify_cluster(
        &self,
        region: &str,
        cluster: &str,
        setting: ClusterSetting,
        value: SettingValue,
    ) -> Result<(), Error>;
    /// The cluster's settings, read afresh; `None`: it does not exist.
    async fn cluster_settings(
        &self,
        region: &str,
        cluster: &str,
    ) -> Result<Option<ClusterSettings>, Error>;
    /// ModifyDBClusterSnapshotAttribute: `all` removed from `restore`.
    async fn make_snapshot_private(&self, region: &str, snapshot: &str) -> Result<(), Error>;
    /// The snapshot's `restore` attribute, read afresh; `None`: it does not exist.
    async fn snapshot_restore(
        &self,
        region: &str,
        snapshot: &str,
    ) -> Result<Option<Vec<String>>, Error>;

    // ---- `hubtriage undo`: the calls that put a change back.

    /// ModifyDBCluster: the `audit` export off.
    async fn disable_audit_export(&self, region: &str, cluster: &str) -> Result<(), Error>;
    /// ModifyDBClusterSnapshotAttribute: `all` added to `restore` (public again).
    async fn make_snapshot_public(&self, region: &str, snapshot: &str) -> Result<(), Error>;
    /// DeleteRetentionPolicy: the log group's events never expire again.
    async fn delete_retention(&self, region: &str, log_group: &str) -> Result<(), Error>;
    /// AddTagsToResource on a cluster or snapshot ARN.
    async fn tag(&self, region: &str, arn: &str, key: &str, value: &str) -> Result<(), Error>;
}

/// The [`FixApi`] for a finding's account (its role's credentials, or the
/// daemon's own).
pub trait FixApis: Send + Sync {
    fn at(&self, account: &str) -> std::sync::Arc<dyn FixApi>;
}
