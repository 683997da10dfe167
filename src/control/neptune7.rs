//! Neptune.7: Neptune DB clusters should have IAM database authentication
//! enabled. ModifyDBCluster EnableIAMDatabaseAuthentication=true applies at
//! once, and from then on every request must be signed with SigV4: clients
//! that do not sign break. Opt-in: only a `remediate` rule whose `controls`
//! names Neptune.7 fixes it; otherwise a ticket.

use super::setting::{modify_command, SettingControl};
use super::{ClusterSetting, Safety, SettingValue, Target};

pub static CONTROL: SettingControl = SettingControl {
    id: "Neptune.7",
    title: "Neptune DB clusters should have IAM database authentication enabled",
    failing: "does not use IAM database authentication",
    safety: Safety::OptIn,
    setting: Some(ClusterSetting::EnableIamDatabaseAuthentication),
    problem: |s, _| {
        (!s.iam_database_authentication).then(|| "IAM database authentication is off".to_string())
    },
    target: |_, _| SettingValue::Flag(true),
    compliant: |_| "IAM database authentication is on.".into(),
    not_automatic: "Neptune.7 changes how clients connect (unsigned requests fail at once); remediate it only with a rule that names it in controls.",
    manual_fix,
    iam_actions: &["rds:ModifyDBCluster"],
    fix_summary: "ModifyDBCluster EnableIAMDatabaseAuthentication=true",
    passes_when: "`IAMDatabaseAuthenticationEnabled`",
    reads: &["IAMDatabaseAuthenticationEnabled"],
    stack: Some(("IamAuthEnabled", "iam_database_authentication_enabled")),
};

fn manual_fix(t: &Target<'_>) -> Vec<String> {
    vec![
        "Make every client sign its requests with SigV4 and give its role the neptune-db:* permissions it needs: unsigned requests fail as soon as IAM authentication is on.".into(),
        format!("Then turn IAM database authentication on (it applies at once): {}", modify_command(t, "--enable-iam-database-authentication")),
    ]
}
