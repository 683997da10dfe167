//! A control defined in this one file, and nowhere else, flows through
//! everything a control touches: a finding that names it, decide and its
//! plan, the remediation driver against the fake Neptune, the note on the
//! finding, the ticket's text, the IAM list, the event pattern and
//! `hubtriage controls`. Adding a control over a setting hubtriage already
//! reads takes its module (this `CONTROL`) and its line in the registry
//! (here, for this test's thread only: `add_for_this_test`).

use std::sync::Arc;

use super::*;
use crate::act::ticket::problem::TicketText;
use crate::control::setting::{modify_command, SettingControl};
use crate::control::{self, ClusterSetting, Safety, SettingValue, Step, Target};
use crate::decide::Action;
use crate::record::Workflow;
use crate::state::tests::sample_state;
use crate::testing::{applying_over, FakeHub, FakeNeptune};

/// Test.1: three weeks of automated backups, fixed by one ModifyDBCluster.
static CONTROL: SettingControl = SettingControl {
    id: "Test.1",
    title: "Neptune DB clusters should keep three weeks of automated backups",
    failing: "keeps fewer than 21 days of backups",
    safety: Safety::Auto,
    setting: Some(ClusterSetting::BackupRetentionPeriod),
    problem: |s, _| {
        (s.backup_retention_period < 21).then(|| {
            format!(
                "backups are kept {} days, fewer than 21",
                s.backup_retention_period
            )
        })
    },
    target: |_, _| SettingValue::Days(21),
    compliant: |_| "backups are kept at least 21 days.".into(),
    not_automatic: "",
    manual_fix,
    iam_actions: &["rds:ModifyDBCluster"],
    fix_summary: "ModifyDBCluster BackupRetentionPeriod=21",
    passes_when: "`BackupRetentionPeriod` at least 21",
    reads: &["BackupRetentionPeriod"],
    stack: Some(("BackupRetentionPeriod", "backup_retention_period")),
};

fn manual_fix(t: &Target<'_>) -> Vec<String> {
    vec![format!(
        "Keep three weeks of backups: {}",
        modify_command(t, "--backup-retention-period 21")
    )]
}

/// The fixture's event, its finding made one of Test.1 (as Security Hub
/// would write it), parsed as hubtriage parses any event.
fn test1_finding() -> Finding {
    let event = crate::testing::EVENT.replace("\"Neptune.2\"", "\"Test.1\"");
    let mut found = crate::finding::parse_event(event.as_bytes()).unwrap();
    assert_eq!(found.len(), 1);
    found.remove(0)
}

/// The fixture's cluster with one day of backups.
fn short_backups() -> crate::state::ClusterState {
    let mut s = sample_state();
    s.settings.backup_retention_period = 1;
    s
}

const REMEDIATE: &str =
    "[remediation]\nmode = \"apply\"\nreboot = \"immediate\"\n[default]\naction = \"remediate\"\n";

#[tokio::test]
async fn a_control_in_one_file_is_decided_planned_fixed_and_noted() {
    let _added = control::add_for_this_test(&CONTROL);
    let f = test1_finding();
    assert_eq!(f.control.as_deref(), Some("Test.1"));

    // Decide and plan, from live state.
    let live = short_backups();
    let d = crate::decide::decide_on(
        &f,
        Some(crate::state::LiveResource::Cluster(&live)),
        &crate::testing::config(REMEDIATE),
        &AccountReach::own("111122223333"),
        chrono::Utc::now(),
    );
    assert_eq!(d.action, Action::Remediate, "{}", d.reason);
    assert_eq!(d.problems, ["backups are kept 1 days, fewer than 21"]);
    assert_eq!(
        d.plan,
        [
            Step::ModifyCluster {
                setting: ClusterSetting::BackupRetentionPeriod,
                value: SettingValue::Days(21),
            },
            Step::Verify,
        ]
    );

    // The driver changes the fake cluster; re-checks carry it to verified.
    let neptune = Arc::new(FakeNeptune::new(short_backups()));
    let hub = Arc::new(FakeHub::default());
    let (p, queue, _) = applying_over(neptune.clone(), REMEDIATE, hub.clone());
    crate::lock(&hub.findings).insert(f.id.clone(), f.clone());
    p.handle(&f, false).await.unwrap();
    for _ in 0..5 {
        let due: Vec<_> = std::mem::take(&mut *crate::lock(&queue.scheduled));
        for (recheck, _) in due {
            p.handle_recheck(&recheck).await.unwrap();
        }
    }
    assert_eq!(neptune.state().settings.backup_retention_period, 21);
    assert_eq!(
        neptune.mutating(),
        ["modify orders-graph BackupRetentionPeriod=21"]
    );
    let calls = crate::lock(&hub.calls).clone();
    let (_, last) = calls.last().expect("the finding was updated");
    assert_eq!(last.workflow, Workflow::Resolved, "{}", last.note);
    assert!(
        last.note.contains("BackupRetentionPeriod is 21"),
        "the note says what was verified: {}",
        last.note
    );
}

#[tokio::test]
async fn a_control_in_one_file_opens_its_ticket_and_is_listed_everywhere() {
    let _added = control::add_for_this_test(&CONTROL);
    let neptune = Arc::new(FakeNeptune::new(short_backups()));
    let hub = Arc::new(FakeHub::default());
    let (p, _, tickets) = applying_over(neptune.clone(), "[default]\naction = \"ticket\"\n", hub);
    p.handle(&test1_finding(), false).await.unwrap();
    let opened = crate::lock(&tickets.opened).clone();
    assert_eq!(opened.len(), 1);
    let text = TicketText::new(&opened[0], Some("MEDIUM"));
    assert!(
        text.title
            .starts_with("Test.1: Neptune cluster orders-graph (111122223333, us-east-1) keeps fewer than 21 days"),
        "{}",
        text.title
    );
    assert_eq!(text.fails, ["backups are kept 1 days, fewer than 21"]);
    assert!(
        text.fix[0].contains("--db-cluster-identifier orders-graph --backup-retention-period 21"),
        "{:?}",
        text.fix
    );
    assert!(neptune.mutating().is_empty(), "a ticket changes nothing");

    // The IAM list, the ids routed, the event pattern and the table.
    assert!(control::iam_actions().contains(&"rds:ModifyDBCluster"));
    assert!(control::ids::routed().contains(&"Test.1"));
    let pattern = crate::setup::event_pattern().to_string();
    assert!(
        pattern.contains("\"Test.1\"") && pattern.contains("\"CT.Test.1\""),
        "{pattern}"
    );
    let table = control::table::render(control::table::Format::Markdown);
    assert!(
        table.contains("| Test.1: Neptune DB clusters should keep three weeks of automated backups | cluster | `BackupRetentionPeriod` at least 21 | ModifyDBCluster BackupRetentionPeriod=21 | auto | `rds:ModifyDBCluster` |"),
        "{table}"
    );
}
