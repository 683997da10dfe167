//! The decision order, step by step (README "How hubtriage decides"), and the
//! helpers the plan tests share.

use super::*;
use crate::state::tests::sample_state;
pub(super) use crate::testing::{config, finding};

pub(super) fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-25T12:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

pub(super) fn reach() -> AccountReach {
    AccountReach::own("111122223333")
}

pub(super) fn remediate_config(extra: &str) -> Config {
    config(&format!(
        "[remediation]\nmode = \"apply\"\nreboot = \"immediate\"\n{extra}\n[default]\naction = \"remediate\"\n"
    ))
}

fn compliant() -> ClusterState {
    let mut s = sample_state();
    s.exported_logs.push("audit".into());
    s.audit_parameter.value = "1".into();
    s
}

// ---- steps 1–5: ignore --------------------------------------------------------------

#[test]
fn step1_other_controls_and_missing_clusters_are_ignored() {
    let mut f = finding();
    f.control = Some("EC2.1".into());
    let d = decide(&f, Some(&sample_state()), &config(""), &reach(), now());
    assert_eq!(d.action, Action::Ignore);
    assert!(d.reason.contains("EC2.1"), "{}", d.reason);

    let mut f = finding();
    f.cluster_arn = None;
    let d = decide(&f, Some(&sample_state()), &config(""), &reach(), now());
    assert_eq!(d.action, Action::Ignore);
    assert!(d.reason.contains("no AwsRdsDbCluster"));
}

#[test]
fn step1_untrusted_findings_are_ignored() {
    let mut f = finding();
    f.product_arn =
        "arn:aws:securityhub:us-east-1:999999999999:product/999999999999/default".into();
    let d = decide(&f, Some(&sample_state()), &config(""), &reach(), now());
    assert_eq!(d.action, Action::Ignore);
    assert!(
        d.reason.starts_with("The finding is not trusted"),
        "{}",
        d.reason
    );

    let mut f = finding();
    f.cluster_arn = Some("arn:aws:rds:us-east-1:999999999999:cluster:orders-graph".into());
    let d = decide(&f, Some(&sample_state()), &config(""), &reach(), now());
    assert_eq!(d.action, Action::Ignore);
    assert!(d.reason.contains("not trusted") && d.reason.contains("999999999999"));

    let mut f = finding();
    f.cluster_arn = Some("arn:aws:rds:eu-west-1:111122223333:cluster:orders-graph".into());
    let d = decide(&f, Some(&sample_state()), &config(""), &reach(), now());
    assert!(d.reason.contains("not trusted") && d.reason.contains("eu-west-1"));

    let mut f = finding();
    f.product_arn = "arn:aws:securityhub:eu-west-1::product/aws/securityhub".into();
    assert_eq!(
        decide(&f, None, &config(""), &reach(), now()).action,
        Action::Ignore
    );
    // A finding whose Id names another account than the one it claims (and
    // whose cluster ARN agrees with the claim) is not Security Hub's.
    let mut f = finding();
    f.id = "arn:aws:securityhub:us-east-1:999999999999:security-control/Neptune.2/finding/x".into();
    let d = decide(&f, Some(&sample_state()), &config(""), &reach(), now());
    assert_eq!(d.action, Action::Ignore);
    assert!(
        d.reason.contains("its Id names account 999999999999"),
        "{}",
        d.reason
    );
    let mut f = finding();
    f.id = "arn:aws:securityhub:eu-west-1:111122223333:security-control/Neptune.2/finding/x".into();
    assert_eq!(
        decide(&f, Some(&sample_state()), &config(""), &reach(), now()).action,
        Action::Ignore
    );
}

#[test]
fn step2_archived_or_not_failed_is_ignored() {
    let mut f = finding();
    f.record_state = crate::finding::RecordState::Archived;
    assert!(screen(&f, &config(""), &reach())
        .unwrap()
        .reason
        .contains("archived"));
    let mut f = finding();
    f.compliance_status = Some(crate::finding::Compliance::parse("PASSED"));
    assert!(screen(&f, &config(""), &reach())
        .unwrap()
        .reason
        .contains("PASSED"));
}

#[test]
fn step3_a_persons_decision_stands() {
    for status in ["SUPPRESSED", "RESOLVED"] {
        let mut f = finding();
        f.workflow_status = status.into();
        let d = screen(&f, &config(""), &reach()).unwrap();
        assert_eq!(d.action, Action::Ignore);
        assert!(d.reason.contains(status));
    }
}

