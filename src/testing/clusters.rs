//! Live cluster state in memory (`ClusterReader`).

use super::*;

/// Live state by cluster ARN; counts reads. With `stall`, a read never ends.
#[derive(Default)]
pub(crate) struct FakeClusters {
    pub(crate) states: Mutex<HashMap<String, ClusterState>>,
    pub(crate) snapshots: Mutex<HashMap<String, crate::state::SnapshotState>>,
    pub(crate) reads: AtomicUsize,
    pub(crate) stall: bool,
}

impl FakeClusters {
    pub(crate) fn with(state: ClusterState) -> Arc<FakeClusters> {
        let clusters = FakeClusters::default();
        lock(&clusters.states).insert(state.arn.clone(), state);
        Arc::new(clusters)
    }

    pub(crate) fn reads(&self) -> usize {
        self.reads.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl ClusterReader for FakeClusters {
    async fn cluster_state(&self, arn: &str) -> Result<Option<ClusterState>, Error> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        if self.stall {
            std::future::pending::<()>().await;
        }
        Ok(lock(&self.states).get(arn).cloned())
    }

    async fn snapshot_state(
        &self,
        arn: &str,
    ) -> Result<Option<crate::state::SnapshotState>, Error> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        Ok(lock(&self.snapshots).get(arn).cloned())
    }

    /// The fake's clusters have no resource ids: none is found.
    async fn cluster_arn_by_resource_id(
        &self,
        _: &str,
        _: &str,
        _: &str,
    ) -> Result<Option<String>, Error> {
        Ok(None)
    }
}
