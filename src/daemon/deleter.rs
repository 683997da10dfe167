//! Deletes finished messages in batches (up to 10 per DeleteMessageBatch,
//! after a short linger) and checks each entry: a failed entry is logged and
//! its message comes back, to be recognised as done.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::metrics::Metrics;
use crate::source::{Failed, Message, MessageQueue, Receipt};

enum DeleteRequest {
    Delete(Receipt),
    Flush(oneshot::Sender<()>),
}

/// Batches deletes (up to 10 per DeleteMessageBatch) and checks each entry.
#[derive(Clone)]
pub(super) struct Deleter {
    tx: mpsc::Sender<DeleteRequest>,
}

impl Deleter {
    pub(super) fn start(
        queue: Arc<dyn MessageQueue>,
        metrics: Arc<Metrics>,
    ) -> (Deleter, JoinHandle<()>) {
        let (tx, mut rx) = mpsc::channel::<DeleteRequest>(256);
        let handle = tokio::spawn(async move {
            let mut pending: Vec<Receipt> = Vec::new();
            let linger = Duration::from_millis(100);
            loop {
                let next = if pending.is_empty() {
                    rx.recv().await
                } else {
                    match tokio::time::timeout(linger, rx.recv()).await {
                        Ok(r) => r,
                        Err(_) => {
                            delete_now(queue.as_ref(), &metrics, &mut pending).await;
                            continue;
                        }
                    }
                };
                match next {
                    Some(DeleteRequest::Delete(receipt)) => {
                        pending.push(receipt);
                        if pending.len() >= 10 {
                            delete_now(queue.as_ref(), &metrics, &mut pending).await;
                        }
                    }
                    Some(DeleteRequest::Flush(done)) => {
                        delete_now(queue.as_ref(), &metrics, &mut pending).await;
                        let _ = done.send(());
                    }
                    None => {
                        delete_now(queue.as_ref(), &metrics, &mut pending).await;
                        return;
                    }
                }
            }
        });
        (Deleter { tx }, handle)
    }

    pub(super) async fn delete(&self, message: &Message) {
        let _ = self
            .tx
            .send(DeleteRequest::Delete(Receipt {
                id: message.id.clone(),
                receipt: message.receipt.clone(),
            }))
            .await;
    }

    pub(super) async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.tx.send(DeleteRequest::Flush(done)).await.is_ok() {
            let _ = wait.await;
        }
    }
}

async fn delete_now(queue: &dyn MessageQueue, metrics: &Metrics, pending: &mut Vec<Receipt>) {
    if pending.is_empty() {
        return;
    }
    let batch: Vec<Receipt> = std::mem::take(pending);
    match queue.delete_batch(&batch).await {
        Ok(failed) => {
            for Failed { id, why } in &failed {
                tracing::warn!(message_id = %id, error = %why, "delete failed; the message will come back and be recognised as done");
            }
            for _ in 0..batch.len() - failed.len() {
                Metrics::inc(&metrics.messages_deleted);
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, count = batch.len(), "delete failed; the messages will come back and be recognised as done")
        }
    }
}
