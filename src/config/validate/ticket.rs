//! `[ticket]`: the URL, the variables holding the credentials, and each
//! system's own keys.

use super::{characters, is_env_name, problem, require, within, Problem};

/// A ticket system needs its URL (https, or loopback http) and the variables
/// holding its credentials; each system its own keys.
pub(super) fn ticket(t: &crate::config::Ticket) -> Result<(), Problem> {
    use crate::config::TicketKind as K;
    if t.kind == K::Log {
        return Ok(());
    }
    let url = require("ticket.url", &t.url, "the ticket system's URL")?;
    check_ticket_url(url).map_err(|m| ("ticket.url".to_string(), m))?;
    within(
        "ticket.reopen_within_days",
        t.reopen_within_days,
        (0, 3650),
        "",
    )?;
    for (key, name) in [
        ("ticket.secret_env", &t.secret_env),
        ("ticket.email_env", &t.email_env),
        ("ticket.token_env", &t.token_env),
        ("ticket.user_env", &t.user_env),
        ("ticket.password_env", &t.password_env),
    ] {
        if let Some(name) = name {
            characters(
                key,
                name,
                is_env_name,
                "the name of an environment variable",
            )?;
        }
    }
    match t.kind {
        K::Log => Ok(()),
        K::Webhook => require(
            "ticket.secret_env",
            &t.secret_env,
            "the environment variable holding the webhook's secret",
        )
        .map(|_| ()),
        K::Jira | K::JiraDc => jira(t),
        K::Servicenow => servicenow(t),
    }
}

fn jira(t: &crate::config::Ticket) -> Result<(), Problem> {
    let project = require("ticket.project", &t.project, "the Jira project key")?;
    characters(
        "ticket.project",
        project,
        is_jira_project_key,
        "a Jira project key such as \"SEC\"",
    )?;
    if t.issue_type.trim().is_empty() {
        return problem("ticket.issue_type", "expected an issue type name");
    }
    for label in &t.labels {
        characters(
            "ticket.labels",
            label,
            |l| !l.is_empty() && l.chars().count() <= 255 && !l.contains(char::is_whitespace),
            "labels of 1 to 255 characters without spaces",
        )?;
    }
    severity_keys("ticket.priority", &t.priority)?;
    if t.kind == crate::config::TicketKind::Jira {
        require(
            "ticket.email_env",
            &t.email_env,
            "the environment variable holding the Jira account's email",
        )?;
        require(
            "ticket.token_env",
            &t.token_env,
            "the environment variable holding the Jira API token",
        )?;
    } else {
        require(
            "ticket.token_env",
            &t.token_env,
            "the environment variable holding the Jira personal access token",
        )?;
    }
    Ok(())
}

fn servicenow(t: &crate::config::Ticket) -> Result<(), Problem> {
    characters(
        "ticket.table",
        &t.table,
        |table| {
            !table.is_empty()
                && table
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        },
        "a table name such as \"incident\"",
    )?;
    for (key, map) in [("ticket.urgency", &t.urgency), ("ticket.impact", &t.impact)] {
        severity_keys(key, map)?;
        for (k, v) in map {
            characters(
                &format!("{key}.{k}"),
                v,
                |v| matches!(v, "1" | "2" | "3"),
                "\"1\", \"2\" or \"3\"",
            )?;
        }
    }
    if t.close_code.trim().is_empty() {
        return problem(
            "ticket.close_code",
            "expected the close code of a resolved incident",
        );
    }
    match (&t.user_env, &t.password_env, &t.token_env) {
        (Some(_), Some(_), None) | (None, None, Some(_)) => Ok(()),
        _ => problem(
            "ticket.user_env",
            "expected user_env and password_env (Basic), or token_env (OAuth Bearer) alone",
        ),
    }
}

/// The keys of a per-severity table are Security Hub's severity labels.
fn severity_keys(
    key: &str,
    map: &std::collections::BTreeMap<String, String>,
) -> Result<(), Problem> {
    const LABELS: [&str; 5] = ["CRITICAL", "HIGH", "MEDIUM", "LOW", "INFORMATIONAL"];
    match map.keys().find(|k| !LABELS.contains(&k.as_str())) {
        Some(k) => problem(
            format!("{key}.{k}"),
            "expected a severity label: CRITICAL, HIGH, MEDIUM, LOW or INFORMATIONAL",
        ),
        None => Ok(()),
    }
}

/// Jira project keys: an uppercase letter, then uppercase letters, digits or `_`.
fn is_jira_project_key(key: &str) -> bool {
    key.starts_with(|c: char| c.is_ascii_uppercase())
        && key.len() <= 255
        && key
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
}

/// `https://host...`, or `http://` to a loopback address only.
fn check_ticket_url(url: &str) -> Result<(), String> {
    let expected = || {
        format!(
            "expected an https:// URL (or http:// to 127.0.0.1, [::1] or localhost), found {url:?}"
        )
    };
    if let Some(rest) = url.strip_prefix("https://") {
        return if rest.is_empty() || rest.starts_with('/') {
            Err(expected())
        } else {
            Ok(())
        };
    }
    let rest = url.strip_prefix("http://").ok_or_else(expected)?;
    let host = rest.split('/').next().unwrap_or_default();
    let host = match host.rsplit_once(':') {
        Some((h, port)) if !h.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    };
    if matches!(host, "127.0.0.1" | "[::1]" | "localhost") {
        Ok(())
    } else {
        Err(expected())
    }
}
