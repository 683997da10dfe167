//! Decide step, pure: (finding, live cluster state, config, now) → `Decision`.
//!
//! No I/O and no clock: `now` is an argument. The order of the checks is the
//! order documented in README.md ("How hubtriage decides").

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::config::{Config, Remediation, RuleAction, Subject};
use crate::finding::{ClusterArn, Compliance, Finding, Format, RecordState, Workflow};
use crate::state::ClusterState;

mod plan;
#[cfg(test)]
mod plan_tests;
#[cfg(test)]
mod tests;

pub use plan::{audit_log_group, plan, SKIP_TAG};

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

/// The accounts whose clusters hubtriage can read and change: the account it
/// runs in (learnt at start with STS GetCallerIdentity), and others when a
/// role to assume in them is configured (`[accounts] role_arn`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reach {
    /// The 12-digit account the daemon's own credentials act in.
    pub own_account: String,
    /// The partition the daemon runs in (`aws`, `aws-cn`, `aws-us-gov`).
    pub partition: String,
    /// `[accounts] role_arn` is set: other accounts are reached through it.
    pub role: bool,
}

impl Reach {
    /// The daemon's own account only, in the `aws` partition.
    pub fn own(account: impl Into<String>) -> Self {
        Reach {
            own_account: account.into(),
            partition: "aws".into(),
            role: false,
        }
    }

    /// Other accounts too, through the configured role.
    pub fn with_role(mut self, role: bool) -> Self {
        self.role = role;
        self
    }

    pub fn in_partition(mut self, partition: impl Into<String>) -> Self {
        self.partition = partition.into();
        self
    }

