//! The coordination table in memory (`Coordinator`).

use super::*;

/// The coordination table in memory: one map shared by the "tasks" (each a
/// handle with its own owner, from [`MemoryTable::task`]).
#[derive(Default)]
pub(crate) struct MemoryTable(Mutex<HashMap<String, (Option<LeaseHolder>, Lease)>>);

/// A lease's owner and when it expires.
type LeaseHolder = (&'static str, std::time::Instant);

impl MemoryTable {
    /// A task's handle on the table (leases of 60 s).
    pub(crate) fn task(self: &Arc<Self>, owner: &'static str) -> Arc<TableTask> {
        Arc::new(TableTask {
            table: self.clone(),
            owner,
        })
    }

    /// The lease of `item` runs out now (its task was paused or died).
    pub(crate) fn expire(&self, item: &str) {
        if let Some((Some(holder), _)) = lock(&self.0).get_mut(item) {
            holder.1 = std::time::Instant::now();
        }
    }

    /// What the table holds for `item`.
    pub(crate) fn item(&self, item: &str) -> Lease {
        lock(&self.0)
            .get(item)
            .map(|i| i.1.clone())
            .unwrap_or_default()
    }
}

pub(crate) struct TableTask {
    table: Arc<MemoryTable>,
    owner: &'static str,
}

impl TableTask {
    fn holds(&self, item: &str) -> bool {
        lock(&self.table.0).get(item).is_some_and(|i| {
            i.0.is_some_and(|(o, until)| o == self.owner && until > std::time::Instant::now())
        })
    }
}

#[async_trait]
impl Coordinator for TableTask {
    async fn acquire(&self, problem: &str) -> Result<Lease, CoordinationError> {
        let mut items = lock(&self.table.0);
        let item = items.entry(problem.to_string()).or_default();
        match item.0 {
            Some((owner, until)) if owner != self.owner && until > std::time::Instant::now() => {
                Err(CoordinationError::Held(problem.to_string()))
            }
            _ => {
                item.0 = Some((
                    self.owner,
                    std::time::Instant::now() + self.lease_duration(),
                ));
                Ok(item.1.clone())
            }
        }
    }
    async fn record_ticket(
        &self,
        problem: &str,
        ticket: &str,
        _: &str,
    ) -> Result<(), CoordinationError> {
        let mut items = lock(&self.table.0);
        let item = items.entry(problem.to_string()).or_default();
        item.1.ticket = Some(ticket.to_string());
        item.1.unsettled = None;
        Ok(())
    }
    async fn mark_unsettled(&self, problem: &str) -> Result<(), CoordinationError> {
        lock(&self.table.0)
            .entry(problem.to_string())
            .or_default()
            .1
            .unsettled = Some(chrono::Utc::now().timestamp());
        Ok(())
    }
    async fn release(&self, problem: &str) -> Result<(), CoordinationError> {
        if let Some(item) = lock(&self.table.0).get_mut(problem) {
            if item.0.is_some_and(|(o, _)| o == self.owner) {
                item.0 = None;
            }
        }
        Ok(())
    }
    async fn save_progress(&self, item: &str, progress: &str) -> Result<(), CoordinationError> {
        if !self.holds(item) {
            return Err(CoordinationError::Lost(item.to_string()));
        }
        if let Some(i) = lock(&self.table.0).get_mut(item) {
            i.1.progress = Some(progress.to_string());
        }
        Ok(())
    }
    async fn clear_progress(&self, item: &str) -> Result<(), CoordinationError> {
        if !self.holds(item) {
            return Err(CoordinationError::Lost(item.to_string()));
        }
        if let Some(i) = lock(&self.table.0).get_mut(item) {
            i.1.progress = None;
        }
        Ok(())
    }
    fn lease_duration(&self) -> std::time::Duration {
        std::time::Duration::from_secs(60)
    }
}
