//! Fakes of every edge the pipeline and the daemon talk to (Neptune, Security
//! Hub, the queue, the ticket system) and small builders, shared by the unit
//! tests of every module. In-memory only; compiled for tests alone.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use crate::act::recheck::{Recheck, RecheckQueue};
use crate::act::remediate::{FixApi, ParameterValue};
use crate::act::ticket::{Ticket, TicketError, TicketSink};
use crate::aws::Error;
use crate::config::Config;
use crate::coordination::{CoordinationError, Coordinator, Lease};
use crate::decide::{Decision, Reach};
use crate::enrich::neptune::ClusterReader;
use crate::finding::{parse_event, Finding};
use crate::lock;
use crate::metrics::Metrics;
use crate::pipeline::{Parts, Pipeline};
use crate::record::{
    FindingId, FindingUpdate, FindingsApi, Recorder, RecorderSettings, Unprocessed, MAX_IDENTIFIERS,
};
use crate::source::{Depth, Message, MessageQueue};
use crate::state::{ClusterState, AUDIT_PARAMETER, IN_SYNC, PENDING_REBOOT};

/// The fixture event's body: one FAILED Neptune.2 finding for orders-graph in
/// account 111122223333, us-east-1.
pub(crate) const EVENT: &str = include_str!("../tests/fixtures/neptune2-failed-event.json");

/// The fixture's finding.
pub(crate) fn finding() -> Finding {
    parse_event(EVENT.as_bytes()).unwrap().remove(0)
}

/// The fixture event with the finding's id made unique by `n`.
pub(crate) fn event(n: usize) -> String {
    EVENT.replace("8e4c1d2a-33b0-4f5e", &format!("{n:08x}-33b0-4f5e"))
}

/// A config from TOML text.
pub(crate) fn config(toml: &str) -> Config {
    Config::from_toml_with_env("test.toml", toml, vec![]).unwrap()
}

/// Recorder settings that keep tests fast.
pub(crate) fn fast_recorder() -> RecorderSettings {
    RecorderSettings {
        linger: std::time::Duration::from_millis(50),
        max_concurrent_calls: 4,
        max_attempts: 5,
        first_backoff: std::time::Duration::from_millis(1),
        max_backoff: std::time::Duration::from_millis(5),
    }
}

/// A dry-run pipeline over fakes, in the fixture's account.
pub(crate) fn pipeline(
    config_toml: &str,
    clusters: Arc<FakeClusters>,
    hub: Arc<FakeHub>,
) -> (Arc<Pipeline>, tokio::task::JoinHandle<()>) {
    let metrics = Arc::new(Metrics::default());
    let (recorder, task) = Recorder::start(hub.clone(), fast_recorder(), metrics.clone());
    let pipeline = Pipeline::new(Parts {
        config: Arc::new(config(config_toml)),
        reach: Reach::own("111122223333"),
        clusters,
        findings: hub,
        tickets: Arc::new(FakeTickets::default()),
        executor: None,
        recorder,
        events: None,
        metrics,
    });
    (Arc::new(pipeline), task)
}

/// Live state by cluster ARN; counts reads. With `stall`, a read never ends.
#[derive(Default)]
pub(crate) struct FakeClusters {
    pub(crate) states: Mutex<HashMap<String, ClusterState>>,
    pub(crate) reads: AtomicUsize,
    pub(crate) stall: bool,
}

impl FakeClusters {
    pub(crate) fn with(state: ClusterState) -> Arc<FakeClusters> {
        let clusters = FakeClusters::default();
        lock(&clusters.states).insert(state.arn.clone(), state);
        Arc::new(clusters)
    }