#[test]
fn step4_scope() {
    let d = screen(
        &finding(),
        &config("[scope]\naccounts = [\"444455556666\"]\n"),
        &reach(),
    )
    .unwrap();
    assert_eq!(
        d.reason,
        "Account 111122223333 is outside [scope] accounts."
    );
    let d = screen(
        &finding(),
        &config("[scope]\nregions = [\"eu-west-1\"]\n"),
        &reach(),
    )
    .unwrap();
    assert_eq!(d.reason, "Region us-east-1 is outside [scope] regions.");
    assert!(screen(
        &finding(),
        &config("[scope]\naccounts = [\"111122223333\"]\n"),
        &reach(),
    )
    .is_none());
}

#[test]
fn step5_another_account_without_a_role_is_ignored_and_never_read() {
    // The daemon runs in the administrator account; the finding is a member's.
    let mut f = finding();
    f.account = "222222222222".into();
    f.id = f.id.replace("111122223333", "222222222222");
    f.cluster_arn = Some("arn:aws:rds:us-east-1:222222222222:cluster:reports".into());
    let admin = AccountReach::own("123456789012");
    let d = screen(&f, &config(""), &admin).expect("decided before any read");
    assert_eq!(d.action, Action::Ignore);
    assert!(
        d.reason.contains("no way into account 222222222222"),
        "{}",
        d.reason
    );
    assert!(d.reason.contains("[accounts] role_arn"), "{}", d.reason);
    assert!(!d.reason.contains("no longer exists"), "{}", d.reason);

    // Even handed the administrator's same-named cluster, decide does not use it.
    let mut same_name = sample_state();
    same_name.identifier = "reports".into();
    same_name.arn = "arn:aws:rds:us-east-1:123456789012:cluster:reports".into();
    same_name.tags = [("env".to_string(), "dev".to_string())].into();
    let d = decide(&f, Some(&same_name), &remediate_config(""), &admin, now());
    assert_eq!(d.action, Action::Ignore);
    assert!(d.plan.is_empty());
    assert!(d.reason.contains("no way into account"), "{}", d.reason);

    // Scope is checked first: out of scope says so, whatever the reach.
    let d = screen(
        &f,
        &config("[scope]\naccounts = [\"123456789012\"]\n"),
        &admin,
    )
    .unwrap();
    assert!(d.reason.contains("outside [scope]"), "{}", d.reason);
}

#[test]
fn step5_another_account_with_a_role_goes_on_to_live_state() {
    let mut f = finding();
    f.account = "222222222222".into();
    f.id = f.id.replace("111122223333", "222222222222");
    f.cluster_arn = Some("arn:aws:rds:us-east-1:222222222222:cluster:reports".into());
    let admin = AccountReach::own("123456789012").with_role(true);
    assert_eq!(
        screen(&f, &config(""), &admin),
        None,
        "read through the role"
    );
    // Scope still comes first.
    let d = screen(
        &f,
        &config("[scope]\naccounts = [\"123456789012\"]\n"),
        &admin,
    )
    .expect("out of scope");
    assert!(d.reason.contains("outside [scope]"), "{}", d.reason);
}

#[test]
fn step5_a_cluster_in_another_partition_is_not_trusted() {
    let mut f = finding();
    f.region = "cn-north-1".into();
    f.id = "arn:aws-cn:securityhub:cn-north-1:111122223333:security-control/Neptune.2/finding/1"
        .into();
    f.product_arn = "arn:aws-cn:securityhub:cn-north-1::product/aws/securityhub".into();
    f.cluster_arn = Some("arn:aws-cn:rds:cn-north-1:111122223333:cluster:orders-graph".into());
    let reach = AccountReach::own("111122223333").with_role(true);
    let d = screen(&f, &config(""), &reach).expect("decided before any read");
    assert_eq!(d.action, Action::Ignore);
    assert!(
        d.reason.contains("not trusted") && d.reason.contains("partition aws-cn"),
        "{}",
        d.reason
    );
    // The same finding, for a daemon in that partition, goes on.
    assert_eq!(screen(&f, &config(""), &reach.in_partition("aws-cn")), None);
}

#[test]
fn state_of_another_arn_is_never_decided_on() {
    // Same identifier, another account or another region: not this cluster.
    for other in [
        "arn:aws:rds:us-east-1:999999999999:cluster:orders-graph",
        "arn:aws:rds:eu-west-1:111122223333:cluster:orders-graph",
        "arn:aws-cn:rds:us-east-1:111122223333:cluster:orders-graph",
    ] {
        let mut s = sample_state();
        s.arn = other.into();
        let d = decide(&finding(), Some(&s), &remediate_config(""), &reach(), now());
        assert_eq!(d.action, Action::Ignore, "{other}");
        assert!(d.plan.is_empty(), "{other}");
        assert!(d.problems.is_empty(), "{other}");
    }
}

