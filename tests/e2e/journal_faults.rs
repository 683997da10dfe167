//! The change journal under faults, end to end:
//! - while the journal's writes are throttled, then refused (503), no
//!   change is made; once they can be written every fix is made once, with
//!   its entry, and no finding is lost;
//! - a daemon killed (SIGKILL) between a change's entry and its call leaves
//!   the entry `started`; the next task settles it from live state: `done`
//!   where the call was carried out, `failed` where it was not (and then
//!   makes the change itself, with an entry of its own).

use crate::controls::{finding_of, status, weak_cluster};
use crate::support;

use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use support::{show, wait_with_limit, World, WorldOptions, ACCOUNT};

const TABLE: &str = "hubtriage-journal";
const LIMIT: Duration = Duration::from_secs(150);

fn options() -> WorldOptions {
    WorldOptions {
        visibility_seconds: 5,
        max_receive_count: 20,
    }
}

fn apply_config(w: &World) -> std::path::PathBuf {
    w.config_with(
        "mode = \"apply\"\nreboot = \"immediate\"\nrecheck_seconds = 1",
        &format!("[journal]\ntable = \"{TABLE}\"\nsettle_after_seconds = 10\n"),
    )
}

/// ModifyDBCluster calls made (carried out by the emulator) per cluster.
fn modified(w: &World, cluster: &str) -> usize {
    w.emu
        .calls("rds", "ModifyDBCluster")
        .iter()
        .filter(|c| c["request"]["DBClusterIdentifier"] == cluster && c["status"] == 200)
        .count()
}

