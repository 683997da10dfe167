//! Neptune.5: Neptune DB clusters should have automated backups enabled:
//! `BackupRetentionPeriod` of at least the minimum, which is the stricter of
//! `[controls."Neptune.5"] min_retention_days` (7 to 35, default 7) and the
//! finding's own `minimumBackupRetentionPeriod` (Security Hub's control
//! parameter: its check used it, so a cluster that fails it is never
//! resolved). Fixed in place: ModifyDBCluster BackupRetentionPeriod = the
//! larger of the current period and the minimum (never lowered), applied at
//! once. A parameter that cannot be read is a problem, and no fix: a ticket.

use super::iac::StackChange;
use super::setting::modify_command;
use super::{
    not_skipped, ClusterSetting, Control, Criteria, Kind, Plan, Safety, SettingValue, Step, Target,
};
use crate::state::LiveResource;

pub struct Neptune5;

pub static CONTROL: Neptune5 = Neptune5;

/// The finding's parameter (Security Hub's name).
pub const PARAMETER: &str = "minimumBackupRetentionPeriod";

/// The minimum that applies to a finding, and whence it comes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Minimum {
    pub days: i32,
    /// `None`: the config's (the finding carries no parameter); else the words
    /// the reason adds.
    pub from: Option<String>,
}

/// `[controls."Neptune.5"] min_retention_days`, else Security Hub's default, 7.
pub fn config_days(c: Criteria<'_>) -> i32 {
    days_of(c.config)
}

fn days_of(config: &crate::config::Config) -> i32 {
    config
        .controls
        .of("Neptune.5")
        .and_then(|t| t.min_retention_days)
        .and_then(|d| i32::try_from(d).ok())
        .unwrap_or(7)
}

/// The stricter of the config's minimum and the finding's parameter; `Err`
/// when the finding's parameter is not a number of days from 1 to 35.
pub fn minimum(c: Criteria<'_>) -> Result<Minimum, String> {
    let config = config_days(c);
    let Some(text) = c.parameter(PARAMETER) else {
        return Ok(Minimum {
            days: config,
            from: None,
        });
    };
    let days = text
        .trim()
        .parse::<i32>()
        .ok()
        .filter(|d| (1..=35).contains(d))
        .ok_or_else(|| {
            format!("the finding's {PARAMETER} {text:?} is not a number of days from 1 to 35")
        })?;
    let from = match days.cmp(&config) {
        std::cmp::Ordering::Greater => format!("the finding's {PARAMETER}"),
        std::cmp::Ordering::Less => {
            "[controls.\"Neptune.5\"] min_retention_days, stricter than the finding's".to_string()
        }
        std::cmp::Ordering::Equal => format!("the finding's {PARAMETER} and min_retention_days"),
    };
    Ok(Minimum {
        days: days.max(config),
        from: Some(from),
    })
}

fn period(live: LiveResource<'_>) -> Option<i32> {
    match live {
        LiveResource::Cluster(c) => Some(c.settings.backup_retention_period),
        LiveResource::Snapshot(_) => None,
    }
}

fn source(m: &Minimum) -> String {
    m.from
        .as_ref()
        .map(|f| format!(" ({f})"))
        .unwrap_or_default()
}

impl Control for Neptune5 {
    fn id(&self) -> &'static str {
        "Neptune.5"
    }

    fn title(&self) -> &'static str {
        "Neptune DB clusters should have automated backups enabled"
    }

    fn failing(&self) -> &'static str {
        "keeps automated backups too few days"
    }

    fn kind(&self) -> Kind {
        Kind::Cluster
    }

    fn safety(&self) -> Safety {
        Safety::Auto
    }

    fn problems(&self, live: LiveResource<'_>, criteria: Criteria<'_>) -> Vec<String> {
        let Some(kept) = period(live) else {
            return Vec::new();
        };
        match minimum(criteria) {
            Err(why) => vec![why],
            Ok(m) if kept < m.days => vec![format!(
                "automated backups are kept {kept} days, fewer than {}{}",
                m.days,
                source(&m)
            )],
            Ok(_) => Vec::new(),
        }
    }

    fn compliant(&self, criteria: Criteria<'_>) -> String {
        match minimum(criteria) {
            Ok(m) => format!(
                "automated backups are kept at least {} days{}.",
                m.days,
                source(&m)
            ),
            Err(why) => why,
        }
    }

    fn plan(&self, live: LiveResource<'_>, criteria: Criteria<'_>) -> Result<Plan, String> {
        not_skipped(live)?;
        let Some(kept) = period(live) else {
            return Err("Neptune.5 checks clusters.".into());
        };
        let m = minimum(criteria)?;
        let mut steps = Vec::new();
        if kept < m.days {
            steps.push(Step::ModifyCluster {
                setting: ClusterSetting::BackupRetentionPeriod,
                value: SettingValue::Days(kept.max(m.days)),
            });
        }
        steps.push(Step::Verify);
        Ok(Plan { steps, note: None })
    }

    fn not_automatic(&self) -> &'static str {
        ""
    }

    fn manual_fix(&self, t: &Target<'_>) -> Vec<String> {
        vec![format!(
            "Keep automated backups at least the minimum number of days (it applies at once, no reboot; backup storage beyond one day of the cluster's volume is billed): {}",
            modify_command(t, "--backup-retention-period <days, 7 to 35>")
        )]
    }

    fn iam_actions(&self) -> &'static [&'static str] {
        &["rds:ModifyDBCluster"]
    }

    fn passes_when(&self) -> &'static str {
        "`BackupRetentionPeriod` at least the stricter of `[controls.\"Neptune.5\"] min_retention_days` (7 to 35, default 7) and the finding's `minimumBackupRetentionPeriod`"
    }

    fn fix_summary(&self) -> &'static str {
        "ModifyDBCluster BackupRetentionPeriod=max(current, min_retention_days, the finding's minimumBackupRetentionPeriod)"
    }

    fn verified(&self, live: LiveResource<'_>, _criteria: Criteria<'_>) -> String {
        period(live)
            .map(|p| format!("BackupRetentionPeriod is {p}"))
            .unwrap_or_default()
    }

    fn stack_change(&self, live: LiveResource<'_>, criteria: Criteria<'_>) -> Option<StackChange> {
        let (kept, m) = (period(live)?, minimum(criteria).ok()?);
        let days = kept.max(m.days).to_string();
        Some(StackChange::cluster(
            "BackupRetentionPeriod",
            "backup_retention_period",
            &days,
        ))
    }

    fn reads(&self) -> &'static [&'static str] {
        &["BackupRetentionPeriod"]
    }

    fn config_keys(&self) -> &'static [&'static str] {
        &["min_retention_days"]
    }

    fn settings_summary(&self, config: &crate::config::Config) -> Option<String> {
        Some(format!("at least {} days", days_of(config)))
    }

    fn warnings(&self, criteria: Criteria<'_>) -> Vec<String> {
        let config = config_days(criteria);
        match (criteria.parameter(PARAMETER), minimum(criteria)) {
            (Some(p), Ok(m)) if p.trim() != config.to_string() => vec![format!(
                "Neptune.5: a finding's {PARAMETER} is {} and [controls.\"Neptune.5\"] min_retention_days is {config}: the stricter, {}, applies",
                p.trim(),
                m.days
            )],
            (Some(_), Err(why)) => vec![format!("Neptune.5: {why}; such findings get a ticket")],
            _ => Vec::new(),
        }
    }
}
