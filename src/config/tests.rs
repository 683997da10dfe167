//! Unit tests of the config: the example file, defaults, error messages that
//! name the file, key and environment variable, and matching.

use std::collections::BTreeMap;

use super::*;

const EXAMPLE: &str = include_str!("../../config/hubtriage.toml");

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::from_toml_with_env("test.toml", text, vec![])
}

fn error(text: &str) -> String {
    parse(text).unwrap_err().to_string()
}

#[test]
fn the_example_config_is_valid() {
    let c = parse(EXAMPLE).unwrap();
    assert!(!c.rule.is_empty());
    assert!(!c.suppress.is_empty());
}

#[test]
fn the_issue_example_parses_with_its_meanings() {
    let c = parse(
        r#"
[scope]
accounts = ["111122223333"]
regions  = ["us-east-1"]

[remediation]
mode = "apply"
reboot = "immediate"
shared_parameter_group = "copy"
parameter_group_prefix = "hubtriage-audit-"
log_retention_days = 365

[[suppress]]
name = "sandbox-accounts"
reason = "Sandbox accounts hold no customer data (RISK-142)"
expires = "2027-03-31"
match = { accounts = ["444455556666"] }

[[rule]]
name = "prod-needs-change-ticket"
action = "ticket"
match = { tags = { env = "prod" } }

[[rule]]
name = "non-prod-auto-fix"
action = "remediate"
match = { tags = { env = ["dev", "test", "staging"] }, clusters = ["scratch-*"] }

[default]
action = "ticket"
"#,
    )
    .unwrap();
    assert_eq!(c.remediation.mode, Mode::Apply);
    assert_eq!(c.remediation.reboot, RebootPolicy::Immediate);
    assert_eq!(c.remediation.log_retention_days, Some(365));
    assert_eq!(
        c.suppress[0].expires.at.to_rfc3339(),
        "2027-04-01T00:00:00+00:00"
    );
    assert_eq!(c.rule[1].action, RuleAction::Remediate);
    assert_eq!(
        c.rule[1].matcher.tags.as_ref().unwrap()["env"],
        TagMatch::OneOf(vec!["dev".into(), "test".into(), "staging".into()])
    );
    assert!(c.scope.allows_account("111122223333"));
    assert!(!c.scope.allows_account("444455556666"));
}

#[test]
fn defaults_are_safe() {
    let c = parse("").unwrap();
    assert_eq!(c.remediation.mode, Mode::DryRun);
    assert_eq!(c.remediation.reboot, RebootPolicy::MaintenanceWindow);
    assert_eq!(c.default.action, RuleAction::Ticket);
    assert!(c.scope.allows_account("123456789012"));
}

#[test]
fn unknown_keys_are_rejected_with_their_table() {
    let e = error("[remediation]\nmode = \"apply\"\nrebot = \"never\"\n");
    assert!(e.starts_with("config test.toml: remediation"), "{e}");
    assert!(e.contains("unknown key `rebot`"), "{e}");
    let e = error(
        "[[rule]]\nname = \"a\"\naction = \"ticket\"\nmatch = { tag = { env = \"prod\" } }\n",
    );
    assert!(e.contains("rule[0].match"), "{e}");
    assert!(e.contains("unknown key `tag`"), "{e}");
    let e = error("[sope]\naccounts = []\n");
    assert!(e.contains("unknown key `sope`"), "{e}");
}

#[test]
fn wrong_types_and_values_name_the_key() {
    let e = error("[remediation]\nlog_retention_days = \"a year\"\n");
    assert!(e.contains("remediation.log_retention_days"), "{e}");
    let e = error("[remediation]\nlog_retention_days = 42\n");
    assert!(
        e.contains("remediation.log_retention_days: expected one of"),
        "{e}"
    );
    let e = error("[remediation]\nmode = \"yolo\"\n");
    assert!(e.contains("remediation.mode"), "{e}");
    assert!(
        e.contains("expected one of \"apply\", \"dry-run\", found \"yolo\""),
        "{e}"
    );
    let e = error("[scope]\naccounts = [\"1234\"]\n");
    assert!(
        e.contains("scope.accounts: expected a 12-digit AWS account id"),
        "{e}"
    );
    let e = error("[[rule]]\nname = \"r\"\naction = \"fix\"\n");
    assert!(e.contains("rule[0].action"), "{e}");
    let e = error("[remediation]\nreboot_settle_seconds = 5\n");
    assert!(e.contains("remediation.reboot_settle_seconds"), "{e}");
    assert_eq!(parse("").unwrap().remediation.reboot_settle_seconds, 180);
}

