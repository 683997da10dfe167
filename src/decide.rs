//! Decide step, pure: (finding, live cluster state, config, now) → `Decision`.
//!
//! No I/O and no clock: `now` is an argument. The order of the checks is the
//! order documented in README.md ("How hubtriage decides").

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::config::{Config, RebootPolicy, Remediation, RuleAction, SharedGroupPolicy, Subject};
use crate::finding::{ClusterArn, Finding};
use crate::state::ClusterState;

/// The tag that keeps hubtriage from changing a cluster (any value).
pub const SKIP_TAG: &str = "hubtriage:skip";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Remediate,
    Ticket,
    Suppress,
    Resolve,
    Ignore,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Remediate => "remediate",
            Action::Ticket => "ticket",
            Action::Suppress => "suppress",
            Action::Resolve => "resolve",
            Action::Ignore => "ignore",
        }
    }
}

impl From<RuleAction> for Action {
    fn from(a: RuleAction) -> Self {
        match a {
            RuleAction::Remediate => Action::Remediate,
            RuleAction::Ticket => Action::Ticket,
            RuleAction::Ignore => Action::Ignore,
        }
    }
}

/// One step of a remediation plan, in the order it must run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Step {
    /// Create `<prefix><cluster>`; with `copy_from`, copy that group's user-set parameters.
    CreateParameterGroup {
        name: String,
        family: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        copy_from: Option<String>,
    },
    SetAuditParameter {
        group: String,
    },
    AttachParameterGroup {
        group: String,
    },
    EnableAuditExport,
    WaitForMaintenanceWindow {
        window: String,
    },
    RebootInstance {
        instance: String,
    },
    SetLogRetention {
        log_group: String,
        days: i32,
    },
    Verify,
}

/// What hubtriage decided for one finding, and why. This is what `explain`
/// prints, what the logs carry and what the finding's note is written from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    pub finding_id: String,
    pub product_arn: String,
    pub account: String,
    pub region: String,
    /// The cluster identifier, when the finding names one.
    pub cluster: Option<String>,
    pub control: Option<String>,
    pub action: Action,
    /// The rule or suppression that chose the action; `None` for built-in checks and `[default]`.
    pub rule: Option<String>,
    /// One sentence a person understands. It does not name the cluster, so that
    /// findings with the same decision can share one note.
    pub reason: String,
    /// What keeps the cluster from compliance (empty when not looked at or compliant).
    #[serde(default)]
    pub problems: Vec<String>,
    #[serde(default)]
    pub plan: Vec<Step>,
    /// A suppression's expiry, as written in the config.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<String>,
}

/// The log group Neptune writes audit logs to.
pub fn audit_log_group(cluster: &str) -> String {
    format!("/aws/neptune/{cluster}/audit")
}

impl Decision {
    fn new(f: &Finding, action: Action, reason: impl Into<String>) -> Self {
        Decision {
            finding_id: f.id.clone(),
            product_arn: f.product_arn.clone(),
            account: f.account.clone(),
            region: f.region.clone(),
            cluster: f.cluster_id().map(str::to_string),
            control: f.control.clone(),
            action,
            rule: None,
            reason: reason.into(),
            problems: Vec::new(),
            plan: Vec::new(),
            expires: None,
        }
    }
}

/// The accounts whose clusters hubtriage can read and change: today only the
/// account it runs in (learnt at start with STS GetCallerIdentity).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reach {
    /// The 12-digit account the daemon's own credentials act in.
    pub own_account: String,
}

impl Reach {
    pub fn own(account: impl Into<String>) -> Self {
        Reach {
            own_account: account.into(),
        }
    }

    /// `None` when hubtriage can work in `account`; else why not, as a reason.
    pub fn refuses(&self, account: &str) -> Option<String> {
        (account != self.own_account).then(|| {
            format!(
                "hubtriage has no way into account {account}: it runs in account {} and no role to assume in other accounts is configured ([accounts] role_arn).",
                self.own_account
            )
        })
    }
}

