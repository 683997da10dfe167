//! `hubtriage explain` and `hubtriage check-config` run as a user runs them:
//! the built binary on fixture files, asserting stdout JSON lines and exit codes.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_hubtriage");

fn fixture(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
        .display()
        .to_string()
}

fn example_config() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("config/hubtriage.toml")
        .display()
        .to_string()
}

fn run(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env_remove("RUST_BACKTRACE")
        .env_remove("AWS_ACCOUNT_ID")
        .output()
        .expect("the hubtriage binary runs")
}

fn stdout_lines(out: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("each stdout line is JSON"))
        .collect()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn assert_no_panic(out: &Output) {
    let err = stderr(out);
    assert!(
        !err.contains("panicked") && !err.contains("stack backtrace"),
        "{err}"
    );
}

/// A config file written for one test.
fn config_file(dir: &tempfile::TempDir, text: &str) -> PathBuf {
    let path = dir.path().join("hubtriage.toml");
    std::fs::write(&path, text).unwrap();
    path
}

const NOW: &str = "2026-11-25T12:00:00Z";

#[test]
fn explain_prints_one_decision_per_finding() {
    let out = run(&[
        "explain",
        "--config",
        &example_config(),
        "--event",
        &fixture("neptune2-failed-event.json"),
        "--clusters",
        &fixture("describe-db-clusters.json"),
        "--parameters",
        &fixture("describe-db-cluster-parameters.json"),
        "--tags",
        &fixture("list-tags-for-resource.json"),
        "--now",
        NOW,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let lines = stdout_lines(&out);
    assert_eq!(lines.len(), 1);
    let d = &lines[0];
    assert_eq!(
        d["finding_id"],
        "arn:aws:securityhub:us-east-1:111122223333:security-control/Neptune.2/finding/8e4c1d2a-33b0-4f5e-a1c7-9b2d6e0f4a18"
    );
    assert_eq!(d["account"], "111122223333");
    assert_eq!(d["region"], "us-east-1");
    assert_eq!(d["cluster"], "orders-graph");
    assert_eq!(d["control"], "Neptune.2");
    assert_eq!(d["action"], "ticket");
    assert_eq!(d["rule"], "prod-needs-change-ticket");
    assert!(d["reason"].as_str().unwrap().contains("audit log export"));
    assert_eq!(d["plan"], Value::Array(vec![]));
}

#[test]
fn explain_plans_a_remediation_for_a_dev_cluster() {
    let dir = tempfile::tempdir().unwrap();
    let config = config_file(
        &dir,
        "[remediation]\nmode = \"apply\"\nreboot = \"immediate\"\nlog_retention_days = 365\n\
         [[rule]]\nname = \"dev\"\naction = \"remediate\"\nmatch = { tags = { env = \"dev\" } }\n",
    );
    let out = run(&[
        "explain",
        "--config",
        config.to_str().unwrap(),
        "--event",
        &fixture("neptune2-failed-event.json"),
        "--clusters",
        &fixture("describe-db-clusters.json"),
        "--tags",
        &fixture("list-tags-dev.json"),
        "--now",
        NOW,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let d = &stdout_lines(&out)[0];
    assert_eq!(d["action"], "remediate");
    assert_eq!(d["rule"], "dev");
    let ops: Vec<&str> = d["plan"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["op"].as_str().unwrap())
        .collect();
    assert_eq!(
        ops,
        vec![
            "create_parameter_group",
            "set_audit_parameter",
            "attach_parameter_group",
            "enable_audit_export",
            "reboot_instance",
            "reboot_instance",
            "set_log_retention",
            "verify"
        ]
    );
    assert_eq!(d["plan"][0]["name"], "hubtriage-audit-orders-graph");
    assert_eq!(d["plan"][0]["family"], "neptune1.3");
    assert_eq!(
        d["plan"][4]["instance"], "orders-graph-2",
        "readers reboot first"
    );
    assert_eq!(d["plan"][6]["log_group"], "/aws/neptune/orders-graph/audit");
    assert_eq!(d["plan"][6]["days"], 365);
}

#[test]
fn explain_handles_several_findings_and_shared_groups() {
    let dir = tempfile::tempdir().unwrap();
    let config = config_file(
        &dir,
        "[remediation]\nreboot = \"immediate\"\nshared_parameter_group = \"ticket\"\n[default]\naction = \"remediate\"\n",
    );
    let out = run(&[
        "explain",
        "--config",
        config.to_str().unwrap(),
        "--event",
        &fixture("two-findings-event.json"),
        "--clusters",
        &fixture("describe-db-clusters-three.json"),
        "--parameters",
        &fixture("describe-db-cluster-parameters.json"),
        "--now",
        NOW,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let lines = stdout_lines(&out);
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["cluster"], "orders-graph");
    assert_eq!(lines[0]["action"], "remediate");
    // scratch-graph shares graph-shared with billing-graph: policy "ticket".
    assert_eq!(lines[1]["cluster"], "scratch-graph");
    assert_eq!(lines[1]["action"], "ticket");
    assert!(lines[1]["reason"]
        .as_str()
        .unwrap()
        .contains("shared with billing-graph"));
}

#[test]
fn explain_resolves_when_live_state_is_compliant() {
    let out = run(&[
        "explain",
        "--config",
        &example_config(),
        "--event",
        &fixture("two-findings-event.json"),
        "--clusters",
        &fixture("describe-db-clusters-three.json"),
        "--parameters",
        &fixture("describe-db-cluster-parameters-audit-on.json"),
        "--now",
        NOW,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let lines = stdout_lines(&out);
    // orders-graph still lacks the export; scratch-graph exports audit with parameter 1.
    assert_ne!(lines[0]["action"], "resolve");
    assert_eq!(lines[1]["action"], "resolve");
}

#[test]
fn explain_ignores_a_finding_whose_cluster_is_gone() {
    let dir = tempfile::tempdir().unwrap();
    let clusters = dir.path().join("clusters.json");
    std::fs::write(&clusters, r#"{"DBClusters": []}"#).unwrap();
    let out = run(&[
        "explain",
        "--config",
        &example_config(),
        "--event",
        &fixture("neptune2-failed-event.json"),
        "--clusters",
        clusters.to_str().unwrap(),
        "--now",
        NOW,
    ]);
    assert_eq!(out.status.code(), Some(0));
    let d = &stdout_lines(&out)[0];
    assert_eq!(d["action"], "ignore");
    assert!(d["reason"].as_str().unwrap().contains("no longer exists"));
}

#[test]
fn explain_applies_suppressions_until_they_expire() {
    let dir = tempfile::tempdir().unwrap();
    let config = config_file(
        &dir,
        "[[suppress]]\nname = \"orders-accepted\"\nreason = \"Accepted until the Q1 migration (RISK-9)\"\n\
         expires = \"2026-12-31\"\nmatch = { tags = { team = \"orders\" } }\n",
    );
    let args = |now: &'static str| {
        vec![
            "explain".to_string(),
            "--config".into(),
            config.display().to_string(),
            "--event".into(),
            fixture("neptune2-failed-event.json"),
            "--clusters".into(),
            fixture("describe-db-clusters.json"),
            "--tags".into(),
            fixture("list-tags-for-resource.json"),
            "--now".into(),
            now.into(),
        ]
    };
    let before: Vec<String> = args(NOW);
    let out = run(&before.iter().map(String::as_str).collect::<Vec<_>>());
    let d = &stdout_lines(&out)[0];
    assert_eq!(d["action"], "suppress");
    assert_eq!(d["rule"], "orders-accepted");
    assert_eq!(d["expires"], "2026-12-31");

    let after: Vec<String> = args("2027-01-01T00:00:00Z");
    let out = run(&after.iter().map(String::as_str).collect::<Vec<_>>());
    let d = &stdout_lines(&out)[0];
    assert_eq!(d["action"], "ticket", "an expired suppression is skipped");
}

#[test]
fn malformed_event_exits_65_naming_file_and_path() {
    let event = fixture("malformed-event.json");
    let out = run(&[
        "explain",
        "--config",
        &example_config(),
        "--event",
        &event,
        "--clusters",
        &fixture("describe-db-clusters.json"),
    ]);
    assert_eq!(out.status.code(), Some(65));
    assert!(out.stdout.is_empty());
    let err = stderr(&out);
    assert!(err.contains(&event), "{err}");
    assert!(
        err.contains("detail.findings[0].Resources: missing"),
        "{err}"
    );
    assert_no_panic(&out);
}

#[test]
fn unreadable_or_wrong_inputs_exit_65() {
    let out = run(&[
        "explain",
        "--config",
        &example_config(),
        "--event",
        "/nonexistent/event.json",
        "--clusters",
        &fixture("describe-db-clusters.json"),
    ]);
    assert_eq!(out.status.code(), Some(65));
    assert!(stderr(&out).contains("/nonexistent/event.json: cannot read"));

    let out = run(&[
        "explain",
        "--config",
        &example_config(),
        "--event",
        &fixture("neptune2-failed-event.json"),
        "--clusters",
        &fixture("list-tags-for-resource.json"),
    ]);
    assert_eq!(out.status.code(), Some(65));
    let err = stderr(&out);
    assert!(
        err.contains("list-tags-for-resource.json: not `aws neptune describe-db-clusters` output"),
        "{err}"
    );
    assert_no_panic(&out);
}

#[test]
fn unknown_config_key_exits_64_naming_file_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let config = config_file(
        &dir,
        "[remediation]\nmode = \"apply\"\nreboot_policy = \"never\"\n",
    );
    for args in [
        vec!["check-config", "--config", config.to_str().unwrap()],
        vec![
            "explain",
            "--config",
            config.to_str().unwrap(),
            "--event",
            &fixture("neptune2-failed-event.json"),
            "--clusters",
            &fixture("describe-db-clusters.json"),
        ],
    ] {
        let out = run(&args);
        assert_eq!(out.status.code(), Some(64));
        assert!(out.stdout.is_empty());
        let err = stderr(&out);
        assert!(err.contains(config.to_str().unwrap()), "{err}");
        assert!(err.contains("remediation"), "{err}");
        assert!(err.contains("unknown key `reboot_policy`"), "{err}");
        assert_no_panic(&out);
    }
}

#[test]
fn wrong_type_in_config_exits_64() {
    let dir = tempfile::tempdir().unwrap();
    let config = config_file(&dir, "[remediation]\nlog_retention_days = \"forever\"\n");
    let out = run(&["check-config", "--config", config.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(64));
    let err = stderr(&out);
    assert!(err.contains("remediation.log_retention_days"), "{err}");
    assert!(err.contains("expected an integer"), "{err}");
}

#[test]
fn check_config_names_the_ticket_system_and_its_variables_never_their_values() {
    let dir = tempfile::tempdir().unwrap();
    let config = config_file(
        &dir,
        "[ticket]\ntype = \"jira\"\nurl = \"https://example.atlassian.net\"\nproject = \"SEC\"\nemail_env = \"JIRA_EMAIL\"\ntoken_env = \"JIRA_API_TOKEN\"\n[coordination]\ntable = \"hubtriage-state\"\n",
    );
    let out = Command::new(env!("CARGO_BIN_EXE_hubtriage"))
        .args(["check-config", "--config", config.to_str().unwrap()])
        .env("JIRA_EMAIL", "someone@example.com")
        .env("JIRA_API_TOKEN", "tok-4c1d-secret")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("tickets: jira at https://example.atlassian.net, project SEC, credentials from JIRA_EMAIL, JIRA_API_TOKEN"),
        "{text}"
    );
    assert!(text.contains("DynamoDB table hubtriage-state"), "{text}");
    assert!(!text.contains("tok-4c1d-secret") && !text.contains("someone@example.com"));
}

#[test]
fn check_config_passes_the_example_and_warns_about_expiry() {
    let out = run(&["check-config", "--config", &example_config(), "--now", NOW]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("1. sandbox-accounts [active, until 2027-03-31] for every control"),
        "{text}"
    );
    assert!(
        text.contains("1. prod-needs-change-ticket -> ticket for every control when tag env=prod"),
        "{text}"
    );
    assert!(stderr(&out).is_empty(), "{}", stderr(&out));

    let out = run(&[
        "check-config",
        "--config",
        &example_config(),
        "--now",
        "2027-03-20T00:00:00Z",
    ]);
    assert_eq!(out.status.code(), Some(0));
    assert!(stderr(&out).contains("warning: suppression sandbox-accounts expires in 12 days"));

    let out = run(&[
        "check-config",
        "--config",
        &example_config(),
        "--now",
        "2027-04-02T00:00:00Z",
    ]);
    assert_eq!(out.status.code(), Some(0));
    assert!(stderr(&out).contains("warning: suppression sandbox-accounts expired (2027-03-31)"));
    assert!(String::from_utf8_lossy(&out.stdout).contains("[EXPIRED, until 2027-03-31]"));
}

#[test]
fn bad_usage_exits_64() {
    let out = run(&["explain", "--config", &example_config()]);
    assert_eq!(out.status.code(), Some(64));
    let out = run(&["frobnicate"]);
    assert_eq!(out.status.code(), Some(64));
    let out = run(&[
        "explain",
        "--config",
        &example_config(),
        "--event",
        &fixture("neptune2-failed-event.json"),
        "--clusters",
        &fixture("describe-db-clusters.json"),
        "--now",
        "yesterday",
    ]);
    assert_eq!(out.status.code(), Some(64));
    let out = run(&["--help"]);
    assert_eq!(out.status.code(), Some(0));
}

/// The fixture event, as if it came from member account 222222222222.
fn member_event(dir: &tempfile::TempDir) -> String {
    let text = std::fs::read_to_string(fixture("neptune2-failed-event.json"))
        .unwrap()
        .replace("111122223333", "222222222222");
    let path = dir.path().join("member-event.json");
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

#[test]
fn explain_ignores_a_member_accounts_finding_with_the_no_role_reason() {
    let dir = tempfile::tempdir().unwrap();
    let event = member_event(&dir);
    let config = config_file(&dir, "[default]\naction = \"remediate\"\n")
        .display()
        .to_string();
    // The saved outputs were taken in the administrator's account 111122223333
    // (their ARNs say so), which has its own orders-graph.
    let args = [
        "explain",
        "--config",
        &config,
        "--event",
        &event,
        "--clusters",
        &fixture("describe-db-clusters.json"),
        "--now",
        NOW,
    ];
    let out = run(&args);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let lines = stdout_lines(&out);
    assert_eq!(lines[0]["action"], "ignore", "{}", lines[0]);
    let reason = lines[0]["reason"].as_str().unwrap();
    assert!(
        reason.contains("no way into account 222222222222")
            && reason.contains("runs in account 111122223333")
            && reason.contains("[accounts] role_arn"),
        "{reason}"
    );
    assert!(lines[0]["plan"].as_array().unwrap().is_empty());

    // The same from the environment, which wins over the outputs' account.
    let out = Command::new(BIN)
        .args(args)
        .env("AWS_ACCOUNT_ID", "123456789012")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let reason = stdout_lines(&out)[0]["reason"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(reason.contains("runs in account 123456789012"), "{reason}");

    // Run in the member account, the finding is decided on the listing, which
    // does not hold the member's cluster.
    let mut with_account = args.to_vec();
    with_account.extend(["--account", "222222222222"]);
    let out = run(&with_account);
    let reason = stdout_lines(&out)[0]["reason"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(reason.contains("no longer exists"), "{reason}");

    // A bad account id is a usage error.
    let mut bad = args.to_vec();
    bad.extend(["--account", "2222"]);
    let out = run(&bad);
    assert_eq!(out.status.code(), Some(64), "{}", stderr(&out));
    assert!(stderr(&out).contains("12-digit"), "{}", stderr(&out));
    assert_no_panic(&out);
}

#[test]
fn explain_takes_a_v2_event_and_decides_as_for_its_asff_twin() {
    let explain = |event: &str| {
        let out = run(&[
            "explain",
            "--config",
            &example_config(),
            "--event",
            &fixture(event),
            "--clusters",
            &fixture("describe-db-clusters.json"),
            "--parameters",
            &fixture("describe-db-cluster-parameters.json"),
            "--tags",
            &fixture("list-tags-for-resource.json"),
            "--now",
            NOW,
        ]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        stdout_lines(&out).remove(0)
    };
    let v1 = explain("neptune2-failed-event.json");
    let v2 = explain("neptune2-v2-orders-event.json");
    assert_eq!(
        v2["product_arn"],
        "arn:aws:securityhub:us-east-1::productv2/aws/securityhub"
    );
    for key in [
        "finding_id",
        "account",
        "region",
        "cluster",
        "control",
        "action",
        "rule",
        "plan",
        "problems",
    ] {
        assert_eq!(v1[key], v2[key], "{key}");
    }
    assert_eq!(v2["action"], "ticket");

    // A malformed V2 event: a typed error naming the OCSF path.
    let dir = tempfile::tempdir().unwrap();
    let mut event: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(fixture("neptune2-v2-orders-event.json")).unwrap(),
    )
    .unwrap();
    event["detail"]["findings"][0]["cloud"]
        .as_object_mut()
        .unwrap()
        .remove("account");
    let bad = dir.path().join("bad-v2.json");
    std::fs::write(&bad, event.to_string()).unwrap();
    let out = run(&[
        "explain",
        "--config",
        &example_config(),
        "--event",
        bad.to_str().unwrap(),
        "--clusters",
        &fixture("describe-db-clusters.json"),
    ]);
    assert_ne!(out.status.code(), Some(0));
    assert!(
        stderr(&out).contains("detail.findings[0].cloud.account: missing"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn check_config_warns_about_each_secret_variable_not_set() {
    let dir = tempfile::tempdir().unwrap();
    let config = config_file(
        &dir,
        "[ticket]\ntype = \"jira-dc\"\nurl = \"https://jira.example.com\"\nproject = \"SEC\"\ntoken_env = \"HUBTRIAGE_TEST_UNSET_TOKEN\"\n",
    );
    let out = Command::new(env!("CARGO_BIN_EXE_hubtriage"))
        .args(["check-config", "--config", config.to_str().unwrap()])
        .env_remove("HUBTRIAGE_TEST_UNSET_TOKEN")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("warning: HUBTRIAGE_TEST_UNSET_TOKEN is not set in this environment ([ticket] token_env names it)"),
        "{}",
        stderr(&out)
    );
    let out = Command::new(env!("CARGO_BIN_EXE_hubtriage"))
        .args(["check-config", "--config", config.to_str().unwrap()])
        .env("HUBTRIAGE_TEST_UNSET_TOKEN", "pat-secret")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(!stderr(&out).contains("not set"), "{}", stderr(&out));
    assert!(!String::from_utf8_lossy(&out.stdout).contains("pat-secret"));
}

/// The V2 orders event with its cluster named only by `DbClusterResourceId`.
fn v2_event_by_resource_id(dir: &tempfile::TempDir, edit: impl Fn(&mut Value)) -> String {
    let mut event: Value = serde_json::from_str(
        &std::fs::read_to_string(fixture("neptune2-v2-orders-event.json")).unwrap(),
    )
    .unwrap();
    let finding = &mut event["detail"]["findings"][0];
    for r in finding["resources"].as_array_mut().unwrap() {
        let r = r.as_object_mut().unwrap();
        r.remove("uid_alt");
        r.insert("uid".into(), "cluster-7QW2ZK4XH5JNDLF3R6YB2TQ4VA".into());
    }
    edit(finding);
    let path = dir.path().join("v2-by-resource-id.json");
    std::fs::write(&path, event.to_string()).unwrap();
    path.to_str().unwrap().to_string()
}

#[test]
fn explain_finds_a_cluster_named_only_by_its_resource_id_as_the_daemon_does() {
    let explain = |event: &str| {
        let out = run(&[
            "explain",
            "--config",
            &example_config(),
            "--event",
            event,
            "--clusters",
            &fixture("describe-db-clusters.json"),
            "--parameters",
            &fixture("describe-db-cluster-parameters.json"),
            "--now",
            NOW,
        ]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        stdout_lines(&out).remove(0)
    };
    let dir = tempfile::tempdir().unwrap();
    let asff = explain(&fixture("neptune2-failed-event.json"));
    let by_id = explain(&v2_event_by_resource_id(&dir, |_| {}));
    assert_eq!(by_id["cluster"], "orders-graph", "{by_id}");
    for key in ["action", "rule", "plan", "problems", "reason"] {
        assert_eq!(asff[key], by_id[key], "{key}");
    }
    assert_ne!(by_id["action"], "ignore");
}

#[test]
fn explain_refuses_a_v2_finding_without_compliance_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let event = v2_event_by_resource_id(&dir, |f| {
        f.as_object_mut().unwrap().remove("compliance");
    });
    let out = run(&[
        "explain",
        "--config",
        &example_config(),
        "--event",
        &event,
        "--clusters",
        &fixture("describe-db-clusters.json"),
    ]);
    assert_eq!(out.status.code(), Some(65), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("detail.findings[0].compliance: missing"),
        "{}",
        stderr(&out)
    );
    assert!(out.stdout.is_empty());
    assert_no_panic(&out);
}
