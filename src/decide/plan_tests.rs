//! Remediation plans, as `decide` makes them from live state and the config.

use super::tests::{config, finding, now, reach, remediate_config};
use super::*;
use crate::control::{Step, SKIP_TAG};
use crate::state::tests::sample_state;
use crate::state::PENDING_REBOOT;

fn ops(d: &Decision) -> Vec<String> {
    d.plan
        .iter()
        .map(|s| match s {
            Step::CreateParameterGroup {
                name,
                family,
                copy_from,
            } => {
                format!(
                    "create {name} {family} {}",
                    copy_from.as_deref().unwrap_or("-")
                )
            }
            Step::SetAuditParameter { group } => format!("set {group}"),
            Step::AttachParameterGroup { group } => format!("attach {group}"),
            Step::EnableAuditExport => "export".into(),
            Step::WaitForMaintenanceWindow { window } => format!("wait {window}"),
            Step::RebootInstance { instance } => format!("reboot {instance}"),
            Step::SetLogRetention { log_group, days } => {
                format!("retention {log_group} {days}")
            }
            Step::Verify => "verify".into(),
            other => format!("{other:?}"),
        })
        .collect()
}

// ---- plans --------------------------------------------------------------------------

#[test]
fn plan_default_group_gets_a_new_group() {
    let d = decide(
        &finding(),
        Some(&sample_state()),
        &remediate_config("log_retention_days = 365"),
        &reach(),
        now(),
    );
    assert_eq!(d.action, Action::Remediate);
    assert_eq!(
        ops(&d),
        vec![
            "create hubtriage-audit-orders-graph neptune1.3 -",
            "set hubtriage-audit-orders-graph",
            "attach hubtriage-audit-orders-graph",
            "export",
            "reboot orders-graph-2",
            "reboot orders-graph-1",
            "retention /aws/neptune/orders-graph/audit 365",
            "verify",
        ]
    );
    let json = serde_json::to_value(&d.plan[0]).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"op": "create_parameter_group", "name": "hubtriage-audit-orders-graph", "family": "neptune1.3"})
    );
}

#[test]
fn plan_families_follow_the_engine_version() {
    let mut s = sample_state();
    s.engine_version = "1.2.1.0".into();
    let d = decide(&finding(), Some(&s), &remediate_config(""), &reach(), now());
    assert_eq!(
        ops(&d)[0],
        "create hubtriage-audit-orders-graph neptune1.2 -"
    );
}

fn custom(shared: bool) -> ClusterState {
    let mut s = sample_state();
    s.parameter_group = "graph-params".into();
    if shared {
        s.group_shared_with = vec!["billing-graph".into()];
    }
    s
}

#[test]
fn plan_exclusive_custom_group_is_modified_in_place() {
    let d = decide(
        &finding(),
        Some(&custom(false)),
        &remediate_config(""),
        &reach(),
        now(),
    );
    assert_eq!(
        ops(&d),
        vec![
            "set graph-params",
            "export",
            "reboot orders-graph-2",
            "reboot orders-graph-1",
            "verify"
        ]
    );
}

#[test]
fn plan_shared_group_under_each_policy() {
    let copy = decide(
        &finding(),
        Some(&custom(true)),
        &remediate_config("shared_parameter_group = \"copy\""),
        &reach(),
        now(),
    );
    assert_eq!(
        ops(&copy)[..3],
        [
            "create hubtriage-audit-orders-graph neptune1.3 graph-params".to_string(),
            "set hubtriage-audit-orders-graph".into(),
            "attach hubtriage-audit-orders-graph".into()
        ]
    );
    let modify = decide(
        &finding(),
        Some(&custom(true)),
        &remediate_config("shared_parameter_group = \"modify\""),
        &reach(),
        now(),
    );
    assert_eq!(ops(&modify)[0], "set graph-params");
    let ticket = decide(
        &finding(),
        Some(&custom(true)),
        &remediate_config("shared_parameter_group = \"ticket\""),
        &reach(),
        now(),
    );
    assert_eq!(ticket.action, Action::Ticket);
    assert!(ticket.plan.is_empty());
    assert!(
        ticket.reason.contains("shared with billing-graph"),
        "{}",
        ticket.reason
    );
}

#[test]
fn plan_parameter_already_1_but_pending_reboot_only_reboots() {
    let mut s = custom(false);
    s.exported_logs.push("audit".into());
    s.audit_parameter.value = "1".into();
    s.members[0].parameter_group_status = PENDING_REBOOT.into();
    let d = decide(&finding(), Some(&s), &remediate_config(""), &reach(), now());
    assert_eq!(
        ops(&d),
        vec!["reboot orders-graph-1", "verify"],
        "only the member that has not applied it"
    );
}

