//! `undo` over the fakes: changes made by real passes, then put back.

use super::*;
use crate::act::remediate::{pass, ChangeLog, Job, PassResult, Progress, Unfenced};
use crate::control::Control;
use crate::state::tests::sample_state;
use crate::testing::{FakeNeptune, MemoryJournal};

const ARN: &str = "arn:aws:rds:us-east-1:111122223333:cluster:orders-graph";

fn config() -> Config {
    crate::testing::config(
        "[remediation]\nmode = \"apply\"\nreboot = \"immediate\"\nlog_retention_days = 365\n",
    )
}

/// Remediates `control` on the fake's resource (`arn`) to its end, journaled.
async fn remediate(api: &FakeNeptune, journal: &MemoryJournal, control: &dyn Control, arn: &str) {
    let config = config();
    let mut progress = Progress::start(
        LiveResource::Cluster(&api.state()),
        &config.remediation,
        Utc::now(),
    );
    let mut template = Entry::new(Kind::Change, Mode::Apply, "111122223333", "us-east-1", arn);
    template.control = Some(control.id().into());
    template.remediation = progress.remediation.clone();
    for _ in 0..20 {
        let state = api.state();
        let snapshot = lock(&api.snapshot).clone();
        let live = match &snapshot {
            Some(s) if s.arn == arn => LiveResource::Snapshot(s),
            _ => LiveResource::Cluster(&state),
        };
        let job = Job {
            control,
            resource_arn: arn,
            live,
            config: &config,
            parameters: &Default::default(),
            log: Some(ChangeLog {
                journal,
                template: &template,
            }),
        };
        let result = pass(api, &Unfenced, job, &mut progress, Utc::now())
            .await
            .unwrap();
        if !matches!(result, PassResult::Waiting { .. }) {
            assert!(matches!(result, PassResult::Verified { .. }), "{result:?}");
            return;
        }
    }
    panic!("no end");
}

fn done_change(journal: &MemoryJournal, setting: &str) -> Entry {
    journal
        .changes()
        .into_iter()
        .find(|e| e.setting.as_deref() == Some(setting) && e.result == Outcome::Done)
        .unwrap_or_else(|| panic!("no {setting} change in {:#?}", journal.all()))
}

use crate::lock;

#[tokio::test]
async fn a_neptune4_change_is_put_back_tagged_and_journaled_once() {
    let api = Arc::new(FakeNeptune::new(sample_state()));
    let journal = MemoryJournal::default();
    remediate(&api, &journal, &crate::control::neptune4::CONTROL, ARN).await;
    let change = done_change(&journal, "DeletionProtection");
    let made = api.mutating().len();

    // Without --apply: said, not done.
    let lines = undo(
        &journal,
        &api,
        api.as_ref(),
        &change.id,
        &Options::default(),
    )
    .await
    .unwrap();
    assert!(
        lines
            .iter()
            .any(|l| l
                .starts_with("would put back: ModifyDBCluster DeletionProtection: true → false")),
        "{lines:?}"
    );
    assert_eq!(api.mutating().len(), made, "nothing changed");

    let options = Options {
        apply: true,
        reason: Some("breaks the nightly teardown (OPS-12)".into()),
        make_public: false,
    };
    let lines = undo(&journal, &api, api.as_ref(), &change.id, &options)
        .await
        .unwrap();
    assert!(!api.state().settings.deletion_protection, "{lines:?}");
    let tag = api.state().tags.get(SKIP_TAG).cloned().unwrap();
    assert!(tag.contains(&change.id) && tag.contains("OPS-12"), "{tag}");
    let undos: Vec<Entry> = journal
        .all()
        .into_iter()
        .filter(|e| e.kind == Kind::Undo)
        .collect();
    assert_eq!(undos.len(), 1);
    assert_eq!(undos[0].undoes.as_deref(), Some(change.id.as_str()));
    assert_eq!(
        (undos[0].before.as_deref(), undos[0].after.as_deref()),
        (Some("true"), Some("false"))
    );

    // Once only.
    let again = undo(&journal, &api, api.as_ref(), &change.id, &options)
        .await
        .unwrap_err();
    assert!(
        matches!(again, UndoError::Usage(ref m) if m.contains("already undone")),
        "{again}"
    );
    // And the next finding's remediation becomes a ticket: the plan refuses the tag.
    let refused = crate::control::neptune4::CONTROL.plan(
        LiveResource::Cluster(&api.state()),
        crate::control::Criteria::of_config(&config()),
    );
    assert!(refused.unwrap_err().contains(SKIP_TAG));
}

