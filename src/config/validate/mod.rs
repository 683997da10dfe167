//! Checks of values that the types alone do not catch (ranges, names used
//! twice, AWS naming rules), one function per config table.
//!
//! Contract: [`Config::validate`] runs the tables' checks in a fixed order and
//! returns the first problem as (key, message); the caller puts the file in
//! front and names an environment override that set the key. `[scope]` and
//! `[default]` need no check beyond their types.

use std::collections::HashSet;
use std::fmt::Display;

use super::tables::{
    Daemon, Events, MetricsConfig, Queue, Remediation, Rule, SecurityHub, Setup, Suppression,
};
use super::values::check_region;
use super::{Config, ACCOUNT_PLACEHOLDER};

mod ticket;

/// CloudWatch Logs accepts only these retention periods.
pub const RETENTION_DAYS: &[i32] = &[
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
    3288, 3653,
];

/// What is wrong, and where: (key, message).
pub(super) type Problem = (String, String);

impl Config {
    /// Every table's checks, in this order: the first problem found is the one reported.
    pub(super) fn validate(&self) -> Result<(), Problem> {
        remediation(&self.remediation)?;
        controls(&self.controls)?;
        suppressions(&self.suppress)?;
        rules(&self.rule)?;
        if let Some(q) = &self.queue {
            queue(q)?;
        }
        daemon(&self.daemon)?;
        within(
            "enrich.cache_seconds",
            self.enrich.cache_seconds,
            (0, 3600),
            "",
        )?;
        securityhub(&self.securityhub)?;
        pacing(&self.pacing)?;
        accounts(&self.accounts)?;
        ticket::ticket(&self.ticket)?;
        if let Some(c) = &self.coordination {
            coordination(c)?;
        }
        if let Some(j) = &self.journal {
            journal(j)?;
        }
        metrics(&self.metrics)?;
        setup(&self.setup)?;
        if let Some(e) = &self.events {
            events(e)?;
        }
        Ok(())
    }
}

/// A DynamoDB table name and a lease long enough to renew.
fn coordination(c: &super::Coordination) -> Result<(), Problem> {
    table_name("coordination.table", &c.table)?;
    within(
        "coordination.lease_seconds",
        c.lease_seconds,
        (10, 3600),
        "",
    )
}

/// A DynamoDB table name, and a keep time DynamoDB's TTL can hold.
fn journal(j: &super::JournalConfig) -> Result<(), Problem> {
    table_name("journal.table", &j.table)?;
    within("journal.keep_days", j.keep_days, (1, 3650), "")?;
    within(
        "journal.settle_after_seconds",
        j.settle_after_seconds,
        (10, 86_400),
        "",
    )
}

/// 3 to 255 of a-z, A-Z, 0-9, `_`, `-`, `.` (DynamoDB's rule).
fn table_name(key: &str, table: &str) -> Result<(), Problem> {
    let ok = (3..=255).contains(&table.len())
        && table
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '_' | '-' | '.'));
    if ok {
        return Ok(());
    }
    problem(
        key,
        format!(
            "expected a DynamoDB table name (3 to 255 of a-z, A-Z, 0-9, _ - .), found {table:?}"
        ),
    )
}

/// A key that must be set: its value, else "expected {what}".
pub(super) fn require<'a>(
    key: &str,
    value: &'a Option<String>,
    what: &str,
) -> Result<&'a str, Problem> {
    match value {
        Some(v) => Ok(v),
        None => Err((key.to_string(), format!("expected {what}"))),
    }
}

/// A value that `ok` accepts, else "expected {what}, found {value:?}".
pub(super) fn characters(
    key: &str,
    value: &str,
    ok: impl Fn(&str) -> bool,
    what: &str,
) -> Result<(), Problem> {
    if ok(value) {
        Ok(())
    } else {
        problem(key, format!("expected {what}, found {value:?}"))
    }
}

pub(super) fn is_env_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A role ARN with `{account}` in its account field; a session name and an
/// environment variable name STS and a shell accept.
fn accounts(a: &super::Accounts) -> Result<(), Problem> {
    if let Some(arn) = &a.role_arn {
        check_role_arn(arn).map_err(|m| ("accounts.role_arn".to_string(), m))?;
    }
    let session_ok = (2..=64).contains(&a.session_name.len())
        && a.session_name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c));
    if !session_ok {
        return problem(
            "accounts.session_name",
            format!(
                "expected 2 to 64 letters, digits or _+=,.@- (STS's rule), found {:?}",
                a.session_name
            ),
        );
    }
    if let Some(name) = &a.external_id_env {
        characters(
            "accounts.external_id_env",
            name,
            is_env_name,
            "the name of an environment variable",
        )?;
    }
    Ok(())
}

