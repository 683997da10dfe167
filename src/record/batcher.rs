//! The recorder: batches alike updates (findings with an identical update
//! share one BatchUpdateFindings of up to 100 identifiers, flushed when full,
//! after a short linger, or — the largest first — when so many updates wait
//! that the daemon could take no more messages), a few calls at once (the adapter paces them to
//! Security Hub's quota, see [`crate::pace`]), and retries throttled or failed calls and retryable `UnprocessedFindings`
//! (`ConcurrentUpdateError`, `InternalFailure`) with backoff.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, Semaphore};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;

use super::{
    is_retryable_code, FindingId, FindingUpdate, FindingsApi, RecordError, MAX_IDENTIFIERS,
};
use crate::metrics::Metrics;

#[derive(Debug, Clone)]
pub struct RecorderSettings {
    /// How long an update waits for others like it.
    pub linger: Duration,
    /// BatchUpdateFindings calls under way at once. One call takes a few
    /// hundred milliseconds, so one at a time would cap a storm near 300
    /// findings/s, under the quota's 1,000.
    pub max_concurrent_calls: usize,
    /// Updates waiting, over all groups, at which the largest group goes
    /// without waiting for its linger. Each waiting update holds a message,
    /// so a mix of many different updates (several controls, several
    /// actions) would otherwise fill `[daemon] max_in_flight` with groups
    /// that never reach 100 and stall the daemon for the whole linger.
    pub max_waiting: usize,
    pub max_attempts: u32,
    pub first_backoff: Duration,
    pub max_backoff: Duration,
}

impl RecorderSettings {
    /// The defaults, with `max_waiting` three quarters of the messages the
    /// daemon holds at once, so updates go before reception stalls.
    pub fn holding(max_in_flight: usize) -> Self {
        RecorderSettings {
            max_waiting: (max_in_flight.saturating_mul(3) / 4).max(1),
            ..Default::default()
        }
    }
}

impl Default for RecorderSettings {
    fn default() -> Self {
        RecorderSettings {
            linger: Duration::from_millis(1000),
            max_concurrent_calls: 4,
            max_waiting: usize::MAX,
            max_attempts: 8,
            first_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(5),
        }
    }
}

struct Request {
    finding: FindingId,
    update: FindingUpdate,
    done: oneshot::Sender<Result<(), RecordError>>,
}

/// Hands updates to the background batcher and waits for their outcome.
#[derive(Clone)]
pub struct Recorder {
    tx: mpsc::Sender<Request>,
}

impl Recorder {
    /// Starts the batcher. It stops, after flushing everything, once every
    /// `Recorder` clone is dropped; await the handle to know it has.
    pub fn start(
        api: Arc<dyn FindingsApi>,
        settings: RecorderSettings,
        metrics: Arc<Metrics>,
    ) -> (Recorder, JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(1024);
        let handle = tokio::spawn(batcher(api, settings, metrics, rx));
        (Recorder { tx }, handle)
    }

    /// Records `update` on `finding`; returns once it is written (or has failed for good).
    pub async fn record(
        &self,
        finding: FindingId,
        update: FindingUpdate,
    ) -> Result<(), RecordError> {
        self.submit(finding, update).await?.written().await
    }

    /// Hands `update` to the batcher; the returned [`Pending`] says when it is written.
    pub async fn submit(
        &self,
        finding: FindingId,
        update: FindingUpdate,
    ) -> Result<Pending, RecordError> {
        let (done, wait) = oneshot::channel();
        self.tx
            .send(Request {
                finding,
                update,
                done,
            })
            .await
            .map_err(|_| RecordError::Stopped)?;
        Ok(Pending(wait))
    }
}

/// An update handed to the batcher and not yet known to be written.
pub struct Pending(oneshot::Receiver<Result<(), RecordError>>);

impl Pending {
    /// Waits until the update is written (or has failed for good).
    pub async fn written(self) -> Result<(), RecordError> {
        self.0.await.map_err(|_| RecordError::Stopped)?
    }
}

struct Group {
    since: Instant,
    waiters: HashMap<FindingId, Vec<oneshot::Sender<Result<(), RecordError>>>>,
    order: Vec<FindingId>,
}

