//! Re-checks of remediations in progress, carried by the findings queue itself:
//! a small JSON message sent with `DelaySeconds` (chained past SQS's 15-minute
//! limit), so a restart, a crash or another replica resumes from live state.
//! And the limiter that keeps remediations within `max_concurrent` and
//! `max_per_hour`: above them a remediation waits; it is not dropped.

use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::remediate::Progress;
use crate::coordination::{Caps, SharedSlots, SlotChange, Slots, SlotsChanged};
use crate::decide::deciding_control;
use crate::finding::Finding;
use crate::lock;

/// The key that marks a re-check message on the queue.
pub const MARKER: &str = "hubtriage_recheck";
/// SQS's longest DelaySeconds.
pub const MAX_DELAY_SECONDS: i64 = 900;

/// A re-check message body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recheck {
    /// Format version; always 1.
    pub hubtriage_recheck: u32,
    pub finding_id: String,
    pub product_arn: String,
    pub account: String,
    pub region: String,
    /// The resource being remediated: the cluster's ARN, or the cluster
    /// snapshot's (kept under this name so that re-checks written by an
    /// earlier release are read).
    pub cluster_arn: String,
    /// The control being remediated; absent in re-checks written before
    /// other controls than Neptune.2 were triaged (then Neptune.2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control: Option<String>,
    /// Do not act before this time (for waits longer than one SQS delay).
    pub not_before: DateTime<Utc>,
    /// `None`: the remediation has not started yet (it waited for a slot).
    #[serde(default)]
    pub progress: Option<Progress>,
}

#[derive(Debug, thiserror::Error)]
#[error("re-check message: {0}")]
pub struct RecheckError(String);

impl Recheck {
    /// `Some` when `body` is a re-check message (valid or not); `None` for anything else.
    pub fn parse(body: &str) -> Option<Result<Recheck, RecheckError>> {
        let value: serde_json::Value = serde_json::from_str(body).ok()?;
        value.get(MARKER)?;
        Some(serde_json::from_value(value).map_err(|e| RecheckError(e.to_string())))
    }

    /// A re-check of `f`'s remediation of `cluster_arn`, due now; `progress`
    /// is `None` while it waits for a slot.
    pub fn new(f: &Finding, cluster_arn: &str, progress: Option<Progress>) -> Recheck {
        Recheck {
            hubtriage_recheck: 1,
            finding_id: f.id.clone(),
            product_arn: f.product_arn.clone(),
            account: f.account.clone(),
            region: f.region.clone(),
            cluster_arn: cluster_arn.to_string(),
            control: deciding_control(f).map(|c| c.id().to_string()),
            not_before: Utc::now(),
            progress,
        }
    }

    /// The delay to send this message with, from `now`: at most SQS's 15 minutes.
    pub fn delay_seconds(&self, now: DateTime<Utc>) -> i32 {
        let wait = (self.not_before - now)
            .num_seconds()
            .clamp(0, MAX_DELAY_SECONDS);
        i32::try_from(wait).unwrap_or(900)
    }
}

/// Where re-checks go (the findings queue).
#[async_trait]
pub trait RecheckQueue: Send + Sync {
    async fn schedule(
        &self,
        recheck: &Recheck,
        delay_seconds: i32,
    ) -> Result<(), crate::aws::Error>;
}

#[async_trait]
impl RecheckQueue for crate::source::sqs::Queue {
    async fn schedule(
        &self,
        recheck: &Recheck,
        delay_seconds: i32,
    ) -> Result<(), crate::aws::Error> {
        let body = serde_json::to_string(recheck).map_err(|e| {
            crate::aws::Error::other(
                "SQS",
                "SendMessage",
                crate::source::MessageQueue::url(self),
                format!("the re-check cannot be written: {e}"),
            )
        })?;
        self.send(&body, delay_seconds).await
    }
}

/// Bounds remediations: clusters changed at once, starts per hour, and one
/// remediation per cluster at a time; in this process, or across every task
/// with [`Limiter::shared`].
pub struct Limiter {
    caps: Caps,
    local: Mutex<Slots>,
    shared: Option<std::sync::Arc<dyn SharedSlots>>,
}

/// How long a slot is held past its last sign of life (a pass starting, or
/// the re-check it scheduled being due).
pub const SLOT_SLACK_SECONDS: i64 = 300;

impl Limiter {
    pub fn new(max_concurrent: usize, max_per_hour: usize) -> Self {
        Limiter {
            caps: Caps {
                max_concurrent,
                max_per_hour,
            },
            local: Mutex::new(Slots::default()),
            shared: None,
        }
    }

    /// Counts in the coordination table, across every task.
    pub fn shared(mut self, slots: std::sync::Arc<dyn SharedSlots>) -> Self {
        self.shared = Some(slots);
        self
    }

