//! The webhook sink against a loopback receiver that records each request and
//! answers from a script.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use std::io::Write;

use super::*;
use crate::decide::Action;

const SECRET: &str = "s3cr3t-webhook-value";

/// (headers lowercased, body) of each request received.
type Seen = Arc<Mutex<Vec<(Vec<(String, String)>, Vec<u8>)>>>;

/// A receiver answering each request with the next (status, extra headers,
/// body) of `script`, and the last one after that.
async fn receiver(script: Vec<(u16, &'static str, &'static str)>) -> (String, Seen) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let seen: Seen = Arc::default();
    let log = seen.clone();
    std::thread::spawn(move || {
        for (n, stream) in listener.incoming().enumerate() {
            let Ok(mut socket) = stream else { return };
            let (head, body) = crate::testing::read_http_request(&mut socket);
            let headers = head
                .lines()
                .skip(1)
                .filter_map(|l| l.split_once(':'))
                .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
                .collect();
            log.lock().unwrap().push((headers, body));
            let (status, extra, body) = script[n.min(script.len() - 1)];
            let reply = format!(
                "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n{extra}\r\n{body}",
                body.len()
            );
            let _ = socket.write_all(reply.as_bytes());
        }
    });
    (url, seen)
}

fn decision(finding: &str) -> Decision {
    crate::testing::ticket_decision(finding)
}

fn sink(url: &str) -> WebhookTickets {
    let http = crate::act::ticket::http::Http::new("webhook", "secret_env")
        .unwrap()
        .with_first_backoff(Duration::from_millis(10));
    WebhookTickets::new(url, SECRET, http)
}

#[tokio::test]
async fn a_ticket_is_one_signed_post_naming_its_problem() {
    let (url, seen) = receiver(vec![(
        201,
        "",
        r#"{"ticket":"WH-7","url":"https://tickets.example/WH-7"}"#,
    )])
    .await;
    let t = sink(&url)
        .open(&decision("a"), Some("MEDIUM"), None)
        .await
        .unwrap();
    assert_eq!(t.key.as_deref(), Some("WH-7"));
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 1);
    let (headers, body) = &seen[0];
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    assert_eq!(header("content-type"), "application/json");
    // The receiver can check the body came from hubtriage.
    assert_eq!(
        header("x-hubtriage-signature"),
        WebhookTickets::signature(SECRET.as_bytes(), body)
    );
    assert!(header("x-hubtriage-signature").starts_with("sha256="));
    let doc: serde_json::Value = serde_json::from_slice(body).unwrap();
    assert_eq!(doc["event"], "open");
    assert_eq!(
        doc["problem_key"],
        Problem::of(&decision("a")).unwrap().key()
    );
    assert_eq!(doc["severity"], "MEDIUM");
    assert!(doc["finding_url"]
        .as_str()
        .unwrap()
        .starts_with("https://us-east-1.console.aws.amazon.com/"));
    assert!(doc["fix"].as_array().is_some_and(|f| !f.is_empty()));
    // The secret is never sent.
    assert!(!String::from_utf8_lossy(body).contains(SECRET));
}

#[tokio::test]
async fn findings_of_one_problem_share_one_ticket() {
    let (url, seen) = receiver(vec![(200, "", r#"{"ticket":"WH-1"}"#)]).await;
    let s = Arc::new(sink(&url));
    // The consolidated and the standard-specific finding of one cluster, at once.
    let (first, second) = (decision("consolidated"), decision("standard-specific"));
    let (a, b) = tokio::join!(s.open(&first, None, None), s.open(&second, None, None));
    assert_eq!(a.unwrap().key.as_deref(), Some("WH-1"));
    assert_eq!(b.unwrap().key.as_deref(), Some("WH-1"));
    // And a duplicate delivery later.
    s.open(&decision("consolidated"), None, None).await.unwrap();
    assert_eq!(seen.lock().unwrap().len(), 1, "one POST for one problem");
    // Another cluster is another problem.
    let mut other = decision("x");
    other.cluster = Some("billing-graph".into());
    s.open(&other, None, None).await.unwrap();
    assert_eq!(seen.lock().unwrap().len(), 2);
}

#[tokio::test]
async fn a_busy_receiver_is_retried_after_its_retry_after() {
    let (url, seen) = receiver(vec![
        (429, "retry-after: 0\r\n", "{}"),
        (503, "", "{}"),
        (200, "", "not json: no ticket named"),
    ])
    .await;
    let t = sink(&url).open(&decision("a"), None, None).await.unwrap();
    // No ticket named: the problem key stands for it.
    assert_eq!(t.key, Some(Problem::of(&decision("a")).unwrap().key()));
    assert_eq!(seen.lock().unwrap().len(), 3);
}

#[tokio::test]
async fn a_refusal_is_an_error_naming_what_to_check_and_nothing_secret() {
    let (url, seen) = receiver(vec![(401, "", "{}")]).await;
    let s = sink(&url);
    let e = s.open(&decision("a"), None, None).await.unwrap_err();
    let text = e.to_string();
    assert!(
        text.contains("401") && text.contains("[ticket] secret_env"),
        "{text}"
    );
    assert!(!text.contains(SECRET));
    assert_eq!(
        seen.lock().unwrap().len(),
        1,
        "a refusal is not retried here"
    );
    // Not remembered as opened: the next delivery tries again.
    s.open(&decision("a"), None, None).await.unwrap_err();
    assert_eq!(seen.lock().unwrap().len(), 2);
}

#[tokio::test]
async fn a_passing_problem_is_resolved_once_and_a_regression_opens_again() {
    let (url, seen) = receiver(vec![(200, "", r#"{"ticket":"WH-1"}"#)]).await;
    let s = sink(&url);
    s.open(&decision("a"), None, None).await.unwrap();
    let mut passed = decision("a");
    passed.action = Action::Ignore;
    passed.reason = "The compliance status is PASSED, not FAILED.".into();
    s.resolve(&passed, "WH-1", OnResolve::Close).await.unwrap();
    // Its events repeat (the consolidated and the standard-specific finding).
    s.resolve(&passed, "WH-1", OnResolve::Close).await.unwrap();
    {
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 2, "open, then one resolve");
        let doc: serde_json::Value = serde_json::from_slice(&seen[1].1).unwrap();
        assert_eq!(doc["event"], "resolve");
        assert_eq!(doc["ticket"], "WH-1");
        assert_eq!(doc["on_resolve"], "close");
        assert_eq!(doc["problem_key"], Problem::of(&passed).unwrap().key());
    }
    // Failing again: the problem's ticket is opened (or reopened) again.
    s.open(&decision("a"), None, None).await.unwrap();
    assert_eq!(seen.lock().unwrap().len(), 3);
    // on_resolve = "nothing": the ticket is left alone.
    s.resolve(&passed, "WH-1", OnResolve::Nothing)
        .await
        .unwrap();
    assert_eq!(seen.lock().unwrap().len(), 3);
}
