//! Unit tests of the remediation passes, against `testing::FakeNeptune`.

use super::*;
use crate::config::RebootPolicy;
use crate::state::tests::sample_state;
use crate::testing::FakeNeptune;

fn policy(reboot: RebootPolicy) -> Remediation {
    Remediation {
        mode: crate::config::Mode::Apply,
        reboot,
        log_retention_days: Some(365),
        recheck_seconds: 5,
        ..Remediation::default()
    }
}

/// One Neptune.2 pass over `state` under `policy` (the signature the tests
/// were written for, before passes took a control's job).
async fn pass(
    api: &dyn FixApi,
    fence: &dyn Fence,
    arn: &str,
    state: &ClusterState,
    policy: &Remediation,
    progress: &mut Progress,
    now: DateTime<Utc>,
) -> Result<PassResult, PassError> {
    let config = Config {
        remediation: policy.clone(),
        ..crate::testing::config("")
    };
    let job = Job {
        control: &crate::control::neptune2::CONTROL,
        resource_arn: arn,
        live: LiveResource::Cluster(state),
        config: &config,
        parameters: &Default::default(),
        log: None,
    };
    super::pass(api, fence, job, progress, now).await
}

/// The cluster the finding names (`sample_state`'s).
const ARN: &str = "arn:aws:rds:us-east-1:111122223333:cluster:orders-graph";

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

/// Runs passes until one does not wait (at most 20), as re-checks would.
async fn run(
    api: &FakeNeptune,
    policy: &Remediation,
    now: DateTime<Utc>,
) -> (PassResult, Progress, usize) {
    let mut progress = Progress::start(LiveResource::Cluster(&api.state()), policy, now);
    for n in 1..=20 {
        let result = pass(
            api,
            &Unfenced,
            ARN,
            &api.state(),
            policy,
            &mut progress,
            now,
        )
        .await
        .unwrap();
        match result {
            PassResult::Waiting { window: true, .. } => return (result, progress, n),
            PassResult::Waiting { .. } => continue,
            other => return (other, progress, n),
        }
    }
    panic!("no end after 20 passes");
}

#[tokio::test]
async fn default_group_is_fixed_readers_first_and_verified() {
    let api = FakeNeptune::new(sample_state());
    let (result, progress, _) = run(
        &api,
        &policy(RebootPolicy::Immediate),
        at("2026-11-25T12:00:00Z"),
    )
    .await;
    assert!(matches!(result, PassResult::Verified { .. }), "{result:?}");
    assert_eq!(
        api.mutating(),
        vec![
            "create hubtriage-audit-orders-graph",
            "set hubtriage-audit-orders-graph neptune_enable_audit_log=1",
            "attach hubtriage-audit-orders-graph",
            "export",
            "reboot orders-graph-2",
            "reboot orders-graph-1",
            "retention 365",
        ]
    );
    let changes = progress.changes(
        &crate::control::neptune2::CONTROL,
        LiveResource::Cluster(&api.state()),
    );
    assert_eq!(changes.len(), 6, "{changes:?}");
    assert!(changes[1].contains("in place of default.neptune1.3"));
    assert_eq!(changes[4], "rebooted orders-graph-2, orders-graph-1");
}

#[tokio::test]
async fn a_second_run_changes_nothing() {
    let api = FakeNeptune::new(sample_state());
    let p = policy(RebootPolicy::Immediate);
    run(&api, &p, at("2026-11-25T12:00:00Z")).await;
    let before = api.mutating().len();
    let (result, _, passes) = run(&api, &p, at("2026-11-25T12:00:00Z")).await;
    assert!(matches!(result, PassResult::Verified { .. }), "{result:?}");
    assert_eq!(passes, 1);
    assert_eq!(api.mutating().len(), before, "idempotent");
}

#[tokio::test]
async fn policy_never_stops_before_the_reboot() {
    let api = FakeNeptune::new(sample_state());
    let (result, _, _) = run(
        &api,
        &policy(RebootPolicy::Never),
        at("2026-11-25T12:00:00Z"),
    )
    .await;
    assert!(
        matches!(result, PassResult::RebootPending { .. }),
        "{result:?}"
    );
    assert!(!api.mutating().iter().any(|c| c.starts_with("reboot")));
}

