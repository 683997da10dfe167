//! Saved AWS CLI outputs (`aws neptune describe-db-clusters`, ...) and the
//! conversion to `ClusterState` and `SnapshotState`, for `hubtriage explain`.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{
    AuditParameter, ClusterSettings, ClusterState, Member, SnapshotState, AUDIT_PARAMETER, IN_SYNC,
};

#[derive(Debug, Deserialize)]
pub struct DescribeDbClusters {
    #[serde(rename = "DBClusters")]
    pub clusters: Vec<DbCluster>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct DbCluster {
    #[serde(rename = "DBClusterIdentifier")]
    pub identifier: String,
    #[serde(rename = "DBClusterArn")]
    pub arn: String,
    /// `cluster-…`: how an OCSF finding may name the cluster.
    #[serde(rename = "DbClusterResourceId", default)]
    pub resource_id: Option<String>,
    #[serde(rename = "Engine")]
    pub engine: String,
    #[serde(rename = "EngineVersion", default)]
    pub engine_version: String,
    #[serde(rename = "Status", default)]
    pub status: String,
    #[serde(rename = "DBClusterParameterGroup", default)]
    pub parameter_group: String,
    #[serde(rename = "EnabledCloudwatchLogsExports", default)]
    pub exported_logs: Vec<String>,
    #[serde(rename = "DBClusterMembers", default)]
    pub members: Vec<DbClusterMember>,
    #[serde(rename = "PreferredMaintenanceWindow", default)]
    pub maintenance_window: Option<String>,
    // The settings the controls check: absent (an output saved with
    // `--query`) is not false; `explain` refuses what a control needs.
    #[serde(rename = "StorageEncrypted", default)]
    pub storage_encrypted: Option<bool>,
    #[serde(rename = "DeletionProtection", default)]
    pub deletion_protection: Option<bool>,
    #[serde(rename = "BackupRetentionPeriod", default)]
    pub backup_retention_period: Option<i32>,
    #[serde(rename = "IAMDatabaseAuthenticationEnabled", default)]
    pub iam_database_authentication: Option<bool>,
    #[serde(rename = "CopyTagsToSnapshot", default)]
    pub copy_tags_to_snapshot: Option<bool>,
    #[serde(rename = "MultiAZ", default)]
    pub multi_az: Option<bool>,
}

impl DbCluster {
    pub fn settings(&self) -> ClusterSettings {
        ClusterSettings {
            storage_encrypted: self.storage_encrypted.unwrap_or(false),
            deletion_protection: self.deletion_protection.unwrap_or(false),
            backup_retention_period: self.backup_retention_period.unwrap_or(0),
            iam_database_authentication: self.iam_database_authentication.unwrap_or(false),
            copy_tags_to_snapshot: self.copy_tags_to_snapshot.unwrap_or(false),
            multi_az: self.multi_az.unwrap_or(false),
        }
    }