fn spawn(w: &World, config: &Path, args: &[&str]) -> Child {
    w.daemon(config, args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn no_change_is_made_while_its_entry_cannot_be_written_and_nothing_is_lost() {
    let w = World::new(options()).await;
    w.create_journal_table(TABLE).await;
    let clusters = ["jf-1", "jf-2", "jf-3"];
    let mut findings = Vec::new();
    for c in clusters {
        let arn = weak_cluster(&w.neptune, c).await;
        findings.push(finding_of(&w, "Neptune.4", ACCOUNT, &arn, c));
    }
    // The journal's new entries are throttled.
    w.emu.fault(json!({"service": "dynamodb", "operation": "PutItem", "request_contains": TABLE, "throttle": 100000}));
    w.import(&findings);
    let config = apply_config(&w);
    let daemon = spawn(&w, &config, &[]);
    std::thread::sleep(Duration::from_secs(8));
    for c in clusters {
        assert_eq!(
            modified(&w, c),
            0,
            "{c} changed while its entry could not be written"
        );
    }
    // Then the table is unavailable.
    w.emu.http("DELETE", "/_emu/faults", None);
    w.emu.fault(json!({"service": "dynamodb", "operation": "PutItem", "request_contains": TABLE, "error_code": "ServiceUnavailable", "status": 503, "count": 100000}));
    std::thread::sleep(Duration::from_secs(6));
    for c in clusters {
        assert_eq!(
            modified(&w, c),
            0,
            "{c} changed while its entry could not be written"
        );
    }
    let refused: Vec<String> = w
        .emu
        .calls("dynamodb", "PutItem")
        .iter()
        .map(|c| c["status"].to_string())
        .collect();
    assert!(
        refused.iter().any(|s| s == "400"),
        "the throttles hit: {refused:?}"
    );
    assert!(
        refused.iter().any(|s| s == "503"),
        "the 503s hit: {refused:?}"
    );
    // The table is back: every fix made once, journaled, nothing lost.
    w.emu.http("DELETE", "/_emu/faults", None);
    let deadline = Instant::now() + LIMIT;
    while findings.iter().any(|f| status(&w, f) != "RESOLVED") {
        assert!(
            Instant::now() < deadline,
            "the findings were not all resolved"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &daemon.id().to_string()])
        .status();
    let out = wait_with_limit(daemon, Duration::from_secs(60));
    let log = show(&out);
    assert!(
        log.contains("the change's journal entry cannot be written; the change is not made"),
        "{log}"
    );
    let entries = w.history(&config, &["--kind", "change"]);
    for c in clusters {
        assert_eq!(modified(&w, c), 1, "{c}: one change");
        assert_eq!(w.cluster(c).await.deletion_protection(), Some(true));
        let mine: Vec<&Value> = entries
            .iter()
            .filter(|e| {
                e["resource"]
                    .as_str()
                    .unwrap_or_default()
                    .ends_with(&format!(":{c}"))
            })
            .collect();
        assert_eq!(mine.len(), 1, "{c}: {mine:#?}");
        assert_eq!(mine[0]["result"], "done");
    }
    assert_eq!(w.depth(&w.queue_url).await, 0);
    assert_eq!(w.depth(&w.dlq_url).await, 0, "nothing dead-lettered");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_change_cut_off_by_kill_9_is_settled_from_live_state_by_the_next_task() {
    let w = World::new(options()).await;
    w.create_journal_table(TABLE).await;
    // kj-made: the call is carried out and its reply held back;
    // kj-lost: the call is held back, then dropped without being carried out.
    let made = weak_cluster(&w.neptune, "kj-made").await;
    let lost = weak_cluster(&w.neptune, "kj-lost").await;
    w.emu.fault(json!({"service": "rds", "operation": "ModifyDBCluster", "request_contains": "kj-made", "delay_ms": 60000, "after": true}));
    w.emu.fault(json!({"service": "rds", "operation": "ModifyDBCluster", "request_contains": "kj-lost", "delay_ms": 60000}));
    w.emu.fault(json!({"service": "rds", "operation": "ModifyDBCluster", "request_contains": "kj-lost", "reset": true}));
    let findings = vec![
        finding_of(&w, "Neptune.4", ACCOUNT, &made, "kj-made"),
        finding_of(&w, "Neptune.4", ACCOUNT, &lost, "kj-lost"),
    ];
    w.import(&findings);
    let config = apply_config(&w);
    let mut first = spawn(&w, &config, &[]);
    // Both entries are written `started`; the calls hang: kill -9 now.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let started = w
            .history(&config, &["--kind", "change"])
            .iter()
            .filter(|e| e["result"] == "started")
            .count();
        if started == 2 {
            break;
        }
        if Instant::now() > deadline {
            first.kill().unwrap();
            let out = first.wait_with_output().unwrap();
            panic!(
                "no started entries: {:#?}\n{}",
                w.history(&config, &[]),
                show(&out)
            );
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    first.kill().unwrap();
    first.wait().unwrap();
    let entries = w.history(&config, &["--kind", "change"]);
    assert!(
        entries.iter().all(|e| e["result"] == "started"),
        "{entries:#?}"
    );
    let id_of = |name: &str| -> String {
        entries
            .iter()
            .find(|e| e["resource"].as_str().unwrap_or_default().ends_with(name))
            .and_then(|e| e["id"].as_str())
            .unwrap()
            .to_string()
    };
    let (made_id, lost_id) = (id_of(":kj-made"), id_of(":kj-lost"));

    // The next task settles them from live state (once they are older than
    // settle_after_seconds), and finishes the job.
    std::thread::sleep(Duration::from_secs(10));
    let out = w.drain(&config, LIMIT);
    for f in &findings {
        assert_eq!(status(&w, f), "RESOLVED", "{}", show(&out));
    }
    let entries = w.history(&config, &["--kind", "change"]);
    let get = |id: &str| entries.iter().find(|e| e["id"] == id).cloned().unwrap();
    assert_eq!(get(&made_id)["result"], "done", "{:#?}", get(&made_id));
    let lost_entry = get(&lost_id);
    assert_eq!(lost_entry["result"], "failed", "{lost_entry:#?}");
    assert!(
        lost_entry["error"]
            .as_str()
            .unwrap_or_default()
            .contains("settled from live state"),
        "{lost_entry:#?}"
    );
    let redone: Vec<&Value> = entries
        .iter()
        .filter(|e| e["resource"] == lost.as_str() && e["result"] == "done")
        .collect();
    assert_eq!(
        redone.len(),
        1,
        "kj-lost fixed by the next task: {entries:#?}"
    );
    assert!(
        !entries
            .iter()
            .any(|e| e["resource"] == made.as_str() && e["id"] != made_id.as_str()),
        "kj-made was not changed again: {entries:#?}"
    );
    assert_eq!(w.cluster("kj-lost").await.deletion_protection(), Some(true));
    assert_eq!(w.cluster("kj-made").await.deletion_protection(), Some(true));
}