/// `arn:<partition>:iam::{account}:role/<path/name>`.
fn check_role_arn(arn: &str) -> Result<(), String> {
    let expected = || {
        format!("expected a role ARN with {ACCOUNT_PLACEHOLDER} as its account, such as \"arn:aws:iam::{ACCOUNT_PLACEHOLDER}:role/hubtriage-member\", found {arn:?}")
    };
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let ["arn", partition, "iam", "", account, resource] = parts.as_slice() else {
        return Err(expected());
    };
    if !partition.starts_with("aws") || *account != ACCOUNT_PLACEHOLDER {
        return Err(expected());
    }
    let name = resource.strip_prefix("role/").unwrap_or_default();
    let name_ok = !name.is_empty()
        && name.len() <= 512
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_+=,.@-/".contains(c));
    if name_ok {
        Ok(())
    } else {
        Err(expected())
    }
}

fn pacing(p: &super::Rates) -> Result<(), Problem> {
    for (name, rate) in [
        ("batch_update_findings", p.batch_update_findings),
        ("get_findings", p.get_findings),
        ("batch_update_findings_v2", p.batch_update_findings_v2),
        ("get_findings_v2", p.get_findings_v2),
        ("neptune_read", p.neptune_read),
    ] {
        let key = format!("pacing.{name}");
        within(
            &format!("{key}.per_second"),
            rate.per_second,
            (0, 10_000),
            " (0: not paced)",
        )?;
        if rate.per_second > 0 {
            within(&format!("{key}.burst"), rate.burst, (1, 10_000), "")?;
        }
    }
    Ok(())
}

/// Each control's settings apply to it: `min_retention_days` to Neptune.5
/// only, within Security Hub's 7 to 35.
fn controls(c: &super::Controls) -> Result<(), Problem> {
    for (id, table) in &c.0 {
        // Which control takes which key is the control's to say
        // (`control::check_settings`); the range is the key's.
        if let Some(days) = table.min_retention_days {
            let key = format!("controls.\"{id}\".min_retention_days");
            within(&key, days, (7, 35), " (Security Hub's range)")?;
        }
    }
    Ok(())
}

fn remediation(r: &Remediation) -> Result<(), Problem> {
    check_prefix(&r.parameter_group_prefix)
        .map_err(|m| ("remediation.parameter_group_prefix".into(), m))?;
    if let Some(days) = r.log_retention_days {
        if !RETENTION_DAYS.contains(&days) {
            return problem(
                "remediation.log_retention_days",
                format!("expected one of CloudWatch Logs' retention periods {RETENTION_DAYS:?}, found {days}"),
            );
        }
    }
    if r.max_concurrent == 0 {
        return problem("remediation.max_concurrent", "expected at least 1");
    }
    if r.max_per_hour == 0 {
        return problem("remediation.max_per_hour", "expected at least 1");
    }
    within(
        "remediation.verify_deadline_minutes",
        r.verify_deadline_minutes,
        (1, 10_080),
        " (a week)",
    )?;
    within(
        "remediation.recheck_seconds",
        r.recheck_seconds,
        (1, 900),
        " (SQS's longest delay)",
    )?;
    within(
        "remediation.wait_for_available_minutes",
        r.wait_for_available_minutes,
        (1, 1440),
        " (a day)",
    )?;
    within(
        "remediation.reboot_settle_seconds",
        r.reboot_settle_seconds,
        (10, 3600),
        " (an hour)",
    )?;
    within("remediation.max_repeats", r.max_repeats, (1, 100), "")?;
    within(
        "remediation.repeat_window_days",
        r.repeat_window_days,
        (1, 365),
        "",
    )?;
    for (i, tag) in r.iac_tags.iter().enumerate() {
        let key = tag.split_once('=').map_or(tag.as_str(), |(k, _)| k);
        if key.is_empty() || key.len() > 128 || tag.chars().any(char::is_control) {
            return problem(
                format!("remediation.iac_tags[{i}]"),
                format!("expected a tag as key=value, or a key alone (1 to 128 characters), found {tag:?}"),
            );
        }
    }
    Ok(())
}

fn suppressions(list: &[Suppression]) -> Result<(), Problem> {
    let mut seen = HashSet::new();
    for (i, s) in list.iter().enumerate() {
        let entry = format!("suppress[{i}]");
        filled(&entry, "name", &s.name)?;
        filled(&entry, "reason", &s.reason)?;
        first_use(&mut seen, &entry, &s.name)?;
    }
    Ok(())
}

