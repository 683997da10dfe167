//! Hostile message bodies (issue "two replicas, crashes and hostile input"):
//! each gives a typed error naming what was wrong (the daemon's DLQ path) or a
//! finding that is decided `ignore`, never a panic, and never a decision that
//! reaches an account outside scope. The daemon's handling of an unparseable
//! body (never deleted, so it lands in the DLQ) is `tests/daemon_e2e.rs`'s
//! `a_malformed_body_is_never_deleted_and_lands_in_the_dlq`.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use hubtriage::config::Config;
use hubtriage::decide::{decide, AccountReach, Action};
use hubtriage::finding::{parse_event, ParseError};

const SAMPLE: &str = include_str!("../fixtures/neptune2-failed-event.json");
/// SQS's largest message.
const SQS_MAX: usize = 256 * 1024;

fn sample() -> Value {
    serde_json::from_str(SAMPLE).unwrap()
}

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-26T12:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

/// Parses `body` within a second, without a panic.
fn parse(body: &[u8]) -> Result<Vec<hubtriage::finding::Finding>, ParseError> {
    let started = Instant::now();
    let parsed = parse_event(body);
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "parsing {} bytes took {:?}",
        body.len(),
        started.elapsed()
    );
    parsed
}

fn error_of(body: &[u8]) -> String {
    match parse(body) {
        Ok(f) => panic!("expected an error, parsed {} findings", f.len()),
        Err(e) => e.to_string(),
    }
}

#[test]
fn empty_non_json_and_invalid_utf8_are_not_json() {
    for body in [
        &b""[..],
        b"   ",
        b"hello",
        b"{\"source\": ",
        b"\xff\xfe\x00{}",
        b"{\"source\": \"aws.securityhub\xc3\x28\"}",
    ] {
        let e = error_of(body);
        assert!(e.starts_with("not JSON"), "{e}");
    }
}

#[test]
fn wrong_shapes_name_the_path() {
    for (body, path) in [
        (json!([]), "expected an object"),
        (json!(42), "expected an object"),
        (json!({}), "source: missing"),
        (json!({"source": "aws.securityhub"}), "detail-type: missing"),
        (
            json!({"source": "aws.securityhub", "detail-type": "Security Hub Findings - Imported"}),
            "detail: missing",
        ),
        (
            json!({"source": "aws.securityhub", "detail-type": "Security Hub Findings - Imported", "detail": {"findings": {}}}),
            "detail.findings: expected an array",
        ),
    ] {
        let e = error_of(body.to_string().as_bytes());
        assert!(e.contains(path), "{path}: {e}");
    }
}

#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    let deep = "[".repeat(SQS_MAX);
    assert!(error_of(deep.as_bytes()).starts_with("not JSON"));
    let mut v = sample();
    let mut nested = json!("x");
    for _ in 0..100 {
        nested = json!({ "a": nested });
    }
    v["detail"]["findings"][0]["ProductFields"]["deep"] = nested;
    // Within serde_json's depth limit: parsed; the extra field is ignored.
    assert_eq!(parse(v.to_string().as_bytes()).unwrap().len(), 1);
}

#[test]
fn a_message_of_sqs_size_parses_in_time() {
    // One finding whose description fills the message.
    let mut v = sample();
    let room = SQS_MAX - v.to_string().len() - 16;
    v["detail"]["findings"][0]["Description"] = json!("d".repeat(room));
    let body = v.to_string();
    assert!(body.len() <= SQS_MAX);
    assert_eq!(parse(body.as_bytes()).unwrap().len(), 1);

    // As many findings as fit: all parsed, each on its own.
    let finding = sample()["detail"]["findings"][0].clone();
    let each = finding.to_string().len() + 1;
    let mut v = sample();
    let many: Vec<Value> = (0..SQS_MAX / each)
        .map(|n| {
            let mut f = finding.clone();
            f["Id"] = json!(format!("{}-{n}", f["Id"].as_str().unwrap()));
            f
        })
        .collect();
    let count = many.len();
    v["detail"]["findings"] = Value::Array(many);
    assert_eq!(parse(v.to_string().as_bytes()).unwrap().len(), count);

    // A findings array of a hundred thousand small wrong values: one error.
    let mut v = sample();
    v["detail"]["findings"] = Value::Array(vec![json!(0); 100_000]);
    let e = error_of(v.to_string().as_bytes());
    assert!(e.contains("detail.findings[0]"), "{e}");
}

