//! Live state once per cluster in a storm: a single-flight, TTL cache in front
//! of any [`ClusterReader`], keyed by the cluster's ARN. Findings of the same
//! cluster that arrive together share one read; a read that fails is not
//! kept. `forget` drops a cluster's entry as soon as hubtriage changes that
//! cluster, so a remediation never decides from state read before its change.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::OnceCell;
use tokio::time::Instant;

use super::neptune::ClusterReader;
use crate::aws::Error;
use crate::lock;
use crate::state::ClusterState;

type Read = Result<Option<ClusterState>, Error>;

struct Entry {
    /// When the read began: the state is at most this old.
    started: Instant,
    read: Arc<OnceCell<Read>>,
}

pub struct CachedReader {
    inner: Arc<dyn ClusterReader>,
    ttl: Duration,
    entries: Mutex<HashMap<String, Entry>>,
}

impl CachedReader {
    pub fn new(inner: Arc<dyn ClusterReader>, ttl: Duration) -> Self {
        CachedReader {
            inner,
            ttl,
            entries: Mutex::default(),
        }
    }

    /// The entry for `arn`, a fresh one when there is none or it is too old.
    /// Expired entries of other clusters are dropped only when an entry is
    /// made (once per cluster per TTL), not on every read.
    fn entry(&self, arn: &str) -> Arc<OnceCell<Read>> {
        let mut entries = lock(&self.entries);
        let now = Instant::now();
        if let Some(e) = entries.get(arn) {
            if now.duration_since(e.started) < self.ttl {
                return e.read.clone();
            }
        }
        entries.retain(|_, e| now.duration_since(e.started) < self.ttl);
        let read = Arc::new(OnceCell::new());
        let entry = Entry {
            started: now,
            read: read.clone(),
        };
        entries.insert(arn.to_string(), entry);
        read
    }
}

#[async_trait]
impl ClusterReader for CachedReader {
    async fn cluster_state(&self, arn: &str) -> Read {
        if self.ttl.is_zero() {
            return self.inner.cluster_state(arn).await;
        }
        let cell = self.entry(arn);
        let read = cell
            .get_or_init(|| self.inner.cluster_state(arn))
            .await
            .clone();
        if read.is_err() {
            // Not kept: the next finding of this cluster reads again.
            let mut entries = lock(&self.entries);
            if entries
                .get(arn)
                .is_some_and(|e| Arc::ptr_eq(&e.read, &cell))
            {
                entries.remove(arn);
            }
        }
        read
    }

    async fn snapshot_state(
        &self,
        arn: &str,
    ) -> Result<Option<crate::state::SnapshotState>, crate::aws::Error> {
        self.inner.snapshot_state(arn).await
    }

    fn forget(&self, arn: &str) {
        lock(&self.entries).remove(arn);
        self.inner.forget(arn);
    }

    async fn cluster_arn_by_resource_id(
        &self,
        account: &str,
        region: &str,
        resource_id: &str,
    ) -> Result<Option<String>, crate::aws::Error> {
        self.inner
            .cluster_arn_by_resource_id(account, region, resource_id)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::tests::sample_state;
    use crate::testing::FakeClusters;

    const ARN: &str = "arn:aws:rds:us-east-1:111122223333:cluster:orders-graph";

    #[tokio::test(start_paused = true)]
    async fn findings_of_one_cluster_share_one_read_per_ttl() {
        let inner = FakeClusters::with(sample_state());
        let cache = Arc::new(CachedReader::new(inner.clone(), Duration::from_secs(30)));
        let reads: Vec<_> = (0..50)
            .map(|_| {
                let cache = cache.clone();
                tokio::spawn(async move { cache.cluster_state(ARN).await })
            })
            .collect();
        for r in reads {
            assert!(r.await.unwrap().unwrap().is_some());
        }
        assert_eq!(inner.reads(), 1, "single-flight");
        tokio::time::sleep(Duration::from_secs(31)).await;
        cache.cluster_state(ARN).await.unwrap();
        assert_eq!(inner.reads(), 2, "read again after the TTL");
    }

    #[tokio::test(start_paused = true)]
    async fn state_from_before_hubtriages_change_is_never_served() {
        let inner = FakeClusters::with(sample_state());
        let cache = CachedReader::new(inner.clone(), Duration::from_secs(30));
        let before = cache.cluster_state(ARN).await.unwrap().unwrap();
        assert!(!before.exports_audit());

        // hubtriage changes the cluster (the export goes on) and says so.
        crate::lock(&inner.states)
            .get_mut(ARN)
            .unwrap()
            .exported_logs
            .push("audit".into());
        cache.forget(ARN);

        let after = cache.cluster_state(ARN).await.unwrap().unwrap();
        assert!(after.exports_audit(), "the state after the change");
        assert_eq!(inner.reads(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn zero_seconds_turns_it_off() {
        let inner = FakeClusters::with(sample_state());
        let cache = CachedReader::new(inner.clone(), Duration::ZERO);
        cache.cluster_state(ARN).await.unwrap();
        cache.cluster_state(ARN).await.unwrap();
        assert_eq!(inner.reads(), 2);
    }
}