    pub(crate) fn reads(&self) -> usize {
        self.reads.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl ClusterReader for FakeClusters {
    async fn cluster_state(&self, arn: &str) -> Result<Option<ClusterState>, Error> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        if self.stall {
            std::future::pending::<()>().await;
        }
        Ok(lock(&self.states).get(arn).cloned())
    }

    /// The fake's clusters have no resource ids: none is found.
    async fn cluster_arn_by_resource_id(
        &self,
        _: &str,
        _: &str,
        _: &str,
    ) -> Result<Option<String>, Error> {
        Ok(None)
    }
}

/// A ticket system that counts what it opens.
#[derive(Default)]
pub(crate) struct FakeTickets {
    pub(crate) opened: Mutex<Vec<Decision>>,
    /// (decision, ticket) of each resolve.
    pub(crate) resolved: Mutex<Vec<(Decision, String)>>,
}

#[async_trait]
impl TicketSink for FakeTickets {
    async fn open(
        &self,
        d: &Decision,
        _: Option<&str>,
        _: Option<&str>,
    ) -> Result<Ticket, TicketError> {
        lock(&self.opened).push(d.clone());
        Ok(Ticket::default())
    }

    async fn resolve(
        &self,
        d: &Decision,
        ticket: &str,
        _: crate::config::OnResolve,
    ) -> Result<(), TicketError> {
        lock(&self.resolved).push((d.clone(), ticket.to_string()));
        Ok(())
    }
}

/// An in-memory queue: messages wait, are received (in flight), then deleted
/// or released. Deletes of the ids in `fail_delete` fail per entry.
#[derive(Default)]
pub(crate) struct FakeQueue {
    pub(crate) waiting: Mutex<VecDeque<Message>>,
    /// receipt → message id, for messages received and not yet deleted or released.
    pub(crate) in_flight: Mutex<HashMap<String, String>>,
    /// The ids of each DeleteMessageBatch call.
    pub(crate) delete_calls: Mutex<Vec<Vec<String>>>,
    pub(crate) deleted: Mutex<Vec<String>>,
    pub(crate) fail_delete: Mutex<HashSet<String>>,
    pub(crate) released: Mutex<Vec<String>>,
    /// (receipt, seconds) of each visibility change.
    pub(crate) visibility: Mutex<Vec<(String, i32)>>,
    /// Re-checks scheduled on it, with their delay.
    pub(crate) scheduled: Mutex<Vec<(Recheck, i32)>>,
    /// How long each receive takes (a network round trip).
    pub(crate) receive_latency: std::time::Duration,
    /// Receives under way now, and the most there were at once.
    pub(crate) receiving: std::sync::atomic::AtomicUsize,
    pub(crate) most_receiving: std::sync::atomic::AtomicUsize,
    /// Receipts SQS no longer takes (the message came back to the queue).
    pub(crate) invalid_receipts: Mutex<HashSet<String>>,
}

#[async_trait]
impl RecheckQueue for FakeQueue {
    async fn schedule(&self, recheck: &Recheck, delay_seconds: i32) -> Result<(), String> {
        lock(&self.scheduled).push((recheck.clone(), delay_seconds));
        Ok(())
    }
}

impl FakeQueue {
    pub(crate) fn with_bodies(bodies: impl IntoIterator<Item = String>) -> Arc<FakeQueue> {
        let queue = FakeQueue::default();
        for (n, body) in bodies.into_iter().enumerate() {
            lock(&queue.waiting).push_back(Message {
                id: format!("m{n}"),
                receipt: format!("r{n}"),
                body,
                receive_count: 1,
            });
        }
        Arc::new(queue)
    }
}

#[async_trait]
impl MessageQueue for FakeQueue {
    fn url(&self) -> &str {
        "fake://queue"
    }

