//! Counters a user would graph, written as CloudWatch Embedded Metric Format
//! (EMF) lines on stdout: every `[metrics] interval_seconds` and once at exit.
//! In ECS the awslogs driver ships them to CloudWatch Logs, which turns them
//! into metrics; no agent and no PutMetricData permission are needed.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use serde::Serialize;

use crate::decide::Action;

#[derive(Debug, Default)]
pub struct Metrics {
    pub messages_received: AtomicU64,
    pub messages_deleted: AtomicU64,
    pub messages_unparseable: AtomicU64,
    pub messages_failed: AtomicU64,
    pub findings_received: AtomicU64,
    pub own_updates_dropped: AtomicU64,
    pub duplicates_dropped: AtomicU64,
    pub decided_remediate: AtomicU64,
    pub decided_ticket: AtomicU64,
    pub decided_suppress: AtomicU64,
    pub decided_resolve: AtomicU64,
    pub decided_ignore: AtomicU64,
    pub recorded: AtomicU64,
    pub already_recorded: AtomicU64,
    pub failed: AtomicU64,
    pub remediations_failed: AtomicU64,
    pub remediations_verified: AtomicU64,
    pub remediations_started: AtomicU64,
    pub throttles: AtomicU64,
    pub latency_count: AtomicU64,
    pub latency_ms_max: AtomicU64,
    pub latency_ms_sum: AtomicU64,
    pub tickets_opened: AtomicU64,
}

/// A point-in-time copy, for logs and tests.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct Snapshot {
    pub messages_received: u64,
    pub messages_deleted: u64,
    pub messages_unparseable: u64,
    pub messages_failed: u64,
    pub findings_received: u64,
    pub own_updates_dropped: u64,
    pub duplicates_dropped: u64,
    pub decided_remediate: u64,
    pub decided_ticket: u64,
    pub decided_suppress: u64,
    pub decided_resolve: u64,
    pub decided_ignore: u64,
    pub recorded: u64,
    pub already_recorded: u64,
    pub failed: u64,
    pub remediations_failed: u64,
    pub remediations_verified: u64,
    pub remediations_started: u64,
    pub throttles: u64,
    pub latency_count: u64,
    pub latency_ms_max: u64,
    pub latency_ms_sum: u64,
    pub tickets_opened: u64,
}

impl Metrics {
    pub fn inc(counter: &AtomicU64) {
        counter.fetch_add(1, Relaxed);
    }

    pub fn decided(&self, action: Action) {
        Self::inc(match action {
            Action::Remediate => &self.decided_remediate,
            Action::Ticket => &self.decided_ticket,
            Action::Suppress => &self.decided_suppress,
            Action::Resolve => &self.decided_resolve,
            Action::Ignore => &self.decided_ignore,
        });
    }

    /// One finding took `ms` from receipt to recorded outcome.
    pub fn latency(&self, ms: u64) {
        self.latency_ms_sum.fetch_add(ms, Relaxed);
        self.latency_count.fetch_add(1, Relaxed);
        self.latency_ms_max.fetch_max(ms, Relaxed);
    }

    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            messages_received: self.messages_received.load(Relaxed),
            messages_deleted: self.messages_deleted.load(Relaxed),
            messages_unparseable: self.messages_unparseable.load(Relaxed),
            messages_failed: self.messages_failed.load(Relaxed),
            findings_received: self.findings_received.load(Relaxed),
            own_updates_dropped: self.own_updates_dropped.load(Relaxed),
            duplicates_dropped: self.duplicates_dropped.load(Relaxed),
            decided_remediate: self.decided_remediate.load(Relaxed),
            decided_ticket: self.decided_ticket.load(Relaxed),
            decided_suppress: self.decided_suppress.load(Relaxed),
            decided_resolve: self.decided_resolve.load(Relaxed),
            decided_ignore: self.decided_ignore.load(Relaxed),
            recorded: self.recorded.load(Relaxed),
            already_recorded: self.already_recorded.load(Relaxed),
            failed: self.failed.load(Relaxed),
            remediations_failed: self.remediations_failed.load(Relaxed),
            remediations_verified: self.remediations_verified.load(Relaxed),
            remediations_started: self.remediations_started.load(Relaxed),
            throttles: self.throttles.load(Relaxed),
            latency_count: self.latency_count.load(Relaxed),
            latency_ms_max: self.latency_ms_max.load(Relaxed),
            latency_ms_sum: self.latency_ms_sum.load(Relaxed),
            tickets_opened: self.tickets_opened.load(Relaxed),
        }
    }
}

