//! The receive loop driven in-process over `testing::FakeQueue`, with tokio's
//! clock paused: delete batching, per-entry delete failures, and the grace
//! period that releases unfinished messages at shutdown.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::*;
use crate::lock;
use crate::state::tests::sample_state;
use crate::testing::{event, pipeline, FakeClusters, FakeHub, FakeQueue};

fn settings(until_empty: bool) -> Settings {
    Settings {
        max_messages: 10,
        parallel_receives: 4,
        wait_seconds: 1,
        visibility_seconds: 30,
        max_in_flight: 8,
        grace: Duration::from_secs(5),
        until_empty,
        heartbeat_file: None,
        metrics_namespace: "test".into(),
        metrics_interval: Duration::from_secs(3600),
    }
}

/// Runs the loop over `queue` until it drains; every finding is a ticket.
async fn drain(queue: Arc<FakeQueue>) -> (Exit, Arc<Pipeline>) {
    let (pipeline, recorder_task) =
        pipeline("", FakeClusters::with(sample_state()), Arc::default());
    let (_stop, shutdown) = watch::channel(false);
    let exit = run(
        queue,
        pipeline.clone(),
        recorder_task,
        settings(true),
        shutdown,
    )
    .await
    .unwrap();
    (exit, pipeline)
}

#[tokio::test(start_paused = true)]
async fn deletes_are_batched_ten_at_a_time_once_recorded() {
    let queue = FakeQueue::with_bodies((0..25).map(event));
    let (exit, pipeline) = drain(queue.clone()).await;
    assert_eq!(exit, Exit::Drained);
    let calls = lock(&queue.delete_calls).clone();
    assert!(calls.iter().all(|c| c.len() <= 10), "{calls:?}");
    assert_eq!(calls.iter().map(Vec::len).sum::<usize>(), 25);
    assert!(calls.len() <= 4, "25 deletes in {} calls", calls.len());
    assert_eq!(lock(&queue.deleted).len(), 25);
    assert_eq!(pipeline.metrics.snapshot().messages_deleted, 25);
    assert_eq!(pipeline.metrics.snapshot().recorded, 25);
}

#[tokio::test(start_paused = true)]
async fn a_failed_delete_entry_is_not_counted_and_the_rest_go_on() {
    let queue = FakeQueue::with_bodies((0..12).map(event));
    lock(&queue.fail_delete).insert("m3".into());
    let (pipeline, recorder_task) =
        pipeline("", FakeClusters::with(sample_state()), Arc::default());
    let (stop, shutdown) = watch::channel(false);
    let run = tokio::spawn(run(
        queue.clone(),
        pipeline.clone(),
        recorder_task,
        settings(false),
        shutdown,
    ));
    tokio::time::sleep(Duration::from_secs(30)).await;
    stop.send(true).unwrap();
    assert_eq!(run.await.unwrap().unwrap(), Exit::Shutdown);

    let deleted = lock(&queue.deleted).clone();
    assert_eq!(deleted.len(), 11, "{deleted:?}");
    assert!(!deleted.contains(&"m3".to_string()));
    // It stays with the queue, to come back and be recognised as done.
    assert!(lock(&queue.in_flight).values().any(|id| id == "m3"));
    assert_eq!(pipeline.metrics.snapshot().messages_deleted, 11);
}

#[tokio::test(start_paused = true)]
async fn the_grace_period_releases_unfinished_messages() {
    let queue = FakeQueue::with_bodies((0..3).map(event));
    let clusters = Arc::new(FakeClusters {
        stall: true,
        ..Default::default()
    });
    let (pipeline, recorder_task) = pipeline("", clusters.clone(), Arc::<FakeHub>::default());
    let (stop, shutdown) = watch::channel(false);
    let run = tokio::spawn(run(
        queue.clone(),
        pipeline,
        recorder_task,
        settings(false),
        shutdown,
    ));
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(clusters.reads(), 3, "all three are being worked on");
    stop.send(true).unwrap();
    let started = tokio::time::Instant::now();
    assert_eq!(run.await.unwrap().unwrap(), Exit::Shutdown);
    assert!(
        started.elapsed() >= Duration::from_secs(5),
        "waited the grace period"
    );

    let mut released = lock(&queue.released).clone();
    released.sort();
    assert_eq!(released, vec!["r0", "r1", "r2"]);
    assert!(
        lock(&queue.deleted).is_empty(),
        "nothing unfinished is deleted"
    );
}

