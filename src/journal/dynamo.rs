//! The change journal in DynamoDB: `[journal] table`.
//!
//! Keys, chosen for `hubtriage history`'s filters (every filtered question
//! is a Query, never a Scan of the table):
//! - the table: partition `pk` = `day#YYYY-MM-DD` (the entry's UTC day),
//!   sort `sk` = the entry's id (sorted by time). A time range reads the
//!   days it spans, newest first.
//! - index `by-account`: partition `account`, sort `sk`: one account's
//!   entries in a time range.
//! - index `by-resource`: partition `resource_name` (a cluster's or
//!   snapshot's name, the end of its ARN), sort `sk`: one resource's
//!   entries (by name, or by ARN with a filter on `resource`); a pass's
//!   settling of its resource's open changes and `undo` read it too.
//! - index `open-changes` (sparse): partition `open` (always `open`), sort
//!   `sk`: the changes whose end is not known yet (`started`, `unknown`);
//!   the attribute is removed when a change is completed, so the index holds
//!   only the few the daemon's sweep must settle.
//!
//! The other filters (region, control, kind) are filter expressions on
//! those queries. Every entry attribute is stored as itself (strings, and
//! `finding_ids` a list), so the items read well in the console; `ttl`
//! (epoch seconds) expires an entry `[journal] keep_days` after it was
//! written. Writes never overwrite: a new entry is a conditional put on a
//! new key; a completion updates only an entry still `started` or `unknown`.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Duration, Utc};
use serde_json::Value;

use super::writer::BatchWriter;
use super::{id_time, resource_name, Entry, Filter, Journal, JournalError, Outcome};
use crate::aws::AwsResult;

/// The global secondary index by account.
pub const BY_ACCOUNT: &str = "by-account";
/// The global secondary index by resource name.
pub const BY_RESOURCE: &str = "by-resource";
/// The sparse global secondary index of open changes.
pub const OPEN_CHANGES: &str = "open-changes";
/// The attribute (and its one value) that puts a change in [`OPEN_CHANGES`].
const OPEN: &str = "open";

pub struct DynamoJournal {
    client: aws_sdk_dynamodb::Client,
    table: String,
    keep_days: i64,
    writer: BatchWriter,
}

impl DynamoJournal {
    /// The journal in `table`, its entries kept `keep_days`. Must be made
    /// inside a tokio runtime (its batch writer runs there).
    pub fn new(sdk: &aws_config::SdkConfig, table: &str, keep_days: u32) -> Arc<DynamoJournal> {
        let client = aws_sdk_dynamodb::Client::new(&crate::aws::standard_retries(sdk));
        Arc::new(DynamoJournal {
            writer: BatchWriter::start(client.clone(), table.to_string()),
            client,
            table: table.to_string(),
            keep_days: i64::from(keep_days),
        })
    }

    /// The item of `entry`, as stored.
    fn item(&self, entry: &Entry) -> Result<HashMap<String, AttributeValue>, JournalError> {
        item(entry, self.keep_days)
    }
}

/// The item of `entry`: its attributes and the keys.
pub(super) fn item(
    entry: &Entry,
    keep_days: i64,
) -> Result<HashMap<String, AttributeValue>, JournalError> {
    let value = serde_json::to_value(entry)
        .map_err(|e| JournalError::Reply(format!("entry {} cannot be written: {e}", entry.id)))?;
    let mut item = HashMap::new();
    if let Value::Object(fields) = value {
        for (k, v) in fields {
            if let Some(a) = attribute(v) {
                item.insert(k, a);
            }
        }
    }
    item.insert("pk".into(), AttributeValue::S(day_key(&entry.id)));
    item.insert("sk".into(), AttributeValue::S(entry.id.clone()));
    let name = entry.resource_name();
    if !name.is_empty() {
        item.insert("resource_name".into(), AttributeValue::S(name.to_string()));
    }
    if entry.kind == super::Kind::Change && entry.result.is_open() {
        item.insert(OPEN.into(), AttributeValue::S(OPEN.into()));
    }
    if entry.account.is_empty() {
        // An index key cannot be empty: such an entry is found by day only.
        item.remove("account");
    }
    let ttl = entry.time.timestamp() + keep_days * 86_400;
    item.insert("ttl".into(), AttributeValue::N(ttl.to_string()));
    Ok(item)
}

/// A JSON value as an attribute: strings and lists of strings; null is left out.
fn attribute(v: Value) -> Option<AttributeValue> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(AttributeValue::S(s)),
        Value::Bool(b) => Some(AttributeValue::Bool(b)),
        Value::Number(n) => Some(AttributeValue::N(n.to_string())),
        Value::Array(a) => Some(AttributeValue::L(
            a.into_iter().filter_map(attribute).collect(),
        )),
        Value::Object(o) => Some(AttributeValue::S(Value::Object(o).to_string())),
    }
}

