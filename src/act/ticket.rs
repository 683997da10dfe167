//! Ticket systems behind one trait. Today: `log`, which writes the ticket as a
//! structured log line. Jira, ServiceNow and webhooks implement the same trait.

use async_trait::async_trait;

pub mod problem;

use crate::decide::Decision;

#[derive(Debug, thiserror::Error)]
#[error("ticket system {system}: {message}")]
pub struct TicketError {
    pub system: &'static str,
    pub message: String,
}

/// A ticket that was opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ticket {
    /// The ticket system's key (`SEC-123`), when it gives one.
    pub key: Option<String>,
}

#[async_trait]
pub trait TicketSink: Send + Sync {
    async fn open(&self, decision: &Decision) -> Result<Ticket, TicketError>;
}

/// Tickets as log lines, for when no ticket system is configured.
pub struct LogTickets;

#[async_trait]
impl TicketSink for LogTickets {
    async fn open(&self, d: &Decision) -> Result<Ticket, TicketError> {
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
            rule = d.rule.as_deref().unwrap_or(""),
            problems = %d.problems.join("; "),
            reason = %d.reason,
            "ticket: Neptune cluster does not write audit logs to CloudWatch Logs"
        );
        Ok(Ticket { key: None })
    }
}
