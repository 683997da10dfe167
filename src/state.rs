//! Live cluster state: the input the decision reads instead of the finding's
//! (possibly stale) `Details`.
//!
//! `ClusterState` is built either by the Neptune adapter (`enrich::neptune`) or,
//! for `hubtriage explain`, from saved AWS CLI outputs (the `cli` module below).

use std::collections::BTreeMap;

use serde::Serialize;

/// The parameter whose value makes Neptune write an audit log.
pub const AUDIT_PARAMETER: &str = "neptune_enable_audit_log";
/// The CloudWatch Logs export that Neptune.2 checks.
pub const AUDIT_EXPORT: &str = "audit";
pub const IN_SYNC: &str = "in-sync";
pub const PENDING_REBOOT: &str = "pending-reboot";

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClusterState {
    pub identifier: String,
    pub arn: String,
    pub engine: String,
    pub engine_version: String,
    pub status: String,
    pub parameter_group: String,
    pub exported_logs: Vec<String>,
    /// In the order DescribeDBClusters lists them.
    pub members: Vec<Member>,
    pub maintenance_window: Option<String>,
    pub audit_parameter: AuditParameter,
    pub tags: BTreeMap<String, String>,
    /// Other clusters (identifiers) that use the same cluster parameter group.
    pub group_shared_with: Vec<String>,
    /// Retention of `/aws/neptune/<cluster>/audit` when known; `None` = not read.
    pub audit_log_retention_days: Option<i32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Member {
    pub instance: String,
    pub is_writer: bool,
    /// `DBClusterParameterGroupStatus`: `in-sync`, `pending-reboot`, `applying`, ...
    pub parameter_group_status: String,
}

/// `neptune_enable_audit_log` as the cluster parameter group holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditParameter {
    pub value: String,
    /// `engine-default`, `user`, or `system`; `None` when not reported.
    pub source: Option<String>,
    pub apply_method: Option<String>,
}

impl AuditParameter {
    /// The engine's default when the group does not list the parameter.
    pub fn engine_default() -> Self {
        AuditParameter {
            value: "0".into(),
            source: Some("engine-default".into()),
            apply_method: None,
        }
    }

    pub fn is_enabled(&self) -> bool {
        self.value.trim() == "1"
    }
}

impl ClusterState {
    pub fn exports_audit(&self) -> bool {
        self.exported_logs.iter().any(|l| l == AUDIT_EXPORT)
    }

    pub fn uses_default_group(&self) -> bool {
        self.parameter_group.starts_with("default.")
    }

    pub fn members_not_in_sync(&self) -> impl Iterator<Item = &Member> {
        self.members
            .iter()
            .filter(|m| m.parameter_group_status != IN_SYNC)
    }

    /// Compliant means audit logs really flow: the `audit` export is on AND
    /// `neptune_enable_audit_log` is 1 AND every member has applied its group.
    /// (Neptune.2 itself only checks the export.)
    pub fn is_compliant(&self) -> bool {
        self.problems().is_empty()
    }

    /// What keeps the cluster from being compliant, in words that do not name
    /// the cluster (findings with the same problems can share one note).
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if !self.exports_audit() {
            problems.push("the audit log export to CloudWatch Logs is off".to_string());
        }
        if !self.audit_parameter.is_enabled() {
            problems.push(format!(
                "{AUDIT_PARAMETER} is {} in its cluster parameter group",
                self.audit_parameter.value
            ));
        }
        let not_in_sync = self.members_not_in_sync().count();
        if not_in_sync > 0 {
            problems.push(format!(
                "{not_in_sync} of {} instances have not applied the parameter group (reboot pending)",
                self.members.len()
            ));
        }
        problems
    }

    /// The parameter group family for the cluster's engine version
    /// (1.2.x → neptune1.2, 1.3.x → neptune1.3, 1.4.x → neptune1.4, older → neptune1).
    pub fn parameter_group_family(&self) -> String {
        family_for_engine_version(&self.engine_version)
    }

    /// Members in the order they must be rebooted: readers first, the writer last.
    pub fn reboot_order(&self) -> Vec<&Member> {
        let mut members: Vec<&Member> = self.members.iter().collect();
        members.sort_by_key(|m| m.is_writer);
        members
    }
}

pub fn family_for_engine_version(version: &str) -> String {
    let mut parts = version.split('.').map(|p| p.parse::<u32>().ok());
    match (parts.next().flatten(), parts.next().flatten()) {
        (Some(1), Some(minor)) if minor >= 2 => format!("neptune1.{minor}"),
        _ => "neptune1".to_string(),
    }
}

