//! Neptune.8: Neptune DB clusters should be configured to copy tags to
//! snapshots. Fixed in place: ModifyDBCluster CopyTagsToSnapshot=true,
//! applied at once (snapshots made before keep their tags as they are).

use super::setting::{modify_command, SettingControl};
use super::{ClusterSetting, Safety, SettingValue, Target};

pub static CONTROL: SettingControl = SettingControl {
    id: "Neptune.8",
    title: "Neptune DB clusters should be configured to copy tags to snapshots",
    failing: "does not copy tags to snapshots",
    safety: Safety::Auto,
    setting: Some(ClusterSetting::CopyTagsToSnapshot),
    problem: |s, _| {
        (!s.copy_tags_to_snapshot).then(|| "tags are not copied to snapshots".to_string())
    },
    target: |_, _| SettingValue::Flag(true),
    compliant: |_| "tags are copied to snapshots.".into(),
    not_automatic: "",
    manual_fix,
    iam_actions: &["rds:ModifyDBCluster"],
    fix_summary: "ModifyDBCluster CopyTagsToSnapshot=true",
    passes_when: "`CopyTagsToSnapshot`",
    reads: &["CopyTagsToSnapshot"],
    stack: Some(("CopyTagsToSnapshot", "copy_tags_to_snapshot")),
};

fn manual_fix(t: &Target<'_>) -> Vec<String> {
    vec![format!(
        "Copy the cluster's tags to its snapshots (it applies at once): {}",
        modify_command(t, "--copy-tags-to-snapshot")
    )]
}