#[test]
fn a_webhook_needs_a_safe_url_and_its_secret_variable() {
    let c = parse(
        "[ticket]\ntype = \"webhook\"\nurl = \"https://hooks.example.com/hubtriage\"\nsecret_env = \"HUBTRIAGE_WEBHOOK_SECRET\"\n",
    )
    .unwrap();
    assert_eq!(c.ticket.kind, crate::config::TicketKind::Webhook);
    for ok in [
        "http://127.0.0.1:8080/hook",
        "http://localhost:9/x",
        "http://[::1]:80/",
    ] {
        let text = format!("[ticket]\ntype = \"webhook\"\nurl = \"{ok}\"\nsecret_env = \"S\"\n");
        assert!(parse(&text).is_ok(), "{ok}");
    }
    for bad in [
        "http://hooks.example.com/x",
        "ftp://127.0.0.1/",
        "https://",
        "hooks.example.com",
    ] {
        let text = format!("[ticket]\ntype = \"webhook\"\nurl = \"{bad}\"\nsecret_env = \"S\"\n");
        let e = error(&text);
        assert!(
            e.contains("ticket.url: expected an https:// URL"),
            "{bad}: {e}"
        );
    }
    let e = error("[ticket]\ntype = \"webhook\"\nurl = \"https://h.example\"\n");
    assert!(e.contains("ticket.secret_env"), "{e}");
    let e = error("[ticket]\ntype = \"webhook\"\nsecret_env = \"S\"\n");
    assert!(e.contains("ticket.url"), "{e}");
    let e = error("[ticket]\ntype = \"carrier-pigeon\"\n");
    assert!(e.contains("expected one of \"log\", \"webhook\""), "{e}");
}

#[test]
fn the_coordination_table_needs_a_dynamodb_name_and_a_sane_lease() {
    let c = parse("[coordination]\ntable = \"hubtriage-state\"\n").unwrap();
    let t = c.coordination.unwrap();
    assert_eq!((t.table.as_str(), t.lease_seconds), ("hubtriage-state", 60));
    let e = error("[coordination]\ntable = \"a b\"\n");
    assert!(e.contains("coordination.table"), "{e}");
    let e = error("[coordination]\ntable = \"t1x\"\nlease_seconds = 5\n");
    assert!(
        e.contains("coordination.lease_seconds: expected 10 to 3600"),
        "{e}"
    );
    assert!(parse("").unwrap().coordination.is_none());
}

#[test]
fn jira_and_servicenow_need_their_keys_and_credential_variables() {
    let jira = "[ticket]\ntype = \"jira\"\nurl = \"https://example.atlassian.net\"\nproject = \"SEC\"\nlabels = [\"security-hub\"]\npriority = { CRITICAL = \"Highest\", LOW = \"Low\" }\nemail_env = \"JIRA_EMAIL\"\ntoken_env = \"JIRA_API_TOKEN\"\n";
    let c = parse(jira).unwrap();
    assert_eq!(c.ticket.kind, crate::config::TicketKind::Jira);
    assert_eq!(c.ticket.done_transition, "Done");
    assert_eq!(c.ticket.reopen_within_days, 30);
    assert_eq!(c.ticket.regression, crate::config::Regression::Reopen);
    for (change, key) in [
        ("project = \"SEC\"", "ticket.project"),
        ("email_env = \"JIRA_EMAIL\"", "ticket.email_env"),
        ("token_env = \"JIRA_API_TOKEN\"", "ticket.token_env"),
    ] {
        let e = error(&jira.replace(change, ""));
        assert!(e.contains(key), "{change}: {e}");
    }
    let e = error(&jira.replace("[\"security-hub\"]", "[\"security hub\"]"));
    assert!(
        e.contains("ticket.labels") && e.contains("without spaces"),
        "{e}"
    );
    let e = error(&jira.replace("LOW = ", "SEVERE = "));
    assert!(e.contains("ticket.priority.SEVERE"), "{e}");
    let e = error(&jira.replace("\"SEC\"", "\"sec ops\""));
    assert!(e.contains("ticket.project"), "{e}");
    // Data Center: a personal access token, no email.
    let dc = jira
        .replace("\"jira\"", "\"jira-dc\"")
        .replace("email_env = \"JIRA_EMAIL\"\n", "");
    assert_eq!(
        parse(&dc).unwrap().ticket.kind,
        crate::config::TicketKind::JiraDc
    );

    let sn = "[ticket]\ntype = \"servicenow\"\nurl = \"https://example.service-now.com\"\nuser_env = \"SN_USER\"\npassword_env = \"SN_PASSWORD\"\nassignment_group = \"Cloud Security\"\nurgency = { CRITICAL = \"1\", HIGH = \"1\", MEDIUM = \"2\", LOW = \"3\", INFORMATIONAL = \"3\" }\n";
    let c = parse(sn).unwrap();
    assert_eq!(c.ticket.table, "incident");
    assert_eq!(c.ticket.close_code, "Solution provided");
    assert_eq!(c.ticket.impact["HIGH"], "2");
    let e = error(&sn.replace("LOW = \"3\"", "LOW = \"4\""));
    assert!(e.contains("ticket.urgency.LOW"), "{e}");
    let e = error(&sn.replace("password_env = \"SN_PASSWORD\"\n", ""));
    assert!(e.contains("ticket.user_env"), "{e}");
    let bearer = sn.replace(
        "user_env = \"SN_USER\"\npassword_env = \"SN_PASSWORD\"",
        "token_env = \"SN_TOKEN\"",
    );
    assert!(parse(&bearer).is_ok());
    let e = error(&sn.replace("SN_USER", "SN USER"));
    assert!(e.contains("ticket.user_env"), "{e}");
    let e = error(&format!("{sn}table = \"incident; drop\"\n"));
    assert!(e.contains("ticket.table"), "{e}");
}

