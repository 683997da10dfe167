//! The change journal end to end: findings of mixed controls over clusters
//! and a snapshot in two accounts, drained first in dry-run, then in apply
//! mode, with `[journal] table`. `hubtriage history --format json` must list
//! every change call once, with `before` and `after` as the resource showed
//! them, `done` and verified; each decision once; and dry-run's `planned`
//! changes, with nothing changed. Then `hubtriage report` makes the page a
//! security lead opens, from the table and from the history file, and a
//! real browser renders it (`report_browser`).

use crate::controls::{dev_tag, evaluated_again, finding_of, instance, note, status, weak_cluster};
use crate::support;

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;

use support::{show, ClusterSpec, World, WorldOptions, ACCOUNT, REGION};

const LIMIT: Duration = Duration::from_secs(180);
pub(crate) const MEMBER: &str = "222222222222";
const SHARED_WITH: &str = "444455556666";
pub(crate) const TABLE: &str = "hubtriage-journal";
const EXTERNAL_ID_ENV: &str = "HUBTRIAGE_TEST_EXTERNAL_ID";
const EXTERNAL_ID: &str = "org-7f3a-hubtriage";

/// The config's tables besides the world's: the member role, the member's
/// suppression and the journal.
pub(crate) fn extra() -> String {
    format!(
        "[accounts]\nrole_arn = \"arn:aws:iam::{{account}}:role/hubtriage-member\"\nexternal_id_env = \"{EXTERNAL_ID_ENV}\"\n\
         [[suppress]]\nname = \"member-tags\"\nreason = \"The member's backup plan copies tags (RISK-77)\"\nexpires = \"2099-12-31\"\ncontrols = [\"Neptune.8\"]\nmatch = {{ accounts = [\"{MEMBER}\"] }}\n\
         [journal]\ntable = \"{TABLE}\"\n"
    )
}

pub(crate) fn env() -> Vec<(&'static str, &'static str)> {
    vec![(EXTERNAL_ID_ENV, EXTERNAL_ID)]
}

fn text(v: &Value, field: &str) -> String {
    v[field].as_str().unwrap_or_default().to_string()
}

/// Entries of `kind` and `mode`.
fn of<'a>(entries: &'a [Value], kind: &str, mode: &str) -> Vec<&'a Value> {
    entries
        .iter()
        .filter(|e| e["kind"] == kind && e["mode"] == mode)
        .collect()
}

