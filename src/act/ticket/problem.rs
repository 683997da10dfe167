//! What a ticket is about and what it says, independent of the ticket system.
//!
//! - [`Problem`]: one cluster failing one control, in one account and region.
//!   Its [`Problem::key`] identifies the problem's one ticket in every system
//!   (a Jira label, a ServiceNow `correlation_id`, a webhook's `problem_key`):
//!   `hubtriage-` and 16 hex digits of a SHA-256 of the four parts, so it has
//!   no space or colon for Jira's labels to trip on.
//! - [`TicketText`]: the title and the paragraphs a person needs: where, why it
//!   is a ticket, what fails, how to fix it, and the finding in the console.

use sha2::{Digest, Sha256};

use crate::control::Target;
use crate::decide::Decision;

/// One resource (a cluster, or a cluster snapshot) failing one control.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub account: String,
    pub region: String,
    /// The cluster's identifier, or the snapshot's for a snapshot control.
    pub cluster: String,
    pub control: String,
}

impl Problem {
    /// The problem a decision is about; `None` when it names no resource or control.
    pub fn of(d: &Decision) -> Option<Problem> {
        Some(Problem {
            account: d.account.clone(),
            region: d.region.clone(),
            cluster: d.snapshot.clone().or_else(|| d.cluster.clone())?,
            control: d.control.clone()?,
        })
    }

    /// `hubtriage-<16 hex>`: the same for every finding of this problem, in
    /// every process and release.
    pub fn key(&self) -> String {
        let mut h = Sha256::new();
        for part in [&self.account, &self.region, &self.cluster, &self.control] {
            h.update(part.as_bytes());
            h.update([0x1f]);
        }
        let digest = h.finalize();
        let hex: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
        format!("hubtriage-{hex}")
    }
}

/// What a ticket says, as plain paragraphs (each system renders them: ADF for
/// Jira Cloud, text for Data Center and ServiceNow, JSON for a webhook).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketText {
    pub title: String,
    /// `label: value` lines: account, region, cluster, control, severity.
    pub facts: Vec<(String, String)>,
    /// Why hubtriage made this a ticket (the decision's reason, which names the rule).
    pub why: String,
    /// What fails in the cluster's live state.
    pub fails: Vec<String>,
    /// How to fix it.
    pub fix: Vec<String>,
    /// The finding in the Security Hub console.
    pub link: String,
}

impl TicketText {
    /// The text of a ticket decision; `severity` is the finding's label.
    pub fn new(d: &Decision, severity: Option<&str>) -> TicketText {
        let cluster = d.cluster.as_deref().unwrap_or("(unknown cluster)");
        let id = d.control.as_deref().unwrap_or("(unknown control)");
        let control = crate::control::named_or_legacy(d.control.as_deref());
        let mut facts = vec![
            ("Account", d.account.as_str()),
            ("Region", d.region.as_str()),
            ("Cluster", cluster),
        ];
        if let Some(snapshot) = &d.snapshot {
            facts.push(("Snapshot", snapshot));
        }
        facts.extend([
            ("Control", id),
            ("Severity", severity.unwrap_or("(not given)")),
        ]);
        let facts = facts
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let (noun, resource) = match &d.snapshot {
            Some(s) => ("cluster snapshot", s.as_str()),
            None => ("cluster", cluster),
        };
        let target = Target {
            account: &d.account,
            region: &d.region,
            cluster,
            snapshot: d.snapshot.as_deref(),
        };
        TicketText {
            title: format!(
                "{id}: Neptune {noun} {resource} ({}, {}) {}",
                d.account,
                d.region,
                control.failing()
            ),
            facts,
            // The reason names the rule or suppression that chose the ticket.
            why: d.reason.clone(),
            fails: d.problems.clone(),
            fix: if d.fix.is_empty() {
                control.manual_fix(&target)
            } else {
                d.fix.clone()
            },
            link: console_link(&d.region, &d.finding_id),
        }
    }
}

