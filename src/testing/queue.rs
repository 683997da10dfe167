//! The findings queue in memory (`MessageQueue`, `RecheckQueue`).

use super::*;

/// An in-memory queue: messages wait, are received (in flight), then deleted
/// or released. Deletes of the ids in `fail_delete` fail per entry.
#[derive(Default)]
pub(crate) struct FakeQueue {
    pub(crate) waiting: Mutex<VecDeque<Message>>,
    /// receipt → message id, for messages received and not yet deleted or released.
    pub(crate) in_flight: Mutex<HashMap<String, String>>,
    /// The ids of each DeleteMessageBatch call.
    pub(crate) delete_calls: Mutex<Vec<Vec<String>>>,
    pub(crate) deleted: Mutex<Vec<String>>,
    pub(crate) fail_delete: Mutex<HashSet<String>>,
    pub(crate) released: Mutex<Vec<String>>,
    /// (receipt, seconds) of each visibility change.
    pub(crate) visibility: Mutex<Vec<(String, i32)>>,
    /// Re-checks scheduled on it, with their delay.
    pub(crate) scheduled: Mutex<Vec<(Recheck, i32)>>,
    /// How long each receive takes (a network round trip).
    pub(crate) receive_latency: std::time::Duration,
    /// Receives under way now, and the most there were at once.
    pub(crate) receiving: std::sync::atomic::AtomicUsize,
    pub(crate) most_receiving: std::sync::atomic::AtomicUsize,
    /// Receipts SQS no longer takes (the message came back to the queue).
    pub(crate) invalid_receipts: Mutex<HashSet<String>>,
}

#[async_trait]
impl RecheckQueue for FakeQueue {
    async fn schedule(&self, recheck: &Recheck, delay_seconds: i32) -> Result<(), Error> {
        lock(&self.scheduled).push((recheck.clone(), delay_seconds));
        Ok(())
    }
}

impl FakeQueue {
    pub(crate) fn with_bodies(bodies: impl IntoIterator<Item = String>) -> Arc<FakeQueue> {
        let queue = FakeQueue::default();
        for (n, body) in bodies.into_iter().enumerate() {
            lock(&queue.waiting).push_back(Message {
                id: format!("m{n}"),
                receipt: format!("r{n}"),
                body,
                receive_count: 1,
            });
        }
        Arc::new(queue)
    }
}

#[async_trait]
impl MessageQueue for FakeQueue {
    fn url(&self) -> &str {
        "fake://queue"
    }

    async fn receive(&self, max: i32, wait: i32, _: Option<i32>) -> Result<Vec<Message>, Error> {
        use std::sync::atomic::Ordering::SeqCst;
        let now = self.receiving.fetch_add(1, SeqCst) + 1;
        self.most_receiving.fetch_max(now, SeqCst);
        tokio::time::sleep(self.receive_latency).await;
        self.receiving.fetch_sub(1, SeqCst);
        let mut out = Vec::new();
        {
            let mut waiting = lock(&self.waiting);
            while out.len() < usize::try_from(max).unwrap_or(0) {
                let Some(m) = waiting.pop_front() else { break };
                lock(&self.in_flight).insert(m.receipt.clone(), m.id.clone());
                out.push(m);
            }
        }
        if out.is_empty() {
            tokio::time::sleep(std::time::Duration::from_secs(
                u64::try_from(wait).unwrap_or(0),
            ))
            .await;
        }
        Ok(out)
    }

    async fn delete_batch(
        &self,
        messages: &[crate::source::Receipt],
    ) -> Result<Vec<crate::source::Failed>, Error> {
        assert!(messages.len() <= 10, "SQS takes at most 10 entries");
        lock(&self.delete_calls).push(messages.iter().map(|m| m.id.clone()).collect());
        let mut failed = Vec::new();
        for m in messages {
            if lock(&self.fail_delete).contains(&m.id) {
                failed.push(crate::source::Failed {
                    id: m.id.clone(),
                    why: "InternalError: try again".to_string(),
                });
            } else {
                lock(&self.in_flight).remove(&m.receipt);
                lock(&self.deleted).push(m.id.clone());
            }
        }
        Ok(failed)
    }

    async fn set_visibility(&self, receipt: &str, seconds: i32) -> Result<(), Error> {
        lock(&self.visibility).push((receipt.to_string(), seconds));
        if lock(&self.invalid_receipts).contains(receipt) {
            let mut e = Error::other(
                "SQS",
                "ChangeMessageVisibility",
                "fake://queue",
                "The input receipt handle is invalid.",
            );
            e.code = Some("ReceiptHandleIsInvalid".into());
            return Err(e);
        }
        Ok(())
    }

    async fn release_batch(&self, receipts: &[String]) -> Result<(), Error> {
        for r in receipts {
            lock(&self.in_flight).remove(r);
            lock(&self.released).push(r.clone());
        }
        Ok(())
    }

    async fn depth(&self) -> Result<Depth, Error> {
        Ok(Depth {
            visible: i64::try_from(lock(&self.waiting).len()).unwrap_or(0),
            in_flight: i64::try_from(lock(&self.in_flight).len()).unwrap_or(0),
            delayed: 0,
        })
    }
}
