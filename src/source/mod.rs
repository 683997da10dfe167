//! Where findings come from. Today: the SQS queue EventBridge fills
//! ([`sqs::Queue`]), behind the [`MessageQueue`] trait the receive loop uses.

use async_trait::async_trait;

use crate::aws::Error;

pub mod sqs;

/// One received message.
#[derive(Debug, Clone)]
pub struct Message {
    pub id: String,
    pub receipt: String,
    pub body: String,
    /// How many times SQS has handed this message out, this time included.
    pub receive_count: u32,
}

/// A message to delete: its id (for logs) and the receipt of this receive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    pub id: String,
    pub receipt: String,
}

/// A message a batch call did not act on, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failed {
    pub id: String,
    pub why: String,
}

/// What the queue holds, by SQS's approximate counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Depth {
    pub visible: i64,
    pub in_flight: i64,
    pub delayed: i64,
}

impl Depth {
    pub fn is_empty(&self) -> bool {
        self.visible == 0 && self.in_flight == 0 && self.delayed == 0
    }
}

/// The queue calls the receive loop makes (SQS, or a fake in tests).
#[async_trait]
pub trait MessageQueue: Send + Sync {
    fn url(&self) -> &str;
    /// Long-polls for up to `max` messages, made invisible for `visibility` seconds.
    async fn receive(
        &self,
        max: i32,
        wait_seconds: i32,
        visibility: Option<i32>,
    ) -> Result<Vec<Message>, Error>;
    /// Deletes up to 10 messages; returns those that failed, with why.
    async fn delete_batch(&self, messages: &[Receipt]) -> Result<Vec<Failed>, Error>;
    async fn set_visibility(&self, receipt: &str, seconds: i32) -> Result<(), Error>;
    /// Makes up to 10 messages visible again at once (shutdown).
    async fn release_batch(&self, receipts: &[String]) -> Result<(), Error>;
    /// What the queue holds, by SQS's approximate counts.
    async fn depth(&self) -> Result<Depth, Error>;
}