/// `text` on one line (control characters become spaces), cut to `max`
/// characters with an ellipsis: for a system's title field.
pub fn one_line(text: &str, max: usize) -> String {
    let line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if line.chars().count() <= max {
        return line;
    }
    let mut cut: String = line.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// The AWS console's host for a region, in its partition.
fn console_host(region: &str) -> String {
    if region.starts_with("cn-") {
        format!("{region}.console.amazonaws.cn")
    } else if region.starts_with("us-gov-") {
        format!("{region}.console.amazonaws-us-gov.com")
    } else {
        format!("{region}.console.aws.amazon.com")
    }
}

/// The finding in the Security Hub console of its region and partition.
pub fn console_link(region: &str, finding_id: &str) -> String {
    let host = console_host(region);
    // The console's search takes `Id=\operator\:EQUALS\:<id>`, encoded twice.
    let search = encode(&encode(&format!("Id=\\operator\\:EQUALS\\:{finding_id}")));
    format!("https://{host}/securityhub/home?region={region}#/findings?search={search}")
}

/// A Neptune cluster (or, `snapshot`, a cluster snapshot) in the Neptune
/// console of its region and partition.
pub fn neptune_console_link(region: &str, name: &str, snapshot: bool) -> String {
    let host = console_host(region);
    let name = encode(name);
    if snapshot {
        format!("https://{host}/neptune/home?region={region}#snapshots:id={name}")
    } else {
        format!("https://{host}/neptune/home?region={region}#database:id={name};is-cluster=true")
    }
}

/// Percent-encoding of everything but RFC 3986's unreserved characters.
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decision() -> Decision {
        crate::testing::ticket_decision("8e4c")
    }

    #[test]
    fn one_problem_one_key_whatever_the_finding() {
        let p = Problem::of(&decision()).unwrap();
        let key = p.key();
        assert!(key.starts_with("hubtriage-"), "{key}");
        assert_eq!(key.len(), "hubtriage-".len() + 16);
        assert!(key.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
        // The standard-specific finding of the same cluster: same problem.
        let mut other = decision();
        other.finding_id = "arn:aws:securityhub:us-east-1:111122223333:subscription/aws-foundational/v/1.0.0/Neptune.2/finding/9".into();
        assert_eq!(Problem::of(&other).unwrap().key(), key);
        // Another cluster, account, region or control: another problem.
        for change in [
            |d: &mut Decision| d.cluster = Some("orders-graph-2".into()),
            |d: &mut Decision| d.account = "222222222222".into(),
            |d: &mut Decision| d.region = "eu-west-1".into(),
            |d: &mut Decision| d.control = Some("Neptune.1".into()),
        ] {
            let mut d = decision();
            change(&mut d);
            assert_ne!(Problem::of(&d).unwrap().key(), key);
        }
        // Parts cannot run into each other ("a"+"bc" is not "ab"+"c").
        let a = Problem {
            account: "1".into(),
            region: "12".into(),
            cluster: "c".into(),
            control: "x".into(),
        };
        let b = Problem {
            account: "11".into(),
            region: "2".into(),
            cluster: "c".into(),
            control: "x".into(),
        };
        assert_ne!(a.key(), b.key());
    }

    #[test]
    fn the_key_is_stable_across_releases() {
        // Tickets in Jira and ServiceNow carry it: it must never change.
        let p = Problem::of(&decision()).unwrap();
        assert_eq!(p.key(), p.key());
        let sha = Sha256::digest(b"111122223333\x1fus-east-1\x1forders-graph\x1fNeptune.2\x1f");
        let hex: String = sha.iter().take(8).map(|b| format!("{b:02x}")).collect();
        assert_eq!(p.key(), format!("hubtriage-{hex}"));
    }

    #[test]
    fn the_text_says_where_why_what_and_how() {
        let t = TicketText::new(&decision(), Some("MEDIUM"));
        assert!(
            t.title.contains("orders-graph") && t.title.contains("Neptune.2"),
            "{}",
            t.title
        );
        assert!(t.facts.contains(&("Severity".into(), "MEDIUM".into())));
        assert!(t.facts.contains(&("Account".into(), "111122223333".into())));
        assert!(
            t.why.starts_with("Rule prod-needs-change-ticket"),
            "{}",
            t.why
        );
        assert_eq!(
            t.fails,
            vec!["the audit log export to CloudWatch Logs is off"]
        );
        assert!(t
            .fix
            .iter()
            .any(|s| s.contains("neptune_enable_audit_log = 1")));
        assert!(t
            .fix
            .iter()
            .any(|s| s.contains("/aws/neptune/orders-graph/audit")));
        assert!(t.link.starts_with(
            "https://us-east-1.console.aws.amazon.com/securityhub/home?region=us-east-1#/findings?search=Id%253D%255Coperator%255C%253AEQUALS%255C%253Aarn%253Aaws%253Asecurityhub"
        ), "{}", t.link);
    }

    #[test]
    fn console_links_follow_the_partition() {
        assert!(
            console_link("cn-north-1", "x").starts_with("https://cn-north-1.console.amazonaws.cn/")
        );
        assert!(console_link("us-gov-west-1", "x")
            .starts_with("https://us-gov-west-1.console.amazonaws-us-gov.com/"));
    }
}
