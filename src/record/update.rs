//! What hubtriage writes on a finding: the workflow status, the note and the
//! UserDefinedFields a decision implies. Every note's wording lives here.
//! Notes and fields say the action, the rule and the reason, not the cluster
//! (the finding names it), so findings with the same decision share an update.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use crate::control::Step;
use crate::decide::{Action, Decision};
use crate::finding::{Finding, Workflow};
use crate::marks::{
    comment, truncate, FIELD_ACTION, FIELD_EXPIRES, FIELD_REMEDIATION, FIELD_REMEDIATION_STARTED,
    FIELD_RULE, FIELD_STATUS, FIELD_TICKET, MAX_NOTE_CHARS, UPDATED_BY,
};

/// What one BatchUpdateFindings call sets on every finding it names.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FindingUpdate {
    pub workflow: Workflow,
    pub note: String,
    pub fields: BTreeMap<String, String>,
}

/// What the act step did, which the update reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Acted {
    Nothing,
    /// A ticket was opened; `key` and `url` when the ticket system gives them.
    Ticketed {
        key: Option<String>,
        url: Option<String>,
    },
    /// A remediation plan was recorded but not carried out.
    Planned {
        dry_run: bool,
    },
}

impl FindingUpdate {
    /// The update a recorded decision implies; `None` for `ignore`.
    pub fn for_decision(d: &Decision, acted: &Acted) -> Option<FindingUpdate> {
        let mut fields = base_fields(d.action.as_str(), d.rule.as_deref());
        let (workflow, note) = match d.action {
            Action::Ignore => return None,
            Action::Resolve => (
                Workflow::Resolved,
                format!("hubtriage resolved this finding. {}", d.reason),
            ),
            Action::Suppress => {
                if let Some(expires) = &d.expires {
                    fields.insert(FIELD_EXPIRES.to_string(), expires.clone());
                }
                (
                    Workflow::Suppressed,
                    format!("hubtriage suppressed this finding. {}", d.reason),
                )
            }
            Action::Ticket => {
                let opened = match acted {
                    Acted::Ticketed {
                        key: Some(key),
                        url,
                    } => {
                        fields.insert(FIELD_TICKET.to_string(), key.clone());
                        match url {
                            Some(url) => format!("hubtriage opened ticket {key} ({url})."),
                            None => format!("hubtriage opened ticket {key}."),
                        }
                    }
                    _ => "hubtriage opened a ticket.".to_string(),
                };
                (Workflow::Notified, format!("{opened} {}", d.reason))
            }
            Action::Remediate => {
                let how = match acted {
                    Acted::Planned { dry_run: true } => {
                        "planned a remediation (dry-run: nothing was changed)"
                    }
                    _ => "planned a remediation (nothing was changed yet)",
                };
                fields.insert(FIELD_REMEDIATION.to_string(), "planned".into());
                (
                    Workflow::Notified,
                    format!(
                        "hubtriage {how}. {} Plan: {}.",
                        d.reason,
                        describe_plan(&d.plan)
                    ),
                )
            }
        };
        Some(FindingUpdate {
            workflow,
            note: truncate(&note, MAX_NOTE_CHARS),
            fields,
        })
    }

    /// An update from the remediation driver. `progress` is `in-progress`,
    /// `done` or `reboot-pending`; `started` marks when an in-progress one began.
    fn remediation(
        workflow: Workflow,
        note: String,
        rule: Option<&str>,
        progress: &str,
        started: Option<DateTime<Utc>>,
    ) -> FindingUpdate {
        let mut fields = base_fields(Action::Remediate.as_str(), rule);
        fields.insert(FIELD_REMEDIATION.to_string(), progress.to_string());
        if let Some(t) = started {
            fields.insert(
                FIELD_REMEDIATION_STARTED.to_string(),
                t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            );
        }
        FindingUpdate {
            workflow,
            note: truncate(&note, MAX_NOTE_CHARS),
            fields,
        }
    }

    /// A verified remediation: RESOLVED, with each change made and what was
    /// seen when verified.
    pub fn remediated(changes: &[String], seen: &str, rule: Option<&str>) -> FindingUpdate {
        let note = format!(
            "hubtriage remediated this finding: {}. Verified: {seen}.",
            listed(changes, "no change was needed")
        );
        Self::remediation(Workflow::Resolved, note, rule, "done", None)
    }

