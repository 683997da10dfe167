//! Re-checks of remediations in progress, carried by the findings queue itself:
//! a small JSON message sent with `DelaySeconds` (chained past SQS's 15-minute
//! limit), so a restart, a crash or another replica resumes from live state.
//! And the limiter that keeps remediations within `max_concurrent` and
//! `max_per_hour`: above them a remediation waits; it is not dropped.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::remediate::Progress;
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
    pub cluster_arn: String,
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
    async fn schedule(&self, recheck: &Recheck, delay_seconds: i32) -> Result<(), String>;
}

#[async_trait]
impl RecheckQueue for crate::source::sqs::Queue {
    async fn schedule(&self, recheck: &Recheck, delay_seconds: i32) -> Result<(), String> {
        let body = serde_json::to_string(recheck).map_err(|e| e.to_string())?;
        self.send(&body, delay_seconds)
            .await
            .map_err(|e| e.to_string())
    }
}

/// Bounds remediations in this process: clusters changed at once, starts per hour,
/// and one remediation per cluster at a time.
pub struct Limiter {
    max_concurrent: usize,
    max_per_hour: usize,
    inner: Mutex<LimiterState>,
}

#[derive(Default)]
struct LimiterState {
    /// cluster ARN → the finding whose remediation is changing it.
    active: HashMap<String, String>,
    starts: VecDeque<DateTime<Utc>>,
}

impl Limiter {
    pub fn new(max_concurrent: usize, max_per_hour: usize) -> Self {
        Limiter {
            max_concurrent,
            max_per_hour,
            inner: Mutex::new(LimiterState::default()),
        }
    }

    /// Starts a remediation of `cluster` for `finding`, or says why it must wait.
    pub fn try_start(
        &self,
        cluster: &str,
        finding: &str,
        now: DateTime<Utc>,
    ) -> Result<(), String> {
        let mut s = lock(&self.inner);
        match s.active.get(cluster) {
            Some(f) if f == finding => return Ok(()),
            Some(_) => return Err("another finding's remediation is changing this cluster".into()),
            None => {}
        }
        while s
            .starts
            .front()
            .is_some_and(|t| *t <= now - Duration::hours(1))
        {
            s.starts.pop_front();
        }
        if s.active.len() >= self.max_concurrent {
            return Err(format!(
                "{} clusters are being changed (max_concurrent)",
                s.active.len()
            ));
        }
        if s.starts.len() >= self.max_per_hour {
            return Err(format!(
                "{} remediations started in the last hour (max_per_hour)",
                s.starts.len()
            ));
        }
        s.active.insert(cluster.to_string(), finding.to_string());
        s.starts.push_back(now);
        Ok(())
    }

    /// A remediation already under way (after a restart, say) holds its cluster again.
    pub fn resume(&self, cluster: &str, finding: &str) {
        lock(&self.inner)
            .active
            .entry(cluster.to_string())
            .or_insert_with(|| finding.to_string());
    }

    pub fn finish(&self, cluster: &str) {
        lock(&self.inner).active.remove(cluster);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn limits_concurrency_rate_and_one_per_cluster() {
        let l = Limiter::new(2, 3);
        let t = at("2026-11-25T12:00:00Z");
        assert!(l.try_start("c1", "f1", t).is_ok());
        assert!(
            l.try_start("c1", "f1", t).is_ok(),
            "the same remediation continues"
        );
        assert!(
            l.try_start("c1", "f2", t).is_err(),
            "one remediation per cluster"
        );
        assert!(l.try_start("c2", "f2", t).is_ok());
        assert!(l
            .try_start("c3", "f3", t)
            .unwrap_err()
            .contains("max_concurrent"));
        l.finish("c1");
        assert!(l.try_start("c3", "f3", t).is_ok());
        l.finish("c2");
        l.finish("c3");
        assert!(l
            .try_start("c4", "f4", t)
            .unwrap_err()
            .contains("max_per_hour"));
        assert!(l.try_start("c4", "f4", t + Duration::minutes(61)).is_ok());
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