/// How to read one metric from a delta.
type Read = fn(&Snapshot) -> u64;

/// The metrics of one EMF line: (name, unit, how to read it).
const EMF_METRICS: &[(&str, &str, Read)] = &[
    ("MessagesReceived", "Count", |s| s.messages_received),
    ("MessagesDeleted", "Count", |s| s.messages_deleted),
    ("MessagesUnparseable", "Count", |s| s.messages_unparseable),
    ("MessagesFailed", "Count", |s| s.messages_failed),
    ("FindingsReceived", "Count", |s| s.findings_received),
    ("OwnUpdatesDropped", "Count", |s| s.own_updates_dropped),
    ("DuplicatesDropped", "Count", |s| s.duplicates_dropped),
    ("DecidedRemediate", "Count", |s| s.decided_remediate),
    ("DecidedTicket", "Count", |s| s.decided_ticket),
    ("DecidedSuppress", "Count", |s| s.decided_suppress),
    ("DecidedResolve", "Count", |s| s.decided_resolve),
    ("DecidedIgnore", "Count", |s| s.decided_ignore),
    ("Recorded", "Count", |s| s.recorded),
    ("RecordsFailed", "Count", |s| s.failed),
    ("RemediationsStarted", "Count", |s| s.remediations_started),
    ("RemediationsSucceeded", "Count", |s| {
        s.remediations_verified
    }),
    ("RemediationsFailed", "Count", |s| s.remediations_failed),
    ("TicketsOpened", "Count", |s| s.tickets_opened),
    ("Throttles", "Count", |s| s.throttles),
];

impl Snapshot {
    /// What happened between `earlier` and `self` (the max is not a counter: kept).
    pub fn since(&self, earlier: &Snapshot) -> Snapshot {
        let d = |a: u64, b: u64| a.saturating_sub(b);
        Snapshot {
            messages_received: d(self.messages_received, earlier.messages_received),
            messages_deleted: d(self.messages_deleted, earlier.messages_deleted),
            messages_unparseable: d(self.messages_unparseable, earlier.messages_unparseable),
            messages_failed: d(self.messages_failed, earlier.messages_failed),
            findings_received: d(self.findings_received, earlier.findings_received),
            own_updates_dropped: d(self.own_updates_dropped, earlier.own_updates_dropped),
            duplicates_dropped: d(self.duplicates_dropped, earlier.duplicates_dropped),
            decided_remediate: d(self.decided_remediate, earlier.decided_remediate),
            decided_ticket: d(self.decided_ticket, earlier.decided_ticket),
            decided_suppress: d(self.decided_suppress, earlier.decided_suppress),
            decided_resolve: d(self.decided_resolve, earlier.decided_resolve),
            decided_ignore: d(self.decided_ignore, earlier.decided_ignore),
            recorded: d(self.recorded, earlier.recorded),
            already_recorded: d(self.already_recorded, earlier.already_recorded),
            failed: d(self.failed, earlier.failed),
            remediations_started: d(self.remediations_started, earlier.remediations_started),
            remediations_verified: d(self.remediations_verified, earlier.remediations_verified),
            remediations_failed: d(self.remediations_failed, earlier.remediations_failed),
            throttles: d(self.throttles, earlier.throttles),
            tickets_opened: d(self.tickets_opened, earlier.tickets_opened),
            latency_ms_sum: d(self.latency_ms_sum, earlier.latency_ms_sum),
            latency_ms_max: self.latency_ms_max,
            latency_count: d(self.latency_count, earlier.latency_count),
        }
    }