    /// A remediation under way (its first pass waits): the plan and what it waits for.
    pub fn remediating(
        reason: &str,
        plan: &[Step],
        waiting_for: &str,
        rule: Option<&str>,
        started: DateTime<Utc>,
    ) -> FindingUpdate {
        let note = format!(
            "hubtriage is remediating this finding. {reason} Plan: {}. Now: {waiting_for}.",
            describe_plan(plan)
        );
        Self::remediation(Workflow::Notified, note, rule, "in-progress", Some(started))
    }

    /// All fixed but the reboot, which the reboot policy leaves to people.
    pub fn reboot_pending(changes: &[String], why: &str, rule: Option<&str>) -> FindingUpdate {
        let note = format!(
            "hubtriage fixed what it may ({}), but a reboot of every instance is still needed for the audit log to start: {why}.",
            listed(changes, "nothing else was needed")
        );
        Self::remediation(Workflow::Notified, note, rule, "reboot-pending", None)
    }

    /// BatchUpdateFindingsV2's `StatusId` for this update's workflow.
    pub fn v2_status_id(&self) -> i32 {
        match self.workflow {
            Workflow::New => 1,
            Workflow::Notified => 2,
            Workflow::Suppressed => 3,
            Workflow::Resolved => 4,
            Workflow::Other(_) => 99,
        }
    }

    /// BatchUpdateFindingsV2's `Comment`: the fields (and the status written,
    /// to know the echo) in hubtriage's marker, then the note, in 512 characters.
    pub fn v2_comment(&self) -> String {
        let mut fields = self.fields.clone();
        fields.insert(FIELD_STATUS.to_string(), self.workflow.as_str().to_string());
        comment::write(&fields, &self.note, MAX_NOTE_CHARS)
    }

    /// True when the finding already carries this update (nothing to write).
    pub fn already_on(&self, f: &Finding) -> bool {
        let note = match f.format {
            crate::finding::Format::Asff => self.note.clone(),
            crate::finding::Format::Ocsf { .. } => self.v2_comment(),
        };
        f.workflow_status == self.workflow
            && f.note
                .as_ref()
                .is_some_and(|n| n.text == note && n.updated_by == UPDATED_BY)
            && self
                .fields
                .iter()
                .all(|(k, v)| f.user_defined_fields.get(k) == Some(v))
    }
}

/// `changes` joined with "; ", or `none` when there are none.
fn listed(changes: &[String], none: &str) -> String {
    if changes.is_empty() {
        none.to_string()
    } else {
        changes.join("; ")
    }
}

/// The fields every update carries: the action and the rule (or "none").
fn base_fields(action: &str, rule: Option<&str>) -> BTreeMap<String, String> {
    BTreeMap::from([
        (FIELD_ACTION.to_string(), action.to_string()),
        (FIELD_RULE.to_string(), rule.unwrap_or("none").to_string()),
    ])
}

