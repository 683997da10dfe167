//! Decide step, pure: (finding, live state, config, now) → `Decision`.
//!
//! No I/O and no clock: `now` is an argument. The order of the checks is the
//! order documented in README.md ("How hubtriage decides"): what the finding,
//! the config and the reach decide alone ([`screen`]), then live state, the
//! suppressions and rules, and the control's safety class ([`choose`]). What
//! each control checks and how it is fixed comes from its module in
//! `crate::control`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::config::{Config, RuleAction};
use crate::control::{Control, Criteria, Kind, Step};
use crate::finding::Finding;
use crate::state::{Availability, ClusterState, LiveResource};

mod choose;
#[cfg(test)]
mod controls_tests;
#[cfg(test)]
mod plan_tests;
mod repeats;
mod screen;
#[cfg(test)]
mod tests;

pub use repeats::{stop_repeated_fix, EarlierFix};
pub use screen::{out_of_reach, screen, untrusted};

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

/// What hubtriage decided for one finding, and why. This is what `explain`
/// prints, what the logs carry and what the finding's note is written from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    pub finding_id: String,
    pub product_arn: String,
    pub account: String,
    pub region: String,
    /// The cluster identifier, when the finding names one (a snapshot's
    /// finding: the cluster the snapshot was taken of, once read).
    pub cluster: Option<String>,
    /// The control that decides the finding: the finding's own, or the
    /// Neptune control an RDS control on a Neptune resource is decided as.
    pub control: Option<String>,
    /// The cluster snapshot, for a snapshot control's finding.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<String>,
    /// The finding's own control when it is decided as another (`RDS.7`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finding_control: Option<String>,
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
    /// The fix a ticket shows instead of the control's manual fix: the change
    /// to make in the stack that owns the resource, or what to look for when
    /// something keeps reverting hubtriage's fix.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fix: Vec<String>,
}

/// The control that decides `f`: its Neptune control, or the Neptune control
/// its RDS control is decided as.
pub fn deciding_control(f: &Finding) -> Option<&'static dyn Control> {
    f.control.as_deref().and_then(crate::control::deciding)
}

/// What the control deciding `f` checks: a cluster or a cluster snapshot.
pub fn resource_kind(f: &Finding) -> Option<Kind> {
    deciding_control(f).map(|c| c.kind())
}

impl Decision {
    fn new(f: &Finding, action: Action, reason: impl Into<String>) -> Self {
        let deciding = deciding_control(f);
        let control = deciding
            .map(|c| c.id().to_string())
            .or_else(|| f.control.clone());
        let finding_control = f.control.clone().filter(|c| Some(c) != control.as_ref());
        let snapshot = match deciding.map(|c| c.kind()) {
            Some(Kind::ClusterSnapshot) => f.snapshot_id().map(str::to_string),
            _ => None,
        };
        Decision {
            finding_id: f.id.clone(),
            product_arn: f.product_arn.clone(),
            account: f.account.clone(),
            region: f.region.clone(),
            cluster: f.cluster_id().map(str::to_string),
            control,
            snapshot,
            finding_control,
            action,
            rule: None,
            reason: reason.into(),
            problems: Vec::new(),
            plan: Vec::new(),
            expires: None,
            fix: Vec::new(),
        }
    }
}

/// The accounts whose clusters hubtriage can read and change: the account it
/// runs in (learnt at start with STS GetCallerIdentity), and others when a
/// role to assume in them is configured (`[accounts] role_arn`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountReach {
    /// The 12-digit account the daemon's own credentials act in.
    pub own_account: String,
    /// The partition the daemon runs in (`aws`, `aws-cn`, `aws-us-gov`).
    pub partition: String,
    /// `[accounts] role_arn` is set: other accounts are reached through it.
    pub role: bool,
}

impl AccountReach {
    /// The daemon's own account only, in the `aws` partition.
    pub fn own(account: impl Into<String>) -> Self {
        AccountReach {
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

/// The whole decision for a finding of a cluster control. `live` is the
/// cluster's live state, `None` when the cluster was not found.
pub fn decide(
    f: &Finding,
    live: Option<&ClusterState>,
    config: &Config,
    reach: &AccountReach,
    now: DateTime<Utc>,
) -> Decision {
    decide_on(f, live.map(LiveResource::Cluster), config, reach, now)
}

/// The whole decision: `live` is the live state of the resource the
/// finding's control checks (its cluster or cluster snapshot), `None` when it
/// was not found.
pub fn decide_on(
    f: &Finding,
    live: Option<LiveResource<'_>>,
    config: &Config,
    reach: &AccountReach,
    now: DateTime<Utc>,
) -> Decision {
    // 1.–5. What the finding, the config and the reach decide alone.
    if let Some(decision) = screen(f, config, reach) {
        return decision;
    }
    let Some(control) = deciding_control(f) else {
        return Decision::new(f, Action::Ignore, "The finding's control is not triaged.");
    };

    // 6. The resource must exist and be Neptune's.
    let live = match this_resource(f, control, live) {
        Ok(live) => live,
        Err(why) => return Decision::new(f, Action::Ignore, why),
    };

    // 7. Already fixed: by the config's criteria and the finding's own
    // parameters (its check used them), so a finding they fail is never resolved.
    let criteria = Criteria::new(config, &f.control_parameters);
    let problems = control.problems(live, criteria);
    if problems.is_empty() {
        let mut d = Decision::new(
            f,
            Action::Resolve,
            format!("Live state is compliant: {}", control.compliant(criteria)),
        );
        d.cluster = Some(live.cluster().to_string());
        return d;
    }

    // 8. Suppressions, then 9. rules, then [default].
    let mut decision = choose::choose(f, control, live, &problems, config, now);
    decision.cluster = Some(live.cluster().to_string());
    decision.problems = problems;
    // A remediation the control's safety class, the resource's status or the
    // plan forbids becomes a ticket.
    choose::constrain_remediation(&mut decision, control, live, criteria);

    // 10. A ticket was already raised.
    choose::already_notified(&mut decision, f);
    decision
}

/// Step 6: the live state of the finding's resource, or why there is none.
/// State read for another ARN is another resource, never this one.
fn this_resource<'a>(
    f: &Finding,
    control: &dyn Control,
    live: Option<LiveResource<'a>>,
) -> Result<LiveResource<'a>, String> {
    let (wanted, noun) = match control.kind() {
        Kind::Cluster => (f.cluster_arn.as_deref(), "cluster"),
        Kind::ClusterSnapshot => (f.snapshot_arn.as_deref(), "snapshot"),
    };
    let Some(live) = live.filter(|l| Some(l.arn()) == wanted) else {
        return Err(format!(
            "The {noun} no longer exists in its account and region."
        ));
    };
    if live.availability() == Availability::Deleting {
        return Err(format!("The {noun} is being deleted."));
    }
    if live.engine() != "neptune" {
        return Err(format!(
            "The {noun} runs engine {}, not neptune.",
            live.engine()
        ));
    }
    Ok(live)
}