    /// One CloudWatch EMF line for this delta, at `timestamp_ms`.
    pub fn emf_line(&self, namespace: &str, timestamp_ms: i64) -> String {
        let mut metrics: Vec<serde_json::Value> = EMF_METRICS
            .iter()
            .map(|(name, unit, _)| serde_json::json!({"Name": name, "Unit": unit}))
            .collect();
        let mut root = serde_json::Map::new();
        for (name, _, read) in EMF_METRICS {
            root.insert((*name).to_string(), read(self).into());
        }
        if let Some(average) = self.latency_ms_sum.checked_div(self.latency_count) {
            metrics.push(serde_json::json!({"Name": "ProcessingLatency", "Unit": "Milliseconds"}));
            metrics
                .push(serde_json::json!({"Name": "ProcessingLatencyMax", "Unit": "Milliseconds"}));
            root.insert("ProcessingLatency".into(), average.into());
            root.insert("ProcessingLatencyMax".into(), self.latency_ms_max.into());
        }
        root.insert(
            "_aws".into(),
            serde_json::json!({
                "Timestamp": timestamp_ms,
                "CloudWatchMetrics": [{"Namespace": namespace, "Dimensions": [[]], "Metrics": metrics}]
            }),
        );
        serde_json::Value::Object(root).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A snapshot in which every metric has its own value, so a test can see
    /// which field each EMF name reads.
    fn distinct() -> Snapshot {
        Snapshot {
            messages_received: 1,
            messages_deleted: 2,
            messages_unparseable: 3,
            messages_failed: 4,
            findings_received: 5,
            own_updates_dropped: 6,
            duplicates_dropped: 7,
            decided_remediate: 8,
            decided_ticket: 9,
            decided_suppress: 10,
            decided_resolve: 11,
            decided_ignore: 12,
            recorded: 13,
            already_recorded: 14,
            failed: 15,
            remediations_started: 16,
            remediations_verified: 17,
            remediations_failed: 18,
            tickets_opened: 19,
            throttles: 20,
            latency_count: 4,
            latency_ms_sum: 100,
            latency_ms_max: 70,
        }
    }

    fn parse(line: &str) -> serde_json::Value {
        serde_json::from_str(line).expect("an EMF line is JSON")
    }

    #[test]
    fn emf_line_names_every_metric_in_order_with_its_unit_and_value() {
        let v = parse(&distinct().emf_line("hubtriage", 1_700_000_000_000));
        let listed: Vec<(String, String, u64)> = v["_aws"]["CloudWatchMetrics"][0]["Metrics"]
            .as_array()
            .expect("a list of metrics")
            .iter()
            .map(|m| {
                let name = m["Name"].as_str().expect("a name").to_string();
                let unit = m["Unit"].as_str().expect("a unit").to_string();
                let value = v[&name].as_u64().expect("a value for each listed name");
                (name, unit, value)
            })
            .collect();
        let expected = [
            ("MessagesReceived", "Count", 1),
            ("MessagesDeleted", "Count", 2),
            ("MessagesUnparseable", "Count", 3),
            ("MessagesFailed", "Count", 4),
            ("FindingsReceived", "Count", 5),
            ("OwnUpdatesDropped", "Count", 6),
            ("DuplicatesDropped", "Count", 7),
            ("DecidedRemediate", "Count", 8),
            ("DecidedTicket", "Count", 9),
            ("DecidedSuppress", "Count", 10),
            ("DecidedResolve", "Count", 11),
            ("DecidedIgnore", "Count", 12),
            ("Recorded", "Count", 13),
            ("RecordsFailed", "Count", 15),
            ("RemediationsStarted", "Count", 16),
            ("RemediationsSucceeded", "Count", 17),
            ("RemediationsFailed", "Count", 18),
            ("TicketsOpened", "Count", 19),
            ("Throttles", "Count", 20),
            ("ProcessingLatency", "Milliseconds", 25),
            ("ProcessingLatencyMax", "Milliseconds", 70),
        ]
        .map(|(name, unit, value)| (name.to_string(), unit.to_string(), value));
        assert_eq!(listed, expected);
        // Nothing else at the top level: the listed metrics and `_aws`.
        let keys = v.as_object().expect("an object").len();
        assert_eq!(keys, expected.len() + 1, "{v}");
        assert_eq!(
            v["_aws"],
            serde_json::json!({
                "Timestamp": 1_700_000_000_000i64,
                "CloudWatchMetrics": [{
                    "Namespace": "hubtriage",
                    "Dimensions": [[]],
                    "Metrics": v["_aws"]["CloudWatchMetrics"][0]["Metrics"],
                }],
            })
        );
    }

    #[test]
    fn emf_line_without_findings_has_no_latency() {
        let v = parse(&Snapshot::default().emf_line("ns", 0));
        let names = v["_aws"]["CloudWatchMetrics"][0]["Metrics"]
            .as_array()
            .expect("a list of metrics");
        assert_eq!(names.len(), 19, "{v}");
        assert!(v.get("ProcessingLatency").is_none(), "{v}");
        assert!(v.get("ProcessingLatencyMax").is_none(), "{v}");
        assert_eq!(v["Recorded"], 0);
    }

    #[test]
    fn since_subtracts_every_counter_and_keeps_the_latency_max() {
        let now = distinct();
        let delta = serde_json::to_value(now.since(&now)).expect("a snapshot is JSON");
        let fields = delta.as_object().expect("an object");
        assert_eq!(fields.len(), 23, "{delta}");
        for (field, value) in fields {
            let expected = if field == "latency_ms_max" { 70 } else { 0 };
            assert_eq!(value, expected, "{field}");
        }
        // A counter never goes below zero.
        assert_eq!(Snapshot::default().since(&now), Snapshot::default());
    }

    #[test]
    fn latency_counts_sums_and_keeps_the_largest() {
        let m = Metrics::default();
        m.latency(40);
        m.latency(20);
        let first = m.snapshot();
        m.latency(10);
        let delta = m.snapshot().since(&first);
        assert_eq!(delta.latency_count, 1);
        assert_eq!(delta.latency_ms_sum, 10);
        assert_eq!(delta.latency_ms_max, 40);
        let v = parse(&delta.emf_line("ns", 0));
        assert_eq!(v["ProcessingLatency"], 10);
        assert_eq!(v["ProcessingLatencyMax"], 40);
    }

    #[test]
    fn emf_lines_carry_deltas_in_cloudwatchs_format() {
        let m = Metrics::default();
        Metrics::inc(&m.findings_received);
        m.decided(Action::Ticket);
        m.latency(40);
        m.latency(20);
        let first = m.snapshot();
        Metrics::inc(&m.findings_received);
        let line = m
            .snapshot()
            .since(&first)
            .emf_line("hubtriage", 1_700_000_000_000);
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["FindingsReceived"], 1);
        assert_eq!(v["DecidedTicket"], 0);
        assert_eq!(v["_aws"]["CloudWatchMetrics"][0]["Namespace"], "hubtriage");
        assert_eq!(v["_aws"]["Timestamp"], 1_700_000_000_000i64);
        let names: Vec<&str> = v["_aws"]["CloudWatchMetrics"][0]["Metrics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["Name"].as_str().unwrap())
            .collect();
        for (name, _, _) in EMF_METRICS {
            assert!(names.contains(name));
            assert!(v[name].is_u64(), "{name} has a value");
        }
        let all = m.snapshot().since(&Snapshot::default()).emf_line("ns", 0);
        let v: serde_json::Value = serde_json::from_str(&all).unwrap();
        assert_eq!(v["ProcessingLatency"], 30);
        assert_eq!(v["ProcessingLatencyMax"], 40);
    }
}