#[test]
fn plan_export_on_but_parameter_0_sets_and_reboots() {
    let mut s = custom(false);
    s.exported_logs.push("audit".into());
    let d = decide(&finding(), Some(&s), &remediate_config(""), &reach(), now());
    assert_eq!(
        ops(&d),
        vec![
            "set graph-params",
            "reboot orders-graph-2",
            "reboot orders-graph-1",
            "verify"
        ]
    );
}

#[test]
fn plan_parameter_1_in_sync_only_exports() {
    let mut s = custom(false);
    s.audit_parameter.value = "1".into();
    let d = decide(&finding(), Some(&s), &remediate_config(""), &reach(), now());
    assert_eq!(ops(&d), vec!["export", "verify"]);
}

#[test]
fn plan_reboot_policies() {
    let c = config(
        "[remediation]\nreboot = \"maintenance-window\"\n[default]\naction = \"remediate\"\n",
    );
    let d = decide(&finding(), Some(&custom(false)), &c, &reach(), now());
    assert_eq!(
        ops(&d),
        vec![
            "set graph-params",
            "export",
            "wait sun:06:00-sun:06:30",
            "reboot orders-graph-2",
            "reboot orders-graph-1",
            "verify"
        ]
    );

    let mut no_window = custom(false);
    no_window.maintenance_window = None;
    let d = decide(&finding(), Some(&no_window), &c, &reach(), now());
    assert_eq!(d.action, Action::Ticket);
    assert!(d.reason.contains("PreferredMaintenanceWindow"));

    let c = config("[remediation]\nreboot = \"never\"\n[default]\naction = \"remediate\"\n");
    let d = decide(&finding(), Some(&custom(false)), &c, &reach(), now());
    assert_eq!(ops(&d), vec!["set graph-params", "export", "verify"]);
    assert!(
        d.reason
            .contains("reboot of every instance is still needed"),
        "{}",
        d.reason
    );
}

#[test]
fn plan_retention_on_and_off() {
    let d = decide(
        &finding(),
        Some(&custom(false)),
        &remediate_config(""),
        &reach(),
        now(),
    );
    assert!(!ops(&d).iter().any(|o| o.starts_with("retention")));
    let d = decide(
        &finding(),
        Some(&custom(false)),
        &remediate_config("log_retention_days = 30"),
        &reach(),
        now(),
    );
    assert!(ops(&d).contains(&"retention /aws/neptune/orders-graph/audit 30".to_string()));
    let mut s = custom(false);
    s.audit_log_retention_days = Some(30);
    let d = decide(
        &finding(),
        Some(&s),
        &remediate_config("log_retention_days = 30"),
        &reach(),
        now(),
    );
    assert!(
        !ops(&d).iter().any(|o| o.starts_with("retention")),
        "already in place"
    );
}

#[test]
fn plan_refuses_skipped_clusters_waits_for_busy_ones_and_tickets_stopped_ones() {
    let mut s = sample_state();
    s.tags.insert(SKIP_TAG.into(), "".into());
    let d = decide(&finding(), Some(&s), &remediate_config(""), &reach(), now());
    assert_eq!(d.action, Action::Ticket);
    assert!(d.reason.contains("hubtriage:skip"));
    // On its way back to available (#26: was a ticket): wait first.
    for status in ["modifying", "backing-up", "maintenance", "upgrading"] {
        let mut s = sample_state();
        s.status = status.into();
        let d = decide(&finding(), Some(&s), &remediate_config(""), &reach(), now());
        assert_eq!(d.action, Action::Remediate, "{status}");
        assert_eq!(
            d.plan[0],
            Step::WaitForAvailable {
                status: status.into()
            }
        );
        assert_eq!(d.plan.last(), Some(&Step::Verify));
    }
    let mut s = sample_state();
    s.status = "stopped".into();
    let d = decide(&finding(), Some(&s), &remediate_config(""), &reach(), now());
    assert_eq!(d.action, Action::Ticket);
    assert!(
        d.reason.contains("the cluster is stopped") && d.reason.contains("after seven days"),
        "{}",
        d.reason
    );
    let mut s = sample_state();
    s.status = "deleting".into();
    let d = decide(&finding(), Some(&s), &remediate_config(""), &reach(), now());
    assert_eq!(d.action, Action::Ignore);
    assert!(d.reason.contains("being deleted"), "{}", d.reason);
    let mut s = sample_state();
    s.status = "inaccessible-encryption-credentials".into();
    let d = decide(&finding(), Some(&s), &remediate_config(""), &reach(), now());
    assert_eq!(d.action, Action::Ticket);
    assert!(d
        .reason
        .contains("inaccessible-encryption-credentials, not available"));
}