#[tokio::test]
async fn an_undo_is_refused_when_the_value_changed_since() {
    let api = Arc::new(FakeNeptune::new(sample_state()));
    let journal = MemoryJournal::default();
    remediate(&api, &journal, &crate::control::neptune4::CONTROL, ARN).await;
    let change = done_change(&journal, "DeletionProtection");
    lock(&api.state).settings.deletion_protection = false;
    let made = api.mutating().len();
    let options = Options {
        apply: true,
        ..Options::default()
    };
    let err = undo(&journal, &api, api.as_ref(), &change.id, &options)
        .await
        .unwrap_err();
    let UndoError::ChangedSince(why) = err else {
        panic!("{err}")
    };
    assert!(
        why.contains("set DeletionProtection to true, but it is false now"),
        "{why}"
    );
    assert_eq!(api.mutating().len(), made);
    assert!(!api.state().tags.contains_key(SKIP_TAG));
}

#[tokio::test]
async fn a_neptune2_undo_puts_the_group_export_and_retention_back_and_keeps_the_new_group() {
    let api = Arc::new(FakeNeptune::new(sample_state()));
    *lock(&api.log_group) = Some(Some(30));
    let journal = MemoryJournal::default();
    remediate(&api, &journal, &crate::control::neptune2::CONTROL, ARN).await;
    assert!(api.state().exports_audit());
    let export = done_change(&journal, "EnableCloudwatchLogsExports");
    let options = Options {
        apply: true,
        reason: Some("test".into()),
        make_public: false,
    };
    let lines = undo(&journal, &api, api.as_ref(), &export.id, &options)
        .await
        .unwrap();
    let state = api.state();
    assert!(!state.exports_audit(), "{lines:?}");
    assert_eq!(state.parameter_group, "default.neptune1.3");
    assert_eq!(*lock(&api.log_group), Some(Some(30)));
    let text = lines.join("\n");
    assert!(
        text.contains("parameter group hubtriage-audit-orders-graph that hubtriage made is kept"),
        "{text}"
    );
    assert!(text.contains("a reboot is not undone"), "{text}");
    let undone = journal
        .all()
        .into_iter()
        .filter(|e| e.kind == Kind::Undo)
        .count();
    assert_eq!(undone, 3, "export, group, retention");
}

#[tokio::test]
async fn a_neptune3_undo_needs_make_public() {
    let api = Arc::new(FakeNeptune::new(sample_state()));
    let snapshot = crate::state::SnapshotState {
        identifier: "snap".into(),
        arn: "arn:aws:rds:us-east-1:111122223333:cluster-snapshot:snap".into(),
        cluster: "orders-graph".into(),
        engine: "neptune".into(),
        status: "available".into(),
        snapshot_type: "manual".into(),
        storage_encrypted: false,
        restore: vec!["all".into(), "444455556666".into()],
        tags: Default::default(),
    };
    *lock(&api.snapshot) = Some(snapshot.clone());
    let journal = MemoryJournal::default();
    remediate(
        &api,
        &journal,
        &crate::control::neptune3::CONTROL,
        &snapshot.arn,
    )
    .await;
    let change = done_change(&journal, "restore");
    let options = Options {
        apply: true,
        ..Options::default()
    };
    let err = undo(&journal, &api, api.as_ref(), &change.id, &options)
        .await
        .unwrap_err();
    assert!(
        matches!(err, UndoError::Usage(ref m) if m.contains("--make-public")),
        "{err}"
    );
    assert_eq!(
        lock(&api.snapshot).as_ref().unwrap().restore,
        ["444455556666"]
    );
    let options = Options {
        apply: true,
        make_public: true,
        ..Options::default()
    };
    undo(&journal, &api, api.as_ref(), &change.id, &options)
        .await
        .unwrap();
    let after = lock(&api.snapshot).clone().unwrap();
    assert!(after.is_public());
    assert!(after.tags.contains_key(SKIP_TAG));
}

#[tokio::test]
async fn what_was_not_made_cannot_be_undone() {
    let api = Arc::new(FakeNeptune::new(sample_state()));
    let journal = MemoryJournal::default();
    let mut planned = Entry::new(Kind::Change, Mode::DryRun, "111122223333", "us-east-1", ARN);
    planned.result = Outcome::Planned;
    journal.record(vec![planned.clone()]);
    let err = undo(
        &journal,
        &api,
        api.as_ref(),
        &planned.id,
        &Options::default(),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(err, UndoError::Usage(ref m) if m.contains("nothing to undo")),
        "{err}"
    );
    let err = undo(
        &journal,
        &api,
        api.as_ref(),
        "20991231T000000.000Z-00000000",
        &Options::default(),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(err, UndoError::Usage(ref m) if m.contains("no journal entry")),
        "{err}"
    );
}
