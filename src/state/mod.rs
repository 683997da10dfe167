//! Live state: the input the decision reads instead of the finding's
//! (possibly stale) `Details`: a cluster's ([`ClusterState`]) or a cluster
//! snapshot's ([`SnapshotState`]), whichever the finding's control checks
//! ([`LiveResource`]).
//!
//! Both are built either by the Neptune adapter (`enrich::neptune`) or, for
//! `hubtriage explain`, from saved AWS CLI outputs (the `cli` module below).

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
    /// The settings the other Neptune controls check.
    pub settings: ClusterSettings,
}

/// What DescribeDBClusters says of the settings Neptune.1, .4, .5, .7, .8
/// and .9 check.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ClusterSettings {
    pub storage_encrypted: bool,
    pub deletion_protection: bool,
    /// Days of automated backups (Neptune keeps 1 to 35).
    pub backup_retention_period: i32,
    pub iam_database_authentication: bool,
    pub copy_tags_to_snapshot: bool,
    /// The cluster has instances in more than one Availability Zone.
    pub multi_az: bool,
}

/// A Neptune DB cluster snapshot, as DescribeDBClusterSnapshots and
/// DescribeDBClusterSnapshotAttributes show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SnapshotState {
    pub identifier: String,
    pub arn: String,
    /// The cluster it was taken of.
    pub cluster: String,
    pub engine: String,
    pub status: String,
    /// `manual` or `automated`.
    pub snapshot_type: String,
    pub storage_encrypted: bool,
    /// The accounts that may copy or restore it (`restore`); `all` makes it public.
    pub restore: Vec<String>,
    pub tags: BTreeMap<String, String>,
}

/// The value of the `restore` attribute that makes a snapshot public.
pub const PUBLIC: &str = "all";

impl SnapshotState {
    pub fn is_public(&self) -> bool {
        self.restore.iter().any(|v| v == PUBLIC)
    }
}

/// What a cluster's or snapshot's status allows hubtriage to do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Availability {
    /// `available`: it may be changed.
    Available,
    /// On its way back to `available` (a backup, a modification, maintenance,
    /// a failover, a start, ...): a remediation waits for it.
    Passing,
    /// `stopped` or `stopping`: it cannot be modified until it is started.
    Stopped,
    /// `deleting`.
    Deleting,
    /// Anything else (a failed state, a lost KMS key, a status hubtriage
    /// does not know): a person looks.
    Other,
}

/// Cluster statuses on the way back to `available` (the RDS cluster status
/// table, which Neptune shares; `configuring-*` are instance statuses a
/// cluster can show while its instances change).
const PASSING_CLUSTER: &[&str] = &[
    "backing-up",
    "backtracking",
    "configuring-iam-database-auth",
    "configuring-log-exports",
    "creating",
    "failing-over",
    "maintenance",
    "migrating",
    "modifying",
    "promoting",
    "renaming",
    "resetting-master-credentials",
    "starting",
    "storage-optimization",
    "update-iam-db-auth",
    "upgrading",
];

/// What a cluster's `Status` allows.
pub fn cluster_availability(status: &str) -> Availability {
    match status {
        "available" => Availability::Available,
        "stopped" | "stopping" => Availability::Stopped,
        "deleting" => Availability::Deleting,
        s if PASSING_CLUSTER.contains(&s) => Availability::Passing,
        _ => Availability::Other,
    }
}

/// What a cluster snapshot's `Status` allows (`creating` and `copying` pass).
pub fn snapshot_availability(status: &str) -> Availability {
    match status {
        "available" => Availability::Available,
        "creating" | "copying" => Availability::Passing,
        "deleting" => Availability::Deleting,
        _ => Availability::Other,
    }
}

/// The live state a decision reads: the finding's cluster or cluster snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LiveResource<'a> {
    Cluster(&'a ClusterState),
    Snapshot(&'a SnapshotState),
}

/// [`LiveResource`], owned: what the pipeline read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LiveState {
    Cluster(ClusterState),
    Snapshot(SnapshotState),
}

impl LiveState {
    pub fn live(&self) -> LiveResource<'_> {
        match self {
            LiveState::Cluster(c) => LiveResource::Cluster(c),
            LiveState::Snapshot(s) => LiveResource::Snapshot(s),
        }
    }
}

