//! HTTP for the ticket systems: one request, retried while the system is busy.
//!
//! - 429 (and 503, except for a create) is retried, waiting as `Retry-After`
//!   says, else a growing backoff with jitter; a bounded number of attempts.
//! - A connection that failed before the request was sent is retried.
//! - A create ([`Call::Create`]) that timed out or got a 5xx may have been
//!   written: it is not retried here but returned as an `ambiguous` error, so
//!   the caller looks for the ticket before creating a second.
//! - Other statuses are errors carrying the status and, for 401/403/404, the
//!   config keys to check. Error messages never carry credentials.

use std::time::Duration;

use super::TicketError;

/// Attempts per call before giving up for this delivery of the finding.
const ATTEMPTS: u32 = 4;
/// The longest wait a `Retry-After` may ask for within one call.
const MAX_WAIT: Duration = Duration::from_secs(30);

/// What a request does, which decides what may be retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    /// Reads, and writes that are safe to repeat (a transition, a state change).
    Repeatable,
    /// A create: repeating it after the server wrote would make a second ticket.
    Create,
}

/// A successful answer.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub body: String,
}

impl Reply {
    /// The body as JSON (`Null` when empty), or an error naming what was asked.
    pub fn json_or_null(
        &self,
        system: &'static str,
        what: &str,
    ) -> Result<serde_json::Value, TicketError> {
        if self.body.trim().is_empty() {
            return Ok(serde_json::Value::Null);
        }
        self.json(system, what)
    }

    /// The body as JSON, or an error naming what was asked.
    pub fn json(&self, system: &'static str, what: &str) -> Result<serde_json::Value, TicketError> {
        serde_json::from_str(&self.body)
            .map_err(|e| TicketError::new(system, format!("{what}: the reply is not JSON ({e})")))
    }
}

/// Credentials of a ticket system, from the environment variables `[ticket]`
/// names. Never printed.
pub enum Auth {
    /// HTTP Basic: Jira Cloud's email and API token, ServiceNow's user and password.
    Basic { user: String, secret: String },
    /// A bearer token: Jira Data Center's personal access token, a ServiceNow OAuth token.
    Bearer { token: String },
}

impl Auth {
    fn apply(&self, r: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match self {
            Auth::Basic { user, secret } => r.basic_auth(user, Some(secret)),
            Auth::Bearer { token } => r.bearer_auth(token),
        }
    }
}

/// One request of a [`JsonApi`]: `what` names it in errors and logs;
/// `accept` lists statuses that are an answer, not an error.
struct Request<'a> {
    what: &'a str,
    call: Call,
    method: reqwest::Method,
    url: &'a str,
    query: &'a [(&'a str, &'a str)],
    body: Option<&'a serde_json::Value>,
    accept: &'a [u16],
}

/// A JSON API of one ticket system: authenticated requests that send and
/// accept JSON, through [`Http`]'s retries.
pub struct JsonApi {
    http: Http,
    auth: Auth,
}

impl JsonApi {
    pub fn new(http: Http, auth: Auth) -> JsonApi {
        JsonApi { http, auth }
    }

