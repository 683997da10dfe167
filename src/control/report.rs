//! What `hubtriage check-config` says of each control: the resource it
//! checks, its safety class, its fix, and what a `remediate` decision does
//! with it under this config.

use std::fmt::Write;

use super::{all, by_id, Safety};
use crate::config::{covers, Config, Mode, RuleAction};

/// The rules that decide findings of `id` (their `controls` name it or are
/// absent), and whether an earlier one of them matches every such finding
/// (then no later one is ever reached for it).
fn deciding_rules<'a>(c: &'a Config, id: &str) -> Vec<(&'a crate::config::Rule, Option<&'a str>)> {
    let mut catch_all: Option<&str> = None;
    let mut out = Vec::new();
    for r in c.rule.iter().filter(|r| covers(&r.controls, id)) {
        out.push((r, catch_all));
        if catch_all.is_none() && r.matcher.is_empty() {
            catch_all = Some(r.name.as_str());
        }
    }
    out
}

/// What check-config warns of the rules, seen from the controls: a rule an
/// earlier rule always wins over for a control it names, and a `remediate`
/// rule that names only ticket-only controls (they are always tickets).
pub fn warnings(c: &Config) -> Vec<String> {
    let mut out = Vec::new();
    for control in all() {
        let id = control.id();
        for (rule, shadowed_by) in deciding_rules(c, id) {
            let named = rule
                .controls
                .as_ref()
                .is_some_and(|l| l.iter().any(|x| x == id));
            if let (Some(earlier), true) = (shadowed_by, named) {
                out.push(format!(
                    "rule {} never decides {id}: rule {earlier}, before it, matches every finding of {id}",
                    rule.name
                ));
            }
        }
    }
    for rule in c.rule.iter().filter(|r| r.action == RuleAction::Remediate) {
        let Some(list) = &rule.controls else { continue };
        let ticket_only = list
            .iter()
            .all(|id| by_id(id).is_some_and(|control| control.safety() == Safety::TicketOnly));
        if ticket_only {
            out.push(format!(
                "rule {} remediates only ticket-only controls ({}): hubtriage never fixes them in place, so their findings get tickets",
                rule.name,
                list.join(", ")
            ));
        }
    }
    out
}

/// One line per control.
pub fn render(c: &Config) -> String {
    let mut out = String::from("controls (what a remediate decision does with each):\n");
    let applying = c.remediation.mode == Mode::Apply;
    for control in all() {
        let id = control.id();
        // The remediate rules naming it that can be reached for it.
        let naming: Vec<&str> = deciding_rules(c, id)
            .into_iter()
            .filter(|(r, shadowed_by)| shadowed_by.is_none() && r.action == RuleAction::Remediate)
            .filter(|(r, _)| {
                r.controls
                    .as_ref()
                    .is_some_and(|l| l.iter().any(|x| x == id))
            })
            .map(|(r, _)| r.name.as_str())
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
        let setting = control
            .settings_summary(c)
            .map(|s| format!(" ({s})"))
            .unwrap_or_default();
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