    /// `None` when hubtriage can work in `account`; else why not, as a reason.
    pub fn refuses(&self, account: &str) -> Option<String> {
        (account != self.own_account && !self.role).then(|| {
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
    if f.record_state == RecordState::Archived {
        return ignore("The finding is archived.".into());
    }
    match &f.compliance_status {
        Some(Compliance::Failed) => {}
        Some(status) => return ignore(format!("The compliance status is {status}, not FAILED.")),
        None => return ignore("The finding has no compliance status.".into()),
    }

    // 3. A person decided.
    if f.workflow_status.is_closed() {
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
        if let Some(resource_id) = &f.cluster_resource_id {
            return Some(format!(
                "The finding names cluster resource id {resource_id}, and no Neptune cluster in account {} in {} has it.",
                f.account, f.region
            ));
        }
        return Some("The finding names no AwsRdsDbCluster resource.".into());
    };
    if !is_security_hub_product(&f.product_arn, &f.region, &f.format) {
        let field = match f.format {
            Format::Asff => "ProductArn",
            Format::Ocsf { .. } => "metadata.product.uid",
        };
        return Some(format!(
            "The finding is not trusted: its {field} {} is not Security Hub's own product in {}.",
            f.product_arn, f.region
        ));
    }
    if let Some((account, region)) = id_place(&f.id) {
        if account != f.account || region != f.region {
            return Some(format!(
                "The finding is not trusted: its Id names account {account} in {region}, but it says it comes from account {} in {}.",
                f.account, f.region
            ));
        }
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

/// The (account, region) a Security Hub finding `Id` names, when it is an ARN
/// (`arn:<partition>:securityhub:<region>:<account>:...`), as Security Hub's
/// own findings' ids are.
fn id_place(id: &str) -> Option<(&str, &str)> {
    let mut parts = id.splitn(6, ':');
    let (arn, _partition, service) = (parts.next()?, parts.next()?, parts.next()?);
    let (region, account) = (parts.next()?, parts.next()?);
    (arn == "arn" && service == "securityhub").then_some((account, region))
}

/// Steps 4 and 5: why hubtriage must not touch the finding's account and
/// region, if so: outside `[scope]`, or an account it has no way into (its
/// cluster must not be looked up with our own credentials: a same-named
/// cluster in our account is another cluster).
pub fn out_of_reach(f: &Finding, config: &Config, reach: &Reach) -> Option<String> {
    let partition = f
        .cluster_arn
        .as_deref()
        .and_then(ClusterArn::parse)
        .map(|a| a.partition);
    if let Some(p) = partition.filter(|p| *p != reach.partition) {
        return Some(format!(
            "The finding is not trusted: its cluster is in partition {p}, and hubtriage runs in {}.",
            reach.partition
        ));
    }
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

/// Security Hub's own product in `region`: `…::product/aws/securityhub` for
/// ASFF findings, `…::productv2/aws/securityhub` for OCSF ones.
fn is_security_hub_product(product_arn: &str, region: &str, format: &Format) -> bool {
    let product = match format {
        Format::Asff => "product/aws/securityhub",
        Format::Ocsf { .. } => "productv2/aws/securityhub",
    };
    let parts: Vec<&str> = product_arn.split(':').collect();
    matches!(
        parts.as_slice(),
        ["arn", partition, "securityhub", r, "", p]
            if partition.starts_with("aws") && *r == region && *p == product
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
    // 1.–5. What the finding, the config and the reach decide alone.
    if let Some(decision) = screen(f, config, reach) {
        return decision;
    }

    // 6. The cluster must exist and be Neptune.
    let state = match this_cluster(f, live) {
        Ok(state) => state,
        Err(why) => return Decision::new(f, Action::Ignore, why),
    };

    // 7. Already fixed.
    let problems = state.problems();
    if problems.is_empty() {
        return Decision::new(
            f,
            Action::Resolve,
            "Live state is compliant: the audit log is exported, neptune_enable_audit_log is 1 and every instance has applied it.",
        );
    }

    // 8. Suppressions, then 9. rules, then [default].
    let mut decision = choose(f, state, &problems, config, now);
    decision.problems = problems;
    // A remediation the cluster's status or the plan forbids becomes a ticket.
    constrain_remediation(&mut decision, state, &config.remediation);

    // 10. A ticket was already raised.
    already_notified(&mut decision, f);
    decision
}

/// Step 6: the live state of the finding's cluster, or why there is none.
/// State read for another ARN is another cluster, never this one.
fn this_cluster<'a>(
    f: &Finding,
    live: Option<&'a ClusterState>,
) -> Result<&'a ClusterState, String> {
    let live = live.filter(|s| Some(s.arn.as_str()) == f.cluster_arn.as_deref());
    let Some(state) = live else {
        return Err("The cluster no longer exists in its account and region.".into());
    };
    if state.engine != "neptune" {
        return Err(format!(
            "The cluster runs engine {}, not neptune.",
            state.engine
        ));
    }
    Ok(state)
}

/// Steps 8 and 9: the first unexpired suppression that matches, else the first
/// rule that matches, else `[default]`. `problems` are what the reason names.
fn choose(
    f: &Finding,
    state: &ClusterState,
    problems: &[String],
    config: &Config,
    now: DateTime<Utc>,
) -> Decision {
    let what = problems.join("; ");
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
    if let Some(s) = suppression {
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
        return d;
    }
    if let Some(rule) = config.rule.iter().find(|r| r.matcher.matches(&subject)) {
        let action = Action::from(rule.action);
        let mut d = Decision::new(
            f,
            action,
            format!("Rule {} chose {}: {what}.", rule.name, action.as_str()),
        );
        d.rule = Some(rule.name.clone());
        return d;
    }
    let action = Action::from(config.default.action);
    Decision::new(
        f,
        action,
        format!(
            "No rule matched; the default is {}: {what}.",
            action.as_str()
        ),
    )
}

/// A `remediate` decision becomes a `ticket`, with the reason, when the
/// cluster is not `available` or the plan refuses to change it; otherwise it
/// carries the plan (and the plan's note, if any, joins the reason).
fn constrain_remediation(decision: &mut Decision, state: &ClusterState, policy: &Remediation) {
    if decision.action != Action::Remediate {
        return;
    }
    if state.status != "available" {
        decision.action = Action::Ticket;
        decision.reason = format!(
            "{} Not remediated: the cluster's status is {}, not available.",
            decision.reason, state.status
        );
        return;
    }
    match plan(state, policy) {
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

/// Step 10: a ticket for a finding already `NOTIFIED` is not raised again.
fn already_notified(decision: &mut Decision, f: &Finding) {
    if decision.action == Action::Ticket && f.workflow_status == Workflow::Notified {
        decision.action = Action::Ignore;
        decision.reason = format!(
            "The workflow status is already NOTIFIED, so no new ticket. ({})",
            decision.reason
        );
    }
}
