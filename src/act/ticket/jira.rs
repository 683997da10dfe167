//! Jira: Cloud (`type = "jira"`, REST v3) and Data Center (`type = "jira-dc"`,
//! REST v2), one [`Tracker`]. The two flavours differ only in what
//! [`Flavor`] says, in one place:
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

use super::http::{Call, JsonApi};
use super::outline::{adf, wiki, Outline};
use super::problem::one_line;
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

/// Where the next page of a search starts.
enum Page {
    /// Cloud: the token the last page gave.
    Token(String),
    /// Data Center: the index of the first issue.
    At(u64),
}

impl Flavor {
    /// The system's name in errors and metrics, and the config keys that
    /// hold its credentials.
    pub fn system(self) -> (&'static str, &'static str) {
        match self {
            Flavor::Cloud => ("jira", "email_env and token_env"),
            Flavor::DataCenter => ("jira-dc", "token_env"),
        }
    }

    fn api_version(self) -> u8 {
        match self {
            Flavor::Cloud => 3,
            Flavor::DataCenter => 2,
        }
    }

    /// A description or comment body in the flavour's format.
    fn body(self, outline: &Outline) -> Value {
        match self {
            Flavor::Cloud => adf(outline),
            Flavor::DataCenter => Value::String(wiki(outline)),
        }
    }

    /// The search call for one page: its path and body.
    fn search(self, jql: &str, recent: &[String], page: Option<&Page>) -> (&'static str, Value) {
        let fields = json!(["key", "status", "resolutiondate", "labels"]);
        let mut body = json!({ "jql": jql, "fields": fields, "maxResults": 50 });
        match self {
            Flavor::Cloud => {
                let reconcile: Vec<i64> = recent.iter().filter_map(|id| id.parse().ok()).collect();
                if !reconcile.is_empty() {
                    body["reconcileIssues"] = json!(reconcile);
                }
                if let Some(Page::Token(token)) = page {
                    body["nextPageToken"] = json!(token);
                }
                ("search/jql", body)
            }
            Flavor::DataCenter => {
                let start = match page {
                    Some(Page::At(n)) => *n,
                    _ => 0,
                };
                body["startAt"] = json!(start);
                ("search", body)
            }
        }
    }

    /// Where the page after `page` (answered with `reply`) starts; `None` at the end.
    fn next(self, page: Option<&Page>, reply: &Value, issues: usize) -> Option<Page> {
        match self {
            Flavor::Cloud => {
                let last = reply.get("isLast").and_then(Value::as_bool) == Some(true);
                let token = reply.get("nextPageToken").and_then(Value::as_str)?;
                (!last).then(|| Page::Token(token.to_string()))
            }
            Flavor::DataCenter => {
                let start = match page {
                    Some(Page::At(n)) => *n,
                    _ => 0,
                } + issues as u64;
                let total = reply.get("total").and_then(Value::as_u64).unwrap_or(0);
                (issues > 0 && start < total).then_some(Page::At(start))
            }
        }
    }
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
    api: JsonApi,
}

impl Jira {
    /// `api` carries the flavour's credentials (Cloud: Basic email and
    /// token; Data Center: Bearer personal access token).
    pub fn new(flavor: Flavor, settings: JiraSettings, api: JsonApi) -> Jira {
        let mut settings = settings;
        settings.url = settings.url.trim_end_matches('/').to_string();
        Jira {
            flavor,
            settings,
            api,
        }
    }

    fn url(&self, path: &str) -> String {
        format!(
            "{}/rest/api/{}/{path}",
            self.settings.url,
            self.flavor.api_version()
        )
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
        let url = self.url(&format!("issue/{}/transitions", ticket.id));
        let what = "list the issue's transitions";
        let listed = self.api.get(what, &url, &[]).await?.unwrap_or_default();
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
            return Err(self.api.error(format!(
                "{} has no transition {name:?} from its status (check [ticket] {config_key}; available: {})",
                ticket.key,
                if names.is_empty() { "none".to_string() } else { names.join(", ") }
            )));
        };
        let body = json!({ "transition": { "id": id } });
        self.api
            .post("transition the issue", Call::Repeatable, &url, &body)
            .await?;
        Ok(())
    }
}

#[async_trait]
impl Tracker for Jira {
    fn system(&self) -> &'static str {
        self.api.system()
    }

    async fn get(&self, key: &str) -> Result<Option<Record>, TicketError> {
        if !is_issue_key(key) {
            tracing::warn!(ticket = key, "not a Jira issue key; ignored");
            return Ok(None);
        }
        let url = self.url(&format!("issue/{key}"));
        let query = [("fields", "status,resolutiondate,labels")];
        let issue = self.api.get("read the issue", &url, &query).await?;
        Ok(issue.and_then(|i| self.record(&i)))
    }

    async fn find(&self, problem_key: &str, recent: &[String]) -> Result<Vec<Record>, TicketError> {
        let jql = format!(
            "project = \"{}\" AND labels = \"{problem_key}\" ORDER BY created DESC",
            self.settings.project
        );
        let mut found = Vec::new();
        let mut page: Option<Page> = None;
        for _ in 0..MAX_PAGES {
            let (path, body) = self.flavor.search(&jql, recent, page.as_ref());
            let what = "search for the problem's issues";
            let reply = self
                .api
                .post(what, Call::Repeatable, &self.url(path), &body)
                .await?;
            let issues = reply
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
            page = self.flavor.next(page.as_ref(), &reply, issues.len());
            if page.is_none() {
                break;
            }
        }
        Ok(found)
    }

    async fn create(&self, new: &NewTicket<'_>) -> Result<Record, TicketError> {
        let s = &self.settings;
        let mut labels = s.labels.clone();
        labels.push(new.problem_key.to_string());
        let outline = Outline::ticket(new.text, new.problem_key, new.previous);
        let mut fields = json!({
            "project": { "key": s.project },
            "issuetype": { "name": s.issue_type },
            "summary": one_line(&new.text.title, MAX_SUMMARY),
            "description": self.flavor.body(&outline),
            "labels": labels,
        });
        if let Some(name) = new.severity.and_then(|sev| s.priority.get(sev)) {
            fields["priority"] = json!({ "name": name });
        }
        let created = self
            .api
            .post(
                "create the issue",
                Call::Create,
                &self.url("issue"),
                &json!({ "fields": fields }),
            )
            .await?;
        let mut record = self.record(&created).ok_or_else(|| {
            self.api
                .error("create the issue: the reply names no id and key")
        })?;
        record.problem_key = Some(new.problem_key.to_string());
        Ok(record)
    }

    async fn comment(&self, ticket: &Record, text: &str) -> Result<(), TicketError> {
        let url = self.url(&format!("issue/{}/comment", ticket.id));
        let body = json!({ "body": self.flavor.body(&Outline::comment(text)) });
        self.api
            .post("comment on the issue", Call::Repeatable, &url, &body)
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

#[cfg(test)]
mod tests {
    use super::*;

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
    fn times_and_summaries() {
        let t = parse_jira_time("2026-11-26T22:10:00.000+0000").unwrap();
        assert_eq!(t.to_rfc3339(), "2026-11-26T22:10:00+00:00");
        assert_eq!(one_line(&"x".repeat(300), MAX_SUMMARY).chars().count(), 255);
        assert_eq!(one_line("a\nb", MAX_SUMMARY), "a b");
    }
}