    async fn receive(&self, max: i32, wait: i32, _: Option<i32>) -> Result<Vec<Message>, Error> {
        use std::sync::atomic::Ordering::SeqCst;
        let now = self.receiving.fetch_add(1, SeqCst) + 1;
        self.most_receiving.fetch_max(now, SeqCst);
        tokio::time::sleep(self.receive_latency).await;
        self.receiving.fetch_sub(1, SeqCst);
        let mut out = Vec::new();
        {
            let mut waiting = lock(&self.waiting);
            while out.len() < usize::try_from(max).unwrap_or(0) {
                let Some(m) = waiting.pop_front() else { break };
                lock(&self.in_flight).insert(m.receipt.clone(), m.id.clone());
                out.push(m);
            }
        }
        if out.is_empty() {
            tokio::time::sleep(std::time::Duration::from_secs(
                u64::try_from(wait).unwrap_or(0),
            ))
            .await;
        }
        Ok(out)
    }

    async fn delete_batch(
        &self,
        messages: &[(String, String)],
    ) -> Result<Vec<(String, String)>, Error> {
        assert!(messages.len() <= 10, "SQS takes at most 10 entries");
        lock(&self.delete_calls).push(messages.iter().map(|(id, _)| id.clone()).collect());
        let mut failed = Vec::new();
        for (id, receipt) in messages {
            if lock(&self.fail_delete).contains(id) {
                failed.push((id.clone(), "InternalError: try again".to_string()));
            } else {
                lock(&self.in_flight).remove(receipt);
                lock(&self.deleted).push(id.clone());
            }
        }
        Ok(failed)
    }

    async fn set_visibility(&self, receipt: &str, seconds: i32) -> Result<(), Error> {
        lock(&self.visibility).push((receipt.to_string(), seconds));
        if lock(&self.invalid_receipts).contains(receipt) {
            let mut e = Error::other(
                "SQS",
                "ChangeMessageVisibility",
                "fake://queue",
                "The input receipt handle is invalid.",
            );
            e.code = Some("ReceiptHandleIsInvalid".into());
            return Err(e);
        }
        Ok(())
    }

    async fn release_batch(&self, receipts: &[String]) -> Result<(), Error> {
        for r in receipts {
            lock(&self.in_flight).remove(r);
            lock(&self.released).push(r.clone());
        }
        Ok(())
    }

