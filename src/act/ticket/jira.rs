//! Jira: Cloud (`type = "jira"`, REST v3) and Data Center (`type = "jira-dc"`,
//! REST v2), one [`Tracker`] with the two flavours' differences spelled out:
//!
//! | | Cloud | Data Center |
//! |---|---|---|
//! | paths | `/rest/api/3/…` | `/rest/api/2/…` |
//! | description, comments | Atlassian Document Format | strings (wiki markup) |
//! | search | `POST /rest/api/3/search/jql`, `nextPageToken`, `reconcileIssues` | `POST /rest/api/2/search`, `startAt` |
//! | auth | Basic `email:api_token` | Bearer personal access token |
//!
//! The problem's ticket carries the label `hubtriage-<16 hex>` (the problem
//! key), which search finds; transitions are looked up by name on each issue
//! (`done_transition`, `reopen_transition`), as workflows differ.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::http::{Call, Http};
use super::problem::{one_line, TicketText};
use super::tracker::{NewTicket, Record, Status, Tracker};
use super::TicketError;

/// Search pages read before giving up (a problem has a handful of tickets).
const MAX_PAGES: usize = 5;
/// Jira's limit on a summary.
const MAX_SUMMARY: usize = 255;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    Cloud,
    DataCenter,
}

/// Credentials, from the environment variables `[ticket]` names.
pub enum Auth {
    /// Cloud: the account's email and API token.
    Basic { email: String, token: String },
    /// Data Center: a personal access token.
    Bearer { token: String },
}

/// What `[ticket]` says about Jira.
pub struct JiraSettings {
    pub url: String,
    pub project: String,
    pub issue_type: String,
    pub labels: Vec<String>,
    pub priority: std::collections::BTreeMap<String, String>,
    pub done_transition: String,
    pub reopen_transition: String,
}

pub struct Jira {
    flavor: Flavor,
    settings: JiraSettings,
    auth: Auth,
    http: Http,
}

impl Jira {
    pub fn new(flavor: Flavor, settings: JiraSettings, auth: Auth) -> Result<Jira, TicketError> {
        let (system, keys) = match flavor {
            Flavor::Cloud => ("jira", "email_env and token_env"),
            Flavor::DataCenter => ("jira-dc", "token_env"),
        };
        let mut settings = settings;
        settings.url = settings.url.trim_end_matches('/').to_string();
        Ok(Jira {
            flavor,
            settings,
            auth,
            http: Http::new(system, keys)?,
        })
    }

    /// Backoff without `Retry-After` starts here (tests make it short).
    pub fn with_first_backoff(mut self, backoff: std::time::Duration) -> Jira {
        self.http = self.http.with_first_backoff(backoff);
        self
    }

    fn api(&self, path: &str) -> String {
        let version = match self.flavor {
            Flavor::Cloud => 3,
            Flavor::DataCenter => 2,
        };
        format!("{}/rest/api/{version}/{path}", self.settings.url)
    }

    fn request(
        &self,
        client: &reqwest::Client,
        method: reqwest::Method,
        url: &str,
    ) -> reqwest::RequestBuilder {
        let r = client
            .request(method, url)
            .header(reqwest::header::ACCEPT, "application/json");
        match &self.auth {
            Auth::Basic { email, token } => r.basic_auth(email, Some(token)),
            Auth::Bearer { token } => r.bearer_auth(token),
        }
    }

    async fn call(
        &self,
        what: &str,
        call: Call,
        method: reqwest::Method,
        url: &str,
        body: Option<&Value>,
        accept: &[u16],
    ) -> Result<super::http::Reply, TicketError> {
        self.http
            .send(what, call, accept, |client| {
                let r = self.request(client, method.clone(), url);
                match body {
                    Some(b) => r.json(b),
                    None => r,
                }
            })
            .await
    }

    fn error(&self, message: impl Into<String>) -> TicketError {
        TicketError::new(self.http.system(), message)
    }

    /// A text body in the flavour's format: ADF for Cloud, a string for DC.
    fn body(&self, paragraphs: &[&str]) -> Value {
        match self.flavor {
            Flavor::Cloud => adf(paragraphs.iter().map(|p| paragraph(p)).collect()),
            Flavor::DataCenter => Value::String(
                paragraphs
                    .iter()
                    .map(|p| wiki_escape(p))
                    .collect::<Vec<_>>()
                    .join("\n\n"),
            ),
        }
    }

    fn description(&self, new: &NewTicket<'_>) -> Value {
        match self.flavor {
            Flavor::Cloud => cloud_description(new),
            Flavor::DataCenter => Value::String(wiki_description(new)),
        }
    }

