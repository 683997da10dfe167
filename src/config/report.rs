//! What `hubtriage check-config` prints: the rules in the order they are
//! applied, and warnings for suppressions that have expired or soon will.

use std::fmt::Write;

use chrono::{DateTime, Duration, Utc};

use super::Config;

/// A suppression expiring within this many days gets a warning.
pub const EXPIRY_WARNING_DAYS: i64 = 30;

pub fn render(file: &str, c: &Config, now: DateTime<Utc>) -> String {
    let mut out = String::new();
    let list = |v: &[String]| {
        if v.is_empty() {
            "all".to_string()
        } else {
            v.join(", ")
        }
    };
    let r = &c.remediation;
    let _ = writeln!(out, "{file}: OK");
    let _ = writeln!(
        out,
        "scope: accounts {}; regions {}",
        list(&c.scope.accounts),
        list(&c.scope.regions)
    );
    let _ = writeln!(
        out,
        "remediation: mode {}, reboot {}, shared_parameter_group {}, new groups named {}<cluster>, log retention {}",
        kebab(&r.mode),
        kebab(&r.reboot),
        kebab(&r.shared_parameter_group),
        r.parameter_group_prefix,
        r.log_retention_days
            .map(|d| format!("{d} days"))
            .unwrap_or_else(|| "left alone".into())
    );
    let _ = writeln!(
        out,
        "suppressions (checked first; the first unexpired match wins):"
    );
    if c.suppress.is_empty() {
        let _ = writeln!(out, "  (none)");
    }
    for (i, s) in c.suppress.iter().enumerate() {
        let state = if s.expires.is_expired(now) {
            "EXPIRED"
        } else {
            "active"
        };
        let _ = writeln!(
            out,
            "  {}. {} [{state}, until {}] {} when {}: {}",
            i + 1,
            s.name,
            s.expires.text,
            controls(&s.controls),
            s.matcher,
            s.reason
        );
    }
    let _ = writeln!(out, "rules (the first match wins):");
    if c.rule.is_empty() {
        let _ = writeln!(out, "  (none)");
    }
    for (i, rule) in c.rule.iter().enumerate() {
        let _ = writeln!(
            out,
            "  {}. {} -> {} {} when {}",
            i + 1,
            rule.name,
            kebab(&rule.action),
            controls(&rule.controls),
            rule.matcher
        );
    }
    let _ = writeln!(out, "default: {}", kebab(&c.default.action));
    let _ = writeln!(out, "tickets: {}", tickets(c));
    out
}

/// The controls a rule or suppression applies to, as check-config says it.
fn controls(list: &Option<Vec<String>>) -> String {
    match list {
        None => "for every control".to_string(),
        Some(ids) => format!("for {} only", ids.join(", ")),
    }
}

/// Where tickets go and which variables hold the credentials (names only:
/// the values are never read here).
fn tickets(c: &Config) -> String {
    let t = &c.ticket;
    let kind = kebab(&t.kind);
    if t.kind == crate::config::TicketKind::Log {
        return "log lines (no ticket system)".into();
    }
    let url = t.url.as_deref().unwrap_or("");
    let variables: Vec<&str> = [
        &t.email_env,
        &t.token_env,
        &t.user_env,
        &t.password_env,
        &t.secret_env,
    ]
    .into_iter()
    .filter_map(|v| v.as_deref())
    .collect();
    let mut line = format!("{kind} at {url}");
    if let Some(p) = &t.project {
        line.push_str(&format!(", project {p}"));
    }
    line.push_str(&format!(
        ", credentials from {}; on_resolve {}, regression {} within {} days",
        variables.join(", "),
        kebab(&t.on_resolve),
        kebab(&t.regression),
        t.reopen_within_days
    ));
    match &c.coordination {
        Some(co) => line.push_str(&format!(
            "; shared through DynamoDB table {} (leases of {} s)",
            co.table, co.lease_seconds
        )),
        None => line.push_str("; no coordination table (one task)"),
    }
    line
}

