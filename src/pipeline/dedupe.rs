//! Duplicates in one process: the findings recorded lately (by what
//! identifies one delivery of them), and the deliveries being handled now, so
//! a second copy of one waits for the first and then finds it recorded.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};

use crate::finding::Finding;
use crate::lock;

/// Recently recorded findings, by what identifies one delivery of them (a
/// 64-bit hash of it: 50,000 of them fit in under 2 MiB, where the texts took
/// tens of MiB in a storm).
struct Seen {
    keys: HashSet<u64>,
    order: VecDeque<u64>,
    capacity: usize,
}

impl Seen {
    fn key(f: &Finding) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        // The ASFF and the OCSF finding of one check share the id, not the product.
        f.id.hash(&mut h);
        f.product_arn.hash(&mut h);
        f.updated_at.hash(&mut h);
        f.workflow_status.as_str().hash(&mut h);
        f.note.as_ref().map(|n| n.text.as_str()).hash(&mut h);
        f.compliance_status.hash(&mut h);
        h.finish()
    }

    fn contains(&self, f: &Finding) -> bool {
        self.keys.contains(&Self::key(f))
    }

    fn insert(&mut self, f: &Finding) {
        let key = Self::key(f);
        if self.keys.insert(key) {
            self.order.push_back(key);
            while self.order.len() > self.capacity {
                if let Some(old) = self.order.pop_front() {
                    self.keys.remove(&old);
                }
            }
        }
    }
}

/// Findings recorded lately, and those being handled now.
pub(super) struct Deliveries {
    seen: Mutex<Seen>,
    /// Findings (by their `Seen` key) being handled now.
    handling: Mutex<HashMap<u64, Arc<tokio::sync::Mutex<()>>>>,
}

impl Deliveries {
    pub(super) fn new(capacity: usize) -> Self {
        Deliveries {
            seen: Mutex::new(Seen {
                keys: HashSet::new(),
                order: VecDeque::new(),
                capacity,
            }),
            handling: Mutex::default(),
        }
    }

    /// Runs `work` for `f` once no other copy of the same delivery is being
    /// handled in this process.
    pub(super) async fn one_at_a_time<T>(
        &self,
        f: &Finding,
        work: impl std::future::Future<Output = T>,
    ) -> T {
        let key = Seen::key(f);
        let one = lock(&self.handling).entry(key).or_default().clone();
        let done = {
            let _only = one.lock().await;
            work.await
        };
        let mut handling = lock(&self.handling);
        if Arc::strong_count(&one) == 2 {
            handling.remove(&key);
        }
        done
    }

    /// This delivery of `f` was recorded (or found recorded) lately.
    pub(super) fn seen(&self, f: &Finding) -> bool {
        lock(&self.seen).contains(f)
    }

    pub(super) fn remember(&self, f: &Finding) {
        lock(&self.seen).insert(f);
    }

    /// No delivery is being handled now (tests: nothing is left behind).
    #[cfg(test)]
    pub(super) fn none_handled(&self) -> bool {
        lock(&self.handling).is_empty()
    }
}
