//! `[ticket] type = "webhook"`: each ticket is a JSON POST to `[ticket] url`,
//! signed with HMAC-SHA256 of the body under the secret from `secret_env`
//! (header `X-Hubtriage-Signature: sha256=<hex>`), so the receiver can tell it
//! comes from hubtriage. The body carries the problem key, which the receiver
//! keys its ticket on; its JSON reply may name the ticket:
//! `{"ticket": "...", "url": "..."}`.
//!
//! One ticket per problem within a process: findings of one problem (the
//! consolidated and the standard-specific finding of a cluster, a duplicate
//! delivery) wait for the first one's POST and share its ticket.
//!
//! Throttling (429) and unavailability (503) are retried, honouring
//! `Retry-After`; other failures are errors naming the config key to check,
//! and the finding's message stays on the queue.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use super::http::{Call, Http};
use super::problem::{Problem, TicketText};
use super::{Ticket, TicketError, TicketSink};
use crate::config::OnResolve;
use crate::decide::Decision;

/// The header that carries the body's signature.
pub const SIGNATURE_HEADER: &str = "X-Hubtriage-Signature";
pub struct WebhookTickets {
    url: String,
    secret: Vec<u8>,
    http: Http,
    /// Problem key → its ticket, once opened by this process.
    opened: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Option<Ticket>>>>>,
    /// Problem keys whose resolve was sent (a passing finding's events repeat).
    resolved: Mutex<std::collections::HashSet<String>>,
}

/// What the receiver gets for a ticket event.
#[derive(Debug, Serialize)]
struct Resolved<'a> {
    event: &'a str,
    problem_key: &'a str,
    ticket: &'a str,
    /// `close` or `comment`.
    on_resolve: &'a str,
    account: &'a str,
    region: &'a str,
    cluster: Option<&'a str>,
    control: Option<&'a str>,
    why: &'a str,
    finding_id: &'a str,
    finding_url: &'a str,
}

#[derive(Debug, Serialize)]
struct Document<'a> {
    event: &'a str,
    problem_key: &'a str,
    title: &'a str,
    account: &'a str,
    region: &'a str,
    cluster: Option<&'a str>,
    /// A snapshot control's snapshot.
    #[serde(skip_serializing_if = "Option::is_none")]
    snapshot: Option<&'a str>,
    control: Option<&'a str>,
    severity: Option<&'a str>,
    rule: Option<&'a str>,
    why: &'a str,
    fails: &'a [String],
    fix: &'a [String],
    finding_id: &'a str,
    finding_url: &'a str,
}

/// The receiver's reply, when it names the ticket.
#[derive(Debug, Default, Deserialize)]
struct Reply {
    #[serde(default)]
    ticket: Option<String>,
    #[serde(default)]
    url: Option<String>,
}

impl WebhookTickets {
    /// `http`: the client (`Http::new("webhook", "secret_env")`).
    pub fn new(url: impl Into<String>, secret: impl Into<Vec<u8>>, http: Http) -> Self {
        WebhookTickets {
            url: url.into(),
            secret: secret.into(),
            http,
            opened: Mutex::default(),
            resolved: Mutex::default(),
        }
    }

    /// `sha256=<hex of HMAC-SHA256(secret, body)>`.
    pub fn signature(secret: &[u8], body: &[u8]) -> String {
        // HMAC takes a key of any length.
        let mut mac = match Hmac::<Sha256>::new_from_slice(secret) {
            Ok(m) => m,
            Err(_) => return String::new(),
        };
        mac.update(body);
        let hex: String = mac
            .finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        format!("sha256={hex}")
    }

    /// POSTs a ticket event; the receiver keys on `problem_key`, so a repeat
    /// after a failure is safe.
    async fn post(&self, body: Vec<u8>) -> Result<Reply, TicketError> {
        let signature = Self::signature(&self.secret, &body);
        let reply = self
            .http
            .send("POST [ticket] url", Call::Repeatable, &[], |client| {
                client
                    .post(&self.url)
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .header(SIGNATURE_HEADER, &signature)
                    .body(body.clone())
            })
            .await?;
        // A reply that names no ticket (or is not JSON) is fine.
        Ok(serde_json::from_str(&reply.body).unwrap_or_default())
    }
}

fn error(message: String) -> TicketError {
    TicketError::new("webhook", message)
}

#[async_trait]
impl TicketSink for WebhookTickets {
    async fn open(
        &self,
        d: &Decision,
        severity: Option<&str>,
        _named: Option<&str>,
    ) -> Result<Ticket, TicketError> {
        let problem = Problem::of(d)
            .ok_or_else(|| error("the decision names no cluster or control".into()))?;
        let key = problem.key();
        let slot = crate::lock(&self.opened)
            .entry(key.clone())
            .or_default()
            .clone();
        // One POST per problem: the others wait for it and share its ticket.
        let mut slot = slot.lock().await;
        if let Some(ticket) = slot.as_ref() {
            tracing::info!(problem_key = %key, "the problem's ticket is already open");
            return Ok(ticket.clone());
        }
        let text = TicketText::new(d, severity);
        let document = Document {
            event: "open",
            problem_key: &key,
            title: &text.title,
            account: &d.account,
            region: &d.region,
            cluster: d.cluster.as_deref(),
            snapshot: d.snapshot.as_deref(),
            control: d.control.as_deref(),
            severity,
            rule: d.rule.as_deref(),
            why: &text.why,
            fails: &text.fails,
            fix: &text.fix,
            finding_id: &d.finding_id,
            finding_url: &text.link,
        };
        let body = serde_json::to_vec(&document)
            .map_err(|e| error(format!("cannot encode the ticket: {e}")))?;
        let reply = self.post(body).await?;
        let ticket = Ticket {
            key: reply.ticket.or_else(|| Some(key.clone())),
            url: reply.url,
        };
        tracing::info!(problem_key = %key, ticket = ticket.key.as_deref().unwrap_or(""), url = ticket.url.as_deref().unwrap_or(""), "webhook ticket opened");
        *slot = Some(ticket.clone());
        crate::lock(&self.resolved).remove(&key);
        Ok(ticket)
    }

    async fn resolve(
        &self,
        d: &Decision,
        ticket: &str,
        on_resolve: OnResolve,
    ) -> Result<(), TicketError> {
        let on_resolve = match on_resolve {
            OnResolve::Nothing => return Ok(()),
            OnResolve::Close => "close",
            OnResolve::Comment => "comment",
        };
        let problem = Problem::of(d)
            .ok_or_else(|| error("the decision names no cluster or control".into()))?;
        let key = problem.key();
        if crate::lock(&self.resolved).contains(&key) {
            return Ok(());
        }
        let link = super::problem::console_link(&d.region, &d.finding_id);
        let document = Resolved {
            event: "resolve",
            problem_key: &key,
            ticket,
            on_resolve,
            account: &d.account,
            region: &d.region,
            cluster: d.cluster.as_deref(),
            control: d.control.as_deref(),
            why: &d.reason,
            finding_id: &d.finding_id,
            finding_url: &link,
        };
        let body = serde_json::to_vec(&document)
            .map_err(|e| error(format!("cannot encode the resolve: {e}")))?;
        self.post(body).await?;
        tracing::info!(problem_key = %key, ticket, on_resolve, "webhook ticket resolved");
        crate::lock(&self.resolved).insert(key.clone());
        // A later failure of the problem is a regression: it opens (or reopens) again.
        crate::lock(&self.opened).remove(&key);
        Ok(())
    }
}

#[cfg(test)]
mod tests;