/// (resource name, setting or target) → the entries of that change.
fn by_change<'a>(entries: &[&'a Value]) -> BTreeMap<String, Vec<&'a Value>> {
    let mut out: BTreeMap<String, Vec<&Value>> = BTreeMap::new();
    for e in entries {
        let name = text(e, "resource")
            .rsplit(':')
            .next()
            .unwrap_or_default()
            .to_string();
        let what = format!(
            "{name} {} {}",
            text(e, "setting"),
            e["target"].as_str().unwrap_or("")
        );
        out.entry(what.trim().to_string()).or_default().push(e);
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn history_lists_every_change_once_as_the_resource_showed_it_and_each_decision_once() {
    let w = World::with_rds_role(WorldOptions::default()).await;
    w.create_journal_table(TABLE).await;

    // The administrator's account: a weak cluster and a public snapshot of
    // it, a protected cluster (its Neptune.4 finding is resolved), and a dev
    // cluster without audit logs (Neptune.2: several calls and a reboot).
    let a = weak_cluster(&w.neptune, "jr-a").await;
    instance(&w.neptune, "jr-a").await;
    let snap = w
        .neptune
        .create_db_cluster_snapshot()
        .db_cluster_identifier("jr-a")
        .db_cluster_snapshot_identifier("jr-a-snap")
        .tags(dev_tag())
        .send()
        .await
        .unwrap()
        .db_cluster_snapshot
        .unwrap()
        .db_cluster_snapshot_arn
        .unwrap();
    w.neptune
        .modify_db_cluster_snapshot_attribute()
        .db_cluster_snapshot_identifier("jr-a-snap")
        .attribute_name("restore")
        .values_to_add("all")
        .values_to_add(SHARED_WITH)
        .send()
        .await
        .unwrap();
    let ok = weak_cluster(&w.neptune, "jr-ok").await;
    w.neptune
        .modify_db_cluster()
        .db_cluster_identifier("jr-ok")
        .deletion_protection(true)
        .send()
        .await
        .unwrap();
    let audit = w
        .create_cluster(ClusterSpec {
            id: "jr-audit",
            tags: &[("env", "dev")],
            members: 1,
            ..Default::default()
        })
        .await;
    let member = w.neptune_at(MEMBER, REGION).await;
    let m = weak_cluster(&member, "jr-m").await;
    instance(&member, "jr-m").await;

    let auto = vec![
        finding_of(&w, "Neptune.4", ACCOUNT, &a, "a4"),
        finding_of(&w, "Neptune.5", ACCOUNT, &a, "a5"),
        finding_of(&w, "Neptune.3", ACCOUNT, &snap, "s3"),
        finding_of(&w, "Neptune.4", MEMBER, &m, "m4"),
        finding_of(&w, "Neptune.2", ACCOUNT, &audit, "audit2"),
    ];
    let ticketed = vec![
        finding_of(&w, "Neptune.7", ACCOUNT, &a, "a7"),
        finding_of(&w, "Neptune.1", ACCOUNT, &a, "a1"),
    ];
    let suppressed = finding_of(&w, "Neptune.8", MEMBER, &m, "m8");
    let resolved = finding_of(&w, "Neptune.4", ACCOUNT, &ok, "ok4");
    let mut all: Vec<Value> = auto.iter().chain(&ticketed).cloned().collect();
    all.extend([suppressed.clone(), resolved.clone()]);

    // Dry-run: planned changes journaled, nothing changed.
    w.import(&all);
    w.emu.http("DELETE", "/_emu/calls", None);
    let dry = w.config_with("mode = \"dry-run\"\nreboot = \"immediate\"", &extra());
    let out = w.drain_with_env(&dry, &env(), LIMIT);
    assert!(w.mutating_calls("rds").is_empty(), "{}", show(&out));
    let entries = w.history(&dry, &[]);
    let planned = of(&entries, "change", "dry-run");
    assert!(
        planned.iter().all(|e| e["result"] == "planned"),
        "{planned:#?}"
    );
    let planned = by_change(&planned);
    for (what, before, after) in [
        ("jr-a DeletionProtection", "false", "true"),
        ("jr-a BackupRetentionPeriod", "1", "7"),
        (
            "jr-a-snap restore jr-a-snap",
            "444455556666,all",
            "444455556666",
        ),
        ("jr-m DeletionProtection", "false", "true"),
        ("jr-audit EnableCloudwatchLogsExports", "(none)", "audit"),
        (
            "jr-audit DBClusterParameterGroupName",
            "default.neptune1.3",
            "hubtriage-audit-jr-audit",
        ),
    ] {
        let e = planned
            .get(what)
            .unwrap_or_else(|| panic!("no planned {what}: {:#?}", planned.keys()));
        assert_eq!(
            (text(e[0], "before"), text(e[0], "after")),
            (before.into(), after.into()),
            "{what}"
        );
    }
    // Each decision once: a note on each finding, and its entry.
    let decisions = of(&entries, "decision", "dry-run");
    for f in &all {
        let id = f["Id"].as_str().unwrap();
        let mine: Vec<&&Value> = decisions
            .iter()
            .filter(|e| e["finding_ids"][0] == id)
            .collect();
        assert_eq!(mine.len(), 1, "{id}: {mine:#?}\n{}", note(&w, f));
        assert_eq!(text(mine[0], "workflow"), status(&w, f), "{id}");
    }
    let suppress = decisions
        .iter()
        .find(|e| e["action"] == "suppress")
        .expect("the suppression");
    assert_eq!(text(suppress, "expires"), "2099-12-31");
    assert_eq!(text(suppress, "rule"), "member-tags");

    // Security Hub evaluates again; apply mode.
    w.import(&evaluated_again(&all));
    w.emu.http("DELETE", "/_emu/calls", None);
    let apply = w.config_with(
        "mode = \"apply\"\nreboot = \"immediate\"\nrecheck_seconds = 1",
        &extra(),
    );
    let out = w.drain_with_env(&apply, &env(), LIMIT);
    let log = show(&out);
    for f in &auto {
        assert_eq!(
            status(&w, f),
            "RESOLVED",
            "{}: {}\n{log}",
            f["Id"],
            note(&w, f)
        );
    }
    let entries = w.history(&apply, &[]);
    let changes = of(&entries, "change", "apply");
    // Every change call once: as many entries as calls, each done and verified.
    let calls = w.mutating_calls("rds");
    for call in [
        "ModifyDBCluster",
        "ModifyDBClusterSnapshotAttribute",
        "CreateDBClusterParameterGroup",
        "ModifyDBClusterParameterGroup",
        "RebootDBInstance",
    ] {
        let made = calls.iter().filter(|c| *c == call).count();
        let journaled = changes.iter().filter(|e| e["call"] == call).count();
        assert_eq!(
            made, journaled,
            "{call}: {made} calls, {journaled} entries\n{changes:#?}"
        );
        assert!(made > 0, "{call} was made");
    }
    for e in &changes {
        assert_eq!(e["result"], "done", "{e:#}");
        assert!(e["verified_at"].is_string(), "verified: {e:#}");
        assert_eq!(e["action"], "remediate");
    }
    let changed = by_change(&changes);
    for (what, n) in &changed {
        assert_eq!(n.len(), 1, "{what} changed {} times", n.len());
    }
    // `before` and `after` are what the resource showed before and after.
    let after_a = w.cluster("jr-a").await;
    let dp = &changed["jr-a DeletionProtection"][0];
    assert_eq!(text(dp, "before"), "false");
    assert_eq!(
        text(dp, "after"),
        after_a.deletion_protection().unwrap().to_string()
    );
    let br = &changed["jr-a BackupRetentionPeriod"][0];
    assert_eq!(text(br, "before"), "1");
    assert_eq!(
        text(br, "after"),
        after_a.backup_retention_period().unwrap().to_string()
    );
    assert_eq!(text(dp, "account"), ACCOUNT);
    assert_eq!(
        text(changed["jr-m DeletionProtection"][0], "account"),
        MEMBER
    );
    let attach = &changed["jr-audit DBClusterParameterGroupName"][0];
    assert_eq!(
        text(attach, "after"),
        w.cluster("jr-audit")
            .await
            .db_cluster_parameter_group()
            .unwrap()
    );
    assert!(changes
        .iter()
        .all(|e| e["control"] != "Neptune.7" && e["control"] != "Neptune.1"));
    // Each workflow change of each finding once: the fixed ones end
    // remediated and verified (Neptune.2's first pass notes it in progress).
    let decisions = of(&entries, "decision", "apply");
    for f in &auto {
        let id = f["Id"].as_str().unwrap();
        let mine: Vec<&&Value> = decisions
            .iter()
            .filter(|e| e["finding_ids"][0] == id)
            .collect();
        let workflows: Vec<String> = mine.iter().map(|e| text(e, "workflow")).collect();
        let expected = if f["Compliance"]["SecurityControlId"] == "Neptune.2" {
            vec!["NOTIFIED", "RESOLVED"]
        } else {
            vec!["RESOLVED"]
        };
        assert_eq!(workflows, expected, "{id}: {mine:#?}");
        let last = mine.last().unwrap();
        assert_eq!(last["action"], "remediate");
        assert!(last["verified_at"].is_string(), "{last:#}");
    }
    // Filters: by account, by resource name, by control, by kind.
    let member_only = w.history(&apply, &["--account", MEMBER]);
    assert!(!member_only.is_empty() && member_only.iter().all(|e| e["account"] == MEMBER));
    let jr_a = w.history(&apply, &["--resource", "jr-a", "--kind", "change"]);
    assert!(jr_a
        .iter()
        .all(|e| text(e, "resource") == a && e["kind"] == "change"));
    assert_eq!(jr_a.len(), 4, "two planned and two made: {jr_a:#?}");
    let n4 = w.history(&apply, &["--control", "Neptune.4", "--kind", "decision"]);
    assert!(n4.iter().all(|e| e["control"] == "Neptune.4"));
    assert_eq!(
        n4.len(),
        5,
        "two findings in two runs, the resolved one once: {n4:#?}"
    );
    let table = w.command(&apply, &["history", "--since", "1d"]).1;
    assert!(table.lines().all(|l| l.chars().count() <= 120), "{table}");
    assert!(
        table.contains("DeletionProtection") && table.contains("false → true"),
        "{table}"
    );

    let everything = w.history(&apply, &[]);
    crate::report_browser::check_report(&w, &apply, &everything);
}
