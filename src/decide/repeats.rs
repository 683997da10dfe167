//! A fix that something keeps reverting. When the change journal shows that
//! hubtriage already made this control's fix on this resource
//! `[remediation] max_repeats` times within `repeat_window_days`, the fix is
//! not made again: the decision becomes a ticket that says what reverts it
//! may be (a stack, a script, a person) and names the earlier changes.
//! Without a journal this check is off (`check-config` says so).

use chrono::{DateTime, Duration, Utc};

use super::{Action, Decision};
use crate::config::Remediation;

/// A change hubtriage made earlier (a `done` change entry of the journal).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EarlierFix {
    pub id: String,
    pub time: DateTime<Utc>,
    /// The remediation it belongs to (its changes count once).
    pub remediation: Option<String>,
    pub setting: String,
    pub after: String,
}

/// How a setting set back reads: "turned off", "lowered", "changed back".
fn reverted(after: &str) -> &'static str {
    match after {
        "true" => "turned off",
        a if a.parse::<i64>().is_ok() => "lowered",
        _ => "changed back",
    }
}

/// Turns a `remediate` decision into a ticket when `earlier` (this
/// control's fixes of this resource) holds `max_repeats` remediations within
/// `repeat_window_days` before `now`.
pub fn stop_repeated_fix(
    decision: &mut Decision,
    earlier: &[EarlierFix],
    policy: &Remediation,
    now: DateTime<Utc>,
) {
    if decision.action != Action::Remediate {
        return;
    }
    let since = now - Duration::days(i64::from(policy.repeat_window_days));
    let mut recent: Vec<&EarlierFix> = earlier.iter().filter(|e| e.time >= since).collect();
    recent.sort_by_key(|e| e.time);
    let mut remediations: Vec<&str> = recent
        .iter()
        .map(|e| e.remediation.as_deref().unwrap_or(e.id.as_str()))
        .collect();
    remediations.dedup();
    let times = remediations.len();
    if times < policy.max_repeats {
        return;
    }
    let Some(first) = recent.first() else { return };
    let setting = first.setting.as_str();
    let made: Vec<String> = recent
        .iter()
        .map(|e| format!("{} ({})", e.time.format("%Y-%m-%d %H:%M UTC"), e.id))
        .collect();
    decision.action = Action::Ticket;
    decision.plan.clear();
    decision.reason = format!(
        "{setting} was {} again {} times since {}: something reverts it (a stack, a script, a person). hubtriage made this fix {times} times in {} days ({}), and does not make it again ([remediation] max_repeats = {}).",
        reverted(&first.after),
        times + 1,
        first.time.format("%Y-%m-%d %H:%M UTC"),
        policy.repeat_window_days,
        made.join(", "),
        policy.max_repeats,
    );
    decision.fix = vec![
        format!("Find what sets {setting} back: CloudTrail's ModifyDBCluster events on the {} by another principal than hubtriage's role, or the stack or script that owns it; stop it there.", "resource"),
        format!("hubtriage's earlier changes, in the journal: {}", made.join(", ")),
        "Then fix the setting once more, or let hubtriage do it: it will, once fewer fixes fall within repeat_window_days.".to_string(),
    ];
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn fix(id: &str, time: &str) -> EarlierFix {
        EarlierFix {
            id: id.into(),
            time: at(time),
            remediation: Some(format!("r-{id}")),
            setting: "DeletionProtection".into(),
            after: "true".into(),
        }
    }

    #[test]
    fn a_fix_reverted_again_and_again_becomes_a_ticket_naming_the_earlier_changes() {
        let policy = Remediation::default();
        let now = at("2026-12-08T12:00:00Z");
        let mut d = crate::testing::ticket_decision("f");
        d.action = Action::Remediate;
        let one = [fix("e1", "2026-12-05T10:00:00Z")];
        stop_repeated_fix(&mut d, &one, &policy, now);
        assert_eq!(d.action, Action::Remediate, "once is not a pattern");
        let two = [
            fix("e1", "2026-12-05T10:00:00Z"),
            fix("e2", "2026-12-07T10:00:00Z"),
        ];
        stop_repeated_fix(&mut d, &two, &policy, now);
        assert_eq!(d.action, Action::Ticket);
        assert!(
            d.reason.starts_with("DeletionProtection was turned off again 3 times since 2026-12-05 10:00 UTC: something reverts it (a stack, a script, a person)."),
            "{}",
            d.reason
        );
        assert!(
            d.reason.contains("(e1)") && d.reason.contains("(e2)"),
            "{}",
            d.reason
        );
        assert!(d.fix.iter().any(|l| l.contains("e1") && l.contains("e2")));
        // Outside the window they do not count.
        let mut d2 = crate::testing::ticket_decision("f");
        d2.action = Action::Remediate;
        let old = [
            fix("e1", "2026-11-01T10:00:00Z"),
            fix("e2", "2026-12-07T10:00:00Z"),
        ];
        stop_repeated_fix(&mut d2, &old, &policy, now);
        assert_eq!(d2.action, Action::Remediate);
    }
}