/// `create_parameter_group hubtriage-audit-x, set_audit_parameter, ...`
pub fn describe_plan(plan: &[Step]) -> String {
    plan.iter()
        .map(|s| match s {
            Step::CreateParameterGroup { name, .. } => format!("create_parameter_group {name}"),
            Step::SetAuditParameter { group } => format!("set_audit_parameter {group}"),
            Step::AttachParameterGroup { group } => format!("attach_parameter_group {group}"),
            Step::EnableAuditExport => "enable_audit_export".to_string(),
            Step::WaitForAvailable { status } => format!("wait_for_available (it is {status})"),
            Step::WaitForMaintenanceWindow { window } => {
                format!("wait_for_maintenance_window {window}")
            }
            Step::RebootInstance { instance } => format!("reboot_instance {instance}"),
            Step::SetLogRetention { days, .. } => format!("set_log_retention {days}d"),
            Step::ModifyCluster { setting, value } => {
                format!("modify_cluster {}={value}", setting.as_str())
            }
            Step::MakeSnapshotPrivate { snapshot } => format!("make_snapshot_private {snapshot}"),
            Step::Verify => "verify".to_string(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// True when the event only reflects hubtriage's own update: the note is ours
/// and no provider update came after it. (BatchUpdateFindings leaves the
/// finding's `UpdatedAt` alone, and Security Hub stamps the note's `UpdatedAt`.)
///
/// A V2 finding's comment has no time: there, the event is hubtriage's own
/// when the finding is in the status hubtriage's comment says it set.
/// Security Hub moves the status when the compliance result changes (to New
/// on a new failure, to Resolved on a pass), so such news is decided again;
/// a re-evaluation that changes nothing is taken as the echo it looks like.
pub fn is_own_update(f: &Finding) -> bool {
    let Some(note) = &f.note else { return false };
    if note.updated_by != UPDATED_BY || !f.user_defined_fields.contains_key(FIELD_ACTION) {
        return false;
    }
    if let crate::finding::Format::Ocsf { .. } = f.format {
        return f
            .user_defined_fields
            .get(FIELD_STATUS)
            .is_some_and(|s| s == f.workflow_status.as_str());
    }
    let parse = |t: &Option<String>| {
        t.as_deref()
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&Utc))
    };
    match (parse(&note.updated_at), parse(&f.updated_at)) {
        (Some(noted), Some(updated)) => noted >= updated,
        // Without both times we cannot tell: treat it as news and decide again
        // (the update check then avoids writing the same note twice).
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decision(action: Action) -> Decision {
        Decision {
            finding_id: "f1".into(),
            product_arn: "arn:aws:securityhub:us-east-1::product/aws/securityhub".into(),
            account: "111122223333".into(),
            region: "us-east-1".into(),
            cluster: Some("c1".into()),
            control: Some("Neptune.2".into()),
            snapshot: None,
            finding_control: None,
            action,
            rule: Some("prod".into()),
            reason: "Rule prod chose ticket: the audit log export to CloudWatch Logs is off."
                .into(),
            problems: vec![],
            plan: vec![],
            expires: None,
            fix: vec![],
        }
    }

    #[test]
    fn updates_map_actions_to_workflow_statuses() {
        let t = FindingUpdate::for_decision(
            &decision(Action::Ticket),
            &Acted::Ticketed {
                key: None,
                url: None,
            },
        )
        .unwrap();
        assert_eq!(t.workflow, Workflow::Notified);
        assert!(t
            .note
            .starts_with("hubtriage opened a ticket. Rule prod chose ticket"));
        assert_eq!(t.fields[FIELD_ACTION], "ticket");
        assert_eq!(t.fields[FIELD_RULE], "prod");
        let r = FindingUpdate::for_decision(&decision(Action::Resolve), &Acted::Nothing).unwrap();
        assert_eq!(r.workflow, Workflow::Resolved);
        let mut s = decision(Action::Suppress);
        s.expires = Some("2027-03-31".into());
        let s = FindingUpdate::for_decision(&s, &Acted::Nothing).unwrap();
        assert_eq!(s.workflow, Workflow::Suppressed);
        assert_eq!(s.fields[FIELD_EXPIRES], "2027-03-31");
        let mut p = decision(Action::Remediate);
        p.plan = vec![Step::EnableAuditExport, Step::Verify];
        let p = FindingUpdate::for_decision(&p, &Acted::Planned { dry_run: true }).unwrap();
        assert_eq!(p.workflow, Workflow::Notified);
        assert!(
            p.note.contains("dry-run") && p.note.ends_with("Plan: enable_audit_export, verify."),
            "{}",
            p.note
        );
        assert!(FindingUpdate::for_decision(&decision(Action::Ignore), &Acted::Nothing).is_none());
    }

    #[test]
    fn same_decisions_on_different_clusters_share_one_update() {
        let a = decision(Action::Ticket);
        let mut b = decision(Action::Ticket);
        b.finding_id = "f2".into();
        b.cluster = Some("other".into());
        assert_eq!(
            FindingUpdate::for_decision(
                &a,
                &Acted::Ticketed {
                    key: None,
                    url: None
                }
            ),
            FindingUpdate::for_decision(
                &b,
                &Acted::Ticketed {
                    key: None,
                    url: None
                }
            )
        );
    }

    #[test]
    fn notes_fit_security_hubs_limit() {
        let mut d = decision(Action::Ticket);
        d.reason = "é".repeat(2000);
        let u = FindingUpdate::for_decision(&d, &Acted::Nothing).unwrap();
        assert_eq!(u.note.chars().count(), MAX_NOTE_CHARS);
        assert!(u.note.ends_with('…'));
    }

    fn finding_with_note(noted: &str, updated: &str) -> Finding {
        let mut f = crate::finding::parse_event(
            include_str!("../../tests/fixtures/neptune2-failed-event.json").as_bytes(),
        )
        .unwrap()
        .remove(0);
        f.note = Some(crate::finding::Note {
            text: "hubtriage opened a ticket.".into(),
            updated_by: UPDATED_BY.into(),
            updated_at: Some(noted.into()),
        });
        f.user_defined_fields
            .insert(FIELD_ACTION.into(), "ticket".into());
        f.updated_at = Some(updated.into());
        f
    }

    #[test]
    fn own_updates_are_recognised_from_the_finding() {
        assert!(is_own_update(&finding_with_note(
            "2026-11-20T10:20:00Z",
            "2026-11-20T10:14:44.901Z"
        )));
        // A provider update after our note is news.
        assert!(!is_own_update(&finding_with_note(
            "2026-11-20T10:20:00Z",
            "2026-11-21T00:00:00Z"
        )));
        let mut f = finding_with_note("2026-11-20T10:20:00Z", "2026-11-20T10:14:44.901Z");
        f.note.as_mut().unwrap().updated_by = "alice".into();
        assert!(!is_own_update(&f));
    }

    /// The OCSF finding of the fixture's check, as hubtriage's `update` left it.
    fn v2_finding_after(update: &FindingUpdate) -> Finding {
        let mut event: serde_json::Value =
            serde_json::from_str(&crate::testing::ocsf_twin(crate::testing::EVENT)).unwrap();
        let f = &mut event["detail"]["findings"][0];
        f["status_id"] = update.v2_status_id().into();
        f["comment"] = update.v2_comment().into();
        crate::finding::parse_event(event.to_string().as_bytes())
            .unwrap()
            .remove(0)
    }

    #[test]
    fn v2_updates_carry_status_id_and_a_comment_that_is_recognised_back() {
        let u = FindingUpdate::for_decision(
            &decision(Action::Ticket),
            &Acted::Ticketed {
                key: Some("SEC-7".into()),
                url: Some("https://example.atlassian.net/browse/SEC-7".into()),
            },
        )
        .unwrap();
        assert_eq!(u.v2_status_id(), 2, "NOTIFIED is In Progress");
        let comment = u.v2_comment();
        assert!(comment.starts_with("hubtriage[action=ticket;rule=prod;status=NOTIFIED;ticket=SEC-7] hubtriage opened ticket SEC-7"), "{comment}");
        assert!(comment.chars().count() <= MAX_NOTE_CHARS);
        let f = v2_finding_after(&u);
        assert_eq!(
            f.user_defined_fields.get(FIELD_TICKET).map(String::as_str),
            Some("SEC-7")
        );
        assert!(u.already_on(&f), "written once, not again");
        assert!(is_own_update(&f), "its echo is recognised");
        // Security Hub moved the status (a new failure makes it New): news.
        let mut moved = f.clone();
        moved.workflow_status = Workflow::New;
        assert!(!is_own_update(&moved));
        assert!(!u.already_on(&moved));
        let statuses: Vec<i32> = [Action::Resolve, Action::Suppress]
            .iter()
            .map(|a| {
                FindingUpdate::for_decision(&decision(*a), &Acted::Nothing)
                    .unwrap()
                    .v2_status_id()
            })
            .collect();
        assert_eq!(statuses, [4, 3]);
    }

    #[test]
    fn findings_are_answered_in_their_format_or_the_one_configured() {
        use crate::config::FindingsApiVersion;
        use crate::record::FindingId;
        let asff = crate::testing::finding();
        let ocsf = crate::finding::parse_event(
            crate::testing::ocsf_twin(crate::testing::EVENT).as_bytes(),
        )
        .unwrap()
        .remove(0);
        assert!(!FindingId::answering(&asff, FindingsApiVersion::Auto).is_v2());
        assert!(FindingId::answering(&ocsf, FindingsApiVersion::Auto).is_v2());
        let as_v1 = FindingId::answering(&ocsf, FindingsApiVersion::V1);
        assert_eq!(as_v1, FindingId::of(&asff), "the ASFF twin");
        let as_v2 = FindingId::answering(&asff, FindingsApiVersion::V2);
        assert_eq!(as_v2, FindingId::of(&ocsf), "the OCSF twin");
    }
}
