//! What `hubtriage check-config` says of each control: the resource it
//! checks, its safety class, its fix, and what a `remediate` decision does
//! with it under this config.

use std::fmt::Write;

use super::{all, Safety};
use crate::config::{Config, Mode, RuleAction};

/// One line per control.
pub fn render(c: &Config) -> String {
    let mut out = String::from("controls (what a remediate decision does with each):\n");
    let applying = c.remediation.mode == Mode::Apply;
    for control in all() {
        let id = control.id();
        let naming: Vec<&str> = c
            .rule
            .iter()
            .filter(|r| r.action == RuleAction::Remediate)
            .filter(|r| {
                r.controls
                    .as_ref()
                    .is_some_and(|l| l.iter().any(|x| x == id))
            })
            .map(|r| r.name.as_str())
            .collect();
        let does = match control.safety() {
            Safety::TicketOnly => "a ticket with the manual fix".to_string(),
            Safety::OptIn if naming.is_empty() => {
                "a ticket: no remediate rule names it in controls".to_string()
            }
            Safety::OptIn => format!("remediated by rule {} only", naming.join(", ")),
            Safety::Auto => "remediated".to_string(),
        };
        let does = if applying || does.starts_with("a ticket") {
            does
        } else {
            format!("{does} (planned only: mode is dry-run)")
        };
        let setting = match id {
            "Neptune.5" => format!(
                " (at least {} days)",
                c.controls.neptune5_min_retention_days()
            ),
            _ => String::new(),
        };
        let _ = writeln!(
            out,
            "  {id} {} [{}]: {}{setting}; {does}",
            control.kind().noun(),
            control.safety().as_str(),
            control.fix_summary(),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_control_says_what_a_remediation_does_with_it() {
        let c = crate::testing::config(
            "[remediation]\nmode = \"apply\"\n[[rule]]\nname = \"iam-auth\"\naction = \"remediate\"\ncontrols = [\"Neptune.7\"]\n[controls.\"Neptune.5\"]\nmin_retention_days = 14\n",
        );
        let text = render(&c);
        assert_eq!(text.lines().count(), 10, "{text}");
        assert!(
            text.contains(
                "Neptune.4 cluster [auto]: ModifyDBCluster DeletionProtection=true; remediated"
            ),
            "{text}"
        );
        assert!(text.contains("Neptune.7 cluster [opt-in]: ModifyDBCluster EnableIAMDatabaseAuthentication=true; remediated by rule iam-auth only"), "{text}");
        assert!(text.contains("(at least 14 days)"), "{text}");
        assert!(text.contains("Neptune.3 cluster snapshot [auto]"), "{text}");
        assert!(text.contains("Neptune.1 cluster [ticket only]"), "{text}");
        let dry = render(&crate::testing::config(""));
        assert!(dry.contains("Neptune.7 cluster [opt-in]: ModifyDBCluster EnableIAMDatabaseAuthentication=true; a ticket: no remediate rule names it"), "{dry}");
        assert!(
            dry.contains("remediated (planned only: mode is dry-run)"),
            "{dry}"
        );
    }
}
