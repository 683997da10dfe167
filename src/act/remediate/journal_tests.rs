//! The change journal as passes write it: every change `started` before its
//! call and completed after it; no entry, no call; and open changes settled
//! from live state by the next pass.

use super::*;
use crate::journal::{Entry, Journal, Kind, Outcome};
use crate::lock;
use crate::state::tests::sample_state;
use crate::testing::{FakeNeptune, MemoryJournal};

const ARN: &str = "arn:aws:rds:us-east-1:111122223333:cluster:orders-graph";

fn config() -> Config {
    crate::testing::config(
        "[remediation]\nmode = \"apply\"\nreboot = \"immediate\"\nlog_retention_days = 365\n",
    )
}

fn template() -> Entry {
    let mut e = Entry::new(
        Kind::Change,
        crate::config::Mode::Apply,
        "111122223333",
        "us-east-1",
        ARN,
    );
    e.control = Some("Neptune.4".into());
    e
}

/// One pass of `control` over the fake's cluster, journaled in `journal`.
async fn journaled_pass(
    api: &FakeNeptune,
    journal: &MemoryJournal,
    control: &dyn Control,
    progress: &mut Progress,
) -> Result<PassResult, PassError> {
    let config = config();
    let state = api.state();
    let template = template();
    let job = Job {
        control,
        resource_arn: ARN,
        live: LiveResource::Cluster(&state),
        config: &config,
        parameters: &Default::default(),
        log: Some(ChangeLog {
            journal,
            template: &template,
        }),
    };
    super::pass(api, &Unfenced, job, progress, Utc::now()).await
}

fn start(api: &FakeNeptune) -> Progress {
    Progress::start(
        LiveResource::Cluster(&api.state()),
        &config().remediation,
        Utc::now(),
    )
}

#[tokio::test]
async fn a_change_is_journaled_before_its_call_and_completed_after_it() {
    let api = FakeNeptune::new(sample_state());
    let journal = MemoryJournal::default();
    let mut progress = start(&api);
    let result = journaled_pass(
        &api,
        &journal,
        &crate::control::neptune4::CONTROL,
        &mut progress,
    )
    .await
    .unwrap();
    assert!(matches!(result, PassResult::Verified { .. }), "{result:?}");
    let changes = journal.changes();
    assert_eq!(changes.len(), 1, "{changes:#?}");
    let c = &changes[0];
    assert_eq!(c.call.as_deref(), Some("ModifyDBCluster"));
    assert_eq!(c.setting.as_deref(), Some("DeletionProtection"));
    assert_eq!(
        (c.before.as_deref(), c.after.as_deref()),
        (Some("false"), Some("true"))
    );
    assert_eq!(c.result, Outcome::Done);
    assert_eq!(
        progress.journal,
        std::slice::from_ref(&c.id),
        "kept to be marked verified"
    );
}

#[tokio::test]
async fn no_entry_no_call() {
    let api = FakeNeptune::new(sample_state());
    let journal = MemoryJournal::default();
    journal.fail(true);
    let mut progress = start(&api);
    let err = journaled_pass(
        &api,
        &journal,
        &crate::control::neptune4::CONTROL,
        &mut progress,
    )
    .await
    .unwrap_err();
    assert!(matches!(err, PassError::Journal(_)), "{err:?}");
    assert!(api.mutating().is_empty(), "{:?}", api.mutating());
    assert!(journal.all().is_empty());
    // The table is back: the next pass makes the change.
    journal.fail(false);
    journaled_pass(
        &api,
        &journal,
        &crate::control::neptune4::CONTROL,
        &mut progress,
    )
    .await
    .unwrap();
    assert_eq!(api.mutating().len(), 1);
    assert_eq!(journal.changes()[0].result, Outcome::Done);
}

