//! Steps 8 to 10 of a decision, from live state: the suppressions and rules
//! (each limited to its `controls`), the control's safety class, the
//! resource's status and the control's plan, and a ticket already raised.

use chrono::{DateTime, Utc};

use super::{Action, Decision};
use crate::config::{covers, Config, IacPolicy, Subject};
use crate::control::{iac, Control, Criteria, Safety, Step, Target};
use crate::finding::{Finding, Workflow};
use crate::state::{Availability, LiveResource};

/// Steps 8 and 9: the first unexpired suppression that matches, else the first
/// rule that matches, else `[default]`. `problems` are what the reason names.
pub(super) fn choose(
    f: &Finding,
    control: &dyn Control,
    live: LiveResource<'_>,
    problems: &[String],
    config: &Config,
    now: DateTime<Utc>,
) -> Decision {
    let what = problems.join("; ");
    let subject = Subject {
        account: &f.account,
        region: &f.region,
        cluster: live.cluster(),
        tags: live.tags(),
        severity: f.severity_label.as_deref(),
    };
    let id = control.id();
    let suppression = config
        .suppress
        .iter()
        .filter(|s| !s.expires.is_expired(now))
        .find(|s| covers(&s.controls, id) && s.matcher.matches(&subject));
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
    let rule = config
        .rule
        .iter()
        .find(|r| covers(&r.controls, id) && r.matcher.matches(&subject));
    if let Some(rule) = rule {
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
/// control's safety class does not allow it (ticket only; opt-in without a
/// rule naming the control), the resource is not `available`, or the plan
/// refuses to change it; otherwise it carries the plan (and the plan's note,
/// if any, joins the reason).
pub(super) fn constrain_remediation(
    decision: &mut Decision,
    control: &dyn Control,
    live: LiveResource<'_>,
    criteria: Criteria<'_>,
) {
    let config = criteria.config;
    if decision.action != Action::Remediate {
        return;
    }
    let named = decision.rule.as_deref().is_some_and(|name| {
        config.rule.iter().any(|r| {
            r.name == name
                && r.controls
                    .as_ref()
                    .is_some_and(|c| c.iter().any(|c| c == control.id()))
        })
    });
    let allowed = match control.safety() {
        Safety::Auto => true,
        Safety::OptIn => named,
        Safety::TicketOnly => false,
    };
    if !allowed {
        decision.action = Action::Ticket;
        decision.reason = format!("{} {}", decision.reason, control.not_automatic());
        return;
    }
    let remediation = &config.remediation;
    if let (Some(owner), IacPolicy::Ticket) = (
        iac::owner(live.tags(), &remediation.iac_tags),
        remediation.iac_managed,
    ) {
        let change = control.stack_change(live, criteria);
        let target = Target {
            account: &decision.account,
            region: &decision.region,
            cluster: live.cluster(),
            snapshot: decision.snapshot.as_deref(),
        };
        let (why, fix) = iac::owned(
            &owner,
            live.noun(),
            change.as_ref(),
            control.manual_fix(&target),
        );
        decision.action = Action::Ticket;
        decision.reason = format!("{} Not remediated: {why}", decision.reason);
        decision.fix = fix;
        return;
    }
    if let Some(why) = live.unchangeable() {
        decision.action = Action::Ticket;
        decision.reason = format!("{} Not remediated: {why}", decision.reason);
        return;
    }
    match control.plan(live, criteria) {
        Ok(plan) => {
            decision.plan = plan.steps;
            // On its way back to available: the remediation waits for it first.
            if live.availability() == Availability::Passing {
                let status = live.status().to_string();
                decision.plan.insert(0, Step::WaitForAvailable { status });
            }
            if let Some(note) = plan.note {
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
pub(super) fn already_notified(decision: &mut Decision, f: &Finding) {
    if decision.action == Action::Ticket && f.workflow_status == Workflow::Notified {
        decision.action = Action::Ignore;
        decision.reason = format!(
            "The workflow status is already NOTIFIED, so no new ticket. ({})",
            decision.reason
        );
    }
}
