//! Security Hub in memory (`FindingsApi`).

use super::*;

/// Security Hub: records calls; fails the first `throttle` calls and leaves
/// the first `unprocessed` identifiers unprocessed with ConcurrentUpdateError;
/// `get_finding` answers from `findings` (by finding id).
#[derive(Default)]
pub(crate) struct FakeHub {
    pub(crate) calls: Mutex<Vec<(Vec<FindingId>, FindingUpdate)>>,
    /// How long each BatchUpdateFindings takes.
    pub(crate) latency: std::time::Duration,
    /// Calls under way now, and the most there were at once.
    pub(crate) in_call: AtomicUsize,
    pub(crate) most_in_call: AtomicUsize,
    pub(crate) throttle: Mutex<u32>,
    pub(crate) unprocessed: Mutex<usize>,
    pub(crate) fatal: Mutex<Option<String>>,
    pub(crate) findings: Mutex<HashMap<String, Finding>>,
}

impl FakeHub {
    /// Findings named in BatchUpdateFindings calls, in order.
    pub(crate) fn updated(&self) -> Vec<String> {
        lock(&self.calls)
            .iter()
            .flat_map(|(ids, _)| ids.iter().map(|i| i.id.clone()))
            .collect()
    }
}

#[async_trait]
impl FindingsApi for FakeHub {
    async fn batch_update(
        &self,
        ids: &[FindingId],
        update: &FindingUpdate,
    ) -> Result<Vec<Unprocessed>, Error> {
        assert!(ids.len() <= MAX_IDENTIFIERS);
        let now = self.in_call.fetch_add(1, Ordering::SeqCst) + 1;
        self.most_in_call.fetch_max(now, Ordering::SeqCst);
        tokio::time::sleep(self.latency).await;
        self.in_call.fetch_sub(1, Ordering::SeqCst);
        lock(&self.calls).push((ids.to_vec(), update.clone()));
        {
            let mut t = self.throttle.lock().unwrap();
            if *t > 0 {
                *t -= 1;
                return Err(Error {
                    throttled: true,
                    retryable: true,
                    ..Error::other(
                        "Security Hub",
                        "BatchUpdateFindings",
                        "",
                        "TooManyRequestsException",
                    )
                });
            }
        }
        let mut out = Vec::new();
        let mut left = self.unprocessed.lock().unwrap();
        let fatal = self.fatal.lock().unwrap().clone();
        for id in ids {
            if *left > 0 {
                *left -= 1;
                out.push(Unprocessed {
                    finding: id.clone(),
                    code: "ConcurrentUpdateError".into(),
                    message: "busy".into(),
                });
            } else if let Some(code) = &fatal {
                out.push(Unprocessed {
                    finding: id.clone(),
                    code: code.clone(),
                    message: "no".into(),
                });
            }
        }
        Ok(out)
    }
    async fn get_finding(&self, id: &FindingId) -> Result<Option<Finding>, Error> {
        Ok(lock(&self.findings).get(&id.id).cloned())
    }
}
