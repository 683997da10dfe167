use chrono::Duration;

use super::*;

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn change(mode: Mode, result: Outcome, control: &str, day: &str) -> Entry {
    let mut e = Entry::new(
        Kind::Change,
        mode,
        "111122223333",
        "us-east-1",
        "arn:aws:rds:us-east-1:111122223333:cluster:orders-graph",
    );
    e.time = at(&format!("{day}T10:00:00Z"));
    e.id = crate::journal::new_id(e.time);
    e.control = Some(control.into());
    e.call = Some("ModifyDBCluster".into());
    e.setting = Some("DeletionProtection".into());
    e.before = Some("false".into());
    e.after = Some("true".into());
    e.result = result;
    e
}

fn decision(mode: Mode, action: &str, workflow: &str) -> Entry {
    let mut e = Entry::new(
        Kind::Decision,
        mode,
        "222222222222",
        "us-east-1",
        "arn:aws:rds:us-east-1:222222222222:cluster:<script>alert(1)</script>",
    );
    e.control = Some("Neptune.8".into());
    e.action = Some(action.into());
    e.workflow = Some(workflow.into());
    e.rule = Some("tags-by-backup-plan".into());
    e.reason = Some("AWS Backup copies tags <b>(RISK-77)</b>".into());
    e.expires = Some("2099-12-31".into());
    e.finding_ids = vec!["f-1".into()];
    e
}

fn sample() -> Vec<Entry> {
    let mut verified = change(Mode::Apply, Outcome::Done, "Neptune.4", "2026-12-02");
    verified.verified_at = Some(at("2026-12-02T10:01:00Z"));
    vec![
        verified,
        change(Mode::Apply, Outcome::Done, "Neptune.5", "2026-12-03"),
        change(Mode::Apply, Outcome::Failed, "Neptune.5", "2026-12-03"),
        change(Mode::Apply, Outcome::Unknown, "Neptune.8", "2026-12-04"),
        change(Mode::DryRun, Outcome::Planned, "Neptune.4", "2026-12-01"),
        decision(Mode::Apply, "suppress", "SUPPRESSED"),
        decision(Mode::Apply, "ticket", "NOTIFIED"),
        decision(Mode::Apply, "resolve", "RESOLVED"),
        decision(Mode::DryRun, "ticket", "NOTIFIED"),
    ]
}

fn report(entries: &[Entry]) -> String {
    Report {
        entries,
        since: at("2026-12-01T00:00:00Z"),
        until: at("2026-12-08T00:00:00Z"),
        now: at("2026-12-08T00:00:00Z"),
        source: "test".into(),
    }
    .render()
}

#[test]
fn the_figures_count_the_journal_by_mode() {
    let entries = sample();
    let apply = Figures::of(&entries, Mode::Apply);
    assert_eq!(
        apply,
        Figures {
            changes: 2,
            verified: 1,
            failed: 1,
            unsettled: 1,
            planned: 0,
            tickets: 1,
            suppressed: 1,
            resolved: 1,
            undone: 0
        }
    );
    let dry = Figures::of(&entries, Mode::DryRun);
    assert_eq!((dry.planned, dry.tickets, dry.changes), (1, 1, 0));
    let page = report(&entries);
    assert!(page.contains("data-figure=\"apply-changes\">2<"), "{page}");
    assert!(page.contains("data-figure=\"dry-run-planned\">1<"));
}

#[test]
fn the_page_loads_nothing_and_escapes_what_the_journal_holds() {
    let mut entries = sample();
    entries[0].setting = Some("<script>alert(1)</script>".into());
    let page = report(&entries);
    for banned in [
        "<script", "<link", " src=", "url(", "@import", "<iframe", "<img",
    ] {
        assert!(!page.contains(banned), "{banned} in the page");
    }
    assert!(page.contains("Content-Security-Policy"));
    assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(page.contains("&lt;b&gt;(RISK-77)&lt;/b&gt;"));
    // The only addresses are links a person follows (the consoles).
    for (i, _) in page.match_indices("https://") {
        let before = &page[i.saturating_sub(6)..i];
        assert_eq!(before, "href=\"", "an address that is not a link at {i}");
    }
}

#[test]
fn each_change_says_how_to_undo_it() {
    let entries = sample();
    let page = report(&entries);
    let done = &entries[0];
    assert!(page.contains(&format!("hubtriage undo {} --apply --reason", done.id)));
    assert!(page.contains("nothing to undo: planned only"));
    let mut snapshot = done.clone();
    snapshot.call = Some("ModifyDBClusterSnapshotAttribute".into());
    assert!(undo_hint(&snapshot, None).contains("--make-public"));
    let mut reboot = done.clone();
    reboot.call = Some("RebootDBInstance".into());
    assert_eq!(undo_hint(&reboot, None), "a reboot is not undone");
    let mut undo = decision(Mode::Apply, "undo", "");
    undo.kind = Kind::Undo;
    undo.undoes = Some(done.id.clone());
    assert!(undo_hint(done, Some(&undo)).starts_with("undone by"));
}

#[test]
fn active_suppressions_are_those_not_expired() {
    let mut old = decision(Mode::Apply, "suppress", "SUPPRESSED");
    old.rule = Some("expired-one".into());
    old.expires = Some("2026-11-30".into());
    let entries = vec![old, decision(Mode::Apply, "suppress", "SUPPRESSED")];
    let active = active_suppressions(&entries, at("2026-12-08T00:00:00Z"));
    assert_eq!(active.len(), 1);
    assert_eq!(active[0].name, "tags-by-backup-plan");
    assert_eq!(active[0].expires, "2099-12-31");
}

#[test]
fn the_chart_has_a_bar_a_day_with_changes_and_a_legend() {
    let entries = sample();
    let made: Vec<&Entry> = entries
        .iter()
        .filter(|e| e.kind == Kind::Change && e.result == Outcome::Done && e.mode == Mode::Apply)
        .collect();
    let svg = chart::per_day(
        &made,
        at("2026-12-01T00:00:00Z"),
        at("2026-12-01T00:00:00Z") + Duration::days(7),
    );
    assert_eq!(
        svg.matches("<rect").count(),
        2 + 2,
        "two bars and two legend swatches"
    );
    assert!(svg.contains("data-day=\"2026-12-02\">1<"));
    assert!(svg.contains("Neptune.5"));
}
