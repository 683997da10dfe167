//! `[coordination] table`: what the tasks of one deployment share, in one
//! DynamoDB table (created by `deploy/hubtriage.yaml` or `hubtriage setup`,
//! never by `run`; pay per request; one string partition key `pk`; TTL
//! attribute `ttl`).
//!
//! One item per problem, `pk = "problem#<problem key>"`, and per cluster under
//! remediation, `pk = "cluster#<cluster ARN>"` (a lease only):
//! - `owner`, `expires` (epoch seconds): the problem's lease. A task takes it
//!   with a conditional write (free, expired, or already its own), renews it
//!   while it works, and removes it when done; a task that dies loses it when
//!   it expires (`[coordination] lease_seconds`, default 60).
//! - `ticket`, `url`: the problem's ticket, once one exists, so another task
//!   or a restarted one reads it by key instead of searching (Jira Cloud's
//!   search lags).
//! - `unsettled` (epoch seconds): a create that may have been written but was
//!   not found; no task creates another until search has had time to show it.
//! - `progress` (cluster items): the remediation's progress as JSON, saved
//!   before every change it makes, only while the task holds the lease (the
//!   write checks owner and expiry, so a task paused past its lease changes
//!   nothing more), and read by the task that takes over after a crash, so it
//!   carries on without redoing a reboot. Removed when the remediation ends.
//! - `ttl`: the item expires 400 days after its last write.
//!
//! And one item `pk = "remediation-slots"`: the remediations under way and the
//! last hour's starts (`state`, JSON of [`Slots`]), with a `version` that every
//! write checks, so `max_concurrent` and `max_per_hour` hold across tasks.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};

use crate::act::recheck::{SharedSlots, SlotChange, Slots};

/// Items expire this long after their last write.
const ITEM_DAYS: i64 = 400;

#[derive(Debug, thiserror::Error)]
pub enum CoordinationError {
    #[error("another task holds the lease of problem {0}; the message returns to the queue")]
    Held(String),
    #[error("coordination table: {0}")]
    Aws(#[from] crate::aws::Error),
    #[error("coordination table: {0}")]
    Reply(String),
    #[error(
        "this task no longer holds the lease of {0}: another task took it over after it expired"
    )]
    Lost(String),
}

/// The item of a problem (tickets).
pub fn problem_item(problem_key: &str) -> String {
    format!("problem#{problem_key}")
}

/// The item of a cluster under remediation (one pass at a time).
pub fn cluster_item(cluster_arn: &str) -> String {
    format!("cluster#{cluster_arn}")
}

/// The item holding the remediation slots.
const SLOTS_ITEM: &str = "remediation-slots";
/// Conflicting writes of the slots tried again before giving up.
const SLOT_WRITE_TRIES: usize = 10;

/// What the table knows of a problem when its lease is taken.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Lease {
    /// The problem's ticket key, if one was recorded.
    pub ticket: Option<String>,
    /// When a create that may have been written was not found (epoch seconds).
    pub unsettled: Option<i64>,
    /// A cluster's remediation progress as last saved (JSON), if any.
    pub progress: Option<String>,
}

/// The problem leases and ticket references of all tasks.
#[async_trait]
pub trait Coordinator: Send + Sync {
    /// Takes (or renews) the lease of `problem` for this task.
    async fn acquire(&self, problem: &str) -> Result<Lease, CoordinationError>;
    async fn record_ticket(
        &self,
        problem: &str,
        ticket: &str,
        url: &str,
    ) -> Result<(), CoordinationError>;
    async fn mark_unsettled(&self, problem: &str) -> Result<(), CoordinationError>;
    /// Gives the lease up (if it is still this task's).
    async fn release(&self, problem: &str) -> Result<(), CoordinationError>;
    /// Saves a remediation's progress (JSON) with the item, only while this
    /// task holds its lease (and renews it); else [`CoordinationError::Lost`].
    async fn save_progress(&self, item: &str, progress: &str) -> Result<(), CoordinationError>;
    /// Forgets the progress of a remediation that ended (if the lease is still this task's).
    async fn clear_progress(&self, item: &str) -> Result<(), CoordinationError>;
    /// How long a lease lasts without renewal.
    fn lease_duration(&self) -> Duration;
}