#[tokio::test]
async fn maintenance_window_gates_reboots_by_the_clock() {
    // Window sun:06:00-06:30; 2026-11-25 is a Wednesday, 2026-11-29 a Sunday.
    let api = FakeNeptune::new(sample_state());
    let p = policy(RebootPolicy::MaintenanceWindow);
    let (result, _, _) = run(&api, &p, at("2026-11-25T12:00:00Z")).await;
    match result {
        PassResult::Waiting {
            window: true,
            recheck_in,
            ..
        } => {
            assert_eq!(recheck_in.as_secs(), (3 * 24 + 18) * 3600);
        }
        other => panic!("{other:?}"),
    }
    assert!(
        !api.mutating().iter().any(|c| c.starts_with("reboot")),
        "nothing rebooted outside"
    );
    let (result, _, _) = run(&api, &p, at("2026-11-29T06:05:00Z")).await;
    assert!(matches!(result, PassResult::Verified { .. }), "{result:?}");
    assert!(api
        .mutating()
        .contains(&"reboot orders-graph-1".to_string()));
}

#[tokio::test]
async fn a_busy_cluster_waits_and_a_skipped_one_is_refused() {
    let mut s = sample_state();
    s.status = "modifying".into();
    let api = FakeNeptune::new(s);
    let p = policy(RebootPolicy::Immediate);
    let mut progress = Progress::start(
        LiveResource::Cluster(&api.state()),
        &p,
        at("2026-11-25T12:00:00Z"),
    );
    let r = pass(
        &api,
        &Unfenced,
        ARN,
        &api.state(),
        &p,
        &mut progress,
        at("2026-11-25T12:00:00Z"),
    )
    .await
    .unwrap();
    assert!(matches!(r, PassResult::Waiting { .. }));
    assert!(api.mutating().is_empty());

    let mut s = sample_state();
    s.tags.insert(crate::control::SKIP_TAG.into(), "1".into());
    let api = FakeNeptune::new(s);
    let r = pass(
        &api,
        &Unfenced,
        ARN,
        &api.state(),
        &p,
        &mut progress,
        at("2026-11-25T12:00:00Z"),
    )
    .await
    .unwrap();
    assert!(matches!(r, PassResult::Refused { .. }));
    assert!(api.mutating().is_empty());
}

