//! The coordination table in DynamoDB (see the module above for its items).

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};

use super::{CoordinationError, Coordinator, Lease, SharedSlots, SlotChange, Slots, SlotsChanged};
use crate::aws::AwsResult;

/// Items expire this long after their last write.
const ITEM_DAYS: i64 = 400;
/// The item holding the remediation slots.
const SLOTS_ITEM: &str = "remediation-slots";
/// Conflicting writes of the slots tried again before giving up.
const SLOT_WRITE_TRIES: usize = 10;

/// The table in DynamoDB.
pub struct DynamoCoordinator {
    client: aws_sdk_dynamodb::Client,
    table: String,
    owner: String,
    lease: Duration,
}

impl DynamoCoordinator {
    pub fn new(sdk: &aws_config::SdkConfig, table: &str, lease: Duration) -> DynamoCoordinator {
        DynamoCoordinator {
            // Leases have deadlines: no waiting on the SDK's rate limiter.
            client: aws_sdk_dynamodb::Client::new(&crate::aws::standard_retries(sdk)),
            table: table.to_string(),
            owner: owner_id(),
            lease,
        }
    }

    fn key(item: &str) -> AttributeValue {
        AttributeValue::S(item.to_string())
    }
}

impl DynamoCoordinator {
    /// Runs `update` on `item` only while this task owns its lease (and
    /// `and_condition`, which starts with " AND "); `Ok(false)` when not.
    /// `names` are the attributes the expressions name as `#name`, besides `owner`.
    async fn update_owned(
        &self,
        item: &str,
        update: &str,
        and_condition: &str,
        names: &[&str],
        values: Vec<(&str, AttributeValue)>,
    ) -> Result<bool, CoordinationError> {
        let mut call = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", Self::key(item))
            .update_expression(update)
            .condition_expression(format!("#owner = :me{and_condition}"))
            .expression_attribute_names("#owner", "owner")
            .expression_attribute_values(":me", AttributeValue::S(self.owner.clone()));
        for name in names {
            call = call.expression_attribute_names(format!("#{name}"), *name);
        }
        for (placeholder, value) in values {
            call = call.expression_attribute_values(placeholder, value);
        }
        let updated = call
            .send()
            .await
            .absent_if(|e| e.is_conditional_check_failed_exception())
            .aws("DynamoDB", "UpdateItem", &self.table)?;
        Ok(updated.is_some())
    }
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn number(n: i64) -> AttributeValue {
    AttributeValue::N(n.to_string())
}

/// This task: the host (the ECS task's), the process and when it started.
fn owner_id() -> String {
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "local".into());
    let started = chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default();
    format!("{host}/{}/{started:x}", std::process::id())
}

#[async_trait]
impl Coordinator for DynamoCoordinator {
    async fn acquire(&self, problem: &str) -> Result<Lease, CoordinationError> {
        tracing::debug!(item = problem, "lease: acquiring");
        let now = now();
        let lease = i64::try_from(self.lease.as_secs()).unwrap_or(60);
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", Self::key(problem))
            .update_expression("SET #owner = :me, #expires = :expires, #ttl = :ttl")
            .condition_expression("attribute_not_exists(#owner) OR #expires < :now OR #owner = :me")
            .expression_attribute_names("#owner", "owner")
            .expression_attribute_names("#expires", "expires")
            .expression_attribute_names("#ttl", "ttl")
            .expression_attribute_values(":me", AttributeValue::S(self.owner.clone()))
            .expression_attribute_values(":expires", number(now + lease))
            .expression_attribute_values(":now", number(now))
            .expression_attribute_values(":ttl", number(now + ITEM_DAYS * 86_400))
            .return_values(ReturnValue::AllNew)
            .send()
            .await
            .absent_if(|e| e.is_conditional_check_failed_exception())
            .aws("DynamoDB", "UpdateItem", &self.table)?;
        let Some(out) = out else {
            return Err(CoordinationError::Held(problem.to_string()));
        };
        let item = out.attributes.unwrap_or_default();
        let text = |k: &str| match item.get(k) {
            Some(AttributeValue::S(s)) if !s.is_empty() => Some(s.clone()),
            _ => None,
        };
        let unsettled = match item.get("unsettled") {
            Some(AttributeValue::N(n)) => Some(n.parse::<i64>().map_err(|_| {
                CoordinationError::Reply(format!("unsettled of {problem} is not a number: {n:?}"))
            })?),
            _ => None,
        };
        Ok(Lease {
            ticket: text("ticket"),
            unsettled,
            progress: text("progress"),
        })
    }

    async fn save_progress(&self, item: &str, progress: &str) -> Result<(), CoordinationError> {
        let now = now();
        let lease = i64::try_from(self.lease.as_secs()).unwrap_or(60);
        let owned = self
            .update_owned(
                item,
                "SET #progress = :progress, #expires = :expires, #ttl = :ttl",
                " AND #expires >= :now",
                &["progress", "expires", "ttl"],
                vec![
                    (":progress", AttributeValue::S(progress.to_string())),
                    (":expires", number(now + lease)),
                    (":now", number(now)),
                    (":ttl", number(now + ITEM_DAYS * 86_400)),
                ],
            )
            .await?;
        owned
            .then_some(())
            .ok_or_else(|| CoordinationError::Lost(item.to_string()))
    }