    pub fn system(&self) -> &'static str {
        self.http.system()
    }

    /// An error of this system, naming what was asked.
    pub fn error(&self, message: impl Into<String>) -> TicketError {
        TicketError::new(self.system(), message)
    }

    async fn call(&self, r: Request<'_>) -> Result<Reply, TicketError> {
        self.http
            .send(r.what, r.call, r.accept, |client| {
                let b = client
                    .request(r.method.clone(), r.url)
                    .query(r.query)
                    .header(reqwest::header::ACCEPT, "application/json");
                let b = self.auth.apply(b);
                match r.body {
                    Some(body) => b.json(body),
                    None => b,
                }
            })
            .await
    }

    /// GET; `None` when the system answers 404 (the thing is not there).
    pub async fn get(
        &self,
        what: &str,
        url: &str,
        query: &[(&str, &str)],
    ) -> Result<Option<serde_json::Value>, TicketError> {
        let reply = self
            .call(Request {
                what,
                call: Call::Repeatable,
                method: reqwest::Method::GET,
                url,
                query,
                body: None,
                accept: &[404],
            })
            .await?;
        if reply.status == 404 {
            return Ok(None);
        }
        reply.json(self.system(), what).map(Some)
    }

    /// POST `body`; the reply as JSON (`Null` when it has no body).
    pub async fn post(
        &self,
        what: &str,
        call: Call,
        url: &str,
        body: &serde_json::Value,
    ) -> Result<serde_json::Value, TicketError> {
        let reply = self
            .call(Request {
                what,
                call,
                method: reqwest::Method::POST,
                url,
                query: &[],
                body: Some(body),
                accept: &[],
            })
            .await?;
        reply.json_or_null(self.system(), what)
    }

    /// PATCH `body` (repeatable: it sets values).
    pub async fn patch(
        &self,
        what: &str,
        url: &str,
        body: &serde_json::Value,
    ) -> Result<serde_json::Value, TicketError> {
        let reply = self
            .call(Request {
                what,
                call: Call::Repeatable,
                method: reqwest::Method::PATCH,
                url,
                query: &[],
                body: Some(body),
                accept: &[],
            })
            .await?;
        reply.json_or_null(self.system(), what)
    }
}

/// A client for one ticket system.
pub struct Http {
    client: reqwest::Client,
    system: &'static str,
    /// The config keys a 401/403 points at (the credentials' variables).
    auth_keys: &'static str,
    first_backoff: Duration,
}

impl Http {
    pub fn new(system: &'static str, auth_keys: &'static str) -> Result<Http, TicketError> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .connect_timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| TicketError::new(system, format!("cannot build the HTTP client: {e}")))?;
        Ok(Http {
            client,
            system,
            auth_keys,
            first_backoff: Duration::from_millis(500),
        })
    }

    /// Backoff without `Retry-After` starts here (tests make it short).
    pub fn with_first_backoff(mut self, backoff: Duration) -> Http {
        self.first_backoff = backoff;
        self
    }

    pub fn system(&self) -> &'static str {
        self.system
    }

    /// Sends the request `make` builds (once per attempt); `what` names it in
    /// errors and logs ("create the issue"). `accept` lists statuses that are
    /// an answer, not an error (a 404 when reading a ticket that is gone).
    pub async fn send(
        &self,
        what: &str,
        call: Call,
        accept: &[u16],
        make: impl Fn(&reqwest::Client) -> reqwest::RequestBuilder,
    ) -> Result<Reply, TicketError> {
        let mut backoff = self.first_backoff;
        for attempt in 1..=ATTEMPTS {
            let last = attempt == ATTEMPTS;
            let response = match make(&self.client).send().await {
                Ok(r) => r,
                Err(e) => {
                    // Not connected: nothing was sent, so any call may go again.
                    let unsent = e.is_connect();
                    if (unsent || call == Call::Repeatable) && !last {
                        tracing::warn!(system = self.system, what, attempt, error = %without_url(&e), "ticket system unreachable; retrying");
                        backoff = self.pause(None, backoff).await;
                        continue;
                    }
                    let mut err =
                        TicketError::new(self.system, format!("{what}: {}", without_url(&e)));
                    err.ambiguous = call == Call::Create && !unsent;
                    return Err(err);
                }
            };
            let status = response.status().as_u16();
            let wait = retry_after(response.headers());
            let body = response.text().await.unwrap_or_default();
            if (200..300).contains(&status) || accept.contains(&status) {
                return Ok(Reply { status, body });
            }
            let busy = status == 429 || (status == 503 && call == Call::Repeatable);
            if busy && !last {
                tracing::warn!(
                    system = self.system,
                    what,
                    status,
                    attempt,
                    "ticket system busy; retrying"
                );
                backoff = self.pause(wait, backoff).await;
                continue;
            }
            let mut err = TicketError::new(
                self.system,
                format!(
                    "{what}: HTTP {status}{}{}",
                    self.hint(status),
                    detail(&body)
                ),
            );
            err.status = Some(status);
            err.ambiguous = call == Call::Create && status >= 500;
            return Err(err);
        }
        Err(TicketError::new(
            self.system,
            format!("{what}: the system stayed busy"),
        ))
    }

    /// Waits `Retry-After` (bounded), else `backoff` with up to 50 % jitter;
    /// returns the next backoff.
    async fn pause(&self, retry_after: Option<Duration>, backoff: Duration) -> Duration {
        let wait = match retry_after {
            Some(w) => w.min(MAX_WAIT),
            None => backoff + backoff.mul_f64(jitter() * 0.5),
        };
        tokio::time::sleep(wait).await;
        backoff.saturating_mul(2).min(MAX_WAIT)
    }

    fn hint(&self, status: u16) -> String {
        match status {
            401 => format!(" (check the credentials in [ticket] {})", self.auth_keys),
            403 => format!(
                " (the account in [ticket] {} lacks a permission, or the system refused the change)",
                self.auth_keys
            ),
            400 => " (the system refused a field: check [ticket] project, issue_type, labels, priority, or the table's fields)".to_string(),
            404 => " (check [ticket] url and the project or table it names)".to_string(),
            _ => String::new(),
        }
    }
}