/// Saved AWS CLI outputs (`aws neptune describe-db-clusters`, ...) and the
/// conversion to `ClusterState`, for `hubtriage explain`.
pub mod cli {
    use std::collections::BTreeMap;

    use serde::Deserialize;

    use super::{AuditParameter, ClusterState, Member, AUDIT_PARAMETER};

    #[derive(Debug, Deserialize)]
    pub struct DescribeDbClusters {
        #[serde(rename = "DBClusters")]
        pub clusters: Vec<DbCluster>,
    }

    #[derive(Debug, Clone, Deserialize)]
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
    }

    #[derive(Debug, Clone, Deserialize)]
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
                        .unwrap_or_else(|| super::IN_SYNC.into()),
                })
                .collect(),
            maintenance_window: cluster.maintenance_window.clone(),
            audit_parameter,
            tags,
            group_shared_with,
            audit_log_retention_days: None,
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A non-compliant two-member cluster on a default group, as in the fixtures.
    pub(crate) fn sample_state() -> ClusterState {
        ClusterState {
            identifier: "orders-graph".into(),
            arn: "arn:aws:rds:us-east-1:111122223333:cluster:orders-graph".into(),
            engine: "neptune".into(),
            engine_version: "1.3.2.1".into(),
            status: "available".into(),
            parameter_group: "default.neptune1.3".into(),
            exported_logs: vec!["slowquery".into()],
            members: vec![
                Member {
                    instance: "orders-graph-1".into(),
                    is_writer: true,
                    parameter_group_status: IN_SYNC.into(),
                },
                Member {
                    instance: "orders-graph-2".into(),
                    is_writer: false,
                    parameter_group_status: IN_SYNC.into(),
                },
            ],
            maintenance_window: Some("sun:06:00-sun:06:30".into()),
            audit_parameter: AuditParameter::engine_default(),
            tags: BTreeMap::new(),
            group_shared_with: vec![],
            audit_log_retention_days: None,
        }
    }

    #[test]
    fn compliance_needs_export_parameter_and_sync() {
        let mut s = sample_state();
        assert!(!s.is_compliant());
        assert_eq!(s.problems().len(), 2);
        s.exported_logs.push("audit".into());
        assert!(!s.is_compliant(), "export alone is not enough");
        s.audit_parameter.value = "1".into();
        assert!(s.is_compliant());
        s.members[1].parameter_group_status = PENDING_REBOOT.into();
        assert!(!s.is_compliant());
        assert_eq!(
            s.problems(),
            vec!["1 of 2 instances have not applied the parameter group (reboot pending)"]
        );
    }

    #[test]
    fn families() {
        assert_eq!(family_for_engine_version("1.3.2.1"), "neptune1.3");
        assert_eq!(family_for_engine_version("1.2.0.0"), "neptune1.2");
        assert_eq!(family_for_engine_version("1.4.5.0"), "neptune1.4");
        assert_eq!(family_for_engine_version("1.1.1.0"), "neptune1");
        assert_eq!(family_for_engine_version("1.0.5.1"), "neptune1");
        assert_eq!(family_for_engine_version("garbage"), "neptune1");
    }

    #[test]
    fn readers_reboot_before_the_writer() {
        let s = sample_state();
        let order: Vec<&str> = s
            .reboot_order()
            .iter()
            .map(|m| m.instance.as_str())
            .collect();
        assert_eq!(order, vec!["orders-graph-2", "orders-graph-1"]);
    }

    #[test]
    fn cli_fixtures_build_a_state() {
        let listing: cli::DescribeDbClusters =
            serde_json::from_str(include_str!("../tests/fixtures/describe-db-clusters.json"))
                .unwrap();
        let params: cli::DescribeDbClusterParameters = serde_json::from_str(include_str!(
            "../tests/fixtures/describe-db-cluster-parameters.json"
        ))
        .unwrap();
        let tags: cli::ListTagsForResource = serde_json::from_str(include_str!(
            "../tests/fixtures/list-tags-for-resource.json"
        ))
        .unwrap();
        let state = cli::cluster_state(
            &listing,
            "arn:aws:rds:us-east-1:111122223333:cluster:orders-graph",
            params.audit_parameter(),
            tags.into_map(),
        )
        .unwrap();
        assert_eq!(state, {
            let mut s = sample_state();
            s.tags = [
                ("env".to_string(), "prod".to_string()),
                ("team".into(), "orders".into()),
            ]
            .into();
            s.audit_parameter = AuditParameter {
                value: "0".into(),
                source: Some("engine-default".into()),
                apply_method: Some("pending-reboot".into()),
            };
            s
        });
    }
}