    /// An issue from a reply (`id`, `key`, `fields.status`, `fields.resolutiondate`).
    fn record(&self, issue: &Value) -> Option<Record> {
        let id = match issue.get("id")? {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            _ => return None,
        };
        let key = issue.get("key")?.as_str()?.to_string();
        let fields = issue.get("fields");
        let category = fields
            .and_then(|f| f.pointer("/status/statusCategory/key"))
            .and_then(Value::as_str);
        let status = if category == Some("done") {
            let since = fields
                .and_then(|f| f.get("resolutiondate"))
                .and_then(Value::as_str)
                .and_then(parse_jira_time);
            Status::Done {
                since,
                reopenable: true,
            }
        } else {
            Status::Open
        };
        let problem_key = fields
            .and_then(|f| f.get("labels"))
            .and_then(Value::as_array)
            .and_then(|labels| {
                labels
                    .iter()
                    .filter_map(Value::as_str)
                    .find(|l| l.starts_with("hubtriage-"))
                    .map(str::to_string)
            });
        Some(Record {
            url: format!("{}/browse/{key}", self.settings.url),
            id,
            key,
            status,
            problem_key,
        })
    }

    /// Takes the transition named `name` (or leading to a status of that name).
    async fn transition(
        &self,
        ticket: &Record,
        name: &str,
        config_key: &str,
    ) -> Result<(), TicketError> {
        let url = self.api(&format!("issue/{}/transitions", ticket.id));
        let reply = self
            .call(
                "list the issue's transitions",
                Call::Repeatable,
                reqwest::Method::GET,
                &url,
                None,
                &[],
            )
            .await?;
        let listed = reply.json(self.http.system(), "list the issue's transitions")?;
        let wanted = |t: &&Value, path: &str| {
            t.pointer(path)
                .and_then(Value::as_str)
                .is_some_and(|n| n.eq_ignore_ascii_case(name))
        };
        let transitions = listed
            .get("transitions")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let Some(id) = transitions
            .iter()
            .find(|t| wanted(t, "/name"))
            .or_else(|| transitions.iter().find(|t| wanted(t, "/to/name")))
            .and_then(|t| t.get("id"))
            .and_then(Value::as_str)
        else {
            let names: Vec<&str> = transitions
                .iter()
                .filter_map(|t| t.get("name").and_then(Value::as_str))
                .collect();
            return Err(self.error(format!(
                "{} has no transition {name:?} from its status (check [ticket] {config_key}; available: {})",
                ticket.key,
                if names.is_empty() { "none".to_string() } else { names.join(", ") }
            )));
        };
        self.call(
            "transition the issue",
            Call::Repeatable,
            reqwest::Method::POST,
            &url,
            Some(&json!({ "transition": { "id": id } })),
            &[],
        )
        .await?;
        Ok(())
    }
}

