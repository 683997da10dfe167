//! ServiceNow (`type = "servicenow"`): one record of `[ticket] table`
//! (default `incident`) per problem, through the Table API.
//!
//! - The problem key is the record's `correlation_id` (with
//!   `correlation_display = "hubtriage"`), which a query finds. ServiceNow
//!   ignores a query clause naming an unknown field, returning every row, so
//!   each row's `correlation_id` is checked again here.
//! - Values are strings; `Accept` and `Content-Type` are `application/json`.
//! - Resolving sets `state = 6` with `close_code` and `close_notes` (a data
//!   policy rejects a resolve without them); reopening sets `state = 2` on a
//!   Resolved record. Closed (7) and Canceled (8) records cannot be reopened:
//!   a new one names the old.
//! - The finding records the record's `number` (`INC0010001`).

use async_trait::async_trait;
use chrono::{DateTime, NaiveDateTime, Utc};
use serde_json::{json, Map, Value};

use super::http::{Call, JsonApi};
use super::outline::{plain, Outline};
use super::problem::one_line;
use super::tracker::{NewTicket, Record, Status, Tracker};
use super::TicketError;

/// The fields read back.
const FIELDS: &str = "sys_id,number,state,resolved_at,closed_at,sys_updated_on,correlation_id";
/// ServiceNow's `short_description` holds 160 characters.
const MAX_SHORT_DESCRIPTION: usize = 160;

/// What `[ticket]` says about ServiceNow.
pub struct ServiceNowSettings {
    pub url: String,
    pub table: String,
    pub assignment_group: Option<String>,
    pub category: Option<String>,
    pub urgency: std::collections::BTreeMap<String, String>,
    pub impact: std::collections::BTreeMap<String, String>,
    pub close_code: String,
}

pub struct ServiceNow {
    settings: ServiceNowSettings,
    api: JsonApi,
}

impl ServiceNow {
    /// `api` carries the credentials: Basic user and password, or an OAuth
    /// Bearer token.
    pub fn new(settings: ServiceNowSettings, api: JsonApi) -> ServiceNow {
        let mut settings = settings;
        settings.url = settings.url.trim_end_matches('/').to_string();
        ServiceNow { settings, api }
    }

    fn table_url(&self) -> String {
        format!(
            "{}/api/now/table/{}",
            self.settings.url, self.settings.table
        )
    }

    fn record(&self, row: &Value) -> Option<Record> {
        let text = |k: &str| row.get(k).and_then(Value::as_str).unwrap_or_default();
        let id = text("sys_id");
        let number = text("number");
        if id.is_empty() || number.is_empty() {
            return None;
        }
        let status = match text("state") {
            "6" => Status::Done {
                since: parse_time(text("resolved_at"))
                    .or_else(|| parse_time(text("sys_updated_on"))),
                reopenable: true,
            },
            "7" | "8" => Status::Done {
                since: parse_time(text("closed_at")).or_else(|| parse_time(text("sys_updated_on"))),
                reopenable: false,
            },
            _ => Status::Open,
        };
        let correlation = text("correlation_id");
        Some(Record {
            id: id.to_string(),
            key: number.to_string(),
            url: format!(
                "{}/{}.do?sys_id={id}",
                self.settings.url, self.settings.table
            ),
            status,
            problem_key: (!correlation.is_empty()).then(|| correlation.to_string()),
        })
    }

    /// Rows of a query, as records.
    async fn query(
        &self,
        what: &str,
        query: &str,
        limit: &str,
    ) -> Result<Vec<Record>, TicketError> {
        let params = [
            ("sysparm_query", query),
            ("sysparm_fields", FIELDS),
            ("sysparm_limit", limit),
        ];
        let page = self
            .api
            .get(what, &self.table_url(), &params)
            .await?
            .unwrap_or_default();
        Ok(page
            .get("result")
            .and_then(Value::as_array)
            .map(|rows| rows.iter().filter_map(|r| self.record(r)).collect())
            .unwrap_or_default())
    }