    async fn depth(&self) -> Result<Depth, Error> {
        Ok(Depth {
            visible: i64::try_from(lock(&self.waiting).len()).unwrap_or(0),
            in_flight: i64::try_from(lock(&self.in_flight).len()).unwrap_or(0),
            delayed: 0,
        })
    }
}

/// Security Hub: records calls; fails the first `throttle` calls and leaves
/// the first `unprocessed` identifiers unprocessed with ConcurrentUpdateError;
/// `get_finding` answers from `findings` (by finding id).
#[derive(Default)]
pub(crate) struct FakeHub {
    pub(crate) calls: Mutex<Vec<(Vec<FindingId>, FindingUpdate)>>,
    /// How long each BatchUpdateFindings takes.
    pub(crate) latency: std::time::Duration,
    /// Calls under way now, and the most there were at once.
    pub(crate) in_call: AtomicUsize,
    pub(crate) most_in_call: AtomicUsize,
    pub(crate) throttle: Mutex<u32>,
    pub(crate) unprocessed: Mutex<usize>,
    pub(crate) fatal: Mutex<Option<String>>,
    pub(crate) findings: Mutex<HashMap<String, Finding>>,
}

impl FakeHub {
    /// Findings named in BatchUpdateFindings calls, in order.
    pub(crate) fn updated(&self) -> Vec<String> {
        lock(&self.calls)
            .iter()
            .flat_map(|(ids, _)| ids.iter().map(|i| i.id.clone()))
            .collect()
    }
}

#[async_trait]
impl FindingsApi for FakeHub {
    async fn batch_update(
        &self,
        ids: &[FindingId],
        update: &FindingUpdate,
    ) -> Result<Vec<Unprocessed>, Error> {
        assert!(ids.len() <= MAX_IDENTIFIERS);
        let now = self.in_call.fetch_add(1, Ordering::SeqCst) + 1;
        self.most_in_call.fetch_max(now, Ordering::SeqCst);
        tokio::time::sleep(self.latency).await;
        self.in_call.fetch_sub(1, Ordering::SeqCst);
        lock(&self.calls).push((ids.to_vec(), update.clone()));
        {
            let mut t = self.throttle.lock().unwrap();
            if *t > 0 {
                *t -= 1;
                return Err(Error {
                    throttled: true,
                    retryable: true,
                    ..Error::other(
                        "Security Hub",
                        "BatchUpdateFindings",
                        "",
                        "TooManyRequestsException",
                    )
                });
            }
        }
        let mut out = Vec::new();
        let mut left = self.unprocessed.lock().unwrap();
        let fatal = self.fatal.lock().unwrap().clone();
        for id in ids {
            if *left > 0 {
                *left -= 1;
                out.push(Unprocessed {
                    finding: id.clone(),
                    code: "ConcurrentUpdateError".into(),
                    message: "busy".into(),
                });
            } else if let Some(code) = &fatal {
                out.push(Unprocessed {
                    finding: id.clone(),
                    code: code.clone(),
                    message: "no".into(),
                });
            }
        }
        Ok(out)
    }
    async fn get_finding(&self, id: &FindingId) -> Result<Option<Finding>, Error> {
        Ok(lock(&self.findings).get(&id.id).cloned())
    }
}

/// A fake Neptune that applies changes to a `ClusterState`, the way AWS would.
pub(crate) struct FakeNeptune {
    pub(crate) state: Mutex<ClusterState>,
    pub(crate) groups: Mutex<HashMap<String, Vec<ParameterValue>>>,
    pub(crate) calls: Mutex<Vec<String>>,
    pub(crate) log_group: Mutex<Option<Option<i32>>>,
    pub(crate) stream: bool,
    /// The next reboot fails with this error (taken once).
    pub(crate) reboot_error: Mutex<Option<Error>>,
}

impl FakeNeptune {
    pub(crate) fn new(state: ClusterState) -> Self {
        FakeNeptune {
            state: Mutex::new(state),
            groups: Mutex::new(HashMap::new()),
            calls: Mutex::new(vec![]),
            log_group: Mutex::new(None),
            stream: true,
            reboot_error: Mutex::new(None),
        }
    }
    pub(crate) fn call(&self, c: String) {
        lock(&self.calls).push(c);
    }
    pub(crate) fn state(&self) -> ClusterState {
        self.state.lock().unwrap().clone()
    }
    pub(crate) fn mutating(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }
}

/// One fake for every account.
impl crate::act::remediate::FixApis for Arc<FakeNeptune> {
    fn at(&self, _account: &str) -> Arc<dyn FixApi> {
        self.clone()
    }
}

#[async_trait]
impl FixApi for FakeNeptune {
    async fn service_linked_role_exists(&self) -> Result<bool, Error> {
        Ok(true)
    }
    async fn create_group(&self, _: &str, name: &str, _: &str) -> Result<bool, Error> {
        self.call(format!("create {name}"));
        Ok(self
            .groups
            .lock()
            .unwrap()
            .insert(name.into(), vec![])
            .is_none())
    }
    async fn user_parameters(&self, _: &str, group: &str) -> Result<Vec<ParameterValue>, Error> {
        Ok(self
            .groups
            .lock()
            .unwrap()
            .get(group)
            .cloned()
            .unwrap_or_default())
    }
    async fn set_parameters(
        &self,
        _: &str,
        group: &str,
        params: &[ParameterValue],
    ) -> Result<(), Error> {
        self.call(format!(
            "set {group} {}",
            params
                .iter()
                .map(|p| format!("{}={}", p.0, p.1))
                .collect::<Vec<_>>()
                .join(",")
        ));
        let mut s = self.state.lock().unwrap();
        if s.parameter_group == group && params.iter().any(|p| p.0 == AUDIT_PARAMETER) {
            s.audit_parameter.value = "1".into();
            for m in &mut s.members {
                m.parameter_group_status = PENDING_REBOOT.into();
            }
        }
        self.groups
            .lock()
            .unwrap()
            .entry(group.into())
            .or_default()
            .extend(params.iter().cloned());
        Ok(())
    }
    async fn attach_group(&self, _: &str, _: &str, group: &str) -> Result<(), Error> {
        self.call(format!("attach {group}"));
        let mut s = self.state.lock().unwrap();
        s.parameter_group = group.into();
        let has = self
            .groups
            .lock()
            .unwrap()
            .get(group)
            .is_some_and(|ps| ps.iter().any(|p| p.0 == AUDIT_PARAMETER && p.1 == "1"));
        s.audit_parameter.value = if has { "1".into() } else { "0".into() };
        for m in &mut s.members {
            m.parameter_group_status = PENDING_REBOOT.into();
        }
        Ok(())
    }
    async fn enable_audit_export(&self, _: &str, _: &str) -> Result<(), Error> {
        self.call("export".into());
        self.state
            .lock()
            .unwrap()
            .exported_logs
            .push("audit".into());
        Ok(())
    }
    async fn instance_status(&self, _: &str, _: &str) -> Result<Option<String>, Error> {
        Ok(Some("available".into()))
    }
    async fn reboot(&self, _: &str, instance: &str) -> Result<(), Error> {
        if let Some(e) = lock(&self.reboot_error).take() {
            return Err(e);
        }
        self.call(format!("reboot {instance}"));
        let mut s = self.state.lock().unwrap();
        for m in &mut s.members {
            if m.instance == instance {
                m.parameter_group_status = IN_SYNC.into();
            }
        }
        if s.is_compliant() {
            let mut group = self.log_group.lock().unwrap();
            if group.is_none() {
                *group = Some(Some(30));
            }
        }
        Ok(())
    }
    async fn log_group_retention(&self, _: &str, _: &str) -> Result<Option<Option<i32>>, Error> {
        Ok(*self.log_group.lock().unwrap())
    }
    async fn put_retention(&self, _: &str, _: &str, days: i32) -> Result<(), Error> {
        self.call(format!("retention {days}"));
        *self.log_group.lock().unwrap() = Some(Some(days));
        Ok(())
    }
    async fn has_log_stream(&self, _: &str, _: &str) -> Result<bool, Error> {
        Ok(self.stream && self.state.lock().unwrap().is_compliant())
    }
}

/// A `ticket` decision for the prod cluster orders-graph, from the finding
/// `.../Neptune.2/finding/<finding>` (tickets' tests).
pub(crate) fn ticket_decision(finding: &str) -> Decision {
    Decision {
        finding_id: format!(
            "arn:aws:securityhub:us-east-1:111122223333:security-control/Neptune.2/finding/{finding}"
        ),
        product_arn: "arn:aws:securityhub:us-east-1::product/aws/securityhub".into(),
        account: "111122223333".into(),
        region: "us-east-1".into(),
        cluster: Some("orders-graph".into()),
        control: Some("Neptune.2".into()),
        action: crate::decide::Action::Ticket,
        rule: Some("prod-needs-change-ticket".into()),
        reason: "Rule prod-needs-change-ticket chose ticket: the audit log export is off.".into(),
        problems: vec!["the audit log export to CloudWatch Logs is off".into()],
        plan: vec![],
        expires: None,
    }
}

/// One HTTP/1.1 request from a loopback fake's connection: its head (request
/// line and headers) and its body (by Content-Length).
pub(crate) fn read_http_request(stream: &mut impl std::io::Read) -> (String, Vec<u8>) {
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = stream.read(&mut buf).unwrap_or(0);
        if n == 0 {
            return (String::from_utf8_lossy(&data).to_string(), Vec::new());
        }
        data.extend_from_slice(&buf[..n]);
        let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") else {
            continue;
        };
        let head = String::from_utf8_lossy(&data[..end]).to_string();
        let length = head
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("content-length")
                    .then(|| v.trim().parse::<usize>().ok())?
            })
            .unwrap_or(0);
        while data.len() < end + 4 + length {
            let n = stream.read(&mut buf).unwrap_or(0);
            if n == 0 {
                break;
            }
            data.extend_from_slice(&buf[..n]);
        }
        let body = data[end + 4..(end + 4 + length).min(data.len())].to_vec();
        return (head, body);
    }
}