/// An item read back as an entry; an item hubtriage did not write is an
/// error naming it.
fn entry_of(item: &HashMap<String, AttributeValue>) -> Result<Entry, JournalError> {
    let mut fields = serde_json::Map::new();
    for (k, v) in item {
        if matches!(k.as_str(), "pk" | "sk" | "ttl" | "resource_name" | OPEN) {
            continue;
        }
        fields.insert(k.clone(), json_of(v));
    }
    let key = match item.get("sk") {
        Some(AttributeValue::S(s)) => s.clone(),
        _ => "(no sk)".to_string(),
    };
    serde_json::from_value(Value::Object(fields)).map_err(|e| {
        JournalError::Reply(format!("item {key} is not an entry hubtriage writes: {e}"))
    })
}

fn json_of(v: &AttributeValue) -> Value {
    match v {
        AttributeValue::S(s) => Value::String(s.clone()),
        AttributeValue::Bool(b) => Value::Bool(*b),
        AttributeValue::N(n) => n.parse::<i64>().map(Value::from).unwrap_or(Value::Null),
        AttributeValue::L(l) => Value::Array(l.iter().map(json_of).collect()),
        _ => Value::Null,
    }
}

/// The day partition of an id: `day#2026-12-08` for `20261208T…`.
pub fn day_key(id: &str) -> String {
    let d = id.get(..8).unwrap_or("00000000");
    format!("day#{}-{}-{}", &d[..4], &d[4..6], &d[6..8])
}

/// The sort-key range of a time range: every id from `since` to `until`.
fn id_range(since: DateTime<Utc>, until: DateTime<Utc>) -> (String, String) {
    // `~` sorts after the id's `-` and hex digits: every id of that millisecond.
    (id_time(since), format!("{}~", id_time(until)))
}

/// How the table is read for a filter: which key, which index.
enum Access {
    Resource(String),
    Account(String),
    Days,
}

impl Access {
    fn of(f: &Filter) -> Access {
        if let Some(r) = &f.resource {
            return Access::Resource(resource_name(r).to_string());
        }
        if let Some(a) = &f.account {
            return Access::Account(a.clone());
        }
        Access::Days
    }
}

impl DynamoJournal {
    /// One Query (all its pages), newest first, with the filter expression
    /// of what the key does not select.
    async fn query_key(
        &self,
        index: Option<&str>,
        key: (&str, String),
        range: &(String, String),
        f: &Filter,
    ) -> Result<Vec<Entry>, JournalError> {
        let mut names = HashMap::from([("#k".to_string(), key.0.to_string())]);
        let mut values = HashMap::from([
            (":k".to_string(), AttributeValue::S(key.1)),
            (":from".to_string(), AttributeValue::S(range.0.clone())),
            (":to".to_string(), AttributeValue::S(range.1.clone())),
        ]);
        let mut conditions = Vec::new();
        let mut filter_on = |attr: &str, want: Option<String>| {
            if let Some(want) = want {
                names.insert(format!("#{attr}"), attr.to_string());
                values.insert(format!(":{attr}"), AttributeValue::S(want));
                conditions.push(format!("#{attr} = :{attr}"));
            }
        };
        filter_on("region", f.region.clone());
        filter_on("control", f.control.clone());
        filter_on("kind", f.kind.map(|k| k.as_str().to_string()));
        filter_on(
            "resource",
            f.resource.clone().filter(|r| r.starts_with("arn:")),
        );
        if index != Some(BY_ACCOUNT) {
            filter_on("account", f.account.clone());
        }
        let mut call = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("#k = :k AND sk BETWEEN :from AND :to")
            .scan_index_forward(false)
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values));
        if !conditions.is_empty() {
            call = call.filter_expression(conditions.join(" AND "));
        }
        if let Some(index) = index {
            call = call.index_name(index);
        }
        let mut pages = call.into_paginator().send();
        let mut out = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.aws("DynamoDB", "Query", &self.table)?;
            for item in page.items() {
                out.push(entry_of(item)?);
            }
        }
        Ok(out)
    }
}

