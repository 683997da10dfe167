//! Fakes of every edge the pipeline and the daemon talk to, one file per
//! thing faked (Neptune, Security Hub, the queue, the ticket system, the
//! coordination table), and small builders, shared by the unit tests of every
//! module. In-memory only; compiled for tests alone.

pub(super) use std::collections::{HashMap, HashSet, VecDeque};
pub(super) use std::sync::atomic::{AtomicUsize, Ordering};
pub(super) use std::sync::{Arc, Mutex};

pub(super) use async_trait::async_trait;

pub(super) use crate::act::recheck::{Recheck, RecheckQueue};
pub(super) use crate::act::remediate::{FixApi, ParameterValue};
pub(super) use crate::act::ticket::{Ticket, TicketError, TicketSink};
pub(super) use crate::aws::Error;
pub(super) use crate::config::Config;
pub(super) use crate::coordination::{CoordinationError, Coordinator, Lease};
pub(super) use crate::decide::{AccountReach, Decision};
pub(super) use crate::enrich::neptune::ClusterReader;
pub(super) use crate::finding::{parse_event, Finding};
pub(super) use crate::lock;
pub(super) use crate::metrics::Metrics;
pub(super) use crate::pipeline::{Parts, Pipeline};
pub(super) use crate::record::{
    FindingId, FindingUpdate, FindingsApi, Recorder, RecorderSettings, Unprocessed, MAX_IDENTIFIERS,
};
pub(super) use crate::source::{Depth, Message, MessageQueue};
pub(super) use crate::state::{ClusterState, AUDIT_PARAMETER, IN_SYNC, PENDING_REBOOT};

/// The fixture event's body: one FAILED Neptune.2 finding for orders-graph in
/// account 111122223333, us-east-1.
pub(crate) const EVENT: &str = include_str!("../../tests/fixtures/neptune2-failed-event.json");

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
        max_waiting: usize::MAX,
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
        reach: AccountReach::own("111122223333"),
        clusters,
        findings: hub,
        tickets: Arc::new(FakeTickets::default()),
        driver: None,
        recorder,
        events: None,
        metrics,
        journal: None,
    });
    (Arc::new(pipeline), task)
}

/// A pipeline in apply mode under `config_toml` over one fake Neptune that
/// is both what hubtriage reads and what it changes, with the fakes it
/// records on, Security Hub `hub`: (pipeline, the queue, the ticket system).
pub(crate) fn applying_over(
    neptune: Arc<FakeNeptune>,
    config_toml: &str,
    hub: Arc<FakeHub>,
) -> (Arc<Pipeline>, Arc<FakeQueue>, Arc<FakeTickets>) {
    let config = config(config_toml);
    let metrics = Arc::new(Metrics::default());
    let queue = Arc::new(FakeQueue::default());
    let tickets = Arc::new(FakeTickets::default());
    let driver = crate::act::driver::RemediationDriver::new(
        Arc::new(neptune.clone()),
        queue.clone(),
        crate::act::recheck::Limiter::new(1, 10),
        None,
        Arc::new(config.clone()),
        metrics.clone(),
    );
    let (recorder, _) = Recorder::start(hub.clone(), fast_recorder(), metrics.clone());
    let pipeline = Pipeline::new(Parts {
        config: Arc::new(config),
        reach: AccountReach::own("111122223333"),
        clusters: neptune,
        findings: hub,
        tickets: tickets.clone(),
        driver: Some(driver),
        recorder,
        events: None,
        metrics,
        journal: None,
    });
    (Arc::new(pipeline), queue, tickets)
}

mod clusters;
mod hub;
mod journal;
mod neptune;
mod ocsf;
mod queue;
mod table;
mod tickets;

pub(crate) use clusters::FakeClusters;
pub(crate) use hub::FakeHub;
pub(crate) use journal::MemoryJournal;
pub(crate) use neptune::FakeNeptune;
pub(crate) use ocsf::ocsf_twin;
pub(crate) use queue::FakeQueue;
pub(crate) use table::MemoryTable;
pub(crate) use tickets::FakeTickets;

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
        snapshot: None,
        finding_control: None,
        action: crate::decide::Action::Ticket,
        rule: Some("prod-needs-change-ticket".into()),
        reason: "Rule prod-needs-change-ticket chose ticket: the audit log export is off.".into(),
        problems: vec!["the audit log export to CloudWatch Logs is off".into()],
        plan: vec![],
        expires: None,
        fix: vec![],
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
