//! The sweep of open changes: changes whose journal entry is still
//! `started` (their task was killed between the entry and the call, or
//! could not write the end) or `unknown` (a timeout, a reset) once
//! `[journal] settle_after_seconds` have passed, settled from the
//! resource's live state: `done` when it shows the value asked for, else
//! `failed`. Run by `hubtriage run` in apply mode at start and every few
//! minutes; any task may settle any task's changes (a completion is a
//! conditional write: one of them wins). A pass over a resource settles its
//! resource's open changes too, at once.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};

use super::remediate::{settle, FixApis};
use crate::enrich::neptune::ClusterReader;
use crate::journal::{Entry, Journal};
use crate::state::LiveState;

/// Open changes older than this are left as they are, for a person to read.
const LOOK_BACK_DAYS: i64 = 14;

pub struct Sweeper {
    pub journal: Arc<dyn Journal>,
    /// Live state, read afresh.
    pub reader: Arc<dyn ClusterReader>,
    pub apis: Arc<dyn FixApis>,
    /// How old an open change must be to be settled.
    pub settle_after: Duration,
}

impl Sweeper {
    /// Settles what is open and old enough; how many were settled.
    pub async fn sweep(&self, now: DateTime<Utc>) -> usize {
        let open = match self
            .journal
            .open_changes(
                now - Duration::days(LOOK_BACK_DAYS),
                now - self.settle_after,
            )
            .await
        {
            Ok(open) => open,
            Err(e) => {
                tracing::warn!(error = %e, "the journal's open changes cannot be read; tried again later");
                return 0;
            }
        };
        let mut by_resource: BTreeMap<String, Vec<Entry>> = BTreeMap::new();
        for e in open.into_iter().filter(|e| e.result.is_open()) {
            by_resource.entry(e.resource.clone()).or_default().push(e);
        }
        let mut settled = 0;
        for (resource, entries) in by_resource {
            let live = match self.read(&resource).await {
                Ok(Some(live)) => live,
                Ok(None) => {
                    tracing::info!(resource = %resource, "an open change's resource no longer exists; left open");
                    continue;
                }
                Err(e) => {
                    tracing::warn!(resource = %resource, error = %e, "cannot read the resource of an open change; tried again later");
                    continue;
                }
            };
            for e in &entries {
                let api = self.apis.at(&e.account);
                if settle(
                    self.journal.as_ref(),
                    api.as_ref(),
                    &e.region,
                    live.live(),
                    e,
                )
                .await
                .is_some()
                {
                    settled += 1;
                }
            }
        }
        if settled > 0 {
            tracing::info!(
                settled,
                "settled changes whose end was not known, from live state"
            );
        }
        settled
    }

    async fn read(&self, arn: &str) -> Result<Option<LiveState>, crate::aws::Error> {
        if arn.contains(":cluster-snapshot:") {
            Ok(self
                .reader
                .snapshot_state(arn)
                .await?
                .map(LiveState::Snapshot))
        } else {
            Ok(self
                .reader
                .cluster_state(arn)
                .await?
                .map(LiveState::Cluster))
        }
    }

    /// Sweeps every `every`, forever (the daemon aborts it at exit).
    pub async fn run_every(self: Arc<Self>, every: std::time::Duration) {
        loop {
            tokio::time::sleep(every).await;
            self.sweep(Utc::now()).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Mode;
    use crate::control::change::Change;
    use crate::journal::{Kind, Outcome};
    use crate::state::tests::sample_state;
    use crate::testing::{FakeNeptune, MemoryJournal};

    #[tokio::test]
    async fn the_sweep_settles_old_open_changes_from_live_state_and_leaves_young_ones() {
        let mut state = sample_state();
        state.settings.deletion_protection = true;
        let api = Arc::new(FakeNeptune::new(state.clone()));
        let journal = Arc::new(MemoryJournal::default());
        let template = Entry::new(
            Kind::Change,
            Mode::Apply,
            "111122223333",
            "us-east-1",
            &state.arn,
        );
        let change = |setting: &str, after: &str| Change {
            call: "ModifyDBCluster",
            setting: setting.into(),
            target: None,
            before: "x".into(),
            after: after.into(),
        };
        let mut made = template.for_change(&change("DeletionProtection", "true"), Outcome::Started);
        made.time = Utc::now() - Duration::minutes(10);
        let mut lost = template.for_change(&change("CopyTagsToSnapshot", "true"), Outcome::Unknown);
        lost.time = Utc::now() - Duration::minutes(10);
        let young = template.for_change(&change("BackupRetentionPeriod", "7"), Outcome::Started);
        for e in [&made, &lost, &young] {
            journal.append(e).await.unwrap();
        }
        let sweeper = Sweeper {
            journal: journal.clone(),
            reader: api.clone(),
            apis: Arc::new(api.clone()),
            settle_after: Duration::minutes(5),
        };
        assert_eq!(sweeper.sweep(Utc::now()).await, 2);
        let result = |id: &str| {
            journal
                .all()
                .into_iter()
                .find(|e| e.id == id)
                .unwrap()
                .result
        };
        assert_eq!(result(&made.id), Outcome::Done);
        assert_eq!(result(&lost.id), Outcome::Failed);
        assert_eq!(
            result(&young.id),
            Outcome::Started,
            "its call may still be under way"
        );
        assert_eq!(sweeper.sweep(Utc::now()).await, 0, "settled once");
    }
}
