//! Ticket systems behind one trait, [`TicketSink`]: `log` (the ticket as a
//! structured log line), `webhook` (a signed JSON POST, [`webhook`]), and the
//! trackers — Jira Cloud, Jira Data Center ([`jira`]) and ServiceNow
//! ([`servicenow`]) — whose one-ticket-per-problem logic is shared
//! ([`tracker`]). What a ticket is about, whatever the system, is in
//! [`problem`]; what it says, built once and rendered per system, in
//! [`outline`]; HTTP with retries, credentials and JSON calls in [`http`].

use async_trait::async_trait;

pub mod http;
pub mod jira;
pub mod outline;
pub mod problem;
pub mod servicenow;
pub mod tracker;
pub mod webhook;

use crate::config::OnResolve;
use crate::decide::Decision;

#[derive(Debug, thiserror::Error)]
#[error("ticket system {system}: {message}")]
pub struct TicketError {
    pub system: &'static str,
    pub message: String,
    /// The HTTP status that failed, if the system answered.
    pub status: Option<u16>,
    /// A create that may have been written although it failed (a timeout, a
    /// 5xx): look again before creating a second.
    pub ambiguous: bool,
}

impl TicketError {
    pub fn new(system: &'static str, message: impl Into<String>) -> TicketError {
        TicketError {
            system,
            message: message.into(),
            status: None,
            ambiguous: false,
        }
    }
}

/// A ticket that was opened (or found open).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ticket {
    /// The ticket system's key (`SEC-123`, `INC0010001`), when it gives one.
    pub key: Option<String>,
    /// Where a person opens it, when the system gives one.
    pub url: Option<String>,
}

#[async_trait]
pub trait TicketSink: Send + Sync {
    /// Opens the ticket of the decision's problem (or finds the one open);
    /// `severity` is the finding's label; `named` the ticket the finding
    /// already names (`hubtriage:ticket`), looked at first.
    async fn open(
        &self,
        decision: &Decision,
        severity: Option<&str>,
        named: Option<&str>,
    ) -> Result<Ticket, TicketError>;

    /// The problem's finding passed (or a person resolved it): the ticket
    /// `ticket` gets a comment, and is closed under `on_resolve = "close"`.
    async fn resolve(
        &self,
        decision: &Decision,
        ticket: &str,
        on_resolve: OnResolve,
    ) -> Result<(), TicketError>;
}

/// Tickets as log lines, for when no ticket system is configured.
pub struct LogTickets;

#[async_trait]
impl TicketSink for LogTickets {
    async fn open(
        &self,
        d: &Decision,
        _severity: Option<&str>,
        _named: Option<&str>,
    ) -> Result<Ticket, TicketError> {
        let key = problem::Problem::of(d).map(|p| p.key()).unwrap_or_default();
        let link = problem::console_link(&d.region, &d.finding_id);
        tracing::warn!(
            ticket = "log",
            problem_key = %key,
            finding = %link,
            finding_id = %d.finding_id,
            account = %d.account,
            region = %d.region,
            cluster = d.cluster.as_deref().unwrap_or(""),
            snapshot = d.snapshot.as_deref().unwrap_or(""),
            control = d.control.as_deref().unwrap_or(""),
            rule = d.rule.as_deref().unwrap_or(""),
            problems = %d.problems.join("; "),
            reason = %d.reason,
            fix = %numbered(&problem::TicketText::new(d, None).fix),
            "ticket: {}",
            problem::TicketText::new(d, None).title
        );
        Ok(Ticket::default())
    }

    async fn resolve(
        &self,
        d: &Decision,
        ticket: &str,
        on_resolve: OnResolve,
    ) -> Result<(), TicketError> {
        tracing::info!(
            ticket = "log",
            key = ticket,
            on_resolve = ?on_resolve,
            finding_id = %d.finding_id,
            reason = %d.reason,
            "ticket: the problem is resolved"
        );
        Ok(())
    }
}

/// The manual fix's steps on one line: "1. … 2. …".
fn numbered(steps: &[String]) -> String {
    steps
        .iter()
        .enumerate()
        .map(|(i, s)| format!("{}. {s}", i + 1))
        .collect::<Vec<_>>()
        .join(" ")
}