/// One line per suppression that has expired or expires within 30 days.
pub fn warnings(c: &Config, now: DateTime<Utc>) -> Vec<String> {
    let mut out = Vec::new();
    if c.journal.is_none() {
        out.push(
            "no [journal] table: no change journal will be kept, so `hubtriage history`, `report` and `undo` have nothing to read, and a fix something keeps reverting ([remediation] max_repeats) is not noticed"
                .to_string(),
        );
    }
    let expiring = c.suppress.iter().filter_map(|s| {
        if s.expires.is_expired(now) {
            Some(format!(
                "suppression {} expired ({}); it no longer applies",
                s.name, s.expires.text
            ))
        } else if s.expires.at - now <= Duration::days(EXPIRY_WARNING_DAYS) {
            let days = (s.expires.at - now).num_days();
            Some(format!(
                "suppression {} expires in {days} days ({})",
                s.name, s.expires.text
            ))
        } else {
            None
        }
    });
    out.extend(expiring);
    out
}

/// One line per environment variable the config names for a secret
/// (`[ticket]` credentials, `[accounts] external_id_env`) that `is_set` says
/// is not set here. Only names are said, never values: `run` needs them set
/// and stops without them, but `check-config` is often run where they are not.
pub fn unset_variables(c: &Config, is_set: impl Fn(&str) -> bool) -> Vec<String> {
    let t = &c.ticket;
    let mut named: Vec<(&str, &Option<String>)> = Vec::new();
    if t.kind != crate::config::TicketKind::Log {
        named.extend([
            ("[ticket] email_env", &t.email_env),
            ("[ticket] token_env", &t.token_env),
            ("[ticket] user_env", &t.user_env),
            ("[ticket] password_env", &t.password_env),
            ("[ticket] secret_env", &t.secret_env),
        ]);
    }
    if c.accounts.role_arn.is_some() {
        named.push(("[accounts] external_id_env", &c.accounts.external_id_env));
    }
    named
        .into_iter()
        .filter_map(|(key, name)| Some((key, name.as_deref()?)))
        .filter(|(_, name)| !is_set(name))
        .map(|(key, name)| {
            format!(
                "{name} is not set in this environment ({key} names it); `hubtriage run` needs it"
            )
        })
        .collect()
}

/// The config spelling of an enum value ("dry-run", "maintenance-window", ...).
fn kebab<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_each_secret_variable_that_is_not_set() {
        let c = Config::from_toml_with_env(
            "t.toml",
            "[ticket]\ntype = \"servicenow\"\nurl = \"https://x.service-now.com\"\nuser_env = \"SN_U\"\npassword_env = \"SN_P\"\n",
            vec![],
        )
        .unwrap();
        let w = unset_variables(&c, |name| name == "SN_U");
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].starts_with("SN_P is not set") && w[0].contains("[ticket] password_env"));
        assert!(unset_variables(&c, |_| true).is_empty());
        let log = Config::from_toml_with_env("t.toml", "", vec![]).unwrap();
        assert!(unset_variables(&log, |_| false).is_empty());
    }

    #[test]
    fn warns_that_no_journal_is_kept_without_one() {
        let now = Utc::now();
        let without = Config::from_toml_with_env("t.toml", "", vec![]).unwrap();
        let w = warnings(&without, now);
        assert!(w.iter().any(|w| w.contains("no [journal] table")), "{w:?}");
        let with =
            Config::from_toml_with_env("t.toml", "[journal]\ntable = \"j-1\"\n", vec![]).unwrap();
        assert!(warnings(&with, now).is_empty());
        assert_eq!(with.journal.map(|j| j.keep_days), Some(400));
        let bad = Config::from_toml_with_env(
            "t.toml",
            "[journal]\ntable = \"j\"\nkeep_days = 0\n",
            vec![],
        );
        let err = bad.unwrap_err().to_string();
        assert!(err.contains("journal.table"), "{err}");
    }

    #[test]
    fn warns_for_expired_and_soon_expiring_suppressions() {
        let c = Config::from_toml_with_env(
            "t.toml",
            "[[suppress]]\nname = \"a\"\nreason = \"r\"\nexpires = \"2026-11-01\"\n\
             [[suppress]]\nname = \"b\"\nreason = \"r\"\nexpires = \"2026-12-10\"\n\
             [[suppress]]\nname = \"c\"\nreason = \"r\"\nexpires = \"2027-12-10\"\n\
             [journal]\ntable = \"hubtriage-journal\"\n",
            vec![],
        )
        .unwrap();
        let now = DateTime::parse_from_rfc3339("2026-11-25T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let w = warnings(&c, now);
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(w[0].contains("a expired"));
        assert!(w[1].contains("b expires in 16 days"));
        let text = render("t.toml", &c, now);
        assert!(
            text.contains("1. a [EXPIRED, until 2026-11-01] for every control when everything: r"),
            "{text}"
        );
    }
}
