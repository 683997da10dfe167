//! The controls that one cluster setting decides, fixed (where it is safe)
//! by one ModifyDBCluster call that Neptune applies at once, whatever
//! `ApplyImmediately` says: no reboot and no maintenance window. Each
//! control's module (neptune1, 4, 5, 7, 8, 9) fills one [`SettingControl`].

use serde::{Deserialize, Serialize};

use super::iac::StackChange;
use super::{not_skipped, Control, Criteria, Kind, Plan, Safety, Step, Target};
use crate::state::{ClusterSettings, LiveResource};

/// A ModifyDBCluster parameter, as the API names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ClusterSetting {
    DeletionProtection,
    BackupRetentionPeriod,
    CopyTagsToSnapshot,
    #[serde(rename = "EnableIAMDatabaseAuthentication")]
    EnableIamDatabaseAuthentication,
}

impl ClusterSetting {
    pub fn as_str(self) -> &'static str {
        match self {
            ClusterSetting::DeletionProtection => "DeletionProtection",
            ClusterSetting::BackupRetentionPeriod => "BackupRetentionPeriod",
            ClusterSetting::CopyTagsToSnapshot => "CopyTagsToSnapshot",
            ClusterSetting::EnableIamDatabaseAuthentication => "EnableIAMDatabaseAuthentication",
        }
    }

    /// The setting ModifyDBCluster names `name` (serde's derived names are
    /// the API's, so a new variant is named here with no list to keep).
    pub fn named(name: &str) -> Option<ClusterSetting> {
        serde_json::from_value(serde_json::Value::String(name.to_string())).ok()
    }

    /// The setting's value in DescribeDBClusters' terms.
    pub fn value_in(self, s: &ClusterSettings) -> SettingValue {
        match self {
            ClusterSetting::DeletionProtection => SettingValue::Flag(s.deletion_protection),
            ClusterSetting::BackupRetentionPeriod => SettingValue::Days(s.backup_retention_period),
            ClusterSetting::CopyTagsToSnapshot => SettingValue::Flag(s.copy_tags_to_snapshot),
            ClusterSetting::EnableIamDatabaseAuthentication => {
                SettingValue::Flag(s.iam_database_authentication)
            }
        }
    }
}

/// A setting's value: a flag, or a number of days.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum SettingValue {
    Flag(bool),
    Days(i32),
}

impl SettingValue {
    /// The flag, when it is one.
    pub fn flag(self) -> Option<bool> {
        match self {
            SettingValue::Flag(b) => Some(b),
            SettingValue::Days(_) => None,
        }
    }

    /// The number of days, when it is one.
    pub fn days(self) -> Option<i32> {
        match self {
            SettingValue::Days(d) => Some(d),
            SettingValue::Flag(_) => None,
        }
    }
}

impl std::fmt::Display for SettingValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SettingValue::Flag(b) => write!(f, "{b}"),
            SettingValue::Days(d) => write!(f, "{d}"),
        }
    }
}

/// A control decided by the cluster's settings.
pub struct SettingControl {
    pub id: &'static str,
    pub title: &'static str,
    pub failing: &'static str,
    pub safety: Safety,
    /// The setting the fix changes; `None`: no fix in place (ticket only).
    pub setting: Option<ClusterSetting>,
    /// What fails, if anything.
    pub problem: fn(&ClusterSettings, Criteria<'_>) -> Option<String>,
    /// The value the fix sets.
    pub target: fn(&ClusterSettings, Criteria<'_>) -> SettingValue,
    pub compliant: fn(Criteria<'_>) -> String,
    pub not_automatic: &'static str,
    pub manual_fix: fn(&Target<'_>) -> Vec<String>,
    pub iam_actions: &'static [&'static str],
    pub fix_summary: &'static str,
    /// When live state passes, in a few words.
    pub passes_when: &'static str,
    /// The describe-db-clusters fields the check reads.
    pub reads: &'static [&'static str],
    /// The CloudFormation property of `AWS::Neptune::DBCluster` and the
    /// Terraform argument of `aws_neptune_cluster` that hold the setting.
    pub stack: Option<(&'static str, &'static str)>,
}

impl SettingControl {
    fn settings<'a>(&self, live: LiveResource<'a>) -> Option<&'a ClusterSettings> {
        match live {
            LiveResource::Cluster(c) => Some(&c.settings),
            LiveResource::Snapshot(_) => None,
        }
    }
}

impl Control for SettingControl {
    fn id(&self) -> &'static str {
        self.id
    }

    fn title(&self) -> &'static str {
        self.title
    }

    fn failing(&self) -> &'static str {
        self.failing
    }

    fn kind(&self) -> Kind {
        Kind::Cluster
    }

    fn safety(&self) -> Safety {
        self.safety
    }

    fn problems(&self, live: LiveResource<'_>, criteria: Criteria<'_>) -> Vec<String> {
        self.settings(live)
            .and_then(|s| (self.problem)(s, criteria))
            .into_iter()
            .collect()
    }

    fn compliant(&self, criteria: Criteria<'_>) -> String {
        (self.compliant)(criteria)
    }

    fn plan(&self, live: LiveResource<'_>, criteria: Criteria<'_>) -> Result<Plan, String> {
        not_skipped(live)?;
        let (Some(setting), Some(settings)) = (self.setting, self.settings(live)) else {
            return Err(format!("{} has no fix in place.", self.id));
        };
        let mut steps = Vec::new();
        if (self.problem)(settings, criteria).is_some() {
            steps.push(Step::ModifyCluster {
                setting,
                value: (self.target)(settings, criteria),
            });
        }
        steps.push(Step::Verify);
        Ok(Plan { steps, note: None })
    }

    fn not_automatic(&self) -> &'static str {
        self.not_automatic
    }

    fn manual_fix(&self, target: &Target<'_>) -> Vec<String> {
        (self.manual_fix)(target)
    }

    fn iam_actions(&self) -> &'static [&'static str] {
        self.iam_actions
    }

    fn fix_summary(&self) -> &'static str {
        self.fix_summary
    }

    fn passes_when(&self) -> &'static str {
        self.passes_when
    }

    fn reads(&self) -> &'static [&'static str] {
        self.reads
    }

    fn stack_change(&self, live: LiveResource<'_>, criteria: Criteria<'_>) -> Option<StackChange> {
        let (property, argument) = self.stack?;
        let settings = self.settings(live)?;
        let value = (self.target)(settings, criteria).to_string();
        Some(StackChange::cluster(property, argument, &value))
    }

    fn verified(&self, live: LiveResource<'_>, _criteria: Criteria<'_>) -> String {
        match (self.setting, self.settings(live)) {
            (Some(setting), Some(s)) => {
                format!("{} is {}", setting.as_str(), setting.value_in(s))
            }
            _ => String::new(),
        }
    }
}

/// `aws neptune modify-db-cluster` for the target's cluster with `args`.
pub fn modify_command(t: &Target<'_>, args: &str) -> String {
    format!(
        "aws neptune modify-db-cluster --region {} --db-cluster-identifier {} {args}",
        t.region, t.cluster
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_setting_is_named_as_the_api_names_it() {
        for s in [
            ClusterSetting::DeletionProtection,
            ClusterSetting::BackupRetentionPeriod,
            ClusterSetting::CopyTagsToSnapshot,
            ClusterSetting::EnableIamDatabaseAuthentication,
        ] {
            assert_eq!(ClusterSetting::named(s.as_str()), Some(s));
        }
        assert_eq!(
            ClusterSetting::named("EnableIamDatabaseAuthentication"),
            None
        );
        assert_eq!(ClusterSetting::named("restore"), None);
    }
}