#[async_trait]
impl Journal for DynamoJournal {
    async fn append(&self, entry: &Entry) -> Result<(), JournalError> {
        let written = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(self.item(entry)?))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await
            .absent_if(|e| e.is_conditional_check_failed_exception())
            .aws("DynamoDB", "PutItem", &self.table)?;
        written
            .map(|_| ())
            .ok_or_else(|| JournalError::Reply(format!("entry {} is already written", entry.id)))
    }

    async fn complete(
        &self,
        id: &str,
        result: Outcome,
        error: Option<&str>,
    ) -> Result<(), JournalError> {
        let mut call = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(day_key(id)))
            .key("sk", AttributeValue::S(id.to_string()))
            .condition_expression("#result = :started OR #result = :unknown")
            .expression_attribute_names("#result", "result")
            .expression_attribute_values(":result", AttributeValue::S(result.as_str().into()))
            .expression_attribute_values(":started", AttributeValue::S("started".into()))
            .expression_attribute_values(":unknown", AttributeValue::S("unknown".into()));
        // A change whose end is known leaves the index of open changes.
        let close = if result.is_open() {
            ""
        } else {
            " REMOVE #open"
        };
        if !result.is_open() {
            call = call.expression_attribute_names("#open", OPEN);
        }
        call = match error {
            Some(error) => call
                .update_expression(format!("SET #result = :result, #error = :error{close}"))
                .expression_attribute_names("#error", "error")
                .expression_attribute_values(":error", AttributeValue::S(error.to_string())),
            None => call.update_expression(format!("SET #result = :result{close}")),
        };
        let updated = call
            .send()
            .await
            .absent_if(|e| e.is_conditional_check_failed_exception())
            .aws("DynamoDB", "UpdateItem", &self.table)?;
        updated
            .map(|_| ())
            .ok_or_else(|| JournalError::NotOpen(id.to_string()))
    }

    async fn mark_verified(&self, id: &str, at: DateTime<Utc>) -> Result<(), JournalError> {
        self.client
            .update_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(day_key(id)))
            .key("sk", AttributeValue::S(id.to_string()))
            .update_expression("SET #verified = :at")
            .condition_expression("#result = :done AND attribute_not_exists(#verified)")
            .expression_attribute_names("#verified", "verified_at")
            .expression_attribute_names("#result", "result")
            .expression_attribute_values(":at", AttributeValue::S(super::rfc3339_text(at)))
            .expression_attribute_values(":done", AttributeValue::S("done".into()))
            .send()
            .await
            .absent_if(|e| e.is_conditional_check_failed_exception())
            .aws("DynamoDB", "UpdateItem", &self.table)?;
        Ok(())
    }

    fn record(&self, entries: Vec<Entry>) {
        for entry in entries {
            match self.item(&entry) {
                Ok(item) => self.writer.push(item),
                Err(e) => tracing::error!(error = %e, "journal entry dropped"),
            }
        }
    }

    async fn query(&self, f: &Filter) -> Result<Vec<Entry>, JournalError> {
        let range = id_range(f.since, f.until);
        match Access::of(f) {
            Access::Resource(name) => {
                self.query_key(Some(BY_RESOURCE), ("resource_name", name), &range, f)
                    .await
            }
            Access::Account(account) => {
                self.query_key(Some(BY_ACCOUNT), ("account", account), &range, f)
                    .await
            }
            Access::Days => {
                let mut out = Vec::new();
                let mut day = f.until.date_naive();
                while day >= f.since.date_naive() {
                    let key = format!("day#{}", day.format("%Y-%m-%d"));
                    out.extend(self.query_key(None, ("pk", key), &range, f).await?);
                    day -= Duration::days(1);
                }
                Ok(out)
            }
        }
    }

    async fn open_changes(
        &self,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Vec<Entry>, JournalError> {
        let range = id_range(since, until);
        self.query_key(
            Some(OPEN_CHANGES),
            (OPEN, OPEN.to_string()),
            &range,
            &Filter::between(since, until),
        )
        .await
    }

    async fn get(&self, id: &str) -> Result<Option<Entry>, JournalError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(day_key(id)))
            .key("sk", AttributeValue::S(id.to_string()))
            .consistent_read(true)
            .send()
            .await
            .aws("DynamoDB", "GetItem", &self.table)?;
        out.item.as_ref().map(entry_of).transpose()
    }

    async fn flush(&self, limit: std::time::Duration) {
        self.writer.flush(limit).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Mode;
    use crate::journal::Kind;

    #[test]
    fn an_entry_is_stored_under_its_day_and_read_back() {
        let mut e = Entry::new(
            Kind::Change,
            Mode::Apply,
            "111122223333",
            "us-east-1",
            "arn:aws:rds:us-east-1:111122223333:cluster:orders-graph",
        );
        e.finding_ids = vec!["f-1".into(), "f-2".into()];
        e.before = Some("false".into());
        let item = item(&e, 400).unwrap();
        assert_eq!(item["pk"], AttributeValue::S(day_key(&e.id)));
        assert!(day_key(&e.id).starts_with("day#20"));
        assert_eq!(
            item["resource_name"],
            AttributeValue::S("orders-graph".into())
        );
        assert!(!item.contains_key("after"), "null is left out");
        let back = entry_of(&item).unwrap();
        assert_eq!(back.finding_ids, e.finding_ids);
        assert_eq!(back.id, e.id);
        let mut bad = item.clone();
        bad.insert("kind".into(), AttributeValue::S("other".into()));
        let err = entry_of(&bad).unwrap_err().to_string();
        assert!(
            err.contains(&e.id) && err.contains("kind") || err.contains("variant"),
            "{err}"
        );
    }

    #[test]
    fn the_id_range_holds_every_id_of_its_last_millisecond() {
        let t = Utc::now();
        let (from, to) = id_range(t - Duration::days(1), t);
        let id = super::super::new_id(t);
        assert!(from < id && id < to, "{from} {id} {to}");
    }
}