#[test]
fn step6_missing_or_non_neptune_clusters() {
    let d = decide(&finding(), None, &config(""), &reach(), now());
    assert_eq!(d.action, Action::Ignore);
    assert!(d.reason.contains("no longer exists"));
    let mut s = sample_state();
    s.engine = "aurora-postgresql".into();
    let d = decide(&finding(), Some(&s), &config(""), &reach(), now());
    assert_eq!(d.action, Action::Ignore);
    assert!(d.reason.contains("aurora-postgresql"));
}

// ---- steps 6–9 ----------------------------------------------------------------------

#[test]
fn step7_compliant_live_state_resolves_even_with_stale_details() {
    let d = decide(&finding(), Some(&compliant()), &config(""), &reach(), now());
    assert_eq!(d.action, Action::Resolve);
    assert!(d.plan.is_empty());
    // Export on but parameter 0 is not compliant.
    let mut s = compliant();
    s.audit_parameter.value = "0".into();
    assert_ne!(
        decide(&finding(), Some(&s), &config(""), &reach(), now()).action,
        Action::Resolve
    );
}

const SUPPRESSIONS: &str = r#"
[[suppress]]
name = "old"
reason = "expired one"
expires = "2026-11-24"
match = {}
[[suppress]]
name = "orders"
reason = "Orders team accepts the risk (RISK-7)"
expires = "2027-03-31"
match = { tags = { team = "orders" } }
[[rule]]
name = "everything"
action = "remediate"
"#;

#[test]
fn step8_first_unexpired_suppression_wins_over_rules() {
    let mut s = sample_state();
    s.tags.insert("team".into(), "orders".into());
    let d = decide(&finding(), Some(&s), &config(SUPPRESSIONS), &reach(), now());
    assert_eq!(d.action, Action::Suppress);
    assert_eq!(d.rule.as_deref(), Some("orders"));
    assert_eq!(d.expires.as_deref(), Some("2027-03-31"));
    assert_eq!(
        d.reason,
        "Suppressed by orders until 2027-03-31: Orders team accepts the risk (RISK-7)"
    );
    // The date is valid through that day.
    let last_day = DateTime::parse_from_rfc3339("2027-03-31T23:59:59Z")
        .unwrap()
        .with_timezone(&Utc);
    assert_eq!(
        decide(
            &finding(),
            Some(&s),
            &config(SUPPRESSIONS),
            &reach(),
            last_day
        )
        .action,
        Action::Suppress
    );
    let after = DateTime::parse_from_rfc3339("2027-04-01T00:00:00Z")
        .unwrap()
        .with_timezone(&Utc);
    let d = decide(&finding(), Some(&s), &config(SUPPRESSIONS), &reach(), after);
    assert_eq!(d.action, Action::Remediate);
    assert_eq!(d.rule.as_deref(), Some("everything"));
}

#[test]
fn step9_first_matching_rule_then_default() {
    let rules = r#"
[[rule]]
name = "prod"
action = "ticket"
match = { tags = { env = "prod" } }
[[rule]]
name = "dev"
action = "remediate"
match = { tags = { env = ["dev", "test"] } }
[[rule]]
name = "quiet"
action = "ignore"
match = { severity = "LOW" }
[default]
action = "ticket"
"#;
    let c = config(rules);
    let mut s = sample_state();
    s.tags.insert("env".into(), "prod".into());
    let d = decide(&finding(), Some(&s), &c, &reach(), now());
    assert_eq!(
        (d.action, d.rule.as_deref()),
        (Action::Ticket, Some("prod"))
    );
    assert!(
        d.reason
            .starts_with("Rule prod chose ticket: the audit log export"),
        "{}",
        d.reason
    );
    assert!(
        !d.reason.contains("orders-graph"),
        "reasons must not name the cluster"
    );

    s.tags.insert("env".into(), "test".into());
    let d = decide(&finding(), Some(&s), &c, &reach(), now());
    assert_eq!(
        (d.action, d.rule.as_deref()),
        (Action::Remediate, Some("dev"))
    );

    s.tags.clear();
    let mut f = finding();
    f.severity_label = Some("LOW".into());
    let d = decide(&f, Some(&s), &c, &reach(), now());
    assert_eq!(
        (d.action, d.rule.as_deref()),
        (Action::Ignore, Some("quiet"))
    );

    let d = decide(&finding(), Some(&s), &c, &reach(), now());
    assert_eq!((d.action, d.rule.as_deref()), (Action::Ticket, None));
    assert!(d
        .reason
        .starts_with("No rule matched; the default is ticket"));
}

#[test]
fn step10_already_notified_tickets_are_not_repeated() {
    let mut f = finding();
    f.workflow_status = "NOTIFIED".into();
    let d = decide(&f, Some(&sample_state()), &config(""), &reach(), now());
    assert_eq!(d.action, Action::Ignore);
    assert!(d.reason.contains("already NOTIFIED"));
    // A remediation is not blocked by NOTIFIED.
    let d = decide(
        &f,
        Some(&sample_state()),
        &remediate_config(""),
        &reach(),
        now(),
    );
    assert_eq!(d.action, Action::Remediate);
}

