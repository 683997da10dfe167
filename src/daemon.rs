//! The receive loop: long-poll the queue, work on a bounded number of messages
//! at once, keep them invisible while they are worked on, delete them only
//! once everything in them is recorded, and shut down without losing any.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{watch, Semaphore};
use tokio::task::{JoinHandle, JoinSet};
use tracing::Instrument;

use self::deleter::Deleter;
use self::emf::{emit_metrics, write_emf};
use self::message::{back_off, keep_invisible, process, Processed};
use crate::lock;
use crate::metrics::Metrics;
use crate::pipeline::Pipeline;
use crate::source::{Message, MessageQueue};

#[derive(Debug, Clone)]
pub struct Settings {
    pub max_messages: i32,
    /// Long-polls at once while the queue is deep.
    pub parallel_receives: usize,
    pub wait_seconds: i32,
    /// The visibility each received message gets and keeps while worked on.
    pub visibility_seconds: i32,
    /// Messages held at once (`[daemon] max_in_flight`); the pipeline bounds
    /// how many of them are being decided and acted on.
    pub max_in_flight: usize,
    pub grace: Duration,
    /// Exit once the queue is empty and everything is recorded.
    pub until_empty: bool,
    /// Touched on every turn of the receive loop (`hubtriage healthcheck`).
    pub heartbeat_file: Option<std::path::PathBuf>,
    pub metrics_namespace: String,
    pub metrics_interval: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("{0}")]
    Queue(#[from] crate::aws::Error),
    #[error("giving up after {0} consecutive failures to receive from the queue")]
    ReceiveFailing(u32),
}

/// How the run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Drained,
    Shutdown,
}

/// In-flight messages: id → receipt handle.
type InFlight = Arc<Mutex<HashMap<String, String>>>;

/// Runs the receive loop until shutdown (or, with `until_empty`, until the
/// queue is drained), then finishes or releases what is in flight.
pub async fn run(
    queue: Arc<dyn MessageQueue>,
    pipeline: Arc<Pipeline>,
    recorder_task: JoinHandle<()>,
    settings: Settings,
    shutdown: watch::Receiver<bool>,
) -> Result<Exit, DaemonError> {
    let mut daemon = Daemon::start(queue, pipeline, settings, shutdown);
    let exit = loop {
        if let Some(exit) = daemon.turn().await? {
            break exit;
        }
    };
    daemon.shutdown(recorder_task, exit).await;
    Ok(exit)
}

/// The receive loop's state.
struct Daemon {
    queue: Arc<dyn MessageQueue>,
    pipeline: Arc<Pipeline>,
    settings: Settings,
    shutdown: watch::Receiver<bool>,
    deleter: Deleter,
    deleter_task: JoinHandle<()>,
    permits: Arc<Semaphore>,
    in_flight: InFlight,
    tasks: JoinSet<()>,
    /// Receives that failed in a row.
    failures: u32,
    /// The last receive came back full: the queue is deep.
    deep: bool,
    /// The long-poll wait (short with `until_empty`, to notice the end soon).
    wait: i32,
    emf: JoinHandle<()>,
    /// The metrics last written as EMF, so the line at exit adds only the rest.
    emitted: Arc<Mutex<crate::metrics::Snapshot>>,
}

impl Daemon {
    fn start(
        queue: Arc<dyn MessageQueue>,
        pipeline: Arc<Pipeline>,
        settings: Settings,
        shutdown: watch::Receiver<bool>,
    ) -> Daemon {
        let metrics = pipeline.metrics.clone();
        let (deleter, deleter_task) = Deleter::start(queue.clone(), metrics.clone());
        let wait = if settings.until_empty {
            settings.wait_seconds.min(2)
        } else {
            settings.wait_seconds
        };
        tracing::info!(
            queue = queue.url(),
            max_in_flight = settings.max_in_flight,
            visibility = settings.visibility_seconds,
            until_empty = settings.until_empty,
            "receiving"
        );
        let emitted: Arc<Mutex<crate::metrics::Snapshot>> = Arc::default();
        let emf = tokio::spawn(emit_metrics(
            metrics,
            emitted.clone(),
            settings.metrics_namespace.clone(),
            settings.metrics_interval,
        ));
        Daemon {
            permits: Arc::new(Semaphore::new(settings.max_in_flight)),
            queue,
            pipeline,
            settings,
            shutdown,
            deleter,
            deleter_task,
            in_flight: Arc::default(),
            tasks: JoinSet::new(),
            failures: 0,
            deep: false,
            wait,
            emf,
            emitted,
        }
    }