#[tokio::test(start_paused = true)]
async fn waiting_for_a_batch_holds_no_work_slot() {
    // One work slot, fifty messages in flight: alike decisions still share a
    // batch, because a finding gives its slot back before its update waits.
    let queue = FakeQueue::with_bodies((0..50).map(event));
    let hub = Arc::new(FakeHub::default());
    let (pipeline, recorder_task) = pipeline(
        "[daemon]\nconcurrency = 1\nmax_in_flight = 50\n",
        FakeClusters::with(sample_state()),
        hub.clone(),
    );
    let (_stop, shutdown) = watch::channel(false);
    let settings = Settings {
        max_in_flight: 50,
        ..settings(true)
    };
    let exit = run(queue.clone(), pipeline, recorder_task, settings, shutdown)
        .await
        .unwrap();
    assert_eq!(exit, Exit::Drained);
    assert_eq!(hub.updated().len(), 50);
    let calls = lock(&hub.calls).len();
    assert!(
        calls <= 5,
        "50 alike updates took {calls} BatchUpdateFindings calls"
    );
    assert_eq!(lock(&queue.deleted).len(), 50, "deleted once recorded");
}

#[tokio::test(start_paused = true)]
async fn a_deep_queue_is_received_with_several_long_polls_at_once() {
    let queue = FakeQueue {
        receive_latency: Duration::from_millis(50),
        ..Default::default()
    };
    for n in 0..200 {
        lock(&queue.waiting).push_back(Message {
            id: format!("m{n}"),
            receipt: format!("r{n}"),
            body: event(n),
            receive_count: 1,
        });
    }
    let queue = Arc::new(queue);
    let (pipeline, recorder_task) =
        pipeline("", FakeClusters::with(sample_state()), Arc::default());
    let (_stop, shutdown) = watch::channel(false);
    let settings = Settings {
        max_in_flight: 100,
        ..settings(true)
    };
    let exit = run(queue.clone(), pipeline, recorder_task, settings, shutdown)
        .await
        .unwrap();
    assert_eq!(exit, Exit::Drained);
    assert_eq!(lock(&queue.deleted).len(), 200);
    let most = queue
        .most_receiving
        .load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!(most, 4, "parallel_receives long-polls at once while deep");
}

#[tokio::test]
async fn a_message_whose_ticket_system_failed_comes_back_later_each_time() {
    let queue = FakeQueue::default();
    let message = |receive_count| Message {
        id: "m".into(),
        receipt: format!("r{receive_count}"),
        body: String::new(),
        receive_count,
    };
    for n in [1, 2, 3, 5, 30] {
        back_off(&queue, &message(n), 300).await;
    }
    // The first failure keeps the queue's own timeout; then it doubles, up to 12 hours.
    assert_eq!(
        lock(&queue.visibility).clone(),
        [
            ("r2".to_string(), 600),
            ("r3".to_string(), 1200),
            ("r5".to_string(), 4800),
            ("r30".to_string(), 43_200)
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn visibility_is_extended_every_third_until_the_receipt_is_no_longer_valid() {
    let queue = FakeQueue::default();
    let keep = keep_invisible(&queue, "r1", 30);
    tokio::pin!(keep);
    // 65 s of work: extended at 10, 20, ... 60 s.
    let _ = tokio::time::timeout(Duration::from_secs(65), &mut keep).await;
    assert_eq!(lock(&queue.visibility).len(), 6);
    // The message came back to the queue: one more try, then no more calls.
    lock(&queue.invalid_receipts).insert("r1".into());
    let _ = tokio::time::timeout(Duration::from_secs(600), &mut keep).await;
    assert_eq!(lock(&queue.visibility).len(), 7);
}

#[tokio::test(start_paused = true)]
async fn a_v2_finding_without_compliance_is_left_for_the_dlq_and_nothing_recorded() {
    let mut v2: serde_json::Value =
        serde_json::from_str(&crate::testing::ocsf_twin(crate::testing::EVENT)).unwrap();
    v2["detail"]["findings"][0]
        .as_object_mut()
        .unwrap()
        .remove("compliance");
    let queue = FakeQueue::with_bodies([v2.to_string(), event(1)]);
    let hub: Arc<FakeHub> = Arc::default();
    let (pipeline, recorder_task) = pipeline("", FakeClusters::with(sample_state()), hub.clone());
    let (stop, shutdown) = watch::channel(false);
    let run = tokio::spawn(run(
        queue.clone(),
        pipeline.clone(),
        recorder_task,
        settings(false),
        shutdown,
    ));
    tokio::time::sleep(Duration::from_secs(10)).await;
    stop.send(true).unwrap();
    assert_eq!(run.await.unwrap().unwrap(), Exit::Shutdown);
    // The good message is recorded and deleted; the malformed one is not
    // deleted (the queue's redrive policy moves it to the DLQ) and nothing
    // of it is recorded.
    assert_eq!(lock(&queue.deleted).clone(), vec!["m1".to_string()]);
    let m = pipeline.metrics.snapshot();
    assert_eq!((m.messages_unparseable, m.recorded), (1, 1));
}