    /// Whether the saved output holds `field` (one a control reads).
    pub fn has(&self, field: &str) -> bool {
        match field {
            "StorageEncrypted" => self.storage_encrypted.is_some(),
            "DeletionProtection" => self.deletion_protection.is_some(),
            "BackupRetentionPeriod" => self.backup_retention_period.is_some(),
            "IAMDatabaseAuthenticationEnabled" => self.iam_database_authentication.is_some(),
            "CopyTagsToSnapshot" => self.copy_tags_to_snapshot.is_some(),
            "MultiAZ" => self.multi_az.is_some(),
            _ => true,
        }
    }
}

/// `aws neptune describe-db-cluster-snapshots` output.
#[derive(Debug, Default, Deserialize)]
pub struct DescribeDbClusterSnapshots {
    #[serde(rename = "DBClusterSnapshots")]
    pub snapshots: Vec<DbClusterSnapshot>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct DbClusterSnapshot {
    #[serde(rename = "DBClusterSnapshotIdentifier")]
    pub identifier: String,
    #[serde(rename = "DBClusterSnapshotArn")]
    pub arn: String,
    #[serde(rename = "DBClusterIdentifier", default)]
    pub cluster: String,
    #[serde(rename = "Engine", default)]
    pub engine: String,
    #[serde(rename = "Status", default)]
    pub status: String,
    #[serde(rename = "SnapshotType", default)]
    pub snapshot_type: String,
    #[serde(rename = "StorageEncrypted", default)]
    pub storage_encrypted: Option<bool>,
}

/// `aws neptune describe-db-cluster-snapshot-attributes` output.
#[derive(Debug, Deserialize)]
pub struct DescribeDbClusterSnapshotAttributes {
    #[serde(rename = "DBClusterSnapshotAttributesResult")]
    pub result: SnapshotAttributesResult,
}

#[derive(Debug, Deserialize)]
pub struct SnapshotAttributesResult {
    #[serde(rename = "DBClusterSnapshotIdentifier")]
    pub snapshot: String,
    #[serde(rename = "DBClusterSnapshotAttributes", default)]
    pub attributes: Vec<SnapshotAttribute>,
}

#[derive(Debug, Deserialize)]
pub struct SnapshotAttribute {
    #[serde(rename = "AttributeName")]
    pub name: String,
    #[serde(rename = "AttributeValues", default)]
    pub values: Vec<String>,
}

impl DescribeDbClusterSnapshotAttributes {
    /// The `restore` values, when this output is `snapshot`'s (by identifier or ARN).
    pub fn restore_of(&self, snapshot: &DbClusterSnapshot) -> Option<Vec<String>> {
        let named = &self.result.snapshot;
        (*named == snapshot.identifier || *named == snapshot.arn).then(|| {
            self.result
                .attributes
                .iter()
                .filter(|a| a.name == "restore")
                .flat_map(|a| a.values.clone())
                .collect()
        })
    }
}

/// The state of the snapshot with `arn` from a describe-db-cluster-snapshots
/// listing and its attributes; `None` when the listing does not hold it.
pub fn snapshot_state(
    listing: &DescribeDbClusterSnapshots,
    arn: &str,
    attributes: Option<&DescribeDbClusterSnapshotAttributes>,
    tags: BTreeMap<String, String>,
) -> Option<SnapshotState> {
    let s = listing.snapshots.iter().find(|s| s.arn == arn)?;
    Some(SnapshotState {
        identifier: s.identifier.clone(),
        arn: s.arn.clone(),
        cluster: s.cluster.clone(),
        engine: s.engine.clone(),
        status: s.status.clone(),
        snapshot_type: s.snapshot_type.clone(),
        storage_encrypted: s.storage_encrypted.unwrap_or(false),
        restore: attributes.and_then(|a| a.restore_of(s)).unwrap_or_default(),
        tags,
    })
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct DbClusterMember {
    #[serde(rename = "DBInstanceIdentifier")]
    pub instance: String,
    #[serde(rename = "IsClusterWriter", default)]
    pub is_writer: bool,
    #[serde(rename = "DBClusterParameterGroupStatus", default)]
    pub parameter_group_status: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct DescribeDbClusterParameters {
    #[serde(rename = "Parameters")]
    pub parameters: Vec<Parameter>,
}

#[derive(Debug, Deserialize)]
pub struct Parameter {
    #[serde(rename = "ParameterName")]
    pub name: String,
    #[serde(rename = "ParameterValue", default)]
    pub value: Option<String>,
    #[serde(rename = "Source", default)]
    pub source: Option<String>,
    #[serde(rename = "ApplyMethod", default)]
    pub apply_method: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct ListTagsForResource {
    #[serde(rename = "TagList")]
    pub tags: Vec<Tag>,
}

#[derive(Debug, Deserialize)]
pub struct Tag {
    #[serde(rename = "Key")]
    pub key: String,
    #[serde(rename = "Value", default)]
    pub value: String,
}

impl DescribeDbClusterParameters {
    /// `neptune_enable_audit_log` from the listing, or the engine default.
    pub fn audit_parameter(&self) -> AuditParameter {
        self.parameters
            .iter()
            .find(|p| p.name == AUDIT_PARAMETER)
            .map(|p| AuditParameter {
                value: p.value.clone().unwrap_or_else(|| "0".into()),
                source: p.source.clone(),
                apply_method: p.apply_method.clone(),
            })
            .unwrap_or_else(AuditParameter::engine_default)
    }
}

impl ListTagsForResource {
    pub fn into_map(self) -> BTreeMap<String, String> {
        self.tags.into_iter().map(|t| (t.key, t.value)).collect()
    }
}

/// The ARN of the Neptune cluster with `DbClusterResourceId`
/// `resource_id` in `account` and `region`, as the daemon looks it up for
/// an OCSF finding that names its cluster by that id alone.
pub fn arn_by_resource_id(
    listing: &DescribeDbClusters,
    account: &str,
    region: &str,
    resource_id: &str,
) -> Option<String> {
    listing
        .clusters
        .iter()
        .filter(|c| c.engine == "neptune")
        .filter(|c| {
            crate::finding::ClusterArn::parse(&c.arn)
                .is_some_and(|a| a.account == account && a.region == region)
        })
        .find(|c| c.resource_id.as_deref() == Some(resource_id))
        .map(|c| c.arn.clone())
}

/// Builds the state of the cluster with `arn` from a describe-db-clusters
/// listing; `None` when the listing does not hold it. The other clusters in
/// the listing tell who shares its parameter group.
pub fn cluster_state(
    listing: &DescribeDbClusters,
    arn: &str,
    audit_parameter: AuditParameter,
    tags: BTreeMap<String, String>,
) -> Option<ClusterState> {
    let cluster = listing.clusters.iter().find(|c| c.arn == arn)?;
    let group_shared_with = listing
        .clusters
        .iter()
        .filter(|c| c.arn != arn && c.parameter_group == cluster.parameter_group)
        .map(|c| c.identifier.clone())
        .collect();
    Some(ClusterState {
        identifier: cluster.identifier.clone(),
        arn: cluster.arn.clone(),
        engine: cluster.engine.clone(),
        engine_version: cluster.engine_version.clone(),
        status: cluster.status.clone(),
        parameter_group: cluster.parameter_group.clone(),
        exported_logs: cluster.exported_logs.clone(),
        members: cluster
            .members
            .iter()
            .map(|m| Member {
                instance: m.instance.clone(),
                is_writer: m.is_writer,
                parameter_group_status: m
                    .parameter_group_status
                    .clone()
                    .unwrap_or_else(|| IN_SYNC.into()),
            })
            .collect(),
        maintenance_window: cluster.maintenance_window.clone(),
        audit_parameter,
        tags,
        group_shared_with,
        audit_log_retention_days: None,
        settings: cluster.settings(),
    })
}