#[async_trait]
impl Tracker for Jira {
    fn system(&self) -> &'static str {
        self.http.system()
    }

    async fn get(&self, key: &str) -> Result<Option<Record>, TicketError> {
        if !is_issue_key(key) {
            tracing::warn!(ticket = key, "not a Jira issue key; ignored");
            return Ok(None);
        }
        let url = self.api(&format!("issue/{key}?fields=status,resolutiondate,labels"));
        let reply = self
            .call(
                "read the issue",
                Call::Repeatable,
                reqwest::Method::GET,
                &url,
                None,
                &[404],
            )
            .await?;
        if reply.status == 404 {
            return Ok(None);
        }
        let issue = reply.json(self.system(), "read the issue")?;
        Ok(self.record(&issue))
    }

    async fn find(&self, problem_key: &str, recent: &[String]) -> Result<Vec<Record>, TicketError> {
        let jql = format!(
            "project = \"{}\" AND labels = \"{problem_key}\" ORDER BY created DESC",
            self.settings.project
        );
        let fields = json!(["key", "status", "resolutiondate", "labels"]);
        let mut found = Vec::new();
        let mut next: Option<String> = None;
        let mut start = 0u64;
        for _ in 0..MAX_PAGES {
            let (path, body) = match self.flavor {
                Flavor::Cloud => {
                    let reconcile: Vec<i64> =
                        recent.iter().filter_map(|id| id.parse().ok()).collect();
                    let mut body = json!({ "jql": jql, "fields": fields, "maxResults": 50 });
                    if !reconcile.is_empty() {
                        body["reconcileIssues"] = json!(reconcile);
                    }
                    if let Some(token) = &next {
                        body["nextPageToken"] = json!(token);
                    }
                    ("search/jql", body)
                }
                Flavor::DataCenter => (
                    "search",
                    json!({ "jql": jql, "fields": fields, "maxResults": 50, "startAt": start }),
                ),
            };
            let reply = self
                .call(
                    "search for the problem's issues",
                    Call::Repeatable,
                    reqwest::Method::POST,
                    &self.api(path),
                    Some(&body),
                    &[],
                )
                .await?;
            let page = reply.json(self.system(), "search for the problem's issues")?;
            let issues = page
                .get("issues")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            found.extend(
                issues
                    .iter()
                    .filter_map(|i| self.record(i))
                    .filter(|r| r.problem_key.as_deref() == Some(problem_key)),
            );
            match self.flavor {
                Flavor::Cloud => {
                    next = page
                        .get("nextPageToken")
                        .and_then(Value::as_str)
                        .map(str::to_string);
                    if next.is_none() || page.get("isLast").and_then(Value::as_bool) == Some(true) {
                        break;
                    }
                }
                Flavor::DataCenter => {
                    start += issues.len() as u64;
                    let total = page.get("total").and_then(Value::as_u64).unwrap_or(0);
                    if issues.is_empty() || start >= total {
                        break;
                    }
                }
            }
        }
        Ok(found)
    }

    async fn create(&self, new: &NewTicket<'_>) -> Result<Record, TicketError> {
        let s = &self.settings;
        let mut labels = s.labels.clone();
        labels.push(new.problem_key.to_string());
        let mut fields = json!({
            "project": { "key": s.project },
            "issuetype": { "name": s.issue_type },
            "summary": one_line(&new.text.title, MAX_SUMMARY),
            "description": self.description(new),
            "labels": labels,
        });
        if let Some(name) = new.severity.and_then(|sev| s.priority.get(sev)) {
            fields["priority"] = json!({ "name": name });
        }
        let reply = self
            .call(
                "create the issue",
                Call::Create,
                reqwest::Method::POST,
                &self.api("issue"),
                Some(&json!({ "fields": fields })),
                &[],
            )
            .await?;
        let created = reply.json(self.system(), "create the issue")?;
        let mut record = self
            .record(&created)
            .ok_or_else(|| self.error("create the issue: the reply names no id and key"))?;
        record.problem_key = Some(new.problem_key.to_string());
        Ok(record)
    }

    async fn comment(&self, ticket: &Record, text: &str) -> Result<(), TicketError> {
        let url = self.api(&format!("issue/{}/comment", ticket.id));
        let body = json!({ "body": self.body(&text.lines().collect::<Vec<_>>()) });
        self.call(
            "comment on the issue",
            Call::Repeatable,
            reqwest::Method::POST,
            &url,
            Some(&body),
            &[],
        )
        .await?;
        Ok(())
    }

    async fn close(&self, ticket: &Record, text: &str) -> Result<(), TicketError> {
        self.comment(ticket, text).await?;
        self.transition(ticket, &self.settings.done_transition, "done_transition")
            .await
    }

    async fn reopen(&self, ticket: &Record, text: &str) -> Result<(), TicketError> {
        self.transition(
            ticket,
            &self.settings.reopen_transition,
            "reopen_transition",
        )
        .await?;
        self.comment(ticket, text).await
    }
}

/// `SEC-12`: a project key, a dash, a number (nothing that changes the path).
fn is_issue_key(key: &str) -> bool {
    match key.rsplit_once('-') {
        Some((project, n)) => {
            project.starts_with(|c: char| c.is_ascii_uppercase())
                && project
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
                && !n.is_empty()
                && n.chars().all(|c| c.is_ascii_digit())
        }
        None => false,
    }
}

/// Jira's times: `2026-11-26T22:10:00.000+0000`.
fn parse_jira_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f%z")
        .or_else(|_| DateTime::parse_from_rfc3339(s))
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

// ---- Atlassian Document Format (Cloud) ---------------------------------------

fn adf(content: Vec<Value>) -> Value {
    json!({ "type": "doc", "version": 1, "content": content })
}

/// A paragraph of one text node (ADF rejects empty text nodes).
fn paragraph(text: &str) -> Value {
    let text = if text.is_empty() { " " } else { text };
    json!({ "type": "paragraph", "content": [ { "type": "text", "text": text } ] })
}

fn heading(text: &str) -> Value {
    json!({ "type": "heading", "attrs": { "level": 3 }, "content": [ { "type": "text", "text": text } ] })
}

fn list(kind: &str, items: &[String]) -> Value {
    let items: Vec<Value> = items
        .iter()
        .map(|i| json!({ "type": "listItem", "content": [ paragraph(i) ] }))
        .collect();
    json!({ "type": kind, "content": items })
}