impl LiveResource<'_> {
    pub fn arn(&self) -> &str {
        match self {
            LiveResource::Cluster(c) => &c.arn,
            LiveResource::Snapshot(s) => &s.arn,
        }
    }

    pub fn identifier(&self) -> &str {
        match self {
            LiveResource::Cluster(c) => &c.identifier,
            LiveResource::Snapshot(s) => &s.identifier,
        }
    }

    /// The cluster's identifier (a snapshot's: the cluster it was taken of),
    /// which rules' `clusters` globs match.
    pub fn cluster(&self) -> &str {
        match self {
            LiveResource::Cluster(c) => &c.identifier,
            LiveResource::Snapshot(s) => &s.cluster,
        }
    }

    pub fn engine(&self) -> &str {
        match self {
            LiveResource::Cluster(c) => &c.engine,
            LiveResource::Snapshot(s) => &s.engine,
        }
    }

    pub fn status(&self) -> &str {
        match self {
            LiveResource::Cluster(c) => &c.status,
            LiveResource::Snapshot(s) => &s.status,
        }
    }

    /// What the resource's status allows now.
    pub fn availability(&self) -> Availability {
        match self {
            LiveResource::Cluster(c) => cluster_availability(&c.status),
            LiveResource::Snapshot(s) => snapshot_availability(&s.status),
        }
    }

    /// Why the resource cannot be changed now, and waiting will not change
    /// that; `None` when it is available or on its way back.
    pub fn unchangeable(&self) -> Option<String> {
        let (noun, status) = (self.noun(), self.status());
        match self.availability() {
            Availability::Available | Availability::Passing => None,
            Availability::Stopped => Some(format!(
                "the {noun} is {status}: a stopped cluster cannot be modified until it is started (Neptune starts a stopped cluster by itself after seven days; its finding is decided again then)."
            )),
            Availability::Deleting => Some(format!("the {noun} is being deleted.")),
            Availability::Other => Some(format!(
                "the {noun}'s status is {status}, not available."
            )),
        }
    }

    /// "cluster" or "snapshot".
    pub fn noun(&self) -> &'static str {
        match self {
            LiveResource::Cluster(_) => "cluster",
            LiveResource::Snapshot(_) => "snapshot",
        }
    }

    pub fn tags(&self) -> &BTreeMap<String, String> {
        match self {
            LiveResource::Cluster(c) => &c.tags,
            LiveResource::Snapshot(s) => &s.tags,
        }
    }
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

    /// What keeps audit logs from flowing (Neptune.2's check, which asks more
    /// than the control: the `audit` export on AND `neptune_enable_audit_log`
    /// 1 AND every member has applied its group), in words that do not name
    /// the cluster (findings with the same problems can share one note).
    pub fn audit_log_problems(&self) -> Vec<String> {
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

pub mod cli;

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
            settings: ClusterSettings::default(),
        }
    }

    #[test]
    fn compliance_needs_export_parameter_and_sync() {
        let mut s = sample_state();
        assert!(!s.audit_log_problems().is_empty());
        assert_eq!(s.audit_log_problems().len(), 2);
        s.exported_logs.push("audit".into());
        assert!(
            !s.audit_log_problems().is_empty(),
            "export alone is not enough"
        );
        s.audit_parameter.value = "1".into();
        assert!(s.audit_log_problems().is_empty());
        s.members[1].parameter_group_status = PENDING_REBOOT.into();
        assert!(!s.audit_log_problems().is_empty());
        assert_eq!(
            s.audit_log_problems(),
            vec!["1 of 2 instances have not applied the parameter group (reboot pending)"]
        );
    }

    #[test]
    fn statuses_sort_into_what_they_allow() {
        assert_eq!(cluster_availability("available"), Availability::Available);
        assert_eq!(cluster_availability("backing-up"), Availability::Passing);
        assert_eq!(cluster_availability("modifying"), Availability::Passing);
        assert_eq!(cluster_availability("stopped"), Availability::Stopped);
        assert_eq!(cluster_availability("stopping"), Availability::Stopped);
        assert_eq!(cluster_availability("deleting"), Availability::Deleting);
        assert_eq!(
            cluster_availability("inaccessible-encryption-credentials"),
            Availability::Other
        );
        assert_eq!(cluster_availability("something-new"), Availability::Other);
        assert_eq!(snapshot_availability("creating"), Availability::Passing);
        assert_eq!(snapshot_availability("copying"), Availability::Passing);
        assert_eq!(snapshot_availability("failed"), Availability::Other);
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
        let listing: cli::DescribeDbClusters = serde_json::from_str(include_str!(
            "../../tests/fixtures/describe-db-clusters.json"
        ))
        .unwrap();
        let params: cli::DescribeDbClusterParameters = serde_json::from_str(include_str!(
            "../../tests/fixtures/describe-db-cluster-parameters.json"
        ))
        .unwrap();
        let tags: cli::ListTagsForResource = serde_json::from_str(include_str!(
            "../../tests/fixtures/list-tags-for-resource.json"
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
            s.settings = ClusterSettings {
                storage_encrypted: true,
                deletion_protection: true,
                backup_retention_period: 7,
                iam_database_authentication: false,
                copy_tags_to_snapshot: true,
                multi_az: true,
            };
            s
        });
    }
}
