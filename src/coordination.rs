//! `[coordination] table`: what the tasks of one deployment share, in one
//! DynamoDB table (created by `deploy/hubtriage.yaml` or `hubtriage setup`,
//! never by `run`; pay per request; one string partition key `pk`; TTL
//! attribute `ttl`).
//!
//! One item per problem, `pk = "problem#<problem key>"`:
//! - `owner`, `expires` (epoch seconds): the problem's lease. A task takes it
//!   with a conditional write (free, expired, or already its own), renews it
//!   while it works, and removes it when done; a task that dies loses it when
//!   it expires (`[coordination] lease_seconds`, default 60).
//! - `ticket`, `url`: the problem's ticket, once one exists, so another task
//!   or a restarted one reads it by key instead of searching (Jira Cloud's
//!   search lags).
//! - `unsettled` (epoch seconds): a create that may have been written but was
//!   not found; no task creates another until search has had time to show it.
//! - `ttl`: the item expires 400 days after its last write.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};

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
}

/// What the table knows of a problem when its lease is taken.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Lease {
    /// The problem's ticket key, if one was recorded.
    pub ticket: Option<String>,
    /// When a create that may have been written was not found (epoch seconds).
    pub unsettled: Option<i64>,
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
            client: aws_sdk_dynamodb::Client::new(sdk),
            table: table.to_string(),
            owner: owner_id(),
            lease,
        }
    }

    fn key(problem: &str) -> AttributeValue {
        AttributeValue::S(format!("problem#{problem}"))
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
        })
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
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", Self::key(problem))
            .update_expression("REMOVE #owner, #expires")
            .condition_expression("#owner = :me")
            .expression_attribute_names("#owner", "owner")
            .expression_attribute_names("#expires", "expires")
            .expression_attribute_values(":me", AttributeValue::S(self.owner.clone()))
            .send()
            .await;
        match out {
            Ok(_) => Ok(()),
            // Expired and taken by another task meanwhile: not ours to release.
            Err(e) if e.as_service_error().is_some_and(is_condition_failed) => Ok(()),
            Err(e) => Err(self.error("UpdateItem", &e)),
        }
    }

    fn lease_duration(&self) -> Duration {
        self.lease
    }
}