#[test]
fn accounts_are_read_and_checked() {
    let c = parse(
        "[accounts]\nrole_arn = \"arn:aws:iam::{account}:role/hubtriage-member\"\nexternal_id_env = \"HUBTRIAGE_EXTERNAL_ID\"\nown_account = \"assume\"\n",
    )
    .unwrap();
    assert_eq!(
        c.accounts.role_arn.as_deref(),
        Some("arn:aws:iam::{account}:role/hubtriage-member")
    );
    assert_eq!(c.accounts.session_name, "hubtriage");
    assert_eq!(c.accounts.own_account, crate::config::OwnAccount::Assume);
    assert!(parse("").unwrap().accounts.role_arn.is_none());

    let e = error("[accounts]\nrole_arn = \"arn:aws:iam::222222222222:role/x\"\n");
    assert!(
        e.contains("accounts.role_arn: expected a role ARN with {account}"),
        "{e}"
    );
    let e = error("[accounts]\nrole_arn = \"hubtriage-member\"\n");
    assert!(e.contains("accounts.role_arn"), "{e}");
    let e = error("[accounts]\nsession_name = \"has space\"\n");
    assert!(e.contains("accounts.session_name"), "{e}");
    let e = error("[accounts]\nexternal_id_env = \"1BAD\"\n");
    assert!(e.contains("accounts.external_id_env"), "{e}");
    let e = error("[accounts]\nown_account = \"sometimes\"\n");
    assert!(e.contains("expected one of \"direct\", \"assume\""), "{e}");
}

#[test]
fn pacing_and_parallel_receives_are_checked() {
    let c = parse("[pacing]\nneptune_read = { per_second = 5, burst = 5 }\n").unwrap();
    assert_eq!(c.pacing.neptune_read.per_second, 5);
    assert_eq!(
        c.pacing.batch_update_findings.per_second, 10,
        "the quota by default"
    );
    let e = error("[pacing]\nget_findings = { per_second = 3, burst = 0 }\n");
    assert!(
        e.contains("pacing.get_findings.burst: expected 1 to 10000"),
        "{e}"
    );
    let e = error("[pacing]\nget_findings = { per_second = 3 }\n");
    assert!(e.contains("burst"), "{e}");
    let e = error("[queue]\nurl = \"q\"\nparallel_receives = 0\n");
    assert!(
        e.contains("queue.parallel_receives: expected 1 to 10"),
        "{e}"
    );
}