// ---- one problem, two formats -------------------------------------------------------

/// The same check as an ASFF and as an OCSF finding, over a table of
/// findings, live states and configs: the same action, rule, plan, problems
/// and expiry.
#[test]
fn the_asff_and_the_ocsf_finding_of_one_check_get_the_same_decision() {
    use serde_json::{json, Value};
    let base: Value = serde_json::from_str(crate::testing::EVENT).unwrap();
    type Edit = fn(&mut Value);
    let findings: [(&str, Edit); 9] = [
        ("failed, new", |_| {}),
        ("passed", |f| f["Compliance"]["Status"] = "PASSED".into()),
        ("suppressed by a person", |f| {
            f["Workflow"]["Status"] = "SUPPRESSED".into();
            f["Note"] = json!({"Text": "accepted risk", "UpdatedBy": "alice", "UpdatedAt": "2026-11-21T00:00:00Z"});
        }),
        ("resolved by a person", |f| {
            f["Workflow"]["Status"] = "RESOLVED".into()
        }),
        ("archived", |f| f["RecordState"] = "ARCHIVED".into()),
        ("another account", |f| {
            let id = f["Id"]
                .as_str()
                .unwrap()
                .replace("111122223333", "444455556666");
            f["Id"] = id.into();
            f["AwsAccountId"] = "444455556666".into();
            f["Resources"][0]["Id"] =
                "arn:aws:rds:us-east-1:444455556666:cluster:orders-graph".into();
        }),
        ("another control", |f| {
            f["Compliance"]["SecurityControlId"] = "Neptune.1".into()
        }),
        ("ticketed by hubtriage", |f| {
            f["Workflow"]["Status"] = "NOTIFIED".into();
            f["Note"] = json!({"Text": "hubtriage opened ticket SEC-1.", "UpdatedBy": "hubtriage", "UpdatedAt": "2026-11-21T00:00:00Z"});
            f["UserDefinedFields"] =
                json!({"hubtriage:action": "ticket", "hubtriage:ticket": "SEC-1"});
        }),
        ("high severity", |f| f["Severity"]["Label"] = "HIGH".into()),
    ];
    let mut tagged = sample_state();
    tagged.tags.insert("env".into(), "sandbox".into());
    let states = [
        ("failing", sample_state()),
        ("compliant", compliant()),
        ("sandbox", tagged),
    ];
    let configs = [
        ("default", config("")),
        ("remediate", remediate_config("")),
        (
            "rules",
            config(
                "[[suppress]]\nname = \"sandbox\"\nreason = \"Sandbox clusters\"\nexpires = \"2099-12-31\"\nmatch = { tags = { env = \"sandbox\" } }\n[[rule]]\nname = \"high\"\naction = \"ticket\"\nmatch = { severity = [\"HIGH\"] }\n",
            ),
        ),
    ];
    let mut compared = 0;
    let mut seen = std::collections::BTreeSet::new();
    for (what, edit) in findings {
        let mut event = base.clone();
        edit(&mut event["detail"]["findings"][0]);
        let asff = event.to_string();
        let ocsf = crate::testing::ocsf_twin(&asff);
        let a = crate::finding::parse_event(asff.as_bytes())
            .unwrap()
            .remove(0);
        let o = crate::finding::parse_event(ocsf.as_bytes())
            .unwrap()
            .remove(0);
        assert!(matches!(o.format, crate::finding::Format::Ocsf { .. }));
        for (state_name, state) in &states {
            for (config_name, config) in &configs {
                let da = decide(&a, Some(state), config, &reach(), now());
                let d_o = decide(&o, Some(state), config, &reach(), now());
                let case = format!("{what} / {state_name} / {config_name}");
                assert_eq!(
                    da.action, d_o.action,
                    "{case}: {} | {}",
                    da.reason, d_o.reason
                );
                assert_eq!(da.rule, d_o.rule, "{case}");
                assert_eq!(da.plan, d_o.plan, "{case}");
                assert_eq!(da.problems, d_o.problems, "{case}");
                assert_eq!(da.expires, d_o.expires, "{case}");
                assert_eq!(da.cluster, d_o.cluster, "{case}");
                seen.insert(da.action.as_str());
                compared += 1;
            }
        }
    }
    assert_eq!(compared, 81);
    assert_eq!(
        seen.into_iter().collect::<Vec<_>>(),
        ["ignore", "remediate", "resolve", "suppress", "ticket"],
        "every action is compared"
    );
}