/// Steps 1–5: what can be decided from the finding, the config and the reach
/// alone. `Some` means live state need not (and must not) be read.
pub fn screen(f: &Finding, config: &Config, reach: &Reach) -> Option<Decision> {
    let ignore = |reason: String| Some(Decision::new(f, Action::Ignore, reason));

    // 1. Not ours, or not trusted.
    if let Some(why) = untrusted(f) {
        return ignore(why);
    }

    // 2. Nothing to fix.
    if f.record_state == "ARCHIVED" {
        return ignore("The finding is archived.".into());
    }
    match f.compliance_status.as_deref() {
        Some("FAILED") => {}
        Some(status) => return ignore(format!("The compliance status is {status}, not FAILED.")),
        None => return ignore("The finding has no compliance status.".into()),
    }

    // 3. A person decided.
    if f.workflow_status == "SUPPRESSED" || f.workflow_status == "RESOLVED" {
        return ignore(format!(
            "The workflow status is {}: a person already decided.",
            f.workflow_status
        ));
    }

    // 4. Out of scope, and 5. no way into the account.
    out_of_reach(f, config, reach).and_then(ignore)
}

/// Step 1: why the finding is not a Neptune.2 finding hubtriage can trust, if so.
pub fn untrusted(f: &Finding) -> Option<String> {
    if !f.is_neptune2() {
        let control = f.control.as_deref().unwrap_or("an unknown control");
        return Some(format!("The finding is for {control}, not Neptune.2."));
    }
    let Some(cluster_arn) = f.cluster_arn.as_deref() else {
        return Some("The finding names no AwsRdsDbCluster resource.".into());
    };
    if !is_security_hub_product(&f.product_arn, &f.region) {
        return Some(format!(
            "The finding is not trusted: its ProductArn {} is not Security Hub's own product in {}.",
            f.product_arn, f.region
        ));
    }
    let Some(arn) = ClusterArn::parse(cluster_arn) else {
        return Some(format!(
            "The finding is not trusted: its resource {cluster_arn} is not a cluster ARN."
        ));
    };
    if arn.account != f.account || arn.region != f.region {
        return Some(format!(
            "The finding is not trusted: its cluster ARN names account {} in {}, but the finding comes from account {} in {}.",
            arn.account, arn.region, f.account, f.region
        ));
    }
    None
}

/// Steps 4 and 5: why hubtriage must not touch the finding's account and
/// region, if so: outside `[scope]`, or an account it has no way into (its
/// cluster must not be looked up with our own credentials: a same-named
/// cluster in our account is another cluster).
pub fn out_of_reach(f: &Finding, config: &Config, reach: &Reach) -> Option<String> {
    if !config.scope.allows_account(&f.account) {
        return Some(format!(
            "Account {} is outside [scope] accounts.",
            f.account
        ));
    }
    if !config.scope.allows_region(&f.region) {
        return Some(format!("Region {} is outside [scope] regions.", f.region));
    }
    reach.refuses(&f.account)
}

/// `arn:<partition>:securityhub:<region>::product/aws/securityhub` for the finding's region.
fn is_security_hub_product(product_arn: &str, region: &str) -> bool {
    let parts: Vec<&str> = product_arn.split(':').collect();
    matches!(
        parts.as_slice(),
        ["arn", partition, "securityhub", r, "", "product/aws/securityhub"]
            if partition.starts_with("aws") && *r == region
    )
}

