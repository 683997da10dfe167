//! The DynamoDB tables `hubtriage setup` makes: `[coordination] table` (one
//! string partition key `pk`) and `[journal] table` (`pk` and the sort key
//! `sk`, and the indexes `history` reads: `by-account`, `by-resource`). Pay
//! per request, TTL on `ttl`. A new table is waited for until it is active
//! (TTL can be set only then); an existing table with other keys, or
//! without an index, is an error naming what differs.

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, TableStatus, TimeToLiveSpecification, TimeToLiveStatus,
};

use super::{Setup, SetupError};
use crate::aws::AwsResult;
use crate::journal::{BY_ACCOUNT, BY_RESOURCE, OPEN_CHANGES};

/// What a table must look like.
pub struct TableSpec<'a> {
    pub name: &'a str,
    /// The config key that names it, for errors.
    pub key: &'static str,
    /// The sort key, if any (the partition key is always `pk`).
    pub sort: Option<&'static str>,
    /// Global secondary indexes: (name, partition key, sort key).
    pub indexes: &'static [(&'static str, &'static str, &'static str)],
}

impl<'a> TableSpec<'a> {
    pub fn coordination(name: &'a str) -> Self {
        TableSpec {
            name,
            key: "[coordination] table",
            sort: None,
            indexes: &[],
        }
    }

    pub fn journal(name: &'a str) -> Self {
        TableSpec {
            name,
            key: "[journal] table",
            sort: Some("sk"),
            indexes: &[
                (BY_ACCOUNT, "account", "sk"),
                (BY_RESOURCE, "resource_name", "sk"),
                (OPEN_CHANGES, "open", "sk"),
            ],
        }
    }

    fn describe(&self) -> String {
        let mut keys = "partition key pk".to_string();
        if let Some(sort) = self.sort {
            keys.push_str(&format!(", sort key {sort}"));
        }
        for (index, _, _) in self.indexes {
            keys.push_str(&format!(", index {index}"));
        }
        keys
    }
}

fn string_key(name: &str, kind: KeyType) -> Result<KeySchemaElement, String> {
    KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(kind)
        .build()
        .map_err(|e| e.to_string())
}

fn string_attribute(name: &str) -> Result<AttributeDefinition, String> {
    AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(ScalarAttributeType::S)
        .build()
        .map_err(|e| e.to_string())
}

impl Setup {
    /// The table as `spec` says, and its TTL on.
    pub(super) async fn ensure_table(&mut self, spec: &TableSpec<'_>) -> Result<(), SetupError> {
        let table = spec.name;
        let exists = self.table_exists(spec).await?;
        if !exists
            && self.change(format!(
                "create DynamoDB table {table} (pay per request, {})",
                spec.describe()
            ))
        {
            self.create_table(spec).await?;
            self.wait_until_active(table).await?;
        }
        let ttl_on = exists && self.ttl_on(table).await?;
        if !ttl_on
            && self.change(format!(
                "turn on TTL (attribute ttl) of DynamoDB table {table}"
            ))
        {
            self.turn_on_ttl(table).await?;
        }
        Ok(())
    }

    /// Whether the table exists; one with other keys or without an index is an error.
    async fn table_exists(&self, spec: &TableSpec<'_>) -> Result<bool, SetupError> {
        let table = spec.name;
        let described = self
            .dynamodb
            .describe_table()
            .table_name(table)
            .send()
            .await
            .absent_if(|e| e.is_resource_not_found_exception())
            .aws("DynamoDB", "DescribeTable", table)?;
        let Some(d) = described.and_then(|d| d.table) else {
            return Ok(false);
        };
        let keys: Vec<(&str, &KeyType)> = d
            .key_schema()
            .iter()
            .map(|k| (k.attribute_name(), k.key_type()))
            .collect();
        let mut want = vec![("pk", &KeyType::Hash)];
        if let Some(sort) = spec.sort {
            want.push((sort, &KeyType::Range));
        }
        let indexes: Vec<&str> = d
            .global_secondary_indexes()
            .iter()
            .filter_map(|i| i.index_name())
            .collect();
        let missing: Vec<&str> = spec
            .indexes
            .iter()
            .map(|(name, _, _)| *name)
            .filter(|name| !indexes.contains(name))
            .collect();
        if keys != want || !missing.is_empty() {
            return Err(SetupError::Config(format!(
                "{} {table} exists, but not as hubtriage needs it: expected {} (string keys){}",
                spec.key,
                spec.describe(),
                if missing.is_empty() {
                    String::new()
                } else {
                    format!("; it has no index {}", missing.join(", "))
                }
            )));
        }
        Ok(true)
    }