#[test]
fn suppressions_need_a_valid_expiry() {
    let e = error("[[suppress]]\nname = \"s\"\nreason = \"r\"\n");
    assert!(e.contains("suppress[0]"), "{e}");
    assert!(e.contains("missing key `expires`"), "{e}");
    let e = error("[[suppress]]\nname = \"s\"\nreason = \"r\"\nexpires = \"next week\"\n");
    assert!(e.contains("suppress[0].expires: expected a date"), "{e}");
    let c = parse(
        "[[suppress]]\nname = \"s\"\nreason = \"r\"\nexpires = \"2027-01-02T03:04:05+01:00\"\n",
    )
    .unwrap();
    assert_eq!(
        c.suppress[0].expires.at.to_rfc3339(),
        "2027-01-02T02:04:05+00:00"
    );
}

#[test]
fn empty_lists_in_match_are_rejected() {
    let e = error("[[rule]]\nname = \"r\"\naction = \"ticket\"\nmatch = { accounts = [] }\n");
    assert!(
        e.contains("rule[0].match.accounts: expected at least one account"),
        "{e}"
    );
}

#[test]
fn duplicate_names_are_rejected() {
    let e = error("[[rule]]\nname = \"r\"\naction = \"ticket\"\n[[rule]]\nname = \"r\"\naction = \"ignore\"\n");
    assert!(e.contains("rule[1].name: \"r\" is used twice"), "{e}");
}

#[test]
fn environment_overrides_win_and_are_named_in_errors() {
    let env = vec![(
        "HUBTRIAGE__REMEDIATION__MODE".to_string(),
        "apply".to_string(),
    )];
    let c =
        Config::from_toml_with_env("t.toml", "[remediation]\nmode = \"dry-run\"\n", env).unwrap();
    assert_eq!(c.remediation.mode, Mode::Apply);
    let env = vec![(
        "HUBTRIAGE__REMEDIATION__LOG_RETENTION_DAYS".to_string(),
        "8".to_string(),
    )];
    let e = Config::from_toml_with_env("t.toml", "", env)
        .unwrap_err()
        .to_string();
    assert!(e.contains("remediation.log_retention_days"), "{e}");
    assert!(
        e.contains("HUBTRIAGE__REMEDIATION__LOG_RETENTION_DAYS"),
        "{e}"
    );
}

#[test]
fn tag_keys_keep_their_case() {
    let c = parse(
        "[[rule]]\nname = \"r\"\naction = \"ticket\"\nmatch = { tags = { Env = \"Prod\" } }\n",
    )
    .unwrap();
    assert!(c.rule[0].matcher.tags.as_ref().unwrap().contains_key("Env"));
}

#[test]
fn matching() {
    let c = parse(
        "[[rule]]\nname = \"r\"\naction = \"ticket\"\nmatch = { accounts = \"111122223333\", clusters = [\"scratch-*\", \"dev-?\"], tags = { env = \"*\", team = [\"a\", \"b\"] }, severity = \"high\" }\n",
    )
    .unwrap();
    let m = &c.rule[0].matcher;
    let tags: BTreeMap<String, String> =
        [("env".into(), "x".into()), ("team".into(), "b".into())].into();
    let s = Subject {
        account: "111122223333",
        region: "us-east-1",
        cluster: "scratch-1",
        tags: &tags,
        severity: Some("HIGH"),
    };
    assert!(m.matches(&s));
    assert!(m.matches(&Subject {
        cluster: "dev-7",
        ..s
    }));
    assert!(!m.matches(&Subject {
        cluster: "dev-77",
        ..s
    }));
    assert!(!m.matches(&Subject {
        account: "444455556666",
        ..s
    }));
    assert!(!m.matches(&Subject {
        severity: Some("LOW"),
        ..s
    }));
    assert!(!m.matches(&Subject {
        severity: None,
        ..s
    }));
    let no_team: BTreeMap<String, String> = [("env".into(), "x".into())].into();
    assert!(!m.matches(&Subject {
        tags: &no_team,
        ..s
    }));
    assert!(Match::default().matches(&s));
}

#[test]
fn securityhub_api_is_auto_v1_or_v2() {
    use crate::config::FindingsApiVersion;
    assert_eq!(parse("").unwrap().securityhub.api, FindingsApiVersion::Auto);
    for (text, want) in [
        ("auto", FindingsApiVersion::Auto),
        ("v1", FindingsApiVersion::V1),
        ("v2", FindingsApiVersion::V2),
    ] {
        let c = parse(&format!("[securityhub]\napi = \"{text}\"\n")).unwrap();
        assert_eq!(c.securityhub.api, want);
    }
    let e = error("[securityhub]\napi = \"v3\"\n");
    assert!(
        e.contains("securityhub.api: expected one of \"auto\", \"v1\", \"v2\", found \"v3\""),
        "{e}"
    );
    let c = parse("[pacing]\nbatch_update_findings_v2 = { per_second = 5, burst = 10 }\n").unwrap();
    assert_eq!(c.pacing.batch_update_findings_v2.per_second, 5);
    assert_eq!(c.pacing.get_findings_v2.per_second, 3, "V1's by default");
    let e = error("[pacing]\nget_findings_v2 = { per_second = 3, burst = 0 }\n");
    assert!(e.contains("pacing.get_findings_v2.burst"), "{e}");
}

