//! Neptune.5: Neptune DB clusters should have automated backups enabled:
//! `BackupRetentionPeriod` of at least `[controls."Neptune.5"]
//! min_retention_days` (Security Hub's parameter, 7 to 35, default 7).
//! Fixed in place: ModifyDBCluster BackupRetentionPeriod = the larger of the
//! current period and the minimum (never lowered), applied at once.

use super::setting::{modify_command, SettingControl};
use super::{ClusterSetting, Safety, SettingValue, Target};
use crate::config::Config;

pub static CONTROL: SettingControl = SettingControl {
    id: "Neptune.5",
    title: "Neptune DB clusters should have automated backups enabled",
    failing: "keeps automated backups too few days",
    safety: Safety::Auto,
    setting: Some(ClusterSetting::BackupRetentionPeriod),
    problem: |s, config| {
        let min = min_days(config);
        (s.backup_retention_period < min).then(|| {
            format!(
                "automated backups are kept {} days, fewer than {min}",
                s.backup_retention_period
            )
        })
    },
    target: |s, config| SettingValue::Days(s.backup_retention_period.max(min_days(config))),
    compliant: |config| {
        format!(
            "automated backups are kept at least {} days.",
            min_days(config)
        )
    },
    not_automatic: "",
    manual_fix,
    iam_actions: &["rds:ModifyDBCluster"],
    fix_summary: "ModifyDBCluster BackupRetentionPeriod=max(current, min_retention_days)",
};

/// `[controls."Neptune.5"] min_retention_days`.
pub fn min_days(config: &Config) -> i32 {
    i32::try_from(config.controls.neptune5_min_retention_days()).unwrap_or(7)
}

fn manual_fix(t: &Target<'_>) -> Vec<String> {
    vec![format!(
        "Keep automated backups at least the minimum number of days (it applies at once, no reboot; backup storage beyond one day of the cluster's volume is billed): {}",
        modify_command(t, "--backup-retention-period <days, 7 to 35>")
    )]
}
