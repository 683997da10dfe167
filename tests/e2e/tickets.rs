//! Tickets end to end: `hubtriage run` against the emulators with `[ticket]
//! type = "webhook"` (a loopback receiver written here) and `"jira"`,
//! `"jira-dc"` and `"servicenow"` (the loopback fakes of
//! `tests/emulator/ticketfakes.py`, which reject what the real servers reject).

use crate::support;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

use support::{jira_table, show, ClusterSpec, TicketFakes, World, WorldOptions, JIRA_ENV};

const SECRET_ENV: &str = "HUBTRIAGE_TEST_WEBHOOK_SECRET";
const SECRET: &str = "whsec-9b1f-loopback-only";

/// One request the receiver got: its signature header and its body.
type Seen = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

/// A webhook receiver on 127.0.0.1 that records each POST and answers
/// `{"ticket": "WH-<n>"}`, counting from 1.
fn receiver() -> (String, Seen) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let seen: Seen = Arc::default();
    let log = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { return };
            let mut buf = Vec::new();
            let mut chunk = [0u8; 8192];
            let (head_end, length) = loop {
                let n = s.read(&mut chunk).unwrap_or(0);
                if n == 0 {
                    break (0, 0);
                }
                buf.extend_from_slice(&chunk[..n]);
                if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    let head = String::from_utf8_lossy(&buf[..end]).to_lowercase();
                    let length = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse::<usize>().ok())
                        .unwrap_or(0);
                    break (end + 4, length);
                }
            };
            if head_end == 0 {
                continue;
            }
            while buf.len() < head_end + length {
                let n = s.read(&mut chunk).unwrap_or(0);
                if n == 0 {
                    break;
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
            let signature = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("x-hubtriage-signature")
                        .then(|| v.trim().to_string())
                })
                .unwrap_or_default();
            let body = buf[head_end..(head_end + length).min(buf.len())].to_vec();
            let n = {
                let mut log = log.lock().unwrap();
                log.push((signature, body));
                log.len()
            };
            let reply = format!("{{\"ticket\":\"WH-{n}\"}}");
            let _ = write!(
                s,
                "HTTP/1.1 201 Created\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{reply}",
                reply.len()
            );
        }
    });
    (url, seen)
}

fn signature(body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(body);
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256={hex}")
}

fn webhook_table(url: &str) -> String {
    format!("\n[ticket]\ntype = \"webhook\"\nurl = \"{url}\"\nsecret_env = \"{SECRET_ENV}\"\n")
}

