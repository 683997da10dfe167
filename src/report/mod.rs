//! `hubtriage report`: one self-contained HTML page of what hubtriage
//! changed and decided over a time range, from the change journal (or a
//! `history --format json` file, offline), for a person to open in a
//! browser: headline figures by mode, changes per day by control, accounts
//! by controls, active suppressions, every change with its undo command,
//! and dry-run's planned changes.
//!
//! Pure: entries in, text out. The page has inline CSS and SVG only (no
//! script, font or image from anywhere else) and a Content-Security-Policy
//! that forbids loading anything, so it reads the same with JavaScript off
//! and sends nothing when opened.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};

use crate::config::Mode;
use crate::finding::Workflow;
use crate::journal::{Entry, Kind, Outcome};

mod chart;
mod html;

/// What the report covers and where its entries came from.
pub struct Report<'a> {
    pub entries: &'a [Entry],
    pub since: DateTime<Utc>,
    pub until: DateTime<Utc>,
    /// When it was made (active suppressions are those not expired then).
    pub now: DateTime<Utc>,
    /// `DynamoDB table hubtriage-journal`, `history file changes.jsonl`.
    pub source: String,
}

/// The headline figures of one mode.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Figures {
    /// Changes made (`done`).
    pub changes: usize,
    /// Of those, verified.
    pub verified: usize,
    /// Changes whose call failed.
    pub failed: usize,
    /// Changes whose end is not known yet (`started`, `unknown`).
    pub unsettled: usize,
    /// Dry-run: changes apply mode would make.
    pub planned: usize,
    /// Tickets opened or linked.
    pub tickets: usize,
    /// Findings suppressed.
    pub suppressed: usize,
    /// Findings resolved (live state compliant, or fixed and verified).
    pub resolved: usize,
    /// Changes put back with `hubtriage undo`.
    pub undone: usize,
}

impl Figures {
    /// The figures of `mode`'s entries.
    pub fn of(entries: &[Entry], mode: Mode) -> Figures {
        let mut f = Figures::default();
        for e in entries.iter().filter(|e| e.mode == mode) {
            match (e.kind, e.result) {
                (Kind::Change, Outcome::Done) => {
                    f.changes += 1;
                    f.verified += usize::from(e.verified_at.is_some());
                }
                (Kind::Change, Outcome::Failed) => f.failed += 1,
                (Kind::Change, Outcome::Started | Outcome::Unknown) => f.unsettled += 1,
                (Kind::Change, Outcome::Planned) => f.planned += 1,
                (Kind::Decision, _) => {
                    match e.action.as_deref() {
                        Some("ticket") => f.tickets += 1,
                        Some("suppress") => f.suppressed += 1,
                        _ => {}
                    }
                    f.resolved +=
                        usize::from(e.workflow.as_deref() == Some(Workflow::Resolved.as_str()));
                }
                (Kind::Undo, _) => f.undone += 1,
                (Kind::Change, Outcome::Recorded) => {}
            }
        }
        f
    }

    /// (name, label, value), in the order the page shows them; the name is
    /// the figure's `data-figure` on the page, after the mode.
    pub fn named(&self) -> [(&'static str, &'static str, usize); 9] {
        [
            ("changes", "changes made", self.changes),
            ("verified", "verified", self.verified),
            ("failed", "failed", self.failed),
            ("unsettled", "end not known yet", self.unsettled),
            ("planned", "planned (dry-run)", self.planned),
            ("tickets", "tickets opened", self.tickets),
            ("suppressed", "findings suppressed", self.suppressed),
            ("resolved", "findings resolved", self.resolved),
            ("undone", "changes undone", self.undone),
        ]
    }
}

/// A suppression seen in the journal, still in force.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveSuppression {
    pub name: String,
    pub expires: String,
    pub reason: String,
    pub findings: usize,
    pub accounts: BTreeSet<String>,
}

/// The suppressions decisions name whose expiry is after `now`, soonest first.
pub fn active_suppressions(entries: &[Entry], now: DateTime<Utc>) -> Vec<ActiveSuppression> {
    let mut by_name: BTreeMap<String, ActiveSuppression> = BTreeMap::new();
    for e in entries {
        let (Kind::Decision, Some("suppress"), Some(expires)) =
            (e.kind, e.action.as_deref(), e.expires.as_deref())
        else {
            continue;
        };
        if crate::config::Expiry::parse(expires).is_ok_and(|x| x.is_expired(now)) {
            continue;
        }
        let name = e.rule.clone().unwrap_or_default();
        let s = by_name.entry(name.clone()).or_insert(ActiveSuppression {
            name,
            expires: expires.to_string(),
            reason: e.reason.clone().unwrap_or_default(),
            findings: 0,
            accounts: BTreeSet::new(),
        });
        s.findings += e.finding_ids.len().max(1);
        s.accounts.insert(e.account.clone());
    }
    let mut out: Vec<ActiveSuppression> = by_name.into_values().collect();
    out.sort_by(|a, b| a.expires.cmp(&b.expires).then(a.name.cmp(&b.name)));
    out
}

/// How a change is put back, as the page says it: the command, or why not.
pub fn undo_hint(e: &Entry, undone_by: Option<&Entry>) -> String {
    if let Some(u) = undone_by {
        return format!("undone by {} ({})", u.id, u.time.format("%Y-%m-%d %H:%M"));
    }
    match (e.result, e.call.as_deref()) {
        (Outcome::Done, Some("RebootDBInstance")) => "a reboot is not undone".into(),
        (Outcome::Done, Some("CreateDBClusterParameterGroup")) => {
            format!("kept; undo the remediation: hubtriage undo {} --apply --reason \"…\"", e.id)
        }
        (Outcome::Done, Some("ModifyDBClusterSnapshotAttribute")) => format!(
            "hubtriage undo {} --apply --make-public --reason \"…\" (makes the snapshot public again)",
            e.id
        ),
        (Outcome::Done, _) => format!("hubtriage undo {} --apply --reason \"…\"", e.id),
        (Outcome::Planned, _) => "nothing to undo: planned only".into(),
        _ => "nothing to undo: not made".into(),
    }
}

impl Report<'_> {
    /// The page.
    pub fn render(&self) -> String {
        html::page(self)
    }

    /// The changes made or tried in apply mode, newest first.
    fn changes(&self) -> Vec<&Entry> {
        self.kept(|e| e.kind == Kind::Change && e.mode == Mode::Apply)
    }

    fn planned(&self) -> Vec<&Entry> {
        self.kept(|e| e.kind == Kind::Change && e.result == Outcome::Planned)
    }

    fn kept(&self, keep: impl Fn(&Entry) -> bool) -> Vec<&Entry> {
        let mut out: Vec<&Entry> = self.entries.iter().filter(|e| keep(e)).collect();
        out.sort_by(|a, b| b.id.cmp(&a.id));
        out
    }

    /// The undo entry of each change undone: change id → undo.
    fn undos(&self) -> BTreeMap<&str, &Entry> {
        self.entries
            .iter()
            .filter(|e| e.kind == Kind::Undo)
            .filter_map(|e| e.undoes.as_deref().map(|id| (id, e)))
            .collect()
    }
}

/// Text safe in HTML content and in quoted attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() && c != '\n' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests;