/// Every top-level field of `event`'s finding set to each wrong JSON type:
/// an error naming the field, or a finding decided without reaching out of scope.
fn assert_wrong_types_are_errors_or_in_scope(event: &Value) {
    let finding = event["detail"]["findings"][0].clone();
    let keys: Vec<String> = finding.as_object().unwrap().keys().cloned().collect();
    let config = Config::from_toml_with_env("t.toml", "", vec![]).unwrap();
    let reach = AccountReach::own("111122223333");
    for key in &keys {
        for wrong in [
            json!(null),
            json!(7),
            json!(true),
            json!([1]),
            json!({"x": 1}),
            json!(""),
        ] {
            let mut v = event.clone();
            v["detail"]["findings"][0][key] = wrong.clone();
            match parse(v.to_string().as_bytes()) {
                Err(e) => {
                    let text = e.to_string();
                    assert!(text.contains(key.as_str()), "{key} = {wrong}: {text}");
                }
                Ok(findings) => {
                    // Accepted: it must still decide without reaching out of scope.
                    for f in &findings {
                        let d = decide(f, None, &config, &reach, now());
                        if d.action != Action::Ignore {
                            assert_eq!(d.account, "111122223333", "{key} = {wrong}");
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn wrong_types_in_every_field_are_errors_or_ignored_findings() {
    assert_wrong_types_are_errors_or_in_scope(&sample());
}

#[test]
fn control_characters_and_huge_strings_in_repeated_fields_are_refused() {
    for (field, value) in [
        ("Id", json!("arn:aws:securityhub:us-east-1:111122223333:security-control/Neptune.2/finding/a\nINJECTED")),
        ("ProductArn", json!("arn:aws:securityhub:us-east-1::product/aws/securityhub\u{1b}[31m")),
        ("GeneratorId", json!("x".repeat(5000))),
        ("AwsAccountId", json!("1111\r22223333")),
        ("Region", json!("us-east-1\u{0}")),
    ] {
        let mut v = sample();
        v["detail"]["findings"][0][field] = value;
        let e = error_of(v.to_string().as_bytes());
        assert!(
            e.contains(field) && e.contains("without control characters"),
            "{field}: {e}"
        );
        // The error repeats at most the value's start, escaped.
        assert!(e.len() < 300, "{e}");
        assert!(!e.contains('\n') && !e.contains('\u{1b}'), "{e:?}");
    }
    let mut v = sample();
    v["detail"]["findings"][0]["UserDefinedFields"] = json!({"hubtriage:ticket": "SEC-1\u{7}"});
    assert!(error_of(v.to_string().as_bytes()).contains("UserDefinedFields"));
    let mut v = sample();
    v["detail"]["findings"][0]["Resources"][0]["Id"] = json!(format!(
        "arn:aws:rds:us-east-1:111122223333:cluster:{}",
        "c".repeat(3000)
    ));
    assert!(error_of(v.to_string().as_bytes()).contains("Resources"));
}

#[test]
fn a_finding_that_names_another_account_is_never_acted_on() {
    let config = Config::from_toml_with_env("t.toml", "", vec![]).unwrap();
    let reach = AccountReach::own("111122223333");
    // Its Id, its cluster or its account claim another account than the rest.
    for edit in [
        (
            "Id",
            "arn:aws:securityhub:us-east-1:999999999999:security-control/Neptune.2/finding/x",
        ),
        ("AwsAccountId", "999999999999"),
    ] {
        let mut v = sample();
        v["detail"]["findings"][0][edit.0] = json!(edit.1);
        let findings = parse(v.to_string().as_bytes()).unwrap();
        let d = decide(&findings[0], None, &config, &reach, now());
        assert_eq!(d.action, Action::Ignore, "{}: {}", edit.0, d.reason);
    }
}

const SAMPLE_V2: &str = include_str!("../fixtures/neptune2-v2-orders-event.json");

fn sample_v2() -> Value {
    serde_json::from_str(SAMPLE_V2).unwrap()
}

/// `value` at `path` (`/a/0/b`) below the V2 sample's finding, made if absent.
fn set_in_finding(v: &mut Value, path: &str, value: Value) {
    let mut at = &mut v["detail"]["findings"][0];
    for part in path.trim_start_matches('/').split('/') {
        at = match part.parse::<usize>() {
            Ok(i) => &mut at[i],
            Err(_) => &mut at[part],
        };
    }
    *at = value;
}

/// The same checks for the new Security Hub's OCSF events: wrong types in
/// every field, control characters in what hubtriage repeats, a finding id or
/// cluster of another account, and a product that is not Security Hub's.
#[test]
fn v2_events_get_the_same_typed_errors_and_scope_checks() {
    assert_wrong_types_are_errors_or_in_scope(&sample_v2());
    let config = Config::from_toml_with_env("t.toml", "", vec![]).unwrap();
    let reach = AccountReach::own("111122223333");
    for (pointer, value, field) in [
        (
            "/finding_info/uid",
            json!("arn:aws:securityhub:us-east-1:111122223333:x\nINJECTED"),
            "finding_info.uid",
        ),
        (
            "/compliance/control",
            json!("Neptune.2\u{1b}[31m"),
            "compliance.control",
        ),
        ("/cloud/region", json!("us-east-1\u{0}"), "cloud.region"),
        (
            "/comment",
            json!(format!("hubtriage[ticket={}] x", "A".repeat(2000))),
            "comment.hubtriage:ticket",
        ),
    ] {
        let mut v = sample_v2();
        set_in_finding(&mut v, pointer, value);
        let e = error_of(v.to_string().as_bytes());
        assert!(
            e.contains(field) && e.contains("without control characters"),
            "{field}: {e}"
        );
        assert!(!e.contains('\n') && !e.contains('\u{1b}'), "{e:?}");
    }
    for (pointer, value) in [
        (
            "/finding_info/uid",
            "arn:aws:securityhub:us-east-1:999999999999:security-control/Neptune.2/finding/x",
        ),
        ("/cloud/account/uid", "999999999999"),
        (
            "/resources/0/uid_alt",
            "arn:aws:rds:us-east-1:999999999999:cluster:orders-graph",
        ),
        (
            "/metadata/product/uid",
            "arn:aws:securityhub:us-east-1::productv2/999999999999/default",
        ),
        (
            "/metadata/product/uid",
            "arn:aws:securityhub:us-east-1::product/aws/securityhub",
        ),
    ] {
        let mut v = sample_v2();
        set_in_finding(&mut v, pointer, json!(value));
        let findings = parse(v.to_string().as_bytes()).unwrap();
        let d = decide(&findings[0], None, &config, &reach, now());
        assert_eq!(
            d.action,
            Action::Ignore,
            "{pointer} = {value}: {}",
            d.reason
        );
    }
}
