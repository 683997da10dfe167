//! One message of the queue: a finding event (each finding handled by the
//! pipeline, in its own span) or a re-check; deleted only when everything in
//! it is handled, kept invisible while it is worked on, and backed off when
//! the ticket system failed.

use std::time::Duration;

use tracing::Instrument;

use super::deleter::Deleter;
use crate::act::recheck::Recheck;
use crate::finding::{parse_event, ClusterArn};
use crate::metrics::Metrics;
use crate::pipeline::Pipeline;
use crate::source::{Message, MessageQueue};

/// A message whose ticket system failed comes back later each time: after
/// `visibility × 2^(receives − 1)` seconds (at most 12 hours, SQS's limit), so
/// the queue's receives before the DLQ span an outage of hours, not minutes.
pub(super) async fn back_off(queue: &dyn MessageQueue, message: &Message, visibility: i32) {
    let doublings = message.receive_count.saturating_sub(1).min(16);
    if doublings == 0 {
        return;
    }
    let seconds = i64::from(visibility)
        .saturating_mul(1 << doublings)
        .min(MAX_VISIBILITY_SECONDS);
    let seconds = i32::try_from(seconds).unwrap_or(i32::MAX);
    match queue.set_visibility(&message.receipt, seconds).await {
        Ok(()) => tracing::info!(
            seconds,
            receive_count = message.receive_count,
            "the ticket system failed; the message comes back later"
        ),
        Err(e) => tracing::warn!(error = %e, "could not delay the message's return"),
    }
}

/// SQS's longest visibility timeout: 12 hours.
const MAX_VISIBILITY_SECONDS: i64 = 43_200;

/// How work on a message ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Processed {
    /// Deleted, or left on the queue for a later try or its redrive policy.
    Settled,
    /// A ticket system failed: the message is left on the queue and comes
    /// back later than its visibility would bring it (backed off).
    TicketSystemFailed,
}

/// Works on one message. Deletes it only when every finding in it is handled.
pub(super) async fn process(
    pipeline: &Pipeline,
    deleter: &Deleter,
    message: &Message,
) -> Processed {
    if let Some(recheck) = Recheck::parse(&message.body) {
        match recheck {
            Ok(r) => process_recheck(pipeline, deleter, message, &r).await,
            Err(e) => {
                Metrics::inc(&pipeline.metrics.messages_unparseable);
                tracing::error!(error = %e, "re-check message cannot be parsed; not deleted, left for the queue's redrive policy (DLQ)");
            }
        }
        return Processed::Settled;
    }
    let findings = match parse_event(message.body.as_bytes()) {
        Ok(f) => f,
        Err(e) => {
            Metrics::inc(&pipeline.metrics.messages_unparseable);
            tracing::error!(
                error = %e,
                finding_id = finding_id_hint(&message.body).as_deref().unwrap_or(""),
                "message cannot be parsed; not deleted, left for the queue's redrive policy (DLQ)"
            );
            return Processed::Settled;
        }
    };
    let mut all_done = true;
    let mut processed = Processed::Settled;
    for f in &findings {
        let span = tracing::info_span!(
            "finding",
            finding_id = %f.id,
            account = %f.account,
            region = %f.region,
            cluster = f.cluster_id().unwrap_or(""),
        );
        let handled = pipeline
            .handle(f, message.receive_count > 1)
            .instrument(span.clone())
            .await;
        if let Err(e) = handled {
            all_done = false;
            if matches!(e, crate::pipeline::FindingError::Ticket(_)) {
                processed = Processed::TicketSystemFailed;
            }
            Metrics::inc(&pipeline.metrics.findings_failed);
            span.in_scope(|| tracing::error!(error = %e, "finding not handled; the message stays on the queue"));
        }
    }
    if all_done {
        deleter.delete(message).await;
    } else {
        Metrics::inc(&pipeline.metrics.messages_failed);
    }
    processed
}

/// A re-check message: carried on by the pipeline, deleted once handled.
async fn process_recheck(pipeline: &Pipeline, deleter: &Deleter, message: &Message, r: &Recheck) {
    let span = tracing::info_span!(
        "finding",
        finding_id = %r.finding_id,
        account = %r.account,
        region = %r.region,
        cluster = ClusterArn::parse(&r.cluster_arn).map(|a| a.identifier).unwrap_or(""),
        recheck = true,
    );
    match pipeline.handle_recheck(r).instrument(span.clone()).await {
        Ok(_) => deleter.delete(message).await,
        Err(e) => {
            Metrics::inc(&pipeline.metrics.findings_failed);
            Metrics::inc(&pipeline.metrics.messages_failed);
            span.in_scope(
                || tracing::error!(error = %e, "re-check failed; the message stays on the queue"),
            );
        }
    }
}

/// The finding id in a body that did not parse, when one can be seen.
fn finding_id_hint(body: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(body).ok()?;
    v.pointer("/detail/findings/0/Id")?
        .as_str()
        .map(str::to_string)
}

/// Extends the message's visibility while it is worked on, every third of
/// it (sooner again after a failed try). Never returns. Once SQS says the
/// receipt is no longer valid, the message has come back to the queue (an
/// extension came too late) and another receive holds it: extending stops,
/// and the other receiver's copy finds the finding recorded.
pub(super) async fn keep_invisible(queue: &dyn MessageQueue, receipt: &str, visibility: i32) {
    let every =
        Duration::from_millis((u64::try_from(visibility).unwrap_or(30) * 1000 / 3).max(500));
    let mut wait = every;
    loop {
        tokio::time::sleep(wait).await;
        wait = every;
        match queue.set_visibility(receipt, visibility).await {
            Ok(()) => {}
            Err(e) if e.is_invalid_receipt() => {
                tracing::warn!(
                    "the message's visibility ran out before it could be extended; another receive holds it now"
                );
                return std::future::pending().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not extend the message's visibility");
                wait = every.min(Duration::from_secs(1));
            }
        }
    }
}