async fn batcher(
    api: Arc<dyn FindingsApi>,
    settings: RecorderSettings,
    metrics: Arc<Metrics>,
    mut rx: mpsc::Receiver<Request>,
) {
    let mut groups: HashMap<FindingUpdate, Group> = HashMap::new();
    let mut calls = Calls {
        api,
        settings: settings.clone(),
        metrics,
        slots: Arc::new(Semaphore::new(settings.max_concurrent_calls.max(1))),
        running: JoinSet::new(),
        busy: Arc::default(),
    };
    loop {
        while calls.running.try_join_next().is_some() {}
        let next = groups.values().map(|g| g.since + settings.linger).min();
        let received = match next {
            Some(deadline) => tokio::select! {
                r = rx.recv() => Some(r),
                _ = tokio::time::sleep_until(deadline) => None,
            },
            None => Some(rx.recv().await),
        };
        match received {
            Some(Some(req)) => {
                let group = groups.entry(req.update.clone()).or_insert_with(|| Group {
                    since: Instant::now(),
                    waiters: HashMap::new(),
                    order: Vec::new(),
                });
                if !group.waiters.contains_key(&req.finding) {
                    group.order.push(req.finding.clone());
                }
                group.waiters.entry(req.finding).or_default().push(req.done);
                if group.order.len() >= MAX_IDENTIFIERS {
                    if let Some(g) = groups.remove(&req.update) {
                        calls.start(req.update, g).await;
                    }
                }
                if waiting(&groups) >= settings.max_waiting {
                    if let Some(largest) = largest(&groups) {
                        if let Some(g) = groups.remove(&largest) {
                            calls.start(largest, g).await;
                        }
                    }
                }
            }
            Some(None) => {
                // Every sender is gone: flush what is left, wait for it, and stop.
                for (update, g) in groups.drain() {
                    calls.start(update, g).await;
                }
                while calls.running.join_next().await.is_some() {}
                return;
            }
            None => {
                let now = Instant::now();
                let due: Vec<FindingUpdate> = groups
                    .iter()
                    .filter(|(_, g)| g.since + settings.linger <= now)
                    .map(|(u, _)| u.clone())
                    .collect();
                for update in due {
                    if let Some(g) = groups.remove(&update) {
                        calls.start(update, g).await;
                    }
                }
            }
        }
    }
}

/// Updates waiting in all groups.
fn waiting(groups: &HashMap<FindingUpdate, Group>) -> usize {
    groups.values().map(|g| g.order.len()).sum()
}

/// The group with the most findings (the oldest of equals).
fn largest(groups: &HashMap<FindingUpdate, Group>) -> Option<FindingUpdate> {
    groups
        .iter()
        .max_by(|(_, a), (_, b)| {
            a.order
                .len()
                .cmp(&b.order.len())
                .then(b.since.cmp(&a.since))
        })
        .map(|(u, _)| u.clone())
}

/// The BatchUpdateFindings calls under way, at most `slots` at once.
struct Calls {
    api: Arc<dyn FindingsApi>,
    settings: RecorderSettings,
    metrics: Arc<Metrics>,
    slots: Arc<Semaphore>,
    running: JoinSet<()>,
    /// Findings named by a call under way.
    busy: Arc<std::sync::Mutex<std::collections::HashSet<FindingId>>>,
}

impl Calls {
    /// Starts writing `group` once a call slot is free (waiting for one holds
    /// the batcher, so updates keep gathering in the channel meanwhile).
    /// Two updates of one finding are written in the order they were made: a
    /// group naming a finding that a call under way names waits for it.
    async fn start(&mut self, update: FindingUpdate, group: Group) {
        while self.overlaps(&group) {
            if self.running.join_next().await.is_none() {
                break;
            }
        }
        let Ok(slot) = self.slots.clone().acquire_owned().await else {
            return;
        };
        crate::lock(&self.busy).extend(group.order.iter().cloned());
        let (api, settings, metrics, busy) = (
            self.api.clone(),
            self.settings.clone(),
            self.metrics.clone(),
            self.busy.clone(),
        );
        self.running.spawn(async move {
            let ids = group.order.clone();
            flush(&*api, &settings, &metrics, update, group).await;
            let mut busy = crate::lock(&busy);
            for id in &ids {
                busy.remove(id);
            }
            drop(slot);
        });
    }

    fn overlaps(&self, group: &Group) -> bool {
        let busy = crate::lock(&self.busy);
        group.order.iter().any(|id| busy.contains(id))
    }
}