/// A taken lease, renewed in the background until dropped (then it is
/// released by the caller, or expires).
pub struct Held {
    renewer: tokio::task::JoinHandle<()>,
}

impl Held {
    /// Renews `problem`'s lease every third of its duration.
    pub fn renew(coordinator: Arc<dyn Coordinator>, problem: &str) -> Held {
        let problem = problem.to_string();
        let every = coordinator.lease_duration() / 3;
        let renewer = tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                if let Err(e) = coordinator.acquire(&problem).await {
                    tracing::warn!(problem_key = %problem, error = %e, "could not renew the problem's lease");
                }
            }
        });
        Held { renewer }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.renewer.abort();
    }
}

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

    fn error<E>(
        &self,
        operation: &'static str,
        e: &aws_sdk_dynamodb::error::SdkError<E, aws_smithy_runtime_api::http::Response>,
    ) -> CoordinationError
    where
        E: aws_sdk_dynamodb::error::ProvideErrorMetadata + std::error::Error + 'static,
    {
        CoordinationError::Aws(crate::aws::Error::from_sdk(
            "DynamoDB",
            operation,
            self.table.clone(),
            e,
        ))
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
        match call.send().await {
            Ok(_) => Ok(true),
            Err(e) if e.as_service_error().is_some_and(is_condition_failed) => Ok(false),
            Err(e) => Err(self.error("UpdateItem", &e)),
        }
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

fn is_condition_failed<E: aws_sdk_dynamodb::error::ProvideErrorMetadata>(e: &E) -> bool {
    e.code() == Some("ConditionalCheckFailedException")
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
            .await;
        let out = match out {
            Ok(o) => o,
            Err(e) if e.as_service_error().is_some_and(is_condition_failed) => {
                return Err(CoordinationError::Held(problem.to_string()))
            }
            Err(e) => return Err(self.error("UpdateItem", &e)),
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
            .map_err(|e| self.error("UpdateItem", &e))?;
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
            .map_err(|e| self.error("UpdateItem", &e))?;
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
    async fn change_slots(&self, change: &SlotChange<'_>) -> Result<Result<(), String>, String> {
        for attempt in 0..SLOT_WRITE_TRIES {
            tracing::debug!(attempt, "slots: reading");
            let item = self
                .client
                .get_item()
                .table_name(&self.table)
                .key("pk", Self::key(SLOTS_ITEM))
                .consistent_read(true)
                .send()
                .await
                .map_err(|e| self.error("GetItem", &e).to_string())?
                .item
                .unwrap_or_default();
            let version = match item.get("version") {
                Some(AttributeValue::N(n)) => Some(
                    n.parse::<i64>()
                        .map_err(|_| format!("{SLOTS_ITEM} version is not a number: {n:?}"))?,
                ),
                _ => None,
            };
            let mut slots: Slots = match item.get("state") {
                Some(AttributeValue::S(json)) => serde_json::from_str(json)
                    .map_err(|e| format!("{SLOTS_ITEM} state is not what hubtriage writes: {e}"))?,
                _ => Slots::default(),
            };
            let before = slots.clone();
            let result = change(&mut slots);
            if slots == before {
                return Ok(result);
            }
            let state = serde_json::to_string(&slots).map_err(|e| e.to_string())?;
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
            tracing::debug!(attempt, "slots: writing");
            match put.send().await {
                Ok(_) => return Ok(result),
                // Another task changed the slots: read them again.
                Err(e) if e.as_service_error().is_some_and(is_condition_failed) => continue,
                Err(e) => return Err(self.error("PutItem", &e).to_string()),
            }
        }
        Err(format!(
            "{SLOTS_ITEM} kept changing under {SLOT_WRITE_TRIES} tries"
        ))
    }
}
