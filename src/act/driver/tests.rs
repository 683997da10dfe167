//! The driver over the coordination table in memory: a task that takes a
//! cluster over after another stopped mid-remediation carries on from the
//! progress saved with the lease, and the stopped one, should it wake, changes
//! nothing more.

use super::*;
use crate::act::recheck::Limiter;
use crate::decide::{decide, AccountReach};
use crate::state::tests::sample_state;
use crate::state::ClusterState;
use crate::testing::{finding, FakeNeptune, FakeQueue, MemoryTable};

fn task(
    api: &Arc<FakeNeptune>,
    table: &Arc<MemoryTable>,
    owner: &'static str,
) -> (RemediationDriver, Arc<FakeQueue>) {
    let queue = Arc::new(FakeQueue::default());
    let driver = RemediationDriver::new(
        Arc::new(api.clone()),
        queue.clone(),
        Limiter::new(2, 10),
        Some(table.task(owner)),
        Arc::new(applying()),
        Arc::new(Metrics::default()),
    );
    (driver, queue)
}

fn applying() -> crate::config::Config {
    crate::testing::config(
        "[remediation]\nmode = \"apply\"\nreboot = \"immediate\"\n[default]\naction = \"remediate\"\n",
    )
}

fn decision(state: &ClusterState) -> Decision {
    let reach = AccountReach::own("111122223333");
    let d = decide(&finding(), Some(state), &applying(), &reach, Utc::now());
    assert_eq!(d.action, Action::Remediate, "{d:?}");
    d
}

/// The progress of the last re-check `queue` was given.
fn last_progress(queue: &FakeQueue) -> Progress {
    let scheduled = lock(&queue.scheduled);
    let (recheck, _) = scheduled.last().expect("a re-check was scheduled");
    recheck.progress.clone().expect("with its progress")
}

#[tokio::test]
async fn a_takeover_carries_on_from_the_lease_and_the_paused_task_changes_nothing() {
    let api = Arc::new(FakeNeptune::new(sample_state()));
    let table = Arc::new(MemoryTable::default());
    let (a, a_queue) = task(&api, &table, "a");
    let (b, b_queue) = task(&api, &table, "b");
    let f = finding();
    let arn = api.state().arn.clone();
    let started = decision(&api.state());

    // Task a starts: its first pass attaches the new group, then waits.
    let a_lease = a.lease(&arn).await.unwrap().expect("free");
    let turn = a
        .start(
            &f,
            started.clone(),
            LiveResource::Cluster(&api.state()),
            &a_lease,
        )
        .await;
    assert!(matches!(turn, Ok(Turn::Waiting(Some(_)))), "{turn:?}");
    let a_progress = last_progress(&a_queue);
    assert_eq!(api.mutating().len(), 3, "{:?}", api.mutating());
    assert!(b.lease(&arn).await.unwrap().is_none(), "one task at a time");

    // Task a is paused past its lease; task b takes the cluster over from a
    // copy of the finding (no re-check of its own) and carries on.
    table.expire(&cluster_item(&arn));
    let b_lease = b
        .lease(&arn)
        .await
        .unwrap()
        .expect("expired, so taken over");
    let turn = b
        .start(
            &f,
            started.clone(),
            LiveResource::Cluster(&api.state()),
            &b_lease,
        )
        .await;
    assert!(matches!(turn, Ok(Turn::Waiting(_))), "{turn:?}");
    assert_eq!(
        last_progress(&b_queue).started_at,
        a_progress.started_at,
        "the same remediation, carried on"
    );
    let made = api.mutating();

    // Task a wakes up and goes on with its re-check: nothing is changed.
    let turn = a
        .resume(
            &f,
            started.clone(),
            LiveResource::Cluster(&api.state()),
            a_progress,
            &a_lease,
        )
        .await;
    assert!(
        matches!(turn, Err(DriverError::Coordination(_))),
        "{turn:?}"
    );
    assert_eq!(api.mutating(), made, "the paused task changed nothing");
    drop(a_lease);

    // Task b finishes; each instance was rebooted once, and the note tells
    // what a changed as well as what b did.
    let mut end = None;
    for _ in 0..10 {
        let progress = last_progress(&b_queue);
        let turn = b
            .resume(
                &f,
                started.clone(),
                LiveResource::Cluster(&api.state()),
                progress,
                &b_lease,
            )
            .await
            .unwrap();
        if let Turn::Record(d, update) = turn {
            end = Some((d, update));
            break;
        }
    }
    let (d, update) = end.expect("verified");
    assert_eq!(d.action, Action::Resolve);
    let calls = api.mutating();
    for instance in ["orders-graph-1", "orders-graph-2"] {
        let reboots = calls
            .iter()
            .filter(|c| **c == format!("reboot {instance}"))
            .count();
        assert_eq!(reboots, 1, "{calls:?}");
    }
    assert!(
        update.note.contains("in place of default.neptune1.3"),
        "{}",
        update.note
    );
    assert_eq!(
        table.item(&cluster_item(&arn)).progress,
        None,
        "an ended remediation's progress is forgotten"
    );
}