    async fn create_table(&self, spec: &TableSpec<'_>) -> Result<(), SetupError> {
        let mut attributes = vec!["pk"];
        let mut call = self
            .dynamodb
            .create_table()
            .table_name(spec.name)
            .key_schema(string_key("pk", KeyType::Hash).map_err(SetupError::Config)?)
            .billing_mode(BillingMode::PayPerRequest);
        if let Some(sort) = spec.sort {
            attributes.push(sort);
            call = call.key_schema(string_key(sort, KeyType::Range).map_err(SetupError::Config)?);
        }
        for (name, hash, range) in spec.indexes {
            attributes.extend([*hash, *range]);
            let index = GlobalSecondaryIndex::builder()
                .index_name(*name)
                .key_schema(string_key(hash, KeyType::Hash).map_err(SetupError::Config)?)
                .key_schema(string_key(range, KeyType::Range).map_err(SetupError::Config)?)
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::All)
                        .build(),
                )
                .build()
                .map_err(|e| SetupError::Config(e.to_string()))?;
            call = call.global_secondary_indexes(index);
        }
        attributes.sort_unstable();
        attributes.dedup();
        for a in attributes {
            call = call.attribute_definitions(string_attribute(a).map_err(SetupError::Config)?);
        }
        call.send()
            .await
            .aws("DynamoDB", "CreateTable", spec.name)?;
        Ok(())
    }

    /// Waits for a new table to be ACTIVE, for [`Setup::table_wait`] at most.
    async fn wait_until_active(&self, table: &str) -> Result<(), SetupError> {
        let (total, every) = self.table_wait;
        let started = std::time::Instant::now();
        loop {
            let status = self
                .dynamodb
                .describe_table()
                .table_name(table)
                .send()
                .await
                .aws("DynamoDB", "DescribeTable", table)?
                .table
                .and_then(|t| t.table_status);
            if status == Some(TableStatus::Active) {
                return Ok(());
            }
            if started.elapsed() >= total {
                let status = status.map_or("unknown".to_string(), |s| s.as_str().to_string());
                return Err(SetupError::Timeout(format!(
                    "DynamoDB table {table} is still {status} {} s after it was created; run setup again once it is ACTIVE (TTL is set then)",
                    total.as_secs()
                )));
            }
            tokio::time::sleep(every).await;
        }
    }

    async fn ttl_on(&self, table: &str) -> Result<bool, SetupError> {
        let described = self
            .dynamodb
            .describe_time_to_live()
            .table_name(table)
            .send()
            .await
            .aws("DynamoDB", "DescribeTimeToLive", table)?;
        Ok(described.time_to_live_description.is_some_and(|d| {
            d.attribute_name() == Some("ttl")
                && matches!(
                    d.time_to_live_status(),
                    Some(TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling)
                )
        }))
    }

    async fn turn_on_ttl(&self, table: &str) -> Result<(), SetupError> {
        let spec = TimeToLiveSpecification::builder()
            .attribute_name("ttl")
            .enabled(true)
            .build()
            .map_err(|e| SetupError::Config(e.to_string()))?;
        self.dynamodb
            .update_time_to_live()
            .table_name(table)
            .time_to_live_specification(spec)
            .send()
            .await
            .aws("DynamoDB", "UpdateTimeToLive", table)?;
        Ok(())
    }
}