#[tokio::test]
async fn verification_waits_for_the_audit_log_stream() {
    let mut api = FakeNeptune::new(sample_state());
    api.stream = false;
    let p = policy(RebootPolicy::Immediate);
    let mut progress = Progress::start(
        LiveResource::Cluster(&api.state()),
        &p,
        at("2026-11-25T12:00:00Z"),
    );
    let mut last = None;
    for _ in 0..10 {
        last = Some(
            pass(
                &api,
                &Unfenced,
                ARN,
                &api.state(),
                &p,
                &mut progress,
                at("2026-11-25T12:00:00Z"),
            )
            .await
            .unwrap(),
        );
    }
    match last.unwrap() {
        PassResult::Waiting { why, .. } => {
            assert!(why.contains("no audit log stream"), "{why}")
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn state_of_another_arn_is_never_changed() {
    // A same-named cluster in another account or region: nothing is called.
    for other in [
        "arn:aws:rds:us-east-1:123456789012:cluster:orders-graph",
        "arn:aws:rds:eu-west-1:111122223333:cluster:orders-graph",
    ] {
        let mut s = sample_state();
        s.arn = other.into();
        let api = FakeNeptune::new(s);
        let p = policy(RebootPolicy::Immediate);
        let mut progress = Progress::start(
            LiveResource::Cluster(&api.state()),
            &p,
            at("2026-11-25T12:00:00Z"),
        );
        let r = pass(
            &api,
            &Unfenced,
            ARN,
            &api.state(),
            &p,
            &mut progress,
            at("2026-11-25T12:00:00Z"),
        )
        .await
        .unwrap();
        assert!(matches!(r, PassResult::Refused { .. }), "{r:?}");
        assert!(api.mutating().is_empty(), "{other}: {:?}", api.mutating());
    }
}

/// A fence that saves each checkpoint, with the changes made before it, or
/// refuses every one (the lease was lost).
#[derive(Default)]
struct Recording {
    saved: std::sync::Mutex<Vec<(Progress, usize)>>,
    lost: bool,
    api: Option<std::sync::Arc<FakeNeptune>>,
}

#[async_trait]
impl Fence for Recording {
    async fn checkpoint(
        &self,
        progress: &Progress,
    ) -> Result<(), crate::coordination::CoordinationError> {
        if self.lost {
            return Err(crate::coordination::CoordinationError::Lost(
                "cluster#orders-graph".into(),
            ));
        }
        let made = self.api.as_ref().map_or(0, |a| a.mutating().len());
        self.saved.lock().unwrap().push((progress.clone(), made));
        Ok(())
    }
}

#[tokio::test]
async fn a_pass_whose_lease_was_taken_over_changes_nothing() {
    let api = FakeNeptune::new(sample_state());
    let p = policy(RebootPolicy::Immediate);
    let now = at("2026-11-25T12:00:00Z");
    let mut progress = Progress::start(LiveResource::Cluster(&api.state()), &p, now);
    let fence = Recording {
        lost: true,
        ..Recording::default()
    };
    let r = pass(&api, &fence, ARN, &api.state(), &p, &mut progress, now).await;
    assert!(matches!(r, Err(PassError::Fenced(_))), "{r:?}");
    assert!(api.mutating().is_empty(), "{:?}", api.mutating());
}

#[tokio::test]
async fn each_change_is_saved_with_the_lease_before_it_is_made() {
    let api = std::sync::Arc::new(FakeNeptune::new(sample_state()));
    let p = policy(RebootPolicy::Immediate);
    let now = at("2026-11-25T12:00:00Z");
    let fence = Recording {
        api: Some(api.clone()),
        ..Recording::default()
    };
    let mut progress = Progress::start(LiveResource::Cluster(&api.state()), &p, now);
    for _ in 0..20 {
        let r = pass(
            api.as_ref(),
            &fence,
            ARN,
            &api.state(),
            &p,
            &mut progress,
            now,
        )
        .await
        .unwrap();
        if matches!(r, PassResult::Verified { .. }) {
            break;
        }
    }
    let saved = fence.saved.lock().unwrap();
    let calls = api.mutating();
    assert_eq!(
        saved.len(),
        calls.len(),
        "one checkpoint per change: {calls:?}"
    );
    for (n, (progress, made)) in saved.iter().enumerate() {
        assert_eq!(*made, n, "saved before change {n} ({}) was made", calls[n]);
        assert!(progress.saved_at.is_some());
        if let Some(instance) = calls[n].strip_prefix("reboot ") {
            assert_eq!(progress.reboots_issued.get(instance), Some(&now));
        }
    }
}

/// Fixed but for its instances, which wait for a reboot.
fn waiting_for_reboots() -> ClusterState {
    let mut s = sample_state();
    s.parameter_group = "hubtriage-audit-orders-graph".into();
    s.audit_parameter.value = "1".into();
    s.exported_logs.push("audit".into());
    for m in &mut s.members {
        m.parameter_group_status = crate::state::PENDING_REBOOT.into();
    }
    s
}

#[tokio::test]
async fn a_reboot_asked_for_by_a_stopped_task_is_waited_for_not_repeated() {
    // The cluster waits for its reboots; the progress a task saved before it
    // died says it asked for orders-graph-2's a while ago. Given the default
    // three minutes, then [remediation] reboot_settle_seconds = 20.
    for (settle_seconds, asked_ago) in [(None, 179), (Some(20), 19)] {
        let api = FakeNeptune::new(waiting_for_reboots());
        let mut p = policy(RebootPolicy::Immediate);
        if let Some(seconds) = settle_seconds {
            p.reboot_settle_seconds = seconds;
        }
        let now = at("2026-11-25T12:00:00Z");
        let mut progress = Progress::start(
            LiveResource::Cluster(&api.state()),
            &p,
            now - Duration::minutes(5),
        );
        progress
            .reboots_issued
            .insert("orders-graph-2".into(), now - Duration::seconds(asked_ago));
        let r = pass(&api, &Unfenced, ARN, &api.state(), &p, &mut progress, now)
            .await
            .unwrap();
        match r {
            PassResult::Waiting { why, .. } => assert!(why.contains("was rebooted at"), "{why}"),
            other => panic!("{other:?}"),
        }
        assert!(api.mutating().is_empty(), "{:?}", api.mutating());
        // Still waiting for it once the settle time has passed: that reboot
        // did not happen after all, so it is asked for once more.
        let later = now + Duration::seconds(1);
        pass(&api, &Unfenced, ARN, &api.state(), &p, &mut progress, later)
            .await
            .unwrap();
        assert_eq!(
            api.mutating(),
            vec!["reboot orders-graph-2"],
            "settle {settle_seconds:?}"
        );
    }
}

#[test]
fn the_newest_progress_of_one_remediation_is_carried_on() {
    let state = sample_state();
    let p = policy(RebootPolicy::Immediate);
    let t = at("2026-11-25T12:00:00Z");
    let mut message = Progress::start(LiveResource::Cluster(&state), &p, t);
    message.saved_at = Some(t + Duration::minutes(1));
    let mut table = message.clone();
    table.saved_at = Some(t + Duration::minutes(2));
    table.reboots_issued.insert("orders-graph-2".into(), t);
    assert_eq!(message.clone().newest(Some(table.clone())), table);
    assert_eq!(table.clone().newest(Some(message.clone())), table);
    assert_eq!(message.clone().newest(None), message);
    // Another remediation's progress (an earlier one of the cluster) is not this one's.
    let mut other = table.clone();
    other.started_at = t - Duration::days(1);
    assert_eq!(message.clone().newest(Some(other)), message);
}

#[tokio::test]
async fn a_reboot_that_may_have_been_made_is_waited_for_and_a_refused_one_is_not() {
    // The cluster waits for its reboots.
    let ready = waiting_for_reboots;
    let p = policy(RebootPolicy::Immediate);
    let now = at("2026-11-25T12:00:00Z");
    for (error, kept) in [
        // A reset or a timeout: no code, worth retrying; the reboot may be under way.
        (
            Error {
                retryable: true,
                ..Error::other(
                    "Neptune",
                    "RebootDBInstance",
                    "orders-graph-2",
                    "connection reset",
                )
            },
            true,
        ),
        // Throttled: nothing was done.
        (
            Error {
                retryable: true,
                throttled: true,
                code: Some("Throttling".into()),
                ..Error::other(
                    "Neptune",
                    "RebootDBInstance",
                    "orders-graph-2",
                    "Rate exceeded",
                )
            },
            false,
        ),
        // Refused.
        (
            Error {
                code: Some("InvalidDBInstanceState".into()),
                ..Error::other(
                    "Neptune",
                    "RebootDBInstance",
                    "orders-graph-2",
                    "not available",
                )
            },
            false,
        ),
    ] {
        let api = FakeNeptune::new(ready());
        *api.reboot_error.lock().unwrap() = Some(error.clone());
        let mut progress = Progress::start(LiveResource::Cluster(&api.state()), &p, now);
        let r = pass(&api, &Unfenced, ARN, &api.state(), &p, &mut progress, now).await;
        assert!(r.is_err());
        assert_eq!(
            progress.reboots_issued.contains_key("orders-graph-2"),
            kept,
            "{error}"
        );
        // The next pass: waits for a reboot that may be under way, retries one that was refused.
        let r = pass(
            &api,
            &Unfenced,
            ARN,
            &api.state(),
            &p,
            &mut progress,
            now + Duration::minutes(1),
        )
        .await
        .unwrap();
        assert_eq!(api.mutating().is_empty(), kept, "{error}: {r:?}");
    }
}