/// The coordination table in memory: one map shared by the "tasks" (each a
/// handle with its own owner, from [`MemoryTable::task`]).
#[derive(Default)]
pub(crate) struct MemoryTable(Mutex<HashMap<String, (Option<LeaseHolder>, Lease)>>);

/// A lease's owner and when it expires.
type LeaseHolder = (&'static str, std::time::Instant);

impl MemoryTable {
    /// A task's handle on the table (leases of 60 s).
    pub(crate) fn task(self: &Arc<Self>, owner: &'static str) -> Arc<TableTask> {
        Arc::new(TableTask {
            table: self.clone(),
            owner,
        })
    }

    /// The lease of `item` runs out now (its task was paused or died).
    pub(crate) fn expire(&self, item: &str) {
        if let Some((Some(holder), _)) = lock(&self.0).get_mut(item) {
            holder.1 = std::time::Instant::now();
        }
    }

    /// What the table holds for `item`.
    pub(crate) fn item(&self, item: &str) -> Lease {
        lock(&self.0)
            .get(item)
            .map(|i| i.1.clone())
            .unwrap_or_default()
    }
}

pub(crate) struct TableTask {
    table: Arc<MemoryTable>,
    owner: &'static str,
}

impl TableTask {
    fn holds(&self, item: &str) -> bool {
        lock(&self.table.0).get(item).is_some_and(|i| {
            i.0.is_some_and(|(o, until)| o == self.owner && until > std::time::Instant::now())
        })
    }
}

#[async_trait]
impl Coordinator for TableTask {
    async fn acquire(&self, problem: &str) -> Result<Lease, CoordinationError> {
        let mut items = lock(&self.table.0);
        let item = items.entry(problem.to_string()).or_default();
        match item.0 {
            Some((owner, until)) if owner != self.owner && until > std::time::Instant::now() => {
                Err(CoordinationError::Held(problem.to_string()))
            }
            _ => {
                item.0 = Some((
                    self.owner,
                    std::time::Instant::now() + self.lease_duration(),
                ));
                Ok(item.1.clone())
            }
        }
    }
    async fn record_ticket(
        &self,
        problem: &str,
        ticket: &str,
        _: &str,
    ) -> Result<(), CoordinationError> {
        let mut items = lock(&self.table.0);
        let item = items.entry(problem.to_string()).or_default();
        item.1.ticket = Some(ticket.to_string());
        item.1.unsettled = None;
        Ok(())
    }
    async fn mark_unsettled(&self, problem: &str) -> Result<(), CoordinationError> {
        lock(&self.table.0)
            .entry(problem.to_string())
            .or_default()
            .1
            .unsettled = Some(chrono::Utc::now().timestamp());
        Ok(())
    }
    async fn release(&self, problem: &str) -> Result<(), CoordinationError> {
        if let Some(item) = lock(&self.table.0).get_mut(problem) {
            if item.0.is_some_and(|(o, _)| o == self.owner) {
                item.0 = None;
            }
        }
        Ok(())
    }
    async fn save_progress(&self, item: &str, progress: &str) -> Result<(), CoordinationError> {
        if !self.holds(item) {
            return Err(CoordinationError::Lost(item.to_string()));
        }
        if let Some(i) = lock(&self.table.0).get_mut(item) {
            i.1.progress = Some(progress.to_string());
        }
        Ok(())
    }
    async fn clear_progress(&self, item: &str) -> Result<(), CoordinationError> {
        if !self.holds(item) {
            return Err(CoordinationError::Lost(item.to_string()));
        }
        if let Some(i) = lock(&self.table.0).get_mut(item) {
            i.1.progress = None;
        }
        Ok(())
    }
    fn lease_duration(&self) -> std::time::Duration {
        std::time::Duration::from_secs(60)
    }
}

/// The OCSF "Findings Imported V2" event of the same check as the ASFF
/// event `asff` (the new Security Hub re-publishes CSPM control findings):
/// the mapping AWS documents, for tests that compare the two formats.
pub(crate) fn ocsf_twin(asff: &str) -> String {
    use serde_json::{json, Value};
    let event: Value = serde_json::from_str(asff).unwrap();
    let f = &event["detail"]["findings"][0];
    let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
    let (status_id, status) = match f["Workflow"]["Status"].as_str() {
        Some("NOTIFIED") => (2, "In Progress"),
        Some("SUPPRESSED") => (3, "Suppressed"),
        Some("RESOLVED") => (4, "Resolved"),
        _ => (1, "New"),
    };
    let (compliance_id, compliance) = match f["Compliance"]["Status"].as_str() {
        Some("PASSED") => (1, "Pass"),
        Some("WARNING") => (2, "Warning"),
        _ => (3, "Fail"),
    };
    let severity_id = match f["Severity"]["Label"].as_str() {
        Some("INFORMATIONAL") => 1,
        Some("LOW") => 2,
        Some("HIGH") => 4,
        Some("CRITICAL") => 5,
        _ => 3,
    };
    let resources: Vec<Value> = f["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            json!({
                "type": if r["Type"] == "AwsRdsDbCluster" { "AWS::RDS::DBCluster" } else { "Other" },
                "uid": "cluster-7QK3ZP2XWMNB4RT6YHJ5LCVDSA",
                "uid_alt": r["Id"],
                "region": r["Region"],
            })
        })
        .collect();
    let mut finding = json!({
        "activity_id": if f["RecordState"] == "ARCHIVED" { 3 } else { 1 },
        "class_uid": 2003,
        "cloud": {"account": {"uid": f["AwsAccountId"]}, "provider": "AWS", "region": f["Region"]},
        "compliance": {
            "control": f["Compliance"]["SecurityControlId"],
            "status": compliance,
            "status_id": compliance_id,
        },
        "finding_info": {
            "uid": f["Id"],
            "title": f["Title"],
            "modified_time_dt": f["UpdatedAt"],
            "analytic": {"name": f["GeneratorId"], "type": "Rule", "type_id": 1},
        },
        "metadata": {
            "product": {"name": "Security Hub", "uid": text(&f["ProductArn"]).replace("::product/", "::productv2/")},
            "uid": format!("{:064x}", fxhash(&text(&f["Id"]))),
            "version": "1.6.0",
        },
        "resources": resources,
        "severity_id": severity_id,
        "status": status,
        "status_id": status_id,
    });
    if let Some(note) = f["Note"]["Text"].as_str() {
        // What hubtriage keeps in UserDefinedFields rides in its V2 comment.
        let fields: std::collections::BTreeMap<String, String> = f["UserDefinedFields"]
            .as_object()
            .map(|m| m.iter().map(|(k, v)| (k.clone(), text(v))).collect())
            .unwrap_or_default();
        finding["comment"] = if f["Note"]["UpdatedBy"] == crate::marks::UPDATED_BY {
            crate::marks::comment::write(&fields, note, 512).into()
        } else {
            note.into()
        };
    }
    json!({
        "version": "0",
        "detail-type": crate::finding::DETAIL_TYPE_V2,
        "source": "aws.securityhub",
        "account": event["account"],
        "region": event["region"],
        "detail": {"findings": [finding]},
    })
    .to_string()
}

fn fxhash(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}