#[tokio::test(flavor = "multi_thread")]
async fn one_signed_ticket_per_problem_and_the_findings_name_it() {
    let w = World::new(WorldOptions {
        visibility_seconds: 30,
        max_receive_count: 5,
    })
    .await;
    for id in ["orders", "billing"] {
        w.create_cluster(ClusterSpec {
            id,
            tags: &[("env", "prod")],
            members: 1,
            ..Default::default()
        })
        .await;
    }
    // The consolidated and a standard-specific finding of `orders`; one of `billing`.
    let findings = orders_twice_and_billing(&w);
    w.import(&findings);
    let (url, seen) = receiver();

    let out = w.drain_with_env(
        &w.config(&webhook_table(&url)),
        &[(SECRET_ENV, SECRET)],
        Duration::from_secs(120),
    );

    // One POST per problem, each signed with the secret.
    let seen_handle = seen.clone();
    let seen = seen_now(&seen);
    assert_eq!(seen.len(), 2, "{}", show(&out));
    let mut keys = Vec::new();
    for (sig, body) in &seen {
        assert_eq!(
            sig,
            &signature(body),
            "signature of {}",
            String::from_utf8_lossy(body)
        );
        let doc: Value = serde_json::from_slice(body).unwrap();
        assert_eq!(doc["event"], "open");
        assert_eq!(doc["control"], "Neptune.2");
        keys.push(doc["problem_key"].as_str().unwrap().to_string());
        assert!(!String::from_utf8_lossy(body).contains(SECRET));
    }
    assert_ne!(keys[0], keys[1]);

    // Every finding is NOTIFIED and names its problem's ticket.
    let mut tickets = Vec::new();
    for f in &findings {
        let got = w.stored(f["Id"].as_str().unwrap());
        assert_eq!(got["Workflow"]["Status"], "NOTIFIED", "{got}");
        let ticket = got["UserDefinedFields"]["hubtriage:ticket"]
            .as_str()
            .unwrap_or("")
            .to_string();
        assert!(ticket.starts_with("WH-"), "{got}");
        assert!(
            got["Note"]["Text"].as_str().unwrap_or("").contains(&ticket),
            "{got}"
        );
        tickets.push(ticket);
    }
    assert_eq!(
        tickets[0], tickets[1],
        "one ticket for the two findings of orders"
    );
    assert_ne!(tickets[0], tickets[2]);
    // The problem key of orders: the one of the POST whose ticket the orders findings name.
    let n: usize = tickets[0].trim_start_matches("WH-").parse().unwrap();
    let keys_of_orders = keys[n - 1].clone();

    // The secret is never logged.
    assert!(!String::from_utf8_lossy(&out.stdout).contains(SECRET));
    assert!(!String::from_utf8_lossy(&out.stderr).contains(SECRET));

    // Security Hub evaluates orders again and it passes: its ticket is resolved.
    w.import(&[evaluated(&findings[0], "PASSED")]);
    let out = w.drain_with_env(
        &w.config(&webhook_table(&url)),
        &[(SECRET_ENV, SECRET)],
        Duration::from_secs(120),
    );
    let all = seen_now(&seen_handle);
    let resolves: Vec<Value> = all
        .iter()
        .map(|(_, body)| serde_json::from_slice::<Value>(body).unwrap())
        .filter(|d| d["event"] == "resolve")
        .collect();
    assert_eq!(resolves.len(), 1, "{}", show(&out));
    assert_eq!(resolves[0]["ticket"], json!(tickets[0]));
    assert_eq!(resolves[0]["on_resolve"], "close");
    assert_eq!(resolves[0]["problem_key"], json!(keys_of_orders));
    assert!(all.iter().all(|(sig, body)| sig == &signature(body)));
}

/// The consolidated and a standard-specific finding of `orders`, and the
/// consolidated one of `billing`.
fn orders_twice_and_billing(w: &World) -> Vec<Value> {
    [
        ("orders", "consolidated"),
        ("orders", "fsbp"),
        ("billing", "consolidated"),
    ]
    .into_iter()
    .map(|(cluster, suffix)| w.finding_as(cluster, suffix))
    .collect()
}

/// `f` as Security Hub's next evaluation reports it: `compliance` now.
fn evaluated(f: &Value, compliance: &str) -> Value {
    let mut f = f.clone();
    f["Compliance"]["Status"] = json!(compliance);
    let now = chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string();
    f["UpdatedAt"] = json!(now);
    f["LastObservedAt"] = json!(now);
    f
}

fn seen_now(seen: &Seen) -> Vec<(String, Vec<u8>)> {
    seen.lock().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_secret_variable_stops_run_with_exit_64_naming_it() {
    let w = World::new(WorldOptions {
        visibility_seconds: 30,
        max_receive_count: 5,
    })
    .await;
    let out = w
        .daemon(
            &w.config(&webhook_table("http://127.0.0.1:9/hook")),
            &["--until-empty"],
        )
        .env_remove(SECRET_ENV)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(SECRET_ENV),
        "{}",
        show(&out)
    );
    // The same for each tracker's credentials: the first missing one is named.
    for (table, set, missing) in [
        (
            jira_table("jira", "http://127.0.0.1:9"),
            JIRA_ENV[0],
            JIRA_ENV[1].0,
        ),
        (
            jira_table("jira-dc", "http://127.0.0.1:9"),
            ("UNUSED", "x"),
            JIRA_DC_ENV[0].0,
        ),
        (
            servicenow_table("http://127.0.0.1:9"),
            SN_ENV[0],
            SN_ENV[1].0,
        ),
    ] {
        let out = w
            .daemon(&w.config(&table), &["--until-empty"])
            .env(set.0, set.1)
            .env_remove(missing)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(64), "{}", show(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(missing), "{}", show(&out));
        assert!(!stderr.contains(set.1) || set.1 == "x", "{}", show(&out));
    }
}