/// The whole decision. `live` is the cluster's live state, `None` when the
/// cluster was not found.
pub fn decide(
    f: &Finding,
    live: Option<&ClusterState>,
    config: &Config,
    reach: &Reach,
    now: DateTime<Utc>,
) -> Decision {
    if let Some(decision) = screen(f, config, reach) {
        return decision;
    }

    // 6. The cluster must exist and be Neptune. State read for another ARN is
    // another cluster, never this one.
    let live = live.filter(|s| Some(s.arn.as_str()) == f.cluster_arn.as_deref());
    let Some(state) = live else {
        return Decision::new(
            f,
            Action::Ignore,
            "The cluster no longer exists in its account and region.",
        );
    };
    if state.engine != "neptune" {
        return Decision::new(
            f,
            Action::Ignore,
            format!("The cluster runs engine {}, not neptune.", state.engine),
        );
    }

    // 7. Already fixed.
    let problems = state.problems();
    if problems.is_empty() {
        return Decision::new(
            f,
            Action::Resolve,
            "Live state is compliant: the audit log is exported, neptune_enable_audit_log is 1 and every instance has applied it.",
        );
    }
    let what = problems.join("; ");

    // 8. Suppressions, then 9. rules, then [default].
    let subject = Subject {
        account: &f.account,
        region: &f.region,
        cluster: &state.identifier,
        tags: &state.tags,
        severity: f.severity_label.as_deref(),
    };
    let suppression = config
        .suppress
        .iter()
        .filter(|s| !s.expires.is_expired(now))
        .find(|s| s.matcher.matches(&subject));
    let mut decision = if let Some(s) = suppression {
        let mut d = Decision::new(
            f,
            Action::Suppress,
            format!(
                "Suppressed by {} until {}: {}",
                s.name, s.expires.text, s.reason
            ),
        );
        d.rule = Some(s.name.clone());
        d.expires = Some(s.expires.text.clone());
        d
    } else if let Some(rule) = config.rule.iter().find(|r| r.matcher.matches(&subject)) {
        let action = Action::from(rule.action);
        let mut d = Decision::new(
            f,
            action,
            format!("Rule {} chose {}: {what}.", rule.name, action.as_str()),
        );
        d.rule = Some(rule.name.clone());
        d
    } else {
        let action = Action::from(config.default.action);
        Decision::new(
            f,
            action,
            format!(
                "No rule matched; the default is {}: {what}.",
                action.as_str()
            ),
        )
    };
    decision.problems = problems;

    if decision.action == Action::Remediate && state.status != "available" {
        decision.action = Action::Ticket;
        decision.reason = format!(
            "{} Not remediated: the cluster's status is {}, not available.",
            decision.reason, state.status
        );
    }
    if decision.action == Action::Remediate {
        match plan(state, &config.remediation) {
            Ok((steps, note)) => {
                decision.plan = steps;
                if let Some(note) = note {
                    decision.reason = format!("{} {note}", decision.reason);
                }
            }
            Err(why) => {
                decision.action = Action::Ticket;
                decision.reason = format!("{} Not remediated: {why}", decision.reason);
            }
        }
    }

    // 10. A ticket was already raised.
    if decision.action == Action::Ticket && f.workflow_status == "NOTIFIED" {
        decision.action = Action::Ignore;
        decision.reason = format!(
            "The workflow status is already NOTIFIED, so no new ticket. ({})",
            decision.reason
        );
    }
    decision
}

