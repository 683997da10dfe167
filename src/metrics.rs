//! Counters a user would graph, written as CloudWatch Embedded Metric Format
//! (EMF) lines on stdout: every `[metrics] interval_seconds` and once at exit.
//! In ECS the awslogs driver ships them to CloudWatch Logs, which turns them
//! into metrics; no agent and no PutMetricData permission are needed.
//!
//! Each metric is declared once, in the `metrics!` list below: its field, its
//! kind, and its EMF name if the EMF line lists it.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use serde::Serialize;

use crate::decide::Action;

/// How a metric's value between two snapshots is read.
#[derive(Debug, Clone, Copy)]
enum Kind {
    /// Only grows: the value between two snapshots is the difference.
    Counter,
    /// The largest value seen: not a counter, so the later value is kept.
    Max,
}

impl Kind {
    fn since(self, now: u64, earlier: u64) -> u64 {
        match self {
            Kind::Counter => now.saturating_sub(earlier),
            Kind::Max => now,
        }
    }
}

/// How to read one metric from a delta.
type Read = fn(&Snapshot) -> u64;

/// Declares every metric once, as `field: Kind => "EmfName"` (without a name:
/// in the snapshot, not listed in the EMF line), and generates from that one
/// list the `Metrics` counters, the `Snapshot` copy, `snapshot()`,
/// `Snapshot::since` and the `EMF_METRICS` table (in the list's order).
macro_rules! metrics {
    ($($(#[doc = $doc:literal])* $field:ident: $kind:ident $(=> $emf:literal)?,)*) => {
        /// The live counters, shared by every task.
        #[derive(Debug, Default)]
        pub struct Metrics {
            $($(#[doc = $doc])* pub $field: AtomicU64,)*
            /// Received → recorded times of the current interval, written as
            /// `RecordLatency` values (CloudWatch computes p50/p99 from them).
            pub latencies: Samples,
            /// Ticket system failures of the current interval by HTTP status
            /// ("none" when it did not answer), written as `TicketErrors` with
            /// the dimension `Status`.
            pub ticket_errors_by_status: std::sync::Mutex<std::collections::BTreeMap<String, u64>>,
            /// Decisions of the current interval by control and action,
            /// written as `Decided` with the dimensions `Control` and `Action`.
            pub decided_by_control:
                std::sync::Mutex<std::collections::BTreeMap<(String, &'static str), u64>>,
        }

        /// A point-in-time copy, for logs and tests.
        #[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
        pub struct Snapshot {
            $($(#[doc = $doc])* pub $field: u64,)*
        }

        impl Metrics {
            pub fn snapshot(&self) -> Snapshot {
                Snapshot {
                    $($field: self.$field.load(Relaxed),)*
                }
            }
        }

        impl Snapshot {
            /// What happened between `earlier` and `self` (a `Max` is kept, not subtracted).
            pub fn since(&self, earlier: &Snapshot) -> Snapshot {
                Snapshot {
                    $($field: Kind::$kind.since(self.$field, earlier.$field),)*
                }
            }
        }

        /// The metrics of one EMF line, all counts: (name, how to read it).
        const EMF_METRICS: &[(&str, Read)] = &[
            $($(($emf, |s| s.$field),)?)*
        ];
    };
}

metrics! {
    messages_received: Counter => "MessagesReceived",
    messages_deleted: Counter => "MessagesDeleted",
    /// Messages that are not a finding event; they go to the DLQ.
    messages_unparseable: Counter => "MessagesUnparseable",
    messages_failed: Counter => "MessagesFailed",
    findings_received: Counter => "FindingsReceived",
    own_updates_dropped: Counter => "OwnUpdatesDropped",
    duplicates_dropped: Counter => "DuplicatesDropped",
    decided_remediate: Counter => "DecidedRemediate",
    decided_ticket: Counter => "DecidedTicket",
    decided_suppress: Counter => "DecidedSuppress",
    decided_resolve: Counter => "DecidedResolve",
    decided_ignore: Counter => "DecidedIgnore",
    recorded: Counter => "Recorded",
    already_recorded: Counter,
    /// Findings that failed anywhere: enrich, ticket, remediation or record.
    findings_failed: Counter => "FindingsFailed",
    remediations_started: Counter => "RemediationsStarted",
    remediations_verified: Counter => "RemediationsSucceeded",
    remediations_failed: Counter => "RemediationsFailed",
    tickets_opened: Counter => "TicketsOpened",
    /// Ticket system failures (the message stays on the queue).
    ticket_errors: Counter => "TicketErrors",
    /// Findings not handled because their account's role could not be assumed.
    account_unreachable: Counter => "AccountUnreachable",
    /// BatchUpdateFindings calls made (retries included).
    update_calls: Counter => "UpdateCalls",
    throttles: Counter => "Throttles",
    // Written as `ProcessingLatency` (sum / count) and `ProcessingLatencyMax`.
    latency_count: Counter,
    latency_ms_max: Max,
    latency_ms_sum: Counter,
}

impl Metrics {
    pub fn inc(counter: &AtomicU64) {
        counter.fetch_add(1, Relaxed);
    }

    /// A decision, by action and (when it names one) by control.
    pub fn decided(&self, action: Action, control: Option<&str>) {
        Self::inc(match action {
            Action::Remediate => &self.decided_remediate,
            Action::Ticket => &self.decided_ticket,
            Action::Suppress => &self.decided_suppress,
            Action::Resolve => &self.decided_resolve,
            Action::Ignore => &self.decided_ignore,
        });
        if let Some(control) = control {
            *crate::lock(&self.decided_by_control)
                .entry((control.to_string(), action.as_str()))
                .or_default() += 1;
        }
    }

    /// One EMF line per control and action of the interval's decisions
    /// (metric `Decided`, dimensions `Control` and `Action`), leaving the
    /// counts empty.
    pub fn control_lines(&self, namespace: &str, timestamp_ms: i64) -> Vec<String> {
        let counts = std::mem::take(&mut *crate::lock(&self.decided_by_control));
        counts
            .into_iter()
            .map(|((control, action), n)| {
                serde_json::json!({
                    "Control": control,
                    "Action": action,
                    "Decided": n,
                    "_aws": {
                        "Timestamp": timestamp_ms,
                        "CloudWatchMetrics": [{
                            "Namespace": namespace,
                            "Dimensions": [["Control", "Action"]],
                            "Metrics": [{"Name": "Decided", "Unit": "Count"}]
                        }]
                    }
                })
                .to_string()
            })
            .collect()
    }

    /// A ticket system failed with `status` (`None`: it did not answer).
    pub fn ticket_error(&self, status: Option<u16>) {
        Self::inc(&self.ticket_errors);
        let status = status.map_or_else(|| "none".to_string(), |s| s.to_string());
        *crate::lock(&self.ticket_errors_by_status)
            .entry(status)
            .or_default() += 1;
    }

    /// One EMF line per status of the interval's ticket failures (metric
    /// `TicketErrors`, dimension `Status`), leaving the counts empty.
    pub fn ticket_error_lines(&self, namespace: &str, timestamp_ms: i64) -> Vec<String> {
        let counts = std::mem::take(&mut *crate::lock(&self.ticket_errors_by_status));
        counts
            .into_iter()
            .map(|(status, n)| {
                serde_json::json!({
                    "Status": status,
                    "TicketErrors": n,
                    "_aws": {
                        "Timestamp": timestamp_ms,
                        "CloudWatchMetrics": [{
                            "Namespace": namespace,
                            "Dimensions": [["Status"]],
                            "Metrics": [{"Name": "TicketErrors", "Unit": "Count"}]
                        }]
                    }
                })
                .to_string()
            })
            .collect()
    }

    /// One message took `ms` from receipt to recorded outcome.
    pub fn latency(&self, ms: u64) {
        self.latency_ms_sum.fetch_add(ms, Relaxed);
        self.latency_count.fetch_add(1, Relaxed);
        self.latency_ms_max.fetch_max(ms, Relaxed);
        self.latencies.add(ms);
    }
}

/// Every metric name an EMF line may carry (for dashboards and their tests).
pub fn emf_names() -> Vec<&'static str> {
    let mut names: Vec<&str> = EMF_METRICS.iter().map(|(name, _)| *name).collect();
    names.extend(["ProcessingLatency", "ProcessingLatencyMax", "RecordLatency"]);
    names
}

/// EMF takes at most this many values for one metric in one line.
pub const MAX_SAMPLES: usize = 100;

/// A uniform sample (reservoir) of at most [`MAX_SAMPLES`] values seen since
/// the last [`Samples::take`].
#[derive(Debug, Default)]
pub struct Samples(std::sync::Mutex<Reservoir>);

#[derive(Debug, Default)]
struct Reservoir {
    values: Vec<u64>,
    seen: u64,
    random: u64,
}

impl Samples {
    pub fn add(&self, value: u64) {
        let mut r = crate::lock(&self.0);
        r.seen += 1;
        if r.values.len() < MAX_SAMPLES {
            r.values.push(value);
            return;
        }
        // xorshift64*: cheap, and good enough to pick which sample to replace.
        let mut x = r.random ^ r.seen.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        r.random = x;
        let slot = x.wrapping_mul(0x2545_F491_4F6C_DD1D) % r.seen;
        if let Some(v) = usize::try_from(slot).ok().and_then(|i| r.values.get_mut(i)) {
            *v = value;
        }
    }

    /// The sample so far, leaving it empty.
    pub fn take(&self) -> Vec<u64> {
        let mut r = crate::lock(&self.0);
        r.seen = 0;
        std::mem::take(&mut r.values)
    }
}

impl Snapshot {
    /// One CloudWatch EMF line for this delta, at `timestamp_ms`, with the
    /// interval's sampled received → recorded times (`RecordLatency`).
    pub fn emf_line(&self, namespace: &str, timestamp_ms: i64, latencies: &[u64]) -> String {
        let mut metrics: Vec<serde_json::Value> = EMF_METRICS
            .iter()
            .map(|(name, _)| serde_json::json!({"Name": name, "Unit": "Count"}))
            .collect();
        let mut root = serde_json::Map::new();
        for (name, read) in EMF_METRICS {
            root.insert((*name).to_string(), read(self).into());
        }
        if let Some(average) = self.latency_ms_sum.checked_div(self.latency_count) {
            metrics.push(serde_json::json!({"Name": "ProcessingLatency", "Unit": "Milliseconds"}));
            metrics
                .push(serde_json::json!({"Name": "ProcessingLatencyMax", "Unit": "Milliseconds"}));
            root.insert("ProcessingLatency".into(), average.into());
            root.insert("ProcessingLatencyMax".into(), self.latency_ms_max.into());
        }
        if !latencies.is_empty() {
            metrics.push(serde_json::json!({"Name": "RecordLatency", "Unit": "Milliseconds"}));
            root.insert("RecordLatency".into(), latencies.into());
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
            findings_failed: 15,
            remediations_started: 16,
            remediations_verified: 17,
            remediations_failed: 18,
            tickets_opened: 19,
            ticket_errors: 23,
            update_calls: 21,
            account_unreachable: 22,
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
        let v = parse(&distinct().emf_line("hubtriage", 1_700_000_000_000, &[]));
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
            ("FindingsFailed", "Count", 15),
            ("RemediationsStarted", "Count", 16),
            ("RemediationsSucceeded", "Count", 17),
            ("RemediationsFailed", "Count", 18),
            ("TicketsOpened", "Count", 19),
            ("TicketErrors", "Count", 23),
            ("AccountUnreachable", "Count", 22),
            ("UpdateCalls", "Count", 21),
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
        let v = parse(&Snapshot::default().emf_line("ns", 0, &[]));
        let names = v["_aws"]["CloudWatchMetrics"][0]["Metrics"]
            .as_array()
            .expect("a list of metrics");
        assert_eq!(names.len(), 22, "{v}");
        assert!(v.get("ProcessingLatency").is_none(), "{v}");
        assert!(v.get("ProcessingLatencyMax").is_none(), "{v}");
        assert_eq!(v["Recorded"], 0);
    }

    #[test]
    fn since_subtracts_every_counter_and_keeps_the_latency_max() {
        let now = distinct();
        let delta = serde_json::to_value(now.since(&now)).expect("a snapshot is JSON");
        let fields = delta.as_object().expect("an object");
        assert_eq!(fields.len(), 26, "{delta}");
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
        let v = parse(&delta.emf_line("ns", 0, &[]));
        assert_eq!(v["ProcessingLatency"], 10);
        assert_eq!(v["ProcessingLatencyMax"], 40);
    }

    #[test]
    fn emf_lines_carry_deltas_in_cloudwatchs_format() {
        let m = Metrics::default();
        Metrics::inc(&m.findings_received);
        m.decided(Action::Ticket, None);
        m.latency(40);
        m.latency(20);
        let first = m.snapshot();
        Metrics::inc(&m.findings_received);
        let line = m
            .snapshot()
            .since(&first)
            .emf_line("hubtriage", 1_700_000_000_000, &[]);
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
        for (name, _) in EMF_METRICS {
            assert!(names.contains(name));
            assert!(v[name].is_u64(), "{name} has a value");
        }
        let all = m
            .snapshot()
            .since(&Snapshot::default())
            .emf_line("ns", 0, &[]);
        let v: serde_json::Value = serde_json::from_str(&all).unwrap();
        assert_eq!(v["ProcessingLatency"], 30);
        assert_eq!(v["ProcessingLatencyMax"], 40);
    }

    #[test]
    fn latencies_are_sampled_at_most_a_hundred_per_line() {
        let m = Metrics::default();
        for ms in 0..1000 {
            m.latency(ms);
        }
        let sample = m.latencies.take();
        assert_eq!(sample.len(), MAX_SAMPLES);
        // A uniform sample of 0..1000 has values from across the range.
        assert!(sample.iter().any(|&v| v >= 500), "{sample:?}");
        assert!(sample.iter().any(|&v| v < 500), "{sample:?}");
        let v = parse(&m.snapshot().emf_line("ns", 0, &sample));
        assert_eq!(
            v["RecordLatency"].as_array().map(Vec::len),
            Some(MAX_SAMPLES)
        );
        assert!(v["_aws"]["CloudWatchMetrics"][0]["Metrics"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["Name"] == "RecordLatency" && m["Unit"] == "Milliseconds"));
        assert!(m.latencies.take().is_empty(), "taken once");
    }

    #[test]
    fn ticket_errors_are_counted_by_status_once_per_interval() {
        let m = Metrics::default();
        m.ticket_error(Some(503));
        m.ticket_error(Some(503));
        m.ticket_error(None);
        assert_eq!(m.snapshot().ticket_errors, 3);
        let lines: Vec<serde_json::Value> = m
            .ticket_error_lines("ns", 0)
            .iter()
            .map(|l| parse(l))
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["Status"], "503");
        assert_eq!(lines[0]["TicketErrors"], 2);
        assert_eq!(lines[1]["Status"], "none");
        assert_eq!(
            lines[0]["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            serde_json::json!([["Status"]])
        );
        assert!(m.ticket_error_lines("ns", 0).is_empty());
    }

    #[test]
    fn decisions_are_counted_by_control_and_action() {
        let m = Metrics::default();
        m.decided(Action::Remediate, Some("Neptune.4"));
        m.decided(Action::Remediate, Some("Neptune.4"));
        m.decided(Action::Ticket, Some("Neptune.7"));
        m.decided(Action::Ignore, None);
        let lines: Vec<serde_json::Value> = m
            .control_lines("ns", 0)
            .iter()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(
            (
                &lines[0]["Control"],
                &lines[0]["Action"],
                &lines[0]["Decided"]
            ),
            (&"Neptune.4".into(), &"remediate".into(), &2.into())
        );
        assert_eq!(
            lines[0]["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            serde_json::json!([["Control", "Action"]])
        );
        assert!(m.control_lines("ns", 0).is_empty(), "taken");
    }
}
