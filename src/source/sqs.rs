//! The SQS queue: long-poll receive, batched deletes with per-entry checks,
//! visibility changes, and the counts `--until-empty` waits on.
//!
//! A message is deleted only once everything in it is recorded. One that cannot
//! be parsed is never deleted: it comes back after its visibility timeout until
//! the queue's redrive policy moves it to the dead-letter queue.

use aws_sdk_sqs::types::{
    ChangeMessageVisibilityBatchRequestEntry, DeleteMessageBatchRequestEntry,
    MessageSystemAttributeName, QueueAttributeName,
};
use aws_sdk_sqs::Client;

use async_trait::async_trait;

use super::{Depth, Failed, Message, MessageQueue, Receipt};
use crate::aws::{AwsResult, Error};

#[derive(Clone)]
pub struct Queue {
    client: Client,
    url: String,
}

impl Queue {
    pub fn new(client: Client, url: impl Into<String>) -> Self {
        Queue {
            client,
            url: url.into(),
        }
    }

    /// Puts a message on the queue, visible after `delay_seconds` (0–900).
    pub async fn send(&self, body: &str, delay_seconds: i32) -> Result<(), Error> {
        self.client
            .send_message()
            .queue_url(&self.url)
            .message_body(body)
            .delay_seconds(delay_seconds)
            .send()
            .await
            .aws("SQS", "SendMessage", &self.url)?;
        Ok(())
    }

    /// The queue's own visibility timeout, in seconds.
    pub async fn visibility_timeout(&self) -> Result<i32, Error> {
        let attrs = self
            .attributes(&[QueueAttributeName::VisibilityTimeout])
            .await?;
        Ok(attrs
            .get(&QueueAttributeName::VisibilityTimeout)
            .and_then(|v| v.parse().ok())
            .unwrap_or(30))
    }

    async fn attributes(
        &self,
        names: &[QueueAttributeName],
    ) -> Result<std::collections::HashMap<QueueAttributeName, String>, Error> {
        let out = self
            .client
            .get_queue_attributes()
            .queue_url(&self.url)
            .set_attribute_names(Some(names.to_vec()))
            .send()
            .await
            .aws("SQS", "GetQueueAttributes", &self.url)?;
        Ok(out.attributes.unwrap_or_default())
    }
}

#[async_trait]
impl MessageQueue for Queue {
    fn url(&self) -> &str {
        &self.url
    }

    async fn receive(
        &self,
        max: i32,
        wait_seconds: i32,
        visibility: Option<i32>,
    ) -> Result<Vec<Message>, Error> {
        let out = self
            .client
            .receive_message()
            .queue_url(&self.url)
            .max_number_of_messages(max)
            .wait_time_seconds(wait_seconds)
            .set_visibility_timeout(visibility)
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .send()
            .await
            .aws("SQS", "ReceiveMessage", &self.url)?;
        Ok(out
            .messages
            .unwrap_or_default()
            .into_iter()
            .filter_map(|m| {
                let receive_count = m
                    .attributes()
                    .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
                    .and_then(|c| c.parse().ok())
                    .unwrap_or(1);
                Some(Message {
                    id: m.message_id?,
                    receipt: m.receipt_handle?,
                    body: m.body.unwrap_or_default(),
                    receive_count,
                })
            })
            .collect())
    }

    /// Deletes up to 10 messages; returns those that failed, with why.
    async fn delete_batch(&self, messages: &[Receipt]) -> Result<Vec<Failed>, Error> {
        let mut entries = Vec::new();
        for (i, m) in messages.iter().enumerate() {
            let entry = DeleteMessageBatchRequestEntry::builder()
                .id(i.to_string())
                .receipt_handle(&m.receipt)
                .build()
                .map_err(|e| Error::other("SQS", "DeleteMessageBatch", &self.url, e.to_string()))?;
            entries.push(entry);
        }
        let out = self
            .client
            .delete_message_batch()
            .queue_url(&self.url)
            .set_entries(Some(entries))
            .send()
            .await
            .aws("SQS", "DeleteMessageBatch", &self.url)?;
        Ok(out
            .failed
            .iter()
            .map(|f| {
                let id =
                    f.id.parse::<usize>()
                        .ok()
                        .and_then(|i| messages.get(i))
                        .map(|m| m.id.clone())
                        .unwrap_or_else(|| f.id.clone());
                Failed {
                    id,
                    why: format!("{}: {}", f.code, f.message.as_deref().unwrap_or("")),
                }
            })
            .collect())
    }

    async fn set_visibility(&self, receipt: &str, seconds: i32) -> Result<(), Error> {
        self.client
            .change_message_visibility()
            .queue_url(&self.url)
            .receipt_handle(receipt)
            .visibility_timeout(seconds)
            .send()
            .await
            .aws("SQS", "ChangeMessageVisibility", &self.url)?;
        Ok(())
    }

    /// Makes up to 10 messages visible again at once (shutdown).
    async fn release_batch(&self, receipts: &[String]) -> Result<(), Error> {
        let mut entries = Vec::new();
        for (i, receipt) in receipts.iter().enumerate() {
            let entry = ChangeMessageVisibilityBatchRequestEntry::builder()
                .id(i.to_string())
                .receipt_handle(receipt)
                .visibility_timeout(0)
                .build()
                .map_err(|e| {
                    Error::other(
                        "SQS",
                        "ChangeMessageVisibilityBatch",
                        &self.url,
                        e.to_string(),
                    )
                })?;
            entries.push(entry);
        }
        self.client
            .change_message_visibility_batch()
            .queue_url(&self.url)
            .set_entries(Some(entries))
            .send()
            .await
            .aws("SQS", "ChangeMessageVisibilityBatch", &self.url)?;
        Ok(())
    }

    async fn depth(&self) -> Result<Depth, Error> {
        let attrs = self
            .attributes(&[
                QueueAttributeName::ApproximateNumberOfMessages,
                QueueAttributeName::ApproximateNumberOfMessagesNotVisible,
                QueueAttributeName::ApproximateNumberOfMessagesDelayed,
            ])
            .await?;
        let count = |name: QueueAttributeName| {
            attrs
                .get(&name)
                .and_then(|v| v.parse::<i64>().ok())
                .unwrap_or(0)
        };
        Ok(Depth {
            visible: count(QueueAttributeName::ApproximateNumberOfMessages),
            in_flight: count(QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
            delayed: count(QueueAttributeName::ApproximateNumberOfMessagesDelayed),
        })
    }
}