/// A number in [0, 1) that differs between calls, for backoff jitter.
fn jitter() -> f64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    f64::from(nanos % 1000) / 1000.0
}

/// `Retry-After` in seconds (the HTTP-date form is not used by these systems).
pub fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let v = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    v.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// A reqwest error without its URL (which may carry a query).
fn without_url(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "cannot connect"
    } else {
        "the request failed"
    };
    let mut text = kind.to_string();
    if let Some(source) = std::error::Error::source(e) {
        text.push_str(&format!(" ({source})"));
    }
    text
}

/// The system's own words about a failure, shortened: Jira's `errorMessages`
/// and `errors`, ServiceNow's `error.message`/`detail`, else the body's start.
fn detail(body: &str) -> String {
    let text = match serde_json::from_str::<serde_json::Value>(body) {
        Ok(v) => {
            let mut parts: Vec<String> = Vec::new();
            if let Some(list) = v.get("errorMessages").and_then(|m| m.as_array()) {
                parts.extend(list.iter().filter_map(|m| m.as_str()).map(str::to_string));
            }
            if let Some(map) = v.get("errors").and_then(|m| m.as_object()) {
                parts.extend(
                    map.iter()
                        .map(|(k, m)| format!("{k}: {}", m.as_str().unwrap_or(""))),
                );
            }
            if let Some(e) = v.get("error") {
                for k in ["message", "detail"] {
                    if let Some(m) = e.get(k).and_then(|m| m.as_str()) {
                        parts.push(m.to_string());
                    }
                }
            }
            parts.join("; ")
        }
        Err(_) => body.to_string(),
    };
    let text: String = text.chars().filter(|c| !c.is_control()).take(300).collect();
    if text.trim().is_empty() {
        String::new()
    } else {
        format!(": {}", text.trim())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn details_name_what_the_system_said() {
        let jira = r#"{"errorMessages":[],"errors":{"labels":"The label 'a b' contains spaces which is invalid."}}"#;
        assert_eq!(
            detail(jira),
            ": labels: The label 'a b' contains spaces which is invalid."
        );
        let sn = r#"{"error":{"message":"Operation Failed","detail":"Data Policy Exception"},"status":"failure"}"#;
        assert_eq!(detail(sn), ": Operation Failed; Data Policy Exception");
        assert_eq!(detail(""), "");
        assert_eq!(detail(&"x\n".repeat(400)).chars().count(), 302);
    }
}