    async fn patch(&self, what: &str, ticket: &Record, body: Value) -> Result<(), TicketError> {
        let url = format!("{}/{}", self.table_url(), ticket.id);
        self.api.patch(what, &url, &body).await?;
        Ok(())
    }
}

#[async_trait]
impl Tracker for ServiceNow {
    fn system(&self) -> &'static str {
        self.api.system()
    }

    async fn get(&self, number: &str) -> Result<Option<Record>, TicketError> {
        if number.is_empty() || !number.chars().all(|c| c.is_ascii_alphanumeric()) {
            tracing::warn!(ticket = number, "not a ServiceNow record number; ignored");
            return Ok(None);
        }
        let rows = self
            .query("read the record", &format!("number={number}"), "1")
            .await?;
        Ok(rows.into_iter().find(|r| r.key == number))
    }

    async fn find(
        &self,
        problem_key: &str,
        _recent: &[String],
    ) -> Result<Vec<Record>, TicketError> {
        let query = format!("correlation_id={problem_key}^ORDERBYDESCsys_created_on");
        let rows = self
            .query("search for the problem's records", &query, "20")
            .await?;
        // An ignored clause returns every row: keep only the problem's.
        Ok(rows
            .into_iter()
            .filter(|r| r.problem_key.as_deref() == Some(problem_key))
            .collect())
    }

    async fn create(&self, new: &NewTicket<'_>) -> Result<Record, TicketError> {
        let s = &self.settings;
        let mut body = Map::new();
        let mut put = |k: &str, v: String| {
            body.insert(k.to_string(), Value::String(v));
        };
        put(
            "short_description",
            one_line(&new.text.title, MAX_SHORT_DESCRIPTION),
        );
        let outline = Outline::ticket(new.text, new.problem_key, new.previous);
        put("description", plain(&outline));
        put("correlation_id", new.problem_key.to_string());
        put("correlation_display", "hubtriage".to_string());
        if let Some(sev) = new.severity {
            if let Some(u) = s.urgency.get(sev) {
                put("urgency", u.clone());
            }
            if let Some(i) = s.impact.get(sev) {
                put("impact", i.clone());
            }
        }
        if let Some(g) = &s.assignment_group {
            put("assignment_group", g.clone());
        }
        if let Some(c) = &s.category {
            put("category", c.clone());
        }
        let created = self
            .api
            .post(
                "create the record",
                Call::Create,
                &self.table_url(),
                &Value::Object(body),
            )
            .await?;
        let mut record = created
            .get("result")
            .and_then(|r| self.record(r))
            .ok_or_else(|| {
                self.api
                    .error("create the record: the reply names no sys_id and number")
            })?;
        record.problem_key = Some(new.problem_key.to_string());
        Ok(record)
    }

    async fn comment(&self, ticket: &Record, text: &str) -> Result<(), TicketError> {
        self.patch("add a work note", ticket, json!({ "work_notes": text }))
            .await
    }

    async fn close(&self, ticket: &Record, text: &str) -> Result<(), TicketError> {
        let body = json!({
            "state": "6",
            "close_code": self.settings.close_code,
            "close_notes": text,
        });
        self.patch("resolve the record", ticket, body).await
    }

    async fn reopen(&self, ticket: &Record, text: &str) -> Result<(), TicketError> {
        self.patch(
            "reopen the record",
            ticket,
            json!({ "state": "2", "work_notes": text }),
        )
        .await
    }
}

/// ServiceNow's times: `2026-11-26 22:10:00` (UTC through the API).
fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S")
        .ok()
        .map(|t| t.and_utc())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_short_descriptions() {
        let t = parse_time("2026-11-26 22:10:00").unwrap();
        assert_eq!(t.to_rfc3339(), "2026-11-26T22:10:00+00:00");
        assert!(parse_time("").is_none());
        assert_eq!(
            one_line(&"é".repeat(200), MAX_SHORT_DESCRIPTION)
                .chars()
                .count(),
            160
        );
    }
}