fn rules(list: &[Rule]) -> Result<(), Problem> {
    let mut seen = HashSet::new();
    for (i, rule) in list.iter().enumerate() {
        let entry = format!("rule[{i}]");
        filled(&entry, "name", &rule.name)?;
        first_use(&mut seen, &entry, &rule.name)?;
    }
    Ok(())
}

fn queue(q: &Queue) -> Result<(), Problem> {
    if q.url.trim().is_empty() {
        return problem("queue.url", "expected the queue's URL");
    }
    within("queue.wait_seconds", q.wait_seconds, (0, 20), "")?;
    within("queue.max_messages", q.max_messages, (1, 10), "")?;
    within("queue.parallel_receives", q.parallel_receives, (1, 10), "")?;
    if let Some(v) = q.visibility_timeout_seconds {
        within("queue.visibility_timeout_seconds", v, (30, 43_200), "")?;
    }
    Ok(())
}

fn daemon(d: &Daemon) -> Result<(), Problem> {
    within("daemon.concurrency", d.concurrency, (1, 256), "")?;
    within(
        "daemon.max_in_flight",
        d.max_in_flight,
        (d.concurrency, 10_000),
        " (at least daemon.concurrency)",
    )?;
    if d.shutdown_grace_seconds > 115 {
        return problem(
            "daemon.shutdown_grace_seconds",
            format!(
                "expected at most 115 (ECS's stop timeout is at most 120), found {}",
                d.shutdown_grace_seconds
            ),
        );
    }
    Ok(())
}

fn securityhub(s: &SecurityHub) -> Result<(), Problem> {
    if let Some(region) = &s.region {
        check_region(region).map_err(|m| ("securityhub.region".into(), m))?;
    }
    Ok(())
}

fn metrics(m: &MetricsConfig) -> Result<(), Problem> {
    if m.namespace.trim().is_empty() || m.namespace.len() > 255 {
        return problem("metrics.namespace", "expected 1 to 255 characters");
    }
    if m.interval_seconds == 0 {
        return problem("metrics.interval_seconds", "expected at least 1");
    }
    Ok(())
}

fn setup(s: &Setup) -> Result<(), Problem> {
    within(
        "setup.max_receive_count",
        s.max_receive_count,
        (1, 1000),
        "",
    )?;
    let name = &s.rule_name;
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
    if !ok {
        return problem(
            "setup.rule_name",
            format!("expected 1 to 64 letters, digits, '.', '-' or '_', found {name:?}"),
        );
    }
    Ok(())
}

fn events(e: &Events) -> Result<(), Problem> {
    if e.bus.trim().is_empty() {
        return problem("events.bus", "expected an event bus name or ARN");
    }
    Ok(())
}

pub(super) fn problem(key: impl Into<String>, message: impl Into<String>) -> Result<(), Problem> {
    Err((key.into(), message.into()))
}

/// `value` is in `low..=high`; else "expected {low} to {high}{note}, found {value}".
pub(super) fn within<T: PartialOrd + Display>(
    key: &str,
    value: T,
    (low, high): (T, T),
    note: &str,
) -> Result<(), Problem> {
    if low <= value && value <= high {
        Ok(())
    } else {
        problem(
            key,
            format!("expected {low} to {high}{note}, found {value}"),
        )
    }
}

/// `{entry}.{field}` holds more than white space.
fn filled(entry: &str, field: &str, value: &str) -> Result<(), Problem> {
    if value.trim().is_empty() {
        problem(
            format!("{entry}.{field}"),
            format!("expected a non-empty {field}"),
        )
    } else {
        Ok(())
    }
}

/// `{entry}.name` is not the name of an earlier entry of the same table.
fn first_use<'a>(seen: &mut HashSet<&'a str>, entry: &str, name: &'a str) -> Result<(), Problem> {
    if seen.insert(name) {
        Ok(())
    } else {
        problem(format!("{entry}.name"), format!("{name:?} is used twice"))
    }
}

fn check_prefix(prefix: &str) -> Result<(), String> {
    let ok = prefix.len() <= 190
        && prefix
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic())
        && prefix
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !prefix.contains("--");
    if ok {
        Ok(())
    } else {
        Err(format!(
            "expected a parameter group name prefix (a letter, then letters, digits and single hyphens, at most 190 characters), found {prefix:?}"
        ))
    }
}
