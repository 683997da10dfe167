//! The change journal in memory (`Journal`), with a switch that makes its
//! writes fail as an unreachable table would.

use super::*;

use crate::journal::{Entry, Filter, Journal, JournalError, Outcome};

#[derive(Default)]
pub(crate) struct MemoryJournal {
    pub(crate) entries: Mutex<Vec<Entry>>,
    /// While set, every write fails (throttled) and nothing is written.
    pub(crate) failing: std::sync::atomic::AtomicBool,
}

impl MemoryJournal {
    pub(crate) fn all(&self) -> Vec<Entry> {
        lock(&self.entries).clone()
    }

    /// The change entries, oldest first.
    pub(crate) fn changes(&self) -> Vec<Entry> {
        self.all()
            .into_iter()
            .filter(|e| e.kind == crate::journal::Kind::Change)
            .collect()
    }

    pub(crate) fn fail(&self, on: bool) {
        self.failing.store(on, Ordering::SeqCst);
    }

    fn check(&self) -> Result<(), JournalError> {
        if self.failing.load(Ordering::SeqCst) {
            let mut e = Error::other("DynamoDB", "PutItem", "journal", "throttled (test)");
            e.throttled = true;
            e.retryable = true;
            return Err(JournalError::Aws(Box::new(e)));
        }
        Ok(())
    }
}

#[async_trait]
impl Journal for MemoryJournal {
    async fn append(&self, entry: &Entry) -> Result<(), JournalError> {
        self.check()?;
        let mut entries = lock(&self.entries);
        if entries.iter().any(|e| e.id == entry.id) {
            return Err(JournalError::Reply(format!(
                "entry {} is already written",
                entry.id
            )));
        }
        entries.push(entry.clone());
        Ok(())
    }

    async fn complete(
        &self,
        id: &str,
        result: Outcome,
        error: Option<&str>,
    ) -> Result<(), JournalError> {
        self.check()?;
        let mut entries = lock(&self.entries);
        let Some(e) = entries
            .iter_mut()
            .find(|e| e.id == id && e.result.is_open())
        else {
            return Err(JournalError::NotOpen(id.to_string()));
        };
        e.result = result;
        e.error = error.map(str::to_string);
        Ok(())
    }

    async fn mark_verified(
        &self,
        id: &str,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), JournalError> {
        self.check()?;
        if let Some(e) = lock(&self.entries)
            .iter_mut()
            .find(|e| e.id == id && e.result == Outcome::Done && e.verified_at.is_none())
        {
            e.verified_at = Some(at);
        }
        Ok(())
    }

    fn record(&self, entries: Vec<Entry>) {
        lock(&self.entries).extend(entries);
    }

    async fn query(&self, filter: &Filter) -> Result<Vec<Entry>, JournalError> {
        let mut out: Vec<Entry> = self
            .all()
            .into_iter()
            .filter(|e| filter.matches(e))
            .collect();
        out.sort_by(|a, b| b.id.cmp(&a.id));
        Ok(out)
    }

    async fn open_changes(
        &self,
        since: chrono::DateTime<chrono::Utc>,
        until: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<Entry>, JournalError> {
        let filter = Filter::between(since, until);
        let mut out: Vec<Entry> = self
            .all()
            .into_iter()
            .filter(|e| {
                filter.matches(e) && e.kind == crate::journal::Kind::Change && e.result.is_open()
            })
            .collect();
        out.sort_by(|a, b| b.id.cmp(&a.id));
        Ok(out)
    }

    async fn get(&self, id: &str) -> Result<Option<Entry>, JournalError> {
        Ok(self.all().into_iter().find(|e| e.id == id))
    }

    async fn flush(&self, _limit: std::time::Duration) {}
}
