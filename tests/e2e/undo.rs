//! `hubtriage undo` end to end: changes made in apply mode (in the
//! administrator's account and a member's, through its role) are put back
//! from the journal, the resource is tagged `hubtriage:skip` and its next
//! finding becomes a ticket; an undo is refused when the value changed
//! since (exit 3) and for a snapshot without `--make-public` (exit 64); a
//! Neptune.2 undo attaches the earlier group again and turns the export off.

use crate::controls::{dev_tag, finding_of, instance, note, status, weak_cluster};
use crate::journal::{env, extra, MEMBER, TABLE};
use crate::support;

use std::time::Duration;

use serde_json::Value;

use support::{show, ClusterSpec, World, WorldOptions, ACCOUNT, REGION};

const LIMIT: Duration = Duration::from_secs(180);

fn change_id(entries: &[Value], resource: &str, setting: &str) -> String {
    entries
        .iter()
        .find(|e| {
            e["kind"] == "change"
                && e["result"] == "done"
                && e["resource"]
                    .as_str()
                    .unwrap_or_default()
                    .ends_with(&format!(":{resource}"))
                && e["setting"] == setting
        })
        .and_then(|e| e["id"].as_str())
        .unwrap_or_else(|| panic!("no {setting} change of {resource}: {entries:#?}"))
        .to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn undo_puts_changes_back_tags_the_resource_and_refuses_what_changed_since() {
    let w = World::with_rds_role(WorldOptions::default()).await;
    w.create_journal_table(TABLE).await;
    let member = w.neptune_at(MEMBER, REGION).await;
    let m = weak_cluster(&member, "un-m").await;
    instance(&member, "un-m").await;
    let b = weak_cluster(&w.neptune, "un-b").await;
    let snap = w
        .neptune
        .create_db_cluster_snapshot()
        .db_cluster_identifier("un-b")
        .db_cluster_snapshot_identifier("un-snap")
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
        .db_cluster_snapshot_identifier("un-snap")
        .attribute_name("restore")
        .values_to_add("all")
        .send()
        .await
        .unwrap();
    let audit = w
        .create_cluster(ClusterSpec {
            id: "un-audit",
            tags: &[("env", "dev")],
            members: 1,
            ..Default::default()
        })
        .await;
    let findings = vec![
        finding_of(&w, "Neptune.4", MEMBER, &m, "m4"),
        finding_of(&w, "Neptune.4", ACCOUNT, &b, "b4"),
        finding_of(&w, "Neptune.3", ACCOUNT, &snap, "s3"),
        finding_of(&w, "Neptune.2", ACCOUNT, &audit, "a2"),
    ];
    w.import(&findings);
    let config = w.config_with(
        "mode = \"apply\"\nreboot = \"immediate\"\nrecheck_seconds = 1",
        &extra(),
    );
    let out = w.drain_with_env(&config, &env(), LIMIT);
    for f in &findings {
        assert_eq!(status(&w, f), "RESOLVED", "{}\n{}", note(&w, f), show(&out));
    }
    let entries = w.history(&config, &[]);
    let undo = |args: &[&str]| {
        let mut all = vec!["undo"];
        all.extend(args);
        w.command_with_env(&config, &all, &env())
    };

    // A Neptune.4 change in the member account: said first, then undone.
    let id = change_id(&entries, "un-m", "DeletionProtection");
    let (code, said, err) = undo(&[&id]);
    assert_eq!(code, 0, "{err}");
    assert!(
        said.contains("would put back: ModifyDBCluster DeletionProtection: true → false"),
        "{said}"
    );
    let protected = |c: &aws_sdk_neptune::Client| {
        let c = c.clone();
        async move {
            c.describe_db_clusters()
                .db_cluster_identifier("un-m")
                .send()
                .await
                .unwrap()
                .db_clusters()[0]
                .deletion_protection()
        }
    };
    assert_eq!(
        protected(&member).await,
        Some(true),
        "nothing changed without --apply"
    );
    let (code, done, err) = undo(&[
        &id,
        "--apply",
        "--reason",
        "blocks the member's teardown (OPS-12)",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        done.contains("put back: ModifyDBCluster DeletionProtection"),
        "{done}"
    );
    assert_eq!(protected(&member).await, Some(false));
    let tags = member
        .list_tags_for_resource()
        .resource_name(&m)
        .send()
        .await
        .unwrap();
    let skip = tags
        .tag_list()
        .iter()
        .find(|t| t.key() == Some("hubtriage:skip"))
        .and_then(|t| t.value())
        .unwrap_or_default()
        .to_string();
    assert!(skip.contains(&id) && skip.contains("OPS-12"), "{skip:?}");
    let undos = w.history(&config, &["--kind", "undo"]);
    assert_eq!(undos.len(), 1, "{undos:#?}");
    assert_eq!(undos[0]["undoes"], id.as_str());
    assert_eq!(undos[0]["account"], MEMBER);
    assert_eq!(
        (undos[0]["before"].as_str(), undos[0]["after"].as_str()),
        (Some("true"), Some("false"))
    );
    let (code, _, err) = undo(&[&id, "--apply"]);
    assert_eq!(code, 64, "once only: {err}");
    assert!(err.contains("already undone"), "{err}");

    // The cluster's next finding becomes a ticket, not a fix.
    let next = finding_of(&w, "Neptune.4", MEMBER, &m, "m4-next");
    w.import(std::slice::from_ref(&next));
    w.emu.http("DELETE", "/_emu/calls", None);
    let out = w.drain_with_env(&config, &env(), LIMIT);
    assert_eq!(status(&w, &next), "NOTIFIED", "{}", show(&out));
    assert!(
        note(&w, &next).contains("hubtriage:skip"),
        "{}",
        note(&w, &next)
    );
    assert!(
        w.mutating_calls("rds").is_empty(),
        "{:?}",
        w.mutating_calls("rds")
    );
    assert_eq!(protected(&member).await, Some(false));

    // Changed since: refused with both values named, nothing changed.
    w.neptune
        .modify_db_cluster()
        .db_cluster_identifier("un-b")
        .deletion_protection(false)
        .send()
        .await
        .unwrap();
    let id_b = change_id(&entries, "un-b", "DeletionProtection");
    let (code, _, err) = undo(&[&id_b, "--apply"]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("to true, but it is false now"), "{err}");

    // A snapshot is made public again only with --make-public.
    let id_s = change_id(&entries, "un-snap", "restore");
    let (code, _, err) = undo(&[&id_s, "--apply"]);
    assert_eq!(code, 64, "{err}");
    assert!(err.contains("--make-public"), "{err}");
    let (code, _, err) = undo(&[&id_s, "--apply", "--make-public"]);
    assert_eq!(code, 0, "{err}");
    let restore: Vec<String> = w
        .neptune
        .describe_db_cluster_snapshot_attributes()
        .db_cluster_snapshot_identifier("un-snap")
        .send()
        .await
        .unwrap()
        .db_cluster_snapshot_attributes_result()
        .unwrap()
        .db_cluster_snapshot_attributes()
        .iter()
        .flat_map(|a| a.attribute_values().to_vec())
        .collect();
    assert_eq!(restore, ["all"]);

    // Neptune.2: the earlier group and the export as they were; the group kept.
    let id_a = change_id(&entries, "un-audit", "EnableCloudwatchLogsExports");
    let (code, done, err) = undo(&[&id_a, "--apply", "--reason", "test"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        done.contains("hubtriage-audit-un-audit that hubtriage made is kept"),
        "{done}"
    );
    assert!(done.contains("a reboot is not undone"), "{done}");
    let after = w.cluster("un-audit").await;
    assert_eq!(
        after.db_cluster_parameter_group(),
        Some("default.neptune1.3")
    );
    assert!(!after
        .enabled_cloudwatch_logs_exports()
        .iter()
        .any(|l| l == "audit"));
    assert!(w.group_exists("hubtriage-audit-un-audit").await);
}