#[test]
fn controls_settings_and_rule_controls_are_read_and_checked() {
    let c = parse(
        "[controls.\"Neptune.5\"]\nmin_retention_days = 14\n\
         [[rule]]\nname = \"iam\"\naction = \"remediate\"\ncontrols = [\"Neptune.7\", \"Neptune.4\"]\n\
         [[suppress]]\nname = \"tags\"\nreason = \"r\"\nexpires = \"2099-01-01\"\ncontrols = \"Neptune.8\"\n",
    )
    .unwrap();
    assert_eq!(
        c.controls
            .of("Neptune.5")
            .and_then(|t| t.min_retention_days),
        Some(14)
    );
    assert_eq!(
        c.rule[0].controls.as_deref(),
        Some(&["Neptune.7".to_string(), "Neptune.4".to_string()][..])
    );
    assert_eq!(
        c.suppress[0].controls.as_deref(),
        Some(&["Neptune.8".to_string()][..])
    );
    assert!(parse("").unwrap().controls.of("Neptune.5").is_none());

    // Which ids exist is the registry's to say.
    let unknown = |toml: &str| crate::control::check_settings(&parse(toml).unwrap()).unwrap_err();
    let (key, e) =
        unknown("[[rule]]\nname = \"x\"\naction = \"ticket\"\ncontrols = [\"Neptune.10\"]\n");
    assert_eq!(key, "rule[0].controls");
    assert!(e.contains("unknown control \"Neptune.10\""), "{e}");
    let (key, e) = unknown(
        "[[suppress]]\nname = \"x\"\nreason = \"r\"\nexpires = \"2099-01-01\"\ncontrols = \"CT.Neptune.4\"\n",
    );
    assert_eq!(key, "suppress[0].controls");
    assert!(e.contains("expected one of Neptune.1, Neptune.2"), "{e}");
    let e = error("[[rule]]\nname = \"x\"\naction = \"ticket\"\ncontrols = []\n");
    assert!(
        e.contains("rule[0].controls") && e.contains("at least one"),
        "{e}"
    );
    let e = error("[controls.\"Neptune.5\"]\nmin_retention_days = 40\n");
    assert!(
        e.contains("controls.\"Neptune.5\".min_retention_days") && e.contains("expected 7 to 35"),
        "{e}"
    );
    // Which control takes the key is the control's to say.
    let c = parse("[controls.\"Neptune.4\"]\nmin_retention_days = 10\n").unwrap();
    let (key, why) = crate::control::check_settings(&c).unwrap_err();
    assert_eq!(key, "controls.\"Neptune.4\".min_retention_days");
    assert!(
        why.contains("Neptune.4 has no such setting (it takes none)"),
        "{why}"
    );
    assert!(crate::control::check_settings(
        &parse("[controls.\"Neptune.5\"]\nmin_retention_days = 10\n").unwrap()
    )
    .is_ok());
    let (key, e) = unknown("[controls.\"RDS.7\"]\n");
    assert_eq!(key, "controls.\"RDS.7\"");
    assert!(e.contains("unknown control \"RDS.7\""), "{e}");
    // Any case, and the environment's `_` for the dot; the override wins.
    let c = Config::from_toml_with_env(
        "t.toml",
        "[controls.\"NEPTUNE.5\"]\nmin_retention_days = 14\n",
        vec![(
            "HUBTRIAGE__CONTROLS__NEPTUNE_5__MIN_RETENTION_DAYS".into(),
            "21".into(),
        )],
    )
    .unwrap();
    assert_eq!(
        c.controls
            .of("Neptune.5")
            .and_then(|t| t.min_retention_days),
        Some(21)
    );
    assert!(crate::control::check_settings(&c).is_ok());
    let e = error("[controls.\"Neptune.5\"]\nmin_days = 10\n");
    assert!(e.contains("unknown"), "{e}");
}