    /// One turn of the loop: receive what there is room for and start work on
    /// it. `Some` ends the loop.
    async fn turn(&mut self) -> Result<Option<Exit>, DaemonError> {
        if *self.shutdown.borrow() {
            return Ok(Some(Exit::Shutdown));
        }
        heartbeat(self.settings.heartbeat_file.as_deref());
        while self.tasks.try_join_next().is_some() {}

        let free = self.permits.available_permits();
        if free == 0 {
            // Busy: wait for a slot, but keep the heartbeat going.
            tokio::select! {
                _ = self.tasks.join_next() => {}
                _ = self.shutdown.changed() => {}
                _ = tokio::time::sleep(Duration::from_secs(5)) => {}
            }
            return Ok(None);
        }
        let Some(messages) = self.receive(free).await? else {
            return Ok(None);
        };
        if messages.is_empty() {
            let drained = self.settings.until_empty
                && self.tasks.is_empty()
                && drained(self.queue.as_ref(), &self.deleter).await?;
            return Ok(drained.then_some(Exit::Drained));
        }
        for message in messages {
            self.spawn(message).await;
        }
        Ok(None)
    }

    /// Receives up to `free` messages: one long-poll, or several at once while
    /// the queue is deep and there is room for them. `None`: nothing received
    /// this turn (shutdown asked, or every receive failed and was backed off).
    async fn receive(&mut self, free: usize) -> Result<Option<Vec<Message>>, DaemonError> {
        let per_poll = usize::try_from(self.settings.max_messages)
            .unwrap_or(1)
            .max(1);
        let polls = if self.deep {
            (free / per_poll).clamp(1, self.settings.parallel_receives.max(1))
        } else {
            1
        };
        let max = i32::try_from(free.min(per_poll)).unwrap_or(1);
        let visibility = Some(self.settings.visibility_seconds);
        let mut receives = JoinSet::new();
        for _ in 0..polls {
            let queue = self.queue.clone();
            let wait = self.wait;
            receives.spawn(async move { queue.receive(max, wait, visibility).await });
        }
        let mut messages = Vec::new();
        let mut error = None;
        loop {
            let joined = tokio::select! {
                j = receives.join_next() => j,
                // Dropping the set aborts the polls still waiting.
                _ = self.shutdown.changed() => return Ok(None),
            };
            match joined {
                None => break,
                Some(Ok(Ok(m))) => messages.extend(m),
                Some(Ok(Err(e))) => error = Some(e),
                Some(Err(e)) => {
                    tracing::error!(error = %e, "a receive task failed");
                }
            }
        }
        self.deep = messages.len() >= polls * per_poll;
        match error {
            None => {
                self.failures = 0;
                Ok(Some(messages))
            }
            Some(e) if !messages.is_empty() => {
                tracing::warn!(error = %e, "one of the parallel receives failed");
                Ok(Some(messages))
            }
            Some(e) => {
                self.failures += 1;
                let failures = self.failures;
                tracing::error!(error = %e, failures, "receive failed");
                if self.settings.until_empty && failures >= 5 {
                    return Err(DaemonError::ReceiveFailing(failures));
                }
                let backoff = Duration::from_secs(u64::from(failures.min(5)) * 2);
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = self.shutdown.changed() => {}
                }
                Ok(None)
            }
        }
    }

    /// Starts work on one message, kept invisible until it is done.
    async fn spawn(&mut self, message: Message) {
        Metrics::inc(&self.pipeline.metrics.messages_received);
        let Ok(permit) = self.permits.clone().acquire_owned().await else {
            return;
        };
        lock(&self.in_flight).insert(message.id.clone(), message.receipt.clone());
        let queue = self.queue.clone();
        let pipeline = self.pipeline.clone();
        let deleter = self.deleter.clone();
        let in_flight = self.in_flight.clone();
        let visibility = self.settings.visibility_seconds;
        let span = tracing::info_span!("message", message_id = %message.id, receive_count = message.receive_count);
        self.tasks.spawn(
            async move {
                let id = message.id.clone();
                let started = std::time::Instant::now();
                let processed = tokio::select! {
                    processed = process(&pipeline, &deleter, &message) => processed,
                    _ = keep_invisible(queue.as_ref(), &message.receipt, visibility) => Processed::Settled,
                };
                if processed == Processed::TicketSystemFailed {
                    back_off(queue.as_ref(), &message, visibility).await;
                }
                let ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
                pipeline.metrics.latency(ms);
                lock(&in_flight).remove(&id);
                drop(permit);
            }
            .instrument(span),
        );
    }

    /// Finishes what is in flight within the grace period, releases what is
    /// not finished, then flushes updates, deletes, events and metrics.
    async fn shutdown(mut self, recorder_task: JoinHandle<()>, exit: Exit) {
        self.finish_or_release().await;
        self.pipeline.close_recorder();
        if tokio::time::timeout(Duration::from_secs(10), recorder_task)
            .await
            .is_err()
        {
            tracing::warn!(
                "pending finding updates not flushed in time; their messages return to the queue"
            );
        }
        drop(self.deleter);
        let _ = tokio::time::timeout(Duration::from_secs(5), self.deleter_task).await;
        if let Some(events) = self.pipeline.events() {
            events.drain(Duration::from_secs(5)).await;
        }
        if let Some(journal) = self.pipeline.journal() {
            journal.flush(Duration::from_secs(10)).await;
        }
        self.emf.abort();
        let _ = self.emf.await;
        let last = *lock(&self.emitted);
        let metrics = &self.pipeline.metrics;
        let snapshot = metrics.snapshot();
        write_emf(
            metrics,
            &snapshot.since(&last),
            &self.settings.metrics_namespace,
        );
        tracing::info!(exit = ?exit, metrics = %serde_json::to_string(&snapshot).unwrap_or_default(), "stopped");
    }

    async fn finish_or_release(&mut self) {
        if !self.tasks.is_empty() {
            tracing::info!(
                in_flight = self.tasks.len(),
                grace_seconds = self.settings.grace.as_secs(),
                "finishing in-flight messages"
            );
        }
        let tasks = &mut self.tasks;
        let finished = tokio::time::timeout(self.settings.grace, async {
            while tasks.join_next().await.is_some() {}
        })
        .await;
        if finished.is_ok() {
            return;
        }
        self.tasks.abort_all();
        while self.tasks.join_next().await.is_some() {}
        let receipts: Vec<String> = lock(&self.in_flight).drain().map(|(_, r)| r).collect();
        tracing::warn!(
            count = receipts.len(),
            "grace period over; releasing unfinished messages to the queue"
        );
        for chunk in receipts.chunks(10) {
            if let Err(e) = self.queue.release_batch(chunk).await {
                tracing::warn!(error = %e, "could not release messages; they return after their visibility timeout");
            }
        }
    }
}

/// Writes the time into the heartbeat file (failures are logged, not fatal).
fn heartbeat(path: Option<&std::path::Path>) {
    if let Some(path) = path {
        let now = chrono::Utc::now().timestamp();
        if let Err(e) = std::fs::write(path, now.to_string()) {
            tracing::warn!(file = %path.display(), error = %e, "cannot write the heartbeat file");
        }
    }
}

/// True when nothing is left: deletes flushed, and the queue has no visible,
/// in-flight or delayed messages.
async fn drained(queue: &dyn MessageQueue, deleter: &Deleter) -> Result<bool, DaemonError> {
    deleter.flush().await;
    let depth = queue.depth().await?;
    tracing::debug!(?depth, "queue depth");
    Ok(depth.is_empty())
}

mod deleter;
mod emf;
mod message;

#[cfg(test)]
mod tests;
