//! `Pipeline::handle` and `handle_recheck` over fakes: own echoes and
//! duplicates cost no Neptune call, a redelivered message already recorded is
//! not written twice, and each action ends with its update on the finding.

use std::sync::Arc;

use super::*;
use crate::act::recheck::Recheck;
use crate::decide::Action;
use crate::marks::{FIELD_ACTION, UPDATED_BY};
use crate::record::Workflow;
use crate::state::tests::sample_state;
use crate::testing::{finding, pipeline, FakeClusters, FakeHub, FakeNeptune, FakeQueue};

const SUPPRESS: &str = r#"
[[suppress]]
name = "all"
reason = "accepted risk"
expires = "2099-12-31"
"#;

/// Handles the fixture finding once under `config`, over `state`.
async fn handle_once(config: &str, state: crate::state::ClusterState) -> (Handled, Arc<FakeHub>) {
    let hub = Arc::new(FakeHub::default());
    let (p, _task) = pipeline(config, FakeClusters::with(state), hub.clone());
    let handled = p.handle(&finding(), false).await.unwrap();
    (handled, hub)
}

fn compliant() -> crate::state::ClusterState {
    let mut s = sample_state();
    s.exported_logs.push("audit".into());
    s.audit_parameter.value = "1".into();
    s
}

#[tokio::test]
async fn each_action_ends_with_its_update_on_the_finding() {
    let cases = [
        ("", sample_state(), Action::Ticket, Workflow::Notified),
        ("", compliant(), Action::Resolve, Workflow::Resolved),
        (
            SUPPRESS,
            sample_state(),
            Action::Suppress,
            Workflow::Suppressed,
        ),
        (
            "[default]\naction = \"remediate\"\n",
            sample_state(),
            Action::Remediate,
            Workflow::Notified,
        ),
    ];
    for (config, state, action, workflow) in cases {
        let (handled, hub) = handle_once(config, state).await;
        let Handled::Recorded(decision, update) = handled else {
            panic!("{action:?}: {handled:?}");
        };
        assert_eq!(decision.action, action);
        assert_eq!(update.workflow, workflow, "{action:?}");
        assert_eq!(update.fields[FIELD_ACTION], action.as_str());
        assert_eq!(hub.updated(), vec![finding().id], "{action:?}");
    }
}

#[tokio::test]
async fn ignore_writes_nothing() {
    let (handled, hub) = handle_once("[default]\naction = \"ignore\"\n", sample_state()).await;
    assert!(matches!(handled, Handled::Ignored(_)), "{handled:?}");
    assert!(hub.updated().is_empty());
}

#[tokio::test]
async fn own_echoes_are_dropped_without_reading_the_cluster() {
    let clusters = FakeClusters::with(sample_state());
    let hub = Arc::new(FakeHub::default());
    let (p, _task) = pipeline("", clusters.clone(), hub.clone());
    let mut echo = finding();
    echo.note = Some(crate::finding::Note {
        text: "hubtriage opened a ticket.".into(),
        updated_by: UPDATED_BY.into(),
        updated_at: Some("2030-01-01T00:00:00Z".into()),
    });
    echo.user_defined_fields
        .insert(FIELD_ACTION.into(), "ticket".into());
    assert_eq!(p.handle(&echo, false).await.unwrap(), Handled::OwnUpdate);
    assert_eq!(clusters.reads(), 0);
    assert!(hub.updated().is_empty());
}

#[tokio::test]
async fn a_duplicate_delivery_is_recorded_once() {
    let clusters = FakeClusters::with(sample_state());
    let hub = Arc::new(FakeHub::default());
    let (p, _task) = pipeline("", clusters.clone(), hub.clone());
    assert!(matches!(
        p.handle(&finding(), false).await.unwrap(),
        Handled::Recorded(..)
    ));
    assert_eq!(
        p.handle(&finding(), false).await.unwrap(),
        Handled::Duplicate
    );
    assert_eq!(clusters.reads(), 1);
    assert_eq!(hub.updated().len(), 1);
}

#[tokio::test]
async fn two_copies_of_one_event_at_once_are_recorded_once() {
    let clusters = FakeClusters::with(sample_state());
    let hub = Arc::new(FakeHub::default());
    let (p, _task) = pipeline("", clusters.clone(), hub.clone());
    let (first, second) = (finding(), finding());
    let (a, b) = tokio::join!(p.handle(&first, false), p.handle(&second, false));
    let mut outcomes = [a.unwrap(), b.unwrap()];
    outcomes.sort_by_key(|h| matches!(h, Handled::Duplicate));
    assert!(matches!(outcomes[0], Handled::Recorded(..)), "{outcomes:?}");
    assert_eq!(outcomes[1], Handled::Duplicate);
    assert_eq!(hub.updated().len(), 1);
    assert!(p.deliveries.none_handled());
}

#[tokio::test]
async fn a_redelivered_message_already_recorded_is_not_written_again() {
    let clusters = FakeClusters::with(sample_state());
    let hub = Arc::new(FakeHub::default());
    let (p, _task) = pipeline("", clusters.clone(), hub.clone());
    // An earlier attempt recorded it, then crashed before the delete.
    let mut current = finding();
    current.workflow_status = "NOTIFIED".into();
    current.note = Some(crate::finding::Note {
        text: "hubtriage opened a ticket.".into(),
        updated_by: UPDATED_BY.into(),
        updated_at: Some("2030-01-01T00:00:00Z".into()),
    });
    current
        .user_defined_fields
        .insert(FIELD_ACTION.into(), "ticket".into());
    crate::lock(&hub.findings).insert(current.id.clone(), current);

    assert_eq!(
        p.handle(&finding(), true).await.unwrap(),
        Handled::Duplicate
    );
    assert_eq!(clusters.reads(), 0);
    assert!(hub.updated().is_empty());
}