    /// Applies `change` here or in the table; `Err` says why the remediation waits.
    async fn change(&self, change: &SlotChange<'_>) -> Result<(), String> {
        let answer = match &self.shared {
            None => change(&mut lock(&self.local)),
            Some(shared) => shared.change_slots(change).await.unwrap_or_else(|e| {
                SlotsChanged::Wait(format!("the coordination table cannot be read: {e}"))
            }),
        };
        match answer {
            SlotsChanged::Done => Ok(()),
            SlotsChanged::Wait(why) => Err(why),
        }
    }

    /// Starts a remediation of `cluster` for `finding`, or says why it must wait.
    pub async fn try_start(
        &self,
        cluster: &str,
        finding: &str,
        now: DateTime<Utc>,
    ) -> Result<(), String> {
        let until = now + Duration::seconds(SLOT_SLACK_SECONDS);
        let caps = self.caps;
        self.change(&|s: &mut Slots| s.try_start(cluster, finding, now, until, caps).into())
            .await
    }

    /// A remediation under way (a re-check, a restart) holds its cluster until `until`.
    pub async fn hold(&self, cluster: &str, finding: &str, until: DateTime<Utc>) {
        let until = until + Duration::seconds(SLOT_SLACK_SECONDS);
        let held = self
            .change(&|s: &mut Slots| {
                s.hold(cluster, finding, until);
                SlotsChanged::Done
            })
            .await;
        if let Err(e) = held {
            tracing::warn!(error = %e, "could not hold the remediation's slot");
        }
    }

    /// `finding`'s remediation of `cluster` ended (another finding's frees nothing).
    pub async fn finish(&self, cluster: &str, finding: &str) {
        let finished = self
            .change(&|s: &mut Slots| {
                s.finish(cluster, finding);
                SlotsChanged::Done
            })
            .await;
        if let Err(e) = finished {
            tracing::warn!(error = %e, "could not free the remediation's slot; it expires");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[tokio::test]
    async fn limits_concurrency_rate_and_one_per_cluster() {
        let l = Limiter::new(2, 3);
        let t = at("2026-11-25T12:00:00Z");
        assert!(l.try_start("c1", "f1", t).await.is_ok());
        assert!(
            l.try_start("c1", "f1", t).await.is_ok(),
            "the same remediation continues"
        );
        assert!(
            l.try_start("c1", "f2", t).await.is_err(),
            "one remediation per cluster"
        );
        assert!(l.try_start("c2", "f2", t).await.is_ok());
        assert!(l
            .try_start("c3", "f3", t)
            .await
            .unwrap_err()
            .contains("max_concurrent"));
        l.finish("c1", "f2").await;
        assert!(
            l.try_start("c3", "f3", t).await.is_err(),
            "a finding that waited for c1 and stopped frees no slot"
        );
        l.finish("c1", "f1").await;
        assert!(l.try_start("c3", "f3", t).await.is_ok());
        l.finish("c2", "f2").await;
        l.finish("c3", "f3").await;
        assert!(l
            .try_start("c4", "f4", t)
            .await
            .unwrap_err()
            .contains("max_per_hour"));
        assert!(l
            .try_start("c4", "f4", t + Duration::minutes(61))
            .await
            .is_ok());
    }

    #[tokio::test]
    async fn a_slot_whose_remediation_shows_no_life_expires() {
        let l = Limiter::new(1, 10);
        let t = at("2026-11-25T12:00:00Z");
        assert!(l.try_start("c1", "f1", t).await.is_ok());
        assert!(l.try_start("c2", "f2", t).await.is_err());
        // The task changing c1 died mid-pass: its slot frees after the slack.
        let later = t + Duration::seconds(SLOT_SLACK_SECONDS + 1);
        assert!(l.try_start("c2", "f2", later).await.is_ok());
        // A re-check scheduled for tomorrow holds its slot until then.
        l.finish("c2", "f2").await;
        l.hold("c2", "f2", later + Duration::days(1)).await;
        assert!(l
            .try_start("c3", "f3", later + Duration::hours(20))
            .await
            .is_err());
    }

    #[test]
    fn recheck_messages_round_trip_and_are_told_apart_from_events() {
        let r = Recheck {
            hubtriage_recheck: 1,
            finding_id: "f".into(),
            product_arn: "p".into(),
            account: "111122223333".into(),
            region: "us-east-1".into(),
            cluster_arn: "arn:aws:rds:us-east-1:111122223333:cluster:c".into(),
            control: None,
            not_before: at("2026-11-25T12:30:00Z"),
            progress: None,
        };
        let body = serde_json::to_string(&r).unwrap();
        assert_eq!(Recheck::parse(&body).unwrap().unwrap(), r);
        assert_eq!(
            r.delay_seconds(at("2026-11-25T12:00:00Z")),
            900,
            "chained past 15 minutes"
        );
        assert_eq!(r.delay_seconds(at("2026-11-25T12:29:00Z")), 60);
        assert!(Recheck::parse(include_str!(
            "../../tests/fixtures/neptune2-failed-event.json"
        ))
        .is_none());
        assert!(Recheck::parse("{\"hubtriage_recheck\": 1}")
            .unwrap()
            .is_err());
    }
}