fn cloud_description(new: &NewTicket<'_>) -> Value {
    let t: &TicketText = new.text;
    let facts: Vec<Value> = t
        .facts
        .iter()
        .enumerate()
        .flat_map(|(i, (k, v))| {
            let mut nodes = Vec::new();
            if i > 0 {
                nodes.push(json!({ "type": "hardBreak" }));
            }
            nodes.push(json!({ "type": "text", "text": format!("{k}: "), "marks": [ { "type": "strong" } ] }));
            nodes.push(json!({ "type": "text", "text": if v.is_empty() { "-" } else { v.as_str() } }));
            nodes
        })
        .collect();
    let mut content = vec![json!({ "type": "paragraph", "content": facts })];
    content.push(heading("Why this is a ticket"));
    content.push(paragraph(&t.why));
    content.push(heading("What fails"));
    if t.fails.is_empty() {
        content.push(paragraph("The live state was not read in detail."));
    } else {
        content.push(list("bulletList", &t.fails));
    }
    content.push(heading("How to fix"));
    content.push(list("orderedList", &t.fix));
    content.push(json!({ "type": "paragraph", "content": [ {
        "type": "text",
        "text": "The finding in the Security Hub console",
        "marks": [ { "type": "link", "attrs": { "href": t.link } } ]
    } ] }));
    if let Some(old) = new.previous {
        content.push(paragraph(&format!(
            "The problem failed again; it follows {} ({}), closed too long ago to reopen.",
            old.key, old.url
        )));
    }
    content.push(paragraph(&format!(
        "hubtriage problem key: {}",
        new.problem_key
    )));
    adf(content)
}

// ---- wiki markup (Data Center) ----------------------------------------------

/// Keeps text literal in wiki markup.
fn wiki_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '[' | ']' | '{' | '}' | '|' | '*' | '_' | '^' | '~' | '!') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn wiki_description(new: &NewTicket<'_>) -> String {
    let t = new.text;
    let mut out = String::new();
    for (k, v) in &t.facts {
        out.push_str(&format!("*{k}:* {}\n", wiki_escape(v)));
    }
    out.push_str("\nh3. Why this is a ticket\n");
    out.push_str(&wiki_escape(&t.why));
    out.push_str("\n\nh3. What fails\n");
    if t.fails.is_empty() {
        out.push_str("The live state was not read in detail.\n");
    }
    for f in &t.fails {
        out.push_str(&format!("* {}\n", wiki_escape(f)));
    }
    out.push_str("\nh3. How to fix\n");
    for step in &t.fix {
        out.push_str(&format!("# {}\n", wiki_escape(step)));
    }
    out.push_str(&format!(
        "\n[The finding in the Security Hub console|{}]\n",
        t.link
    ));
    if let Some(old) = new.previous {
        out.push_str(&format!(
            "\nThe problem failed again; it follows {}, closed too long ago to reopen.\n",
            old.key
        ));
    }
    out.push_str(&format!("\nhubtriage problem key: {}\n", new.problem_key));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::ticket_decision;

    #[test]
    fn issue_keys_are_checked_before_they_reach_a_path() {
        assert!(is_issue_key("SEC-12"));
        assert!(is_issue_key("OPS_2-7"));
        for bad in [
            "SEC",
            "sec-1",
            "SEC-",
            "../SEC-1",
            "SEC-1/../2",
            "SEC-1?x=1",
            "",
        ] {
            assert!(!is_issue_key(bad), "{bad}");
        }
    }

    #[test]
    fn times_summaries_and_wiki_text() {
        let t = parse_jira_time("2026-11-26T22:10:00.000+0000").unwrap();
        assert_eq!(t.to_rfc3339(), "2026-11-26T22:10:00+00:00");
        assert_eq!(one_line(&"x".repeat(300), MAX_SUMMARY).chars().count(), 255);
        assert_eq!(one_line("a\nb", MAX_SUMMARY), "a b");
        assert_eq!(wiki_escape("[\"audit\"] *x*"), "\\[\"audit\"\\] \\*x\\*");
    }

    #[test]
    fn the_cloud_description_is_a_document_with_no_empty_text() {
        let d = ticket_decision("a");
        let text = TicketText::new(&d, Some("HIGH"));
        let new = NewTicket {
            problem_key: "hubtriage-0123456789abcdef",
            text: &text,
            severity: Some("HIGH"),
            previous: None,
        };
        let doc = cloud_description(&new);
        assert_eq!(doc["type"], "doc");
        assert_eq!(doc["version"], 1);
        fn texts(v: &Value, out: &mut Vec<String>) {
            if v.get("type") == Some(&json!("text")) {
                out.push(v["text"].as_str().unwrap().to_string());
            }
            for child in v
                .get("content")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                texts(child, out);
            }
        }
        let mut all = Vec::new();
        texts(&doc, &mut all);
        assert!(all.iter().all(|t| !t.is_empty()));
        let joined = all.join("|");
        for needle in [
            "orders-graph",
            "111122223333",
            "Neptune.2",
            "HIGH",
            "prod-needs-change-ticket",
            "neptune_enable_audit_log",
            "hubtriage-0123456789abcdef",
        ] {
            assert!(joined.contains(needle), "{needle} missing from {joined}");
        }
    }
}