#[tokio::test]
async fn a_call_whose_fate_is_not_known_is_unknown_then_settled_from_live_state() {
    let api = FakeNeptune::new(sample_state());
    let journal = MemoryJournal::default();
    // A task was killed between its entry and its call: started, never made.
    let never_made = template().for_change(
        &crate::control::change::Change {
            call: "ModifyDBCluster",
            setting: "DeletionProtection".into(),
            target: None,
            before: "false".into(),
            after: "true".into(),
        },
        Outcome::Started,
    );
    journal.append(&never_made).await.unwrap();
    // And one whose call was made (live state shows it), its end not written.
    let made = template().for_change(
        &crate::control::change::Change {
            call: "ModifyDBCluster",
            setting: "BackupRetentionPeriod".into(),
            target: None,
            before: "1".into(),
            after: "0".into(),
        },
        Outcome::Unknown,
    );
    journal.append(&made).await.unwrap();
    let mut progress = start(&api);
    journaled_pass(
        &api,
        &journal,
        &crate::control::neptune4::CONTROL,
        &mut progress,
    )
    .await
    .unwrap();
    let get = |id: &str| journal.all().into_iter().find(|e| e.id == id).unwrap();
    assert_eq!(get(&never_made.id).result, Outcome::Failed);
    assert!(get(&never_made.id)
        .error
        .unwrap()
        .contains("settled from live state"));
    assert_eq!(get(&made.id).result, Outcome::Done);
    // The pass then made the change itself, with an entry of its own.
    let done: Vec<Entry> = journal
        .changes()
        .into_iter()
        .filter(|e| e.setting.as_deref() == Some("DeletionProtection") && e.result == Outcome::Done)
        .collect();
    assert_eq!(done.len(), 1);
    assert_ne!(done[0].id, never_made.id);
}

#[tokio::test]
async fn a_retryable_failure_is_unknown_and_a_refusal_is_failed() {
    let api = FakeNeptune::new(sample_state());
    let journal = MemoryJournal::default();
    let mut e = Error::other("Neptune", "RebootDBInstance", "orders-graph-2", "reset");
    e.retryable = true;
    *lock(&api.reboot_error) = Some(e);
    let mut progress = start(&api);
    let mut failed = false;
    for _ in 0..10 {
        match journaled_pass(
            &api,
            &journal,
            &crate::control::neptune2::CONTROL,
            &mut progress,
        )
        .await
        {
            Err(_) => {
                failed = true;
                break;
            }
            Ok(PassResult::Waiting { .. }) => continue,
            Ok(other) => panic!("{other:?}"),
        }
    }
    assert!(failed);
    let reboot = journal
        .changes()
        .into_iter()
        .find(|e| e.call.as_deref() == Some("RebootDBInstance"))
        .unwrap();
    assert_eq!(reboot.result, Outcome::Unknown);
    assert_eq!(reboot.target.as_deref(), Some("orders-graph-2"));
}

#[tokio::test]
async fn a_neptune2_remediation_journals_each_of_its_calls() {
    let api = FakeNeptune::new(sample_state());
    let journal = MemoryJournal::default();
    let mut progress = start(&api);
    for _ in 0..20 {
        let r = journaled_pass(
            &api,
            &journal,
            &crate::control::neptune2::CONTROL,
            &mut progress,
        )
        .await
        .unwrap();
        if !matches!(r, PassResult::Waiting { .. }) {
            assert!(matches!(r, PassResult::Verified { .. }), "{r:?}");
            break;
        }
    }
    let calls: Vec<(String, String, String, String)> = journal
        .changes()
        .iter()
        .map(|e| {
            (
                e.call.clone().unwrap(),
                e.setting.clone().unwrap(),
                e.before.clone().unwrap(),
                e.after.clone().unwrap(),
            )
        })
        .collect();
    let want = |call: &str, setting: &str, before: &str, after: &str| {
        (
            call.to_string(),
            setting.to_string(),
            before.to_string(),
            after.to_string(),
        )
    };
    assert_eq!(
        calls,
        vec![
            want(
                "CreateDBClusterParameterGroup",
                "DBClusterParameterGroupName",
                "(none)",
                "hubtriage-audit-orders-graph (neptune1.3)"
            ),
            want(
                "ModifyDBClusterParameterGroup",
                "neptune_enable_audit_log",
                "0",
                "1"
            ),
            want(
                "ModifyDBCluster",
                "DBClusterParameterGroupName",
                "default.neptune1.3",
                "hubtriage-audit-orders-graph"
            ),
            want(
                "ModifyDBCluster",
                "EnableCloudwatchLogsExports",
                "slowquery",
                "audit,slowquery"
            ),
            want(
                "RebootDBInstance",
                "DBClusterParameterGroupStatus",
                "pending-reboot",
                "in-sync"
            ),
            want(
                "RebootDBInstance",
                "DBClusterParameterGroupStatus",
                "pending-reboot",
                "in-sync"
            ),
            want("PutRetentionPolicy", "retentionInDays", "30", "365"),
        ]
    );
    assert!(journal.changes().iter().all(|e| e.result == Outcome::Done));
    assert_eq!(progress.journal.len(), 7);
}
