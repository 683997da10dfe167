//! The journal's batched writes: decisions and planned changes are queued
//! and written 25 to a BatchWriteItem call (DynamoDB's most), at most
//! [`LINGER`] after the first of a batch arrived, by one background task.
//! Unprocessed items are tried again with backoff. A queue that stays full
//! (the table unreachable for long) drops entries with an error log line:
//! the findings themselves are never delayed or lost for the journal.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
use tokio::sync::{mpsc, oneshot};

/// DynamoDB's largest BatchWriteItem.
const BATCH: usize = 25;
/// How long a batch waits to fill.
const LINGER: Duration = Duration::from_millis(500);
/// Entries waiting at most; more are dropped (and logged).
const BACKLOG: usize = 20_000;
const ATTEMPTS: u32 = 8;

type Item = HashMap<String, AttributeValue>;

enum Message {
    Item(Box<Item>),
    Flush(oneshot::Sender<()>),
}

pub(super) struct BatchWriter {
    tx: mpsc::Sender<Message>,
}

impl BatchWriter {
    /// Starts the writer's task (in the current tokio runtime).
    pub(super) fn start(client: aws_sdk_dynamodb::Client, table: String) -> BatchWriter {
        let (tx, rx) = mpsc::channel(BACKLOG);
        tokio::spawn(run(client, table, rx));
        BatchWriter { tx }
    }

    pub(super) fn push(&self, item: Item) {
        if let Err(e) = self.tx.try_send(Message::Item(Box::new(item))) {
            let why = match e {
                mpsc::error::TrySendError::Full(_) => "the journal's backlog is full",
                mpsc::error::TrySendError::Closed(_) => "the journal's writer has stopped",
            };
            tracing::error!(why, "journal entry dropped (the finding is recorded)");
        }
    }

    /// Writes what is queued; waits at most `limit`.
    pub(super) async fn flush(&self, limit: Duration) {
        let (done, wait) = oneshot::channel();
        if self.tx.send(Message::Flush(done)).await.is_ok()
            && tokio::time::timeout(limit, wait).await.is_err()
        {
            tracing::warn!(
                seconds = limit.as_secs(),
                "journal entries still queued at the end of the wait"
            );
        }
    }
}

async fn run(client: aws_sdk_dynamodb::Client, table: String, mut rx: mpsc::Receiver<Message>) {
    let mut batch: Vec<Item> = Vec::new();
    loop {
        let message = if batch.is_empty() {
            rx.recv().await
        } else {
            match tokio::time::timeout(LINGER, rx.recv()).await {
                Ok(m) => m,
                Err(_) => {
                    write(&client, &table, std::mem::take(&mut batch)).await;
                    continue;
                }
            }
        };
        match message {
            Some(Message::Item(item)) => {
                batch.push(*item);
                if batch.len() >= BATCH {
                    write(&client, &table, std::mem::take(&mut batch)).await;
                }
            }
            Some(Message::Flush(done)) => {
                while !batch.is_empty() {
                    let rest = batch.split_off(batch.len().min(BATCH));
                    write(&client, &table, std::mem::replace(&mut batch, rest)).await;
                }
                let _ = done.send(());
            }
            None => {
                if !batch.is_empty() {
                    write(&client, &table, batch).await;
                }
                return;
            }
        }
    }
}

/// One batch, with its unprocessed items tried again (backoff 100 ms,
/// doubling, at most 8 tries).
async fn write(client: &aws_sdk_dynamodb::Client, table: &str, items: Vec<Item>) {
    let mut requests: Vec<WriteRequest> = items
        .into_iter()
        .filter_map(|item| {
            let put = PutRequest::builder().set_item(Some(item)).build().ok()?;
            Some(WriteRequest::builder().put_request(put).build())
        })
        .collect();
    for attempt in 1..=ATTEMPTS {
        if requests.is_empty() {
            return;
        }
        let sent = client
            .batch_write_item()
            .request_items(table, requests.clone())
            .send()
            .await;
        match sent {
            Ok(out) => {
                requests = out
                    .unprocessed_items
                    .and_then(|mut m| m.remove(table))
                    .unwrap_or_default();
                if requests.is_empty() {
                    return;
                }
                tracing::warn!(
                    attempt,
                    unprocessed = requests.len(),
                    "journal: items not written yet; trying again"
                );
            }
            Err(e) => {
                tracing::warn!(attempt, error = %crate::aws::describe(&e), "journal: BatchWriteItem failed; trying again");
            }
        }
        tokio::time::sleep(Duration::from_millis(100 * 2u64.pow(attempt - 1))).await;
    }
    tracing::error!(
        dropped = requests.len(),
        "journal entries dropped after {ATTEMPTS} tries (the findings are recorded)"
    );
}