    async fn clear_progress(&self, item: &str) -> Result<(), CoordinationError> {
        let owned = self
            .update_owned(item, "REMOVE #progress", "", &["progress"], vec![])
            .await?;
        owned
            .then_some(())
            .ok_or_else(|| CoordinationError::Lost(item.to_string()))
    }

    async fn record_ticket(
        &self,
        problem: &str,
        ticket: &str,
        url: &str,
    ) -> Result<(), CoordinationError> {
        let now = now();
        self.client
            .update_item()
            .table_name(&self.table)
            .key("pk", Self::key(problem))
            .update_expression("SET #ticket = :ticket, #url = :url, #ttl = :ttl REMOVE #unsettled")
            .expression_attribute_names("#ticket", "ticket")
            .expression_attribute_names("#url", "url")
            .expression_attribute_names("#ttl", "ttl")
            .expression_attribute_names("#unsettled", "unsettled")
            .expression_attribute_values(":ticket", AttributeValue::S(ticket.to_string()))
            .expression_attribute_values(":url", AttributeValue::S(url.to_string()))
            .expression_attribute_values(":ttl", number(now + ITEM_DAYS * 86_400))
            .send()
            .await
            .aws("DynamoDB", "UpdateItem", &self.table)?;
        Ok(())
    }

    async fn mark_unsettled(&self, problem: &str) -> Result<(), CoordinationError> {
        self.client
            .update_item()
            .table_name(&self.table)
            .key("pk", Self::key(problem))
            .update_expression("SET #unsettled = :now")
            .expression_attribute_names("#unsettled", "unsettled")
            .expression_attribute_values(":now", number(now()))
            .send()
            .await
            .aws("DynamoDB", "UpdateItem", &self.table)?;
        Ok(())
    }

    async fn release(&self, problem: &str) -> Result<(), CoordinationError> {
        // Not owned: expired and taken by another task meanwhile, not ours to release.
        self.update_owned(problem, "REMOVE #owner, #expires", "", &["expires"], vec![])
            .await
            .map(|_| ())
    }

    fn lease_duration(&self) -> Duration {
        self.lease
    }
}

#[async_trait]
impl SharedSlots for DynamoCoordinator {
    async fn change_slots(
        &self,
        change: &SlotChange<'_>,
    ) -> Result<SlotsChanged, CoordinationError> {
        for attempt in 0..SLOT_WRITE_TRIES {
            tracing::debug!(attempt, "slots: reading");
            let (mut slots, version) = self.read_slots().await?;
            let before = slots.clone();
            let answer = change(&mut slots);
            if slots == before {
                return Ok(answer);
            }
            tracing::debug!(attempt, "slots: writing");
            if self.write_slots(&slots, version).await? {
                return Ok(answer);
            }
            // Another task changed the slots: read them again.
        }
        Err(CoordinationError::Reply(format!(
            "{SLOTS_ITEM} kept changing under {SLOT_WRITE_TRIES} tries"
        )))
    }
}

impl DynamoCoordinator {
    /// The slots and their version (`None`: never written).
    async fn read_slots(&self) -> Result<(Slots, Option<i64>), CoordinationError> {
        let item = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", Self::key(SLOTS_ITEM))
            .consistent_read(true)
            .send()
            .await
            .aws("DynamoDB", "GetItem", &self.table)?
            .item
            .unwrap_or_default();
        let version = match item.get("version") {
            Some(AttributeValue::N(n)) => Some(n.parse::<i64>().map_err(|_| {
                CoordinationError::Reply(format!("{SLOTS_ITEM} version is not a number: {n:?}"))
            })?),
            _ => None,
        };
        let slots = match item.get("state") {
            Some(AttributeValue::S(json)) => serde_json::from_str(json).map_err(|e| {
                CoordinationError::Reply(format!(
                    "{SLOTS_ITEM} state is not what hubtriage writes: {e}"
                ))
            })?,
            _ => Slots::default(),
        };
        Ok((slots, version))
    }

    /// Writes the slots if they are still at `version`; `false` when another
    /// task wrote them meanwhile.
    async fn write_slots(
        &self,
        slots: &Slots,
        version: Option<i64>,
    ) -> Result<bool, CoordinationError> {
        let state =
            serde_json::to_string(slots).map_err(|e| CoordinationError::Reply(e.to_string()))?;
        let mut put = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", Self::key(SLOTS_ITEM))
            .item("state", AttributeValue::S(state))
            .item("version", number(version.unwrap_or(0) + 1))
            .item("ttl", number(now() + ITEM_DAYS * 86_400));
        put = match version {
            Some(v) => put
                .condition_expression("#version = :version")
                .expression_attribute_names("#version", "version")
                .expression_attribute_values(":version", number(v)),
            None => put.condition_expression("attribute_not_exists(pk)"),
        };
        let written = put
            .send()
            .await
            .absent_if(|e| e.is_conditional_check_failed_exception())
            .aws("DynamoDB", "PutItem", &self.table)?;
        Ok(written.is_some())
    }
}