async fn flush(
    api: &dyn FindingsApi,
    settings: &RecorderSettings,
    metrics: &Metrics,
    update: FindingUpdate,
    mut group: Group,
) {
    let mut finish = |id: &FindingId, result: Result<(), RecordError>| {
        for done in group.waiters.remove(id).unwrap_or_default() {
            let _ = done.send(result.clone());
        }
    };
    let mut remaining = group.order.clone();
    let mut attempt = 0;
    let mut last_error = String::new();
    while !remaining.is_empty() {
        attempt += 1;
        Metrics::inc(&metrics.update_calls);
        match api.batch_update(&remaining, &update).await {
            Ok(unprocessed) => {
                let mut retry = Vec::new();
                for u in &unprocessed {
                    if is_retryable_code(&u.code) && attempt < settings.max_attempts {
                        retry.push(u.finding.clone());
                    } else {
                        tracing::warn!(
                            finding_id = %u.finding.id,
                            error_code = %u.code,
                            error = %u.message,
                            "BatchUpdateFindings left a finding unprocessed"
                        );
                        finish(
                            &u.finding,
                            Err(RecordError::Unprocessed {
                                code: u.code.clone(),
                                message: u.message.clone(),
                            }),
                        );
                    }
                }
                for id in &remaining {
                    if !unprocessed.iter().any(|u| &u.finding == id) {
                        finish(id, Ok(()));
                    }
                }
                if !retry.is_empty() {
                    tracing::info!(
                        count = retry.len(),
                        attempt,
                        "retrying unprocessed findings"
                    );
                }
                remaining = retry;
                last_error = "ConcurrentUpdateError".into();
            }
            Err(e) => {
                if e.throttled {
                    Metrics::inc(&metrics.throttles);
                }
                tracing::warn!(error = %e, attempt, findings = remaining.len(), retryable = e.retryable, "BatchUpdateFindings failed");
                last_error = e.to_string();
                if !e.retryable || attempt >= settings.max_attempts {
                    break;
                }
            }
        }
        if !remaining.is_empty() {
            let backoff = settings
                .first_backoff
                .saturating_mul(1 << (attempt - 1).min(16))
                .min(settings.max_backoff);
            tokio::time::sleep(backoff).await;
        }
    }
    for id in remaining {
        finish(&id, Err(RecordError::Call(last_error.clone())));
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::record::Workflow;
    use crate::testing::{fast_recorder, FakeHub};

    fn id(n: usize) -> FindingId {
        FindingId {
            id: format!("f{n}"),
            product_arn: "p".into(),
            account: "111122223333".into(),
        }
    }

    fn update(note: &str) -> FindingUpdate {
        FindingUpdate {
            workflow: Workflow::Notified,
            note: note.into(),
            fields: BTreeMap::new(),
        }
    }

    async fn record_all(
        hub: Arc<FakeHub>,
        jobs: Vec<(FindingId, FindingUpdate)>,
    ) -> Vec<Result<(), RecordError>> {
        let (recorder, handle) = Recorder::start(hub, fast_recorder(), Arc::default());
        let tasks: Vec<_> = jobs
            .into_iter()
            .map(|(id, u)| {
                let r = recorder.clone();
                tokio::spawn(async move { r.record(id, u).await })
            })
            .collect();
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.unwrap());
        }
        drop(recorder);
        handle.await.unwrap();
        out
    }

    #[tokio::test]
    async fn alike_updates_share_calls_of_at_most_100() {
        let hub = Arc::new(FakeHub::default());
        let mut jobs: Vec<_> = (0..250).map(|n| (id(n), update("same"))).collect();
        jobs.push((id(999), update("different")));
        let results = record_all(hub.clone(), jobs).await;
        assert!(results.iter().all(|r| r.is_ok()));
        let calls = hub.calls.lock().unwrap();
        assert_eq!(calls.len(), 4, "250 alike → 100+100+50, plus one other");
        let total: usize = calls.iter().map(|(ids, _)| ids.len()).sum();
        assert_eq!(total, 251);
    }

    #[tokio::test]
    async fn throttling_and_concurrent_updates_are_retried() {
        let hub = Arc::new(FakeHub::default());
        *hub.throttle.lock().unwrap() = 2;
        *hub.unprocessed.lock().unwrap() = 3;
        let results =
            record_all(hub.clone(), (0..10).map(|n| (id(n), update("u"))).collect()).await;
        assert!(results.iter().all(|r| r.is_ok()), "{results:?}");
        let calls = hub.calls.lock().unwrap();
        assert_eq!(
            calls.len(),
            4,
            "2 throttled, 1 with 3 unprocessed, 1 retry of those 3"
        );
        assert_eq!(calls[3].0.len(), 3);
    }

    #[tokio::test]
    async fn non_retryable_codes_fail_with_their_code() {
        let hub = Arc::new(FakeHub::default());
        *hub.fatal.lock().unwrap() = Some("FindingNotFound".into());
        let results = record_all(hub.clone(), vec![(id(1), update("u"))]).await;
        assert_eq!(
            results[0],
            Err(RecordError::Unprocessed {
                code: "FindingNotFound".into(),
                message: "no".into()
            })
        );
        assert_eq!(hub.calls.lock().unwrap().len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn calls_run_a_few_at_once() {
        let hub = Arc::new(FakeHub {
            latency: Duration::from_millis(300),
            ..Default::default()
        });
        // 800 alike updates: eight full calls, at most four under way at once.
        let jobs = (0..800).map(|n| (id(n), update("same"))).collect();
        let started = Instant::now();
        let results = record_all(hub.clone(), jobs).await;
        assert!(results.iter().all(|r| r.is_ok()));
        assert_eq!(hub.calls.lock().unwrap().len(), 8);
        let most = hub.most_in_call.load(std::sync::atomic::Ordering::SeqCst);
        assert_eq!(most, 4, "max_concurrent_calls");
        assert!(
            started.elapsed() < Duration::from_millis(1000),
            "eight 300 ms calls, four at a time: {:?}",
            started.elapsed()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn two_updates_of_one_finding_are_written_in_their_order() {
        let hub = Arc::new(FakeHub {
            latency: Duration::from_millis(300),
            ..Default::default()
        });
        let (recorder, handle) = Recorder::start(hub.clone(), fast_recorder(), Arc::default());
        let first = recorder.submit(id(1), update("in progress")).await.unwrap();
        // The first is written (its linger is over) while the second lingers.
        tokio::time::sleep(Duration::from_millis(60)).await;
        let second = recorder.submit(id(1), update("resolved")).await.unwrap();
        assert!(first.written().await.is_ok());
        assert!(second.written().await.is_ok());
        drop(recorder);
        handle.await.unwrap();
        let calls = hub.calls.lock().unwrap();
        let notes: Vec<&str> = calls.iter().map(|(_, u)| u.note.as_str()).collect();
        assert_eq!(notes, vec!["in progress", "resolved"]);
        assert_eq!(
            hub.most_in_call.load(std::sync::atomic::Ordering::SeqCst),
            1
        );
    }

    #[tokio::test(start_paused = true)]
    async fn many_different_updates_go_before_their_linger_when_too_many_wait() {
        let hub = Arc::new(FakeHub::default());
        let settings = RecorderSettings {
            linger: Duration::from_secs(1),
            max_waiting: 20,
            ..fast_recorder()
        };
        let (recorder, handle) = Recorder::start(hub.clone(), settings, Arc::default());
        // Seven different notes (as a mix of controls makes), three findings
        // each, and one group of six: no group comes near 100.
        let mut pending = Vec::new();
        for n in 0..21 {
            let note = format!("control {}", n % 7);
            pending.push(recorder.submit(id(n), update(&note)).await.unwrap());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        {
            let calls = hub.calls.lock().unwrap();
            assert_eq!(calls.len(), 1, "the 20th waiting update sends one group");
            assert_eq!(calls[0].0.len(), 3);
        }
        for p in pending {
            assert!(p.written().await.is_ok());
        }
        drop(recorder);
        handle.await.unwrap();
        assert_eq!(hub.calls.lock().unwrap().len(), 7, "one call per note");
    }

    #[tokio::test(start_paused = true)]
    async fn updates_under_the_waiting_limit_linger() {
        let hub = Arc::new(FakeHub::default());
        let settings = RecorderSettings {
            linger: Duration::from_secs(1),
            ..RecorderSettings::holding(300)
        };
        let (recorder, handle) = Recorder::start(hub.clone(), settings, Arc::default());
        let mut pending = Vec::new();
        for n in 0..200 {
            let note = format!("control {}", n % 7);
            pending.push(recorder.submit(id(n), update(&note)).await.unwrap());
        }
        tokio::time::sleep(Duration::from_millis(900)).await;
        assert!(hub.calls.lock().unwrap().is_empty(), "200 < 225 waiting");
        for p in pending {
            assert!(p.written().await.is_ok());
        }
        drop(recorder);
        handle.await.unwrap();
        assert_eq!(hub.calls.lock().unwrap().len(), 7);
    }
}