/// The remediation plan for a non-compliant cluster: the steps still needed, in
/// order, and a sentence to add to the reason. `Err` says why hubtriage must not
/// change the cluster (the decision becomes a ticket). The remediation executor
/// calls it again on every pass, so a plan is always what live state still lacks.
pub fn plan(
    state: &ClusterState,
    policy: &Remediation,
) -> Result<(Vec<Step>, Option<String>), String> {
    if state.tags.contains_key(SKIP_TAG) {
        return Err(format!("the cluster is tagged {SKIP_TAG}."));
    }

    let mut steps = Vec::new();
    let own_group = format!("{}{}", policy.parameter_group_prefix, state.identifier);
    let family = state.parameter_group_family();
    let shared = !state.group_shared_with.is_empty();

    // Which group will hold neptune_enable_audit_log = 1, and is it new?
    let new_group = if state.uses_default_group() {
        Some(None)
    } else if shared {
        match policy.shared_parameter_group {
            SharedGroupPolicy::Copy => Some(Some(state.parameter_group.clone())),
            SharedGroupPolicy::Modify => None,
            SharedGroupPolicy::Ticket => {
                return Err(format!(
                    "its parameter group {} is shared with {} and shared_parameter_group is \"ticket\".",
                    state.parameter_group,
                    state.group_shared_with.join(", ")
                ));
            }
        }
    } else {
        None
    };
    let parameter_changes = match new_group {
        Some(copy_from) => {
            steps.push(Step::CreateParameterGroup {
                name: own_group.clone(),
                family,
                copy_from,
            });
            steps.push(Step::SetAuditParameter {
                group: own_group.clone(),
            });
            steps.push(Step::AttachParameterGroup { group: own_group });
            true
        }
        None if !state.audit_parameter.is_enabled() => {
            steps.push(Step::SetAuditParameter {
                group: state.parameter_group.clone(),
            });
            true
        }
        None => false,
    };

    if !state.exports_audit() {
        steps.push(Step::EnableAuditExport);
    }

    let mut note = None;
    // A parameter change needs every instance rebooted; otherwise only those
    // that have not applied the group yet.
    let to_reboot: Vec<&crate::state::Member> = state
        .reboot_order()
        .into_iter()
        .filter(|m| parameter_changes || m.parameter_group_status != crate::state::IN_SYNC)
        .collect();
    let needs_reboot = !to_reboot.is_empty();
    if needs_reboot {
        match policy.reboot {
            RebootPolicy::Never => {
                note = Some(
                    "A reboot of every instance is still needed for the audit log to start; reboot policy is \"never\", so hubtriage will not reboot.".to_string(),
                );
            }
            RebootPolicy::MaintenanceWindow | RebootPolicy::Immediate => {
                if policy.reboot == RebootPolicy::MaintenanceWindow {
                    let Some(window) = state.maintenance_window.clone() else {
                        return Err("reboot policy is \"maintenance-window\" but the cluster has no PreferredMaintenanceWindow.".into());
                    };
                    steps.push(Step::WaitForMaintenanceWindow { window });
                }
                for member in to_reboot {
                    steps.push(Step::RebootInstance {
                        instance: member.instance.clone(),
                    });
                }
            }
        }
    }

    if let Some(days) = policy.log_retention_days {
        if state.audit_log_retention_days != Some(days) {
            steps.push(Step::SetLogRetention {
                log_group: audit_log_group(&state.identifier),
                days,
            });
        }
    }
    steps.push(Step::Verify);
    Ok((steps, note))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::finding::parse_event;
    use crate::state::tests::sample_state;
    use crate::state::PENDING_REBOOT;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-25T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    fn finding() -> Finding {
        parse_event(include_str!("../tests/fixtures/neptune2-failed-event.json").as_bytes())
            .unwrap()
            .remove(0)
    }

    fn reach() -> Reach {
        Reach::own("111122223333")
    }

    fn config(extra: &str) -> Config {
        Config::from_toml_with_env("t.toml", extra, vec![]).unwrap()
    }

    fn remediate_config(extra: &str) -> Config {
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
            })
            .collect()
    }

    // ---- steps 1–5: ignore --------------------------------------------------------------

    #[test]
    fn step1_other_controls_and_missing_clusters_are_ignored() {
        let mut f = finding();
        f.control = Some("Neptune.1".into());
        let d = decide(&f, Some(&sample_state()), &config(""), &reach(), now());
        assert_eq!(d.action, Action::Ignore);
        assert!(d.reason.contains("Neptune.1"), "{}", d.reason);

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
    }

    #[test]
    fn step2_archived_or_not_failed_is_ignored() {
        let mut f = finding();
        f.record_state = "ARCHIVED".into();
        assert!(screen(&f, &config(""), &reach())
            .unwrap()
            .reason
            .contains("archived"));
        let mut f = finding();
        f.compliance_status = Some("PASSED".into());
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
        let admin = Reach::own("123456789012");
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
    fn plan_refuses_skipped_and_busy_clusters() {
        let mut s = sample_state();
        s.tags.insert(SKIP_TAG.into(), "".into());
        let d = decide(&finding(), Some(&s), &remediate_config(""), &reach(), now());
        assert_eq!(d.action, Action::Ticket);
        assert!(d.reason.contains("hubtriage:skip"));
        let mut s = sample_state();
        s.status = "modifying".into();
        let d = decide(&finding(), Some(&s), &remediate_config(""), &reach(), now());
        assert_eq!(d.action, Action::Ticket);
        assert!(d.reason.contains("modifying"));
    }
}
