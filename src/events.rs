//! Decision events: after each recorded decision, one EventBridge event
//! (source `hubtriage`, detail-type `hubtriage Decision`, detail = the decision
//! `explain` prints plus the outcome), so chat, paging or other automation can
//! react. Publishing runs in the background with retries; it never blocks or
//! loses a finding.

use std::time::Duration;

use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use aws_sdk_eventbridge::Client;
use serde::Serialize;
use tokio::task::JoinSet;

use crate::decide::Decision;

pub const SOURCE: &str = "hubtriage";
pub const DETAIL_TYPE: &str = "hubtriage Decision";
const ATTEMPTS: u32 = 4;

/// What happened after the decision.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    /// The workflow status written on the finding.
    pub workflow: String,
    pub note: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ticket: Option<String>,
}

#[derive(Serialize)]
struct Detail<'a> {
    #[serde(flatten)]
    decision: &'a Decision,
    outcome: &'a Outcome,
}

pub struct Publisher {
    client: Client,
    bus: String,
    tasks: std::sync::Mutex<JoinSet<()>>,
}

impl Publisher {
    pub fn new(client: Client, bus: String) -> Self {
        Publisher {
            client,
            bus,
            tasks: std::sync::Mutex::new(JoinSet::new()),
        }
    }

    /// Queues one event; returns at once.
    pub fn publish(&self, decision: &Decision, outcome: &Outcome) {
        let detail = match serde_json::to_string(&Detail { decision, outcome }) {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(error = %e, "decision event not serialisable; skipped");
                return;
            }
        };
        let entry = PutEventsRequestEntry::builder()
            .source(SOURCE)
            .detail_type(DETAIL_TYPE)
            .detail(detail)
            .event_bus_name(&self.bus)
            .resources(decision.finding_id.clone())
            .build();
        let client = self.client.clone();
        let mut tasks = match self.tasks.lock() {
            Ok(t) => t,
            Err(poisoned) => poisoned.into_inner(),
        };
        // Reap finished sends so the set does not grow.
        while tasks.try_join_next().is_some() {}
        tasks.spawn(async move {
            for attempt in 1..=ATTEMPTS {
                let result = client.put_events().entries(entry.clone()).send().await;
                match result {
                    Ok(out) if out.failed_entry_count() == 0 => return,
                    Ok(out) => {
                        let why = out
                            .entries()
                            .iter()
                            .filter_map(|e| e.error_code())
                            .collect::<Vec<_>>()
                            .join(", ");
                        tracing::warn!(attempt, error = %why, "decision event rejected");
                    }
                    Err(e) => {
                        tracing::warn!(attempt, error = %crate::aws::describe(&e), "decision event not sent");
                    }
                }
                tokio::time::sleep(Duration::from_millis(200 * 2u64.pow(attempt))).await;
            }
            tracing::error!("decision event dropped after {ATTEMPTS} attempts (the finding is recorded)");
        });
    }

    /// Waits up to `limit` for queued events to be sent.
    pub async fn drain(&self, limit: Duration) {
        let mut tasks = match self.tasks.lock() {
            Ok(mut t) => std::mem::take(&mut *t),
            Err(poisoned) => std::mem::take(&mut *poisoned.into_inner()),
        };
        let _ =
            tokio::time::timeout(limit, async { while tasks.join_next().await.is_some() {} }).await;
    }
}
