//! Neptune.4: Neptune DB clusters should have deletion protection enabled.
//! Fixed in place: ModifyDBCluster DeletionProtection=true, applied at once.

use super::setting::{modify_command, SettingControl};
use super::{ClusterSetting, Safety, SettingValue, Target};

pub static CONTROL: SettingControl = SettingControl {
    id: "Neptune.4",
    title: "Neptune DB clusters should have deletion protection enabled",
    failing: "has no deletion protection",
    safety: Safety::Auto,
    setting: Some(ClusterSetting::DeletionProtection),
    problem: |s, _| (!s.deletion_protection).then(|| "deletion protection is off".to_string()),
    target: |_, _| SettingValue::Flag(true),
    compliant: |_| "deletion protection is on.".into(),
    not_automatic: "",
    manual_fix,
    iam_actions: &["rds:ModifyDBCluster"],
    fix_summary: "ModifyDBCluster DeletionProtection=true",
    passes_when: "`DeletionProtection`",
    reads: &["DeletionProtection"],
    stack: Some(("DeletionProtection", "deletion_protection")),
};

fn manual_fix(t: &Target<'_>) -> Vec<String> {
    vec![format!(
        "Turn deletion protection on (it applies at once, no reboot): {}",
        modify_command(t, "--deletion-protection")
    )]
}