// ---- Jira Cloud, Jira Data Center, ServiceNow ---------------------------------

const JIRA_DC_ENV: [(&str, &str); 1] = [("HT_TEST_JIRA_PAT", support::JIRA_DC_PAT)];
const SN_ENV: [(&str, &str); 2] = [
    ("HT_TEST_SN_USER", support::SN_USER),
    ("HT_TEST_SN_PASSWORD", support::SN_PASSWORD),
];

fn servicenow_table(url: &str) -> String {
    format!(
        "\n[ticket]\ntype = \"servicenow\"\nurl = \"{url}\"\nuser_env = \"HT_TEST_SN_USER\"\npassword_env = \"HT_TEST_SN_PASSWORD\"\nassignment_group = \"Cloud Security\"\ncategory = \"security\"\n"
    )
}

/// A world with prod clusters (decision: ticket) whose messages come back soon.
async fn ticket_world(clusters: &[&str]) -> World {
    let w = World::new(WorldOptions {
        visibility_seconds: 4,
        max_receive_count: 10,
    })
    .await;
    for id in clusters {
        w.create_cluster(ClusterSpec {
            id,
            tags: &[("env", "prod")],
            members: 1,
            ..Default::default()
        })
        .await;
    }
    w
}

/// The ticket a stored finding names, checking it is NOTIFIED and its note
/// names the ticket and its URL.
fn notified_ticket(w: &World, f: &Value, url_part: &str) -> String {
    let got = w.stored(f["Id"].as_str().unwrap());
    assert_eq!(got["Workflow"]["Status"], "NOTIFIED", "{got}");
    let ticket = got["UserDefinedFields"]["hubtriage:ticket"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let note = got["Note"]["Text"].as_str().unwrap_or_default();
    assert!(
        note.contains(&ticket) && note.contains(url_part),
        "{ticket}: {note}"
    );
    ticket
}

/// No secret in the run's output or in the findings' notes.
fn assert_no_secret(w: &World, out: &std::process::Output, findings: &[Value], secrets: &[&str]) {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    for secret in secrets {
        assert!(!stdout.contains(secret) && !stderr.contains(secret));
        for f in findings {
            assert!(!w
                .stored(f["Id"].as_str().unwrap())
                .to_string()
                .contains(secret));
        }
    }
}

fn statuses(fakes: &TicketFakes, system: &str) -> Vec<u64> {
    fakes.state(system)["requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_u64().unwrap_or(0))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn jira_cloud_one_issue_per_problem_through_429s_a_lost_create_and_search_lag() {
    let w = ticket_world(&["orders", "billing"]).await;
    let fakes = TicketFakes::start();
    let url = fakes.url("jira");
    // Busy, a create whose reply is lost after it was written, and a search
    // that does not see new issues for 5 s.
    fakes.faults(
        "jira",
        json!({"rate_limit": 6, "retry_after": 1, "fail_after_write": 1, "search_lag_seconds": 5}),
    );
    let findings = orders_twice_and_billing(&w);
    w.import(&findings);
    // A duplicate delivery of billing's event.
    w.import(&findings[2..]);
    let config = w.config(&jira_table("jira", &url));
    let out = w.drain_with_env(&config, &JIRA_ENV, Duration::from_secs(180));

    let issues = fakes.state("jira")["issues"].as_array().unwrap().clone();
    assert_eq!(issues.len(), 2, "one issue per problem: {}", show(&out));
    let seen = statuses(&fakes, "jira");
    assert!(seen.contains(&429) && seen.contains(&502), "{seen:?}");
    for issue in &issues {
        let labels = issue["fields"]["labels"].as_array().unwrap();
        assert!(labels.contains(&json!("security-hub")), "{issue}");
        assert!(labels
            .iter()
            .any(|l| l.as_str().unwrap().starts_with("hubtriage-")));
        assert_eq!(issue["fields"]["priority"]["name"], "Medium");
        assert_eq!(issue["fields"]["description"]["type"], "doc");
    }
    let tickets: Vec<String> = findings
        .iter()
        .map(|f| notified_ticket(&w, f, &format!("{url}/browse/")))
        .collect();
    assert_eq!(
        tickets[0], tickets[1],
        "the two findings of orders share one"
    );
    assert_ne!(tickets[0], tickets[2]);
    assert_no_secret(&w, &out, &findings, &[support::JIRA_API_TOKEN]);

    // orders passes: its issue gets a comment and the Done transition.
    w.import(&[evaluated(&findings[0], "PASSED")]);
    let out = w.drain_with_env(&config, &JIRA_ENV, Duration::from_secs(120));
    let issue_of = |key: &str| {
        fakes.state("jira")["issues"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["key"] == json!(key))
            .cloned()
            .unwrap()
    };
    let orders = issue_of(&tickets[0]);
    assert_eq!(orders["fields"]["status"]["name"], "Done", "{}", show(&out));
    assert!(!orders["comments"].as_array().unwrap().is_empty());

    // It fails again within 30 days: the same issue is reopened, none created.
    w.import(&[evaluated(&findings[0], "FAILED")]);
    let out = w.drain_with_env(&config, &JIRA_ENV, Duration::from_secs(120));
    assert_eq!(
        issue_of(&tickets[0])["fields"]["status"]["name"],
        "To Do",
        "{}",
        show(&out)
    );
    assert_eq!(fakes.state("jira")["issues"].as_array().unwrap().len(), 2);
    assert_eq!(notified_ticket(&w, &findings[0], "/browse/"), tickets[0]);
    assert_no_secret(&w, &out, &findings, &[support::JIRA_API_TOKEN]);
    // Passes again, and its issue stays closed for 40 days: failing once more
    // opens a new issue that names the old one (reopen_within_days = 30).
    w.import(&[evaluated(&findings[0], "PASSED")]);
    w.drain_with_env(&config, &JIRA_ENV, Duration::from_secs(120));
    assert_eq!(issue_of(&tickets[0])["fields"]["status"]["name"], "Done");
    fakes.control("jira", "age", json!({"key": tickets[0], "days": 40}));
    w.import(&[evaluated(&findings[0], "FAILED")]);
    let out = w.drain_with_env(&config, &JIRA_ENV, Duration::from_secs(120));
    let successor = notified_ticket(&w, &findings[0], "/browse/");
    assert_ne!(successor, tickets[0], "{}", show(&out));
    assert_eq!(fakes.state("jira")["issues"].as_array().unwrap().len(), 3);
    assert_eq!(issue_of(&tickets[0])["fields"]["status"]["name"], "Done");
    assert!(issue_of(&successor)["fields"]["description"]
        .to_string()
        .contains(&tickets[0]));

    // Nor in the decision events ([events] bus).
    let events = w.take_all(&w.decisions_url).await;
    assert!(!events.is_empty());
    assert!(events
        .iter()
        .all(|e| !e.contains(support::JIRA_API_TOKEN) && !e.contains(support::JIRA_EMAIL)));
}

#[tokio::test(flavor = "multi_thread")]
async fn jira_data_center_tickets_are_wiki_text_and_a_refused_token_keeps_the_message() {
    let w = ticket_world(&["orders"]).await;
    let fakes = TicketFakes::start();
    let url = fakes.url("jira-dc");
    let config = w.config(&jira_table("jira-dc", &url));
    let finding = w.finding("orders", |_| {});
    w.import(std::slice::from_ref(&finding));

    // A wrong token: 401, counted by status, a log line naming the key to fix;
    // the message is never deleted (after its receives it is in the DLQ).
    let wrong = World::new(WorldOptions {
        visibility_seconds: 2,
        max_receive_count: 2,
    })
    .await;
    wrong
        .create_cluster(ClusterSpec {
            id: "orders",
            tags: &[("env", "prod")],
            members: 1,
            ..Default::default()
        })
        .await;
    wrong.import(std::slice::from_ref(&wrong.finding("orders", |_| {})));
    let out = wrong.drain_with_env(
        &wrong.config(&jira_table("jira-dc", &url)),
        &[("HT_TEST_JIRA_PAT", "not-the-token")],
        Duration::from_secs(120),
    );
    let by_status: u64 = support::log_lines(&out)
        .iter()
        .filter(|l| l["Status"] == "401")
        .map(|l| l["TicketErrors"].as_u64().unwrap_or(0))
        .sum();
    assert!(by_status >= 1, "{}", show(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("[ticket] token_env"));
    assert_eq!(wrong.take_all(&wrong.dlq_url).await.len(), 1);
    assert!(!String::from_utf8_lossy(&out.stdout).contains("not-the-token"));

    // The right token: one issue whose description is a string.
    let out = w.drain_with_env(&config, &JIRA_DC_ENV, Duration::from_secs(120));
    let issues = fakes.state("jira-dc")["issues"].as_array().unwrap().clone();
    assert_eq!(issues.len(), 1, "{}", show(&out));
    let description = issues[0]["fields"]["description"].as_str().unwrap();
    assert!(
        description.contains("orders") && description.contains("neptune\\_enable\\_audit\\_log")
    );
    let key = notified_ticket(&w, &finding, &format!("{url}/browse/"));
    assert_eq!(issues[0]["key"], json!(key));

    w.import(&[evaluated(&finding, "PASSED")]);
    let out = w.drain_with_env(&config, &JIRA_DC_ENV, Duration::from_secs(120));
    let issue = &fakes.state("jira-dc")["issues"][0];
    assert_eq!(issue["fields"]["status"]["name"], "Done", "{}", show(&out));
    assert_no_secret(&w, &out, &[finding], &[support::JIRA_DC_PAT]);
}

#[tokio::test(flavor = "multi_thread")]
async fn servicenow_one_incident_resolved_reopened_and_succeeded_once_closed() {
    let w = ticket_world(&["orders"]).await;
    let fakes = TicketFakes::start();
    let url = fakes.url("servicenow");
    fakes.faults(
        "servicenow",
        json!({"rate_limit": 2, "retry_after": 1, "fail_after_write": 1}),
    );
    let config = w.config(&servicenow_table(&url));
    let finding = w.finding("orders", |_| {});
    w.import(std::slice::from_ref(&finding));
    let out = w.drain_with_env(&config, &SN_ENV, Duration::from_secs(120));

    let incidents = fakes.state("servicenow")["incidents"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(
        incidents.len(),
        1,
        "the lost create is found: {}",
        show(&out)
    );
    let incident = &incidents[0];
    assert!(incident["correlation_id"]
        .as_str()
        .unwrap()
        .starts_with("hubtriage-"));
    assert_eq!(incident["correlation_display"], "hubtriage");
    assert_eq!(
        (incident["urgency"].as_str(), incident["impact"].as_str()),
        (Some("2"), Some("2"))
    );
    assert!(incident["short_description"]
        .as_str()
        .unwrap()
        .contains("orders"));
    let number = notified_ticket(&w, &finding, &format!("{url}/incident.do?sys_id="));
    assert_eq!(incident["number"], json!(number));
    let state = |n: &str| {
        fakes.state("servicenow")["incidents"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["number"] == json!(n))
            .cloned()
            .unwrap()
    };

    // Passes: Resolved with the close code and notes the data policy asks for.
    w.import(&[evaluated(&finding, "PASSED")]);
    let out = w.drain_with_env(&config, &SN_ENV, Duration::from_secs(120));
    let resolved = state(&number);
    assert_eq!(resolved["state"], "6", "{}", show(&out));
    assert_eq!(resolved["close_code"], "Solution provided");
    assert!(!resolved["close_notes"].as_str().unwrap().is_empty());

    // Fails again: the Resolved incident goes back to In Progress.
    w.import(&[evaluated(&finding, "FAILED")]);
    let out = w.drain_with_env(&config, &SN_ENV, Duration::from_secs(120));
    assert_eq!(state(&number)["state"], "2", "{}", show(&out));

    // Resolved, then Closed by the instance: a regression opens a new
    // incident that names the old one.
    w.import(&[evaluated(&finding, "PASSED")]);
    w.drain_with_env(&config, &SN_ENV, Duration::from_secs(120));
    fakes.control("servicenow", "close", json!({"number": number}));
    w.import(&[evaluated(&finding, "FAILED")]);
    let out = w.drain_with_env(&config, &SN_ENV, Duration::from_secs(120));
    let incidents = fakes.state("servicenow")["incidents"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(incidents.len(), 2, "{}", show(&out));
    let successor = notified_ticket(&w, &finding, "/incident.do?sys_id=");
    assert_ne!(successor, number);
    assert!(state(&successor)["description"]
        .as_str()
        .unwrap()
        .contains(&number));
    assert_no_secret(&w, &out, &[finding], &[support::SN_PASSWORD]);
}

#[tokio::test(flavor = "multi_thread")]
async fn two_daemons_on_one_queue_open_one_issue_per_problem_through_the_coordination_table() {
    let clusters = ["c1", "c2", "c3", "c4", "c5", "c6"];
    let w = ticket_world(&clusters).await;
    w.create_coordination_table("hubtriage-state").await;
    let fakes = TicketFakes::start();
    // Search never shows a new issue during the run: only the table can tell
    // one daemon what the other created.
    fakes.faults("jira", json!({"search_lag_seconds": 300}));
    // Four findings per cluster (the consolidated one, standard-specific ones),
    // interleaved so that both daemons get findings of every cluster.
    let mut findings = Vec::new();
    for suffix in ["consolidated", "fsbp", "cis", "pci"] {
        for cluster in clusters {
            findings.push(w.finding_as(cluster, suffix));
        }
    }
    w.import(&findings);
    let config = w.config(&format!(
        "{}\n[coordination]\ntable = \"hubtriage-state\"\nlease_seconds = 10\n",
        jira_table("jira", &fakes.url("jira"))
    ));
    let outs = w.drain_with_daemons(2, &config, &JIRA_ENV, Duration::from_secs(240));
    let both = || outs.iter().map(show).collect::<Vec<_>>().join("\n----\n");
    let worked: Vec<u64> = outs
        .iter()
        .map(|o| support::emf_total(o, "FindingsReceived"))
        .collect();
    assert!(
        worked.iter().all(|n| *n > 0),
        "both daemons worked: {worked:?}"
    );

    let issues = fakes.state("jira")["issues"].as_array().unwrap().len();
    assert_eq!(issues, clusters.len(), "one issue per problem: {}", both());
    for (i, f) in findings.iter().enumerate() {
        let ticket = notified_ticket(&w, f, "/browse/");
        let first = notified_ticket(&w, &findings[i % clusters.len()], "/browse/");
        assert_eq!(ticket, first, "the findings of one cluster share its issue");
    }
}
