//! The daemon's CloudWatch metrics: an EMF line on stdout every interval
//! with what happened since the last one (and one at exit).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::lock;
use crate::metrics::Metrics;

/// Writes an EMF line with what happened since the last one, every `interval`.
/// `emitted` keeps the snapshot last written, so the line at exit adds only the rest.
pub(super) async fn emit_metrics(
    metrics: Arc<Metrics>,
    emitted: Arc<Mutex<crate::metrics::Snapshot>>,
    namespace: String,
    interval: Duration,
) {
    let mut ticker = tokio::time::interval(interval);
    ticker.tick().await;
    loop {
        ticker.tick().await;
        let now = metrics.snapshot();
        let mut last = lock(&emitted);
        write_emf(&metrics, &now.since(&last), &namespace);
        *last = now;
    }
}

/// The interval's EMF lines on stdout: the counters, then ticket failures by
/// status and decisions by control and action.
pub(super) fn write_emf(metrics: &Metrics, delta: &crate::metrics::Snapshot, namespace: &str) {
    let now = chrono::Utc::now().timestamp_millis();
    println!(
        "{}",
        delta.emf_line(namespace, now, &metrics.latencies.take())
    );
    for line in metrics
        .ticket_error_lines(namespace, now)
        .into_iter()
        .chain(metrics.control_lines(namespace, now))
    {
        println!("{line}");
    }
}
