//! Tickets end to end: `hubtriage run` with `[ticket] type = "webhook"` against
//! the emulators and a loopback webhook receiver written here.

mod support;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

use support::{show, ClusterSpec, World, WorldOptions};

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
    let mut findings = Vec::new();
    for (cluster, suffix) in [
        ("orders", "consolidated"),
        ("orders", "fsbp"),
        ("billing", "consolidated"),
    ] {
        findings.push(w.finding(cluster, |f| {
            let id = format!("{}-{suffix}", f["Id"].as_str().unwrap());
            f["Id"] = json!(id);
        }));
    }
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
    let mut passing = findings[0].clone();
    passing["Compliance"]["Status"] = json!("PASSED");
    let now = chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string();
    passing["UpdatedAt"] = json!(now);
    passing["LastObservedAt"] = json!(now);
    w.import(&[passing]);
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
}