/// A pipeline in apply mode whose fakes stand for Neptune and the queue.
fn applying(hub: Arc<FakeHub>) -> (Arc<Pipeline>, Arc<FakeQueue>) {
    let neptune = Arc::new(FakeNeptune::new(sample_state()));
    let (p, queue, _) = crate::testing::applying_over(
        neptune,
        "[remediation]\nmode = \"apply\"\nreboot = \"immediate\"\n[default]\naction = \"remediate\"\n",
        hub,
    );
    (p, queue)
}

fn recheck_of(f: &Finding) -> Recheck {
    Recheck::new(f, f.cluster_arn.as_deref().unwrap_or_default(), None)
}

#[tokio::test]
async fn a_recheck_stops_when_a_person_closed_the_finding_or_it_moved_out_of_reach() {
    let hub = Arc::new(FakeHub::default());
    let (p, _queue) = applying(hub.clone());
    let r = recheck_of(&finding());

    // Gone from Security Hub.
    assert!(matches!(
        p.handle_recheck(&r).await.unwrap(),
        Handled::Stopped(_)
    ));

    let mut closed = finding();
    closed.workflow_status = "RESOLVED".into();
    crate::lock(&hub.findings).insert(closed.id.clone(), closed);
    let Handled::Stopped(why) = p.handle_recheck(&r).await.unwrap() else {
        panic!("not stopped");
    };
    assert!(why.contains("RESOLVED"), "{why}");

    // Another cluster than the one the re-check is for.
    let mut other = finding();
    other.cluster_arn = Some("arn:aws:rds:us-east-1:111122223333:cluster:other".into());
    crate::lock(&hub.findings).insert(other.id.clone(), other);
    let Handled::Stopped(why) = p.handle_recheck(&r).await.unwrap() else {
        panic!("not stopped");
    };
    assert!(why.contains("not the re-check's cluster"), "{why}");
    assert!(hub.updated().is_empty());
}

#[tokio::test]
async fn a_recheck_that_waited_for_a_slot_starts_the_remediation() {
    let hub = Arc::new(FakeHub::default());
    let (p, queue) = applying(hub.clone());
    crate::lock(&hub.findings).insert(finding().id, finding());
    let handled = p.handle_recheck(&recheck_of(&finding())).await.unwrap();
    assert_eq!(handled, Handled::Remediating);
    // Its first pass changed the cluster and queued the next re-check...
    let scheduled = crate::lock(&queue.scheduled).clone();
    assert_eq!(scheduled.len(), 1);
    assert!(scheduled[0].0.progress.is_some(), "it carries the progress");
    // ...and the finding says a remediation is under way.
    let calls = crate::lock(&hub.calls).clone();
    assert_eq!(calls.len(), 1);
    assert!(calls[0]
        .1
        .note
        .starts_with("hubtriage is remediating this finding."));
}

/// A pipeline whose tickets can be looked at.
fn with_tickets(
    state: crate::state::ClusterState,
) -> (Arc<Pipeline>, Arc<crate::testing::FakeTickets>) {
    let tickets = Arc::new(crate::testing::FakeTickets::default());
    let metrics = Arc::new(Metrics::default());
    let hub = Arc::new(FakeHub::default());
    let (recorder, _) = Recorder::start(
        hub.clone(),
        crate::testing::fast_recorder(),
        metrics.clone(),
    );
    let p = Pipeline::new(Parts {
        config: Arc::new(crate::testing::config("")),
        reach: AccountReach::own("111122223333"),
        clusters: FakeClusters::with(state),
        findings: hub,
        tickets: tickets.clone(),
        driver: None,
        recorder,
        events: None,
        metrics,
        journal: None,
    });
    (Arc::new(p), tickets)
}

fn ticketed(mut f: Finding) -> Finding {
    f.user_defined_fields
        .insert(crate::marks::FIELD_TICKET.into(), "SEC-9".into());
    f
}

#[tokio::test]
async fn a_ticketed_finding_that_passes_or_is_fixed_resolves_its_ticket() {
    // It passes.
    let (p, tickets) = with_tickets(sample_state());
    let mut f = ticketed(finding());
    f.compliance_status = Some(crate::finding::Compliance::parse("PASSED"));
    p.handle(&f, false).await.unwrap();
    let resolved = lock(&tickets.resolved).clone();
    assert_eq!(resolved.len(), 1);
    assert_eq!(resolved[0].1, "SEC-9");

    // Live state shows it fixed (hubtriage resolves the finding).
    let (p, tickets) = with_tickets(compliant());
    p.handle(&ticketed(finding()), false).await.unwrap();
    assert_eq!(lock(&tickets.resolved).len(), 1);

    // No ticket named, or not a finding to trust: nothing.
    let (p, tickets) = with_tickets(sample_state());
    let mut f = finding();
    f.compliance_status = Some(crate::finding::Compliance::parse("PASSED"));
    p.handle(&f, false).await.unwrap();
    let mut forged = ticketed(finding());
    forged.compliance_status = Some(crate::finding::Compliance::parse("PASSED"));
    forged.product_arn =
        "arn:aws:securityhub:us-east-1:999999999999:product/999999999999/default".into();
    p.handle(&forged, false).await.unwrap();
    // Still failing: the ticket stays open.
    p.handle(&ticketed(finding()), false).await.unwrap();
    assert!(lock(&tickets.resolved).is_empty());
}
