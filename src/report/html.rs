//! The report's HTML: one page, its sections in order, every text from the
//! journal escaped. Figures carry `data-figure` (`apply-changes`,
//! `dry-run-planned`, ...) so that a test reads them from the page a
//! browser rendered.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

use super::{active_suppressions, chart, escape, undo_hint, Figures, Report};
use crate::act::ticket::problem::{console_link, neptune_console_link};
use crate::config::Mode;
use crate::journal::{Entry, Kind, Outcome};

/// Nothing may be loaded: no script, style sheet, font, image or frame
/// from anywhere; inline styles and the page's own SVG only.
const POLICY: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'none'; base-uri 'none'";

const STYLE: &str = r#"
:root { color-scheme: light; --ink: #1d2433; --muted: #5b6576; --line: #dde2ea; --bg: #f6f7f9; --ok: #1a7f37; --bad: #b42318; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ink); background: var(--bg); }
header { background: #232f3e; color: #fff; padding: 20px 32px; }
header h1 { margin: 0 0 4px; font-size: 22px; }
header p { margin: 0; color: #c9d1dd; }
main { padding: 8px 32px 32px; max-width: 1400px; }
h2 { font-size: 17px; margin: 28px 0 10px; }
h3 { font-size: 14px; margin: 14px 0 6px; color: var(--muted); text-transform: uppercase; letter-spacing: .04em; }
section { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 16px 20px; margin-top: 12px; }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(118px, 1fr)); gap: 10px; }
.card { padding: 10px 14px; border: 1px solid var(--line); border-radius: 6px; background: var(--bg); }
.card .n { font-size: 24px; font-weight: 600; display: block; }
.card .l { color: var(--muted); font-size: 12px; }
.card.bad .n { color: var(--bad); }
.card.ok .n { color: var(--ok); }
table { border-collapse: collapse; width: 100%; font-size: 13px; }
th, td { text-align: left; padding: 6px 8px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { background: var(--bg); font-weight: 600; }
td:first-child { white-space: nowrap; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
code { font: 12px/1.4 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; background: #eef1f5; padding: 1px 4px; border-radius: 3px; word-break: break-all; }
.done { color: var(--ok); font-weight: 600; }
.failed, .unknown, .started { color: var(--bad); font-weight: 600; }
.muted { color: var(--muted); }
.swatch { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin-right: 4px; }
svg .axis { font-size: 11px; fill: #5b6576; }
svg .legend { font-size: 12px; fill: #1d2433; }
footer { color: var(--muted); font-size: 12px; margin-top: 24px; }
"#;

/// The whole page.
pub fn page(r: &Report<'_>) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta http-equiv=\"Content-Security-Policy\" content=\"{POLICY}\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>hubtriage: what changed, {} to {}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n",
        r.since.format("%Y-%m-%d"),
        r.until.format("%Y-%m-%d")
    );
    let _ = write!(
        out,
        "<header><h1>What hubtriage changed</h1><p>{} to {} (UTC) · {} journal entries from {} · made {}</p></header>\n<main>\n",
        r.since.format("%Y-%m-%d %H:%M"),
        r.until.format("%Y-%m-%d %H:%M"),
        r.entries.len(),
        escape(&r.source),
        r.now.format("%Y-%m-%d %H:%M UTC")
    );
    headline(&mut out, r);
    let changes = r.changes();
    let made: Vec<&Entry> = changes
        .iter()
        .copied()
        .filter(|e| e.result == Outcome::Done)
        .collect();
    let _ = write!(
        out,
        "<h2>Changes made per day, by control</h2>\n<section>{}</section>\n",
        chart::per_day(&made, r.since, r.until)
    );
    accounts_by_controls(&mut out, r);
    suppressions(&mut out, r);
    change_list(
        &mut out,
        "Changes",
        "changes",
        &changes,
        r,
        "No change was made or tried in apply mode in this period.",
    );
    change_list(
        &mut out,
        "Planned in dry-run (what apply mode would do)",
        "planned",
        &r.planned(),
        r,
        "Nothing was planned in dry-run in this period.",
    );
    out.push_str("<footer>Made by <code>hubtriage report</code>. This file is all there is: no script, font or image is loaded from anywhere, and it reads the same with JavaScript off. Undo commands run with the same config as <code>hubtriage run</code>.</footer>\n</main>\n</body>\n</html>\n");
    out
}

fn headline(out: &mut String, r: &Report<'_>) {
    out.push_str("<h2>In figures</h2>\n<section>\n");
    for mode in [Mode::Apply, Mode::DryRun] {
        let f = Figures::of(r.entries, mode);
        let name = match mode {
            Mode::Apply => "apply",
            Mode::DryRun => "dry-run",
        };
        let _ = write!(out, "<h3>{name}</h3>\n<div class=\"cards\">");
        for (key, label, n) in f.named() {
            let class = match key {
                "failed" | "unsettled" if n > 0 => " bad",
                "verified" | "resolved" if n > 0 => " ok",
                _ => "",
            };
            let _ = write!(
                out,
                "<div class=\"card{class}\"><span class=\"n\" data-figure=\"{name}-{key}\">{n}</span><span class=\"l\">{label}</span></div>"
            );
        }
        out.push_str("</div>\n");
    }
    out.push_str("</section>\n");
}

/// Changes made and tickets, per account (rows) and control (columns).
fn accounts_by_controls(out: &mut String, r: &Report<'_>) {
    let mut controls: BTreeSet<String> = BTreeSet::new();
    let mut cells: BTreeMap<(String, String), (usize, usize)> = BTreeMap::new();
    for e in r.entries.iter().filter(|e| e.mode == Mode::Apply) {
        let Some(control) = &e.control else { continue };
        let made = e.kind == Kind::Change && e.result == Outcome::Done;
        let ticket = e.kind == Kind::Decision && e.action.as_deref() == Some("ticket");
        if !(made || ticket) {
            continue;
        }
        controls.insert(control.clone());
        let cell = cells
            .entry((e.account.clone(), control.clone()))
            .or_default();
        cell.0 += usize::from(made);
        cell.1 += usize::from(ticket);
    }
    let accounts: BTreeSet<&String> = cells.keys().map(|(a, _)| a).collect();
    out.push_str("<h2>Accounts and controls (apply mode: changes made · tickets)</h2>\n<section>");
    if accounts.is_empty() {
        out.push_str("<p class=\"muted\">No change made and no ticket opened in apply mode in this period.</p></section>\n");
        return;
    }
    out.push_str("<table><thead><tr><th>account</th>");
    for c in &controls {
        let _ = write!(
            out,
            "<th class=\"num\"><span class=\"swatch\" style=\"background:{}\"></span>{}</th>",
            chart::colour(c),
            escape(c)
        );
    }
    out.push_str("</tr></thead><tbody>");
    for account in accounts {
        let _ = write!(out, "<tr><td>{}</td>", escape(account));
        for c in &controls {
            match cells.get(&(account.clone(), c.clone())) {
                Some((made, tickets)) => {
                    let _ = write!(
                        out,
                        "<td class=\"num\" data-cell=\"{}/{}\">{made} · {tickets}</td>",
                        escape(account),
                        escape(c)
                    );
                }
                None => out.push_str("<td class=\"num muted\">–</td>"),
            }
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table></section>\n");
}

fn suppressions(out: &mut String, r: &Report<'_>) {
    let active = active_suppressions(r.entries, r.now);
    out.push_str("<h2>Active suppressions</h2>\n<section>");
    if active.is_empty() {
        out.push_str("<p class=\"muted\">No suppression in force was applied in this period.</p></section>\n");
        return;
    }
    out.push_str("<table><thead><tr><th>suppression</th><th>expires</th><th class=\"num\">findings</th><th>accounts</th><th>reason</th></tr></thead><tbody>");
    for s in active {
        let accounts: Vec<String> = s.accounts.iter().map(|a| escape(a)).collect();
        let _ = write!(
            out,
            "<tr data-suppression=\"{}\"><td>{}</td><td>{}</td><td class=\"num\">{}</td><td>{}</td><td>{}</td></tr>",
            escape(&s.name),
            escape(&s.name),
            escape(&s.expires),
            s.findings,
            accounts.join(", "),
            escape(&s.reason)
        );
    }
    out.push_str("</tbody></table></section>\n");
}

fn change_list(
    out: &mut String,
    title: &str,
    id: &str,
    entries: &[&Entry],
    r: &Report<'_>,
    none: &str,
) {
    let _ = write!(
        out,
        "<h2 id=\"{id}\">{} ({})</h2>\n<section>",
        escape(title),
        entries.len()
    );
    if entries.is_empty() {
        let _ = writeln!(out, "<p class=\"muted\">{}</p></section>", escape(none));
        return;
    }
    out.push_str("<table><thead><tr><th>time (UTC)</th><th>account · region</th><th>resource</th><th>control</th><th>call · setting</th><th>before → after</th><th>rule · finding</th><th>result</th><th>verified</th><th>undo</th></tr></thead><tbody>");
    let undos = r.undos();
    for e in entries {
        let name = e.resource_name();
        let snapshot = e.resource.contains(":cluster-snapshot:");
        let finding = e
            .finding_ids
            .first()
            .map(|f| {
                format!(
                    "<a href=\"{}\">finding</a>",
                    escape(&console_link(&e.region, f))
                )
            })
            .unwrap_or_default();
        let target = e
            .target
            .as_deref()
            .filter(|t| *t != name)
            .map(|t| format!("<br><span class=\"muted\">on {}</span>", escape(t)))
            .unwrap_or_default();
        let _ = write!(
            out,
            "<tr data-entry=\"{id}\"><td>{time}</td><td>{account}<br><span class=\"muted\">{region}</span></td><td><a href=\"{link}\">{name}</a></td><td>{control}</td><td>{call}<br><b>{setting}</b>{target}</td><td><code>{before}</code> → <code>{after}</code></td><td>{rule}<br>{finding}</td><td class=\"{result}\">{result}{error}</td><td>{verified}</td><td><code>{undo}</code></td></tr>",
            id = escape(&e.id),
            time = e.time.format("%Y-%m-%d %H:%M:%S"),
            account = escape(&e.account),
            region = escape(&e.region),
            link = escape(&neptune_console_link(&e.region, name, snapshot)),
            name = escape(name),
            control = escape(e.control.as_deref().unwrap_or("")),
            call = escape(e.call.as_deref().unwrap_or("")),
            setting = escape(e.setting.as_deref().unwrap_or("")),
            before = escape(e.before.as_deref().unwrap_or("")),
            after = escape(e.after.as_deref().unwrap_or("")),
            rule = escape(e.rule.as_deref().unwrap_or("(default)")),
            result = e.result.as_str(),
            error = e
                .error
                .as_deref()
                .map(|x| format!("<br><span class=\"muted\">{}</span>", escape(x)))
                .unwrap_or_default(),
            verified = e
                .verified_at
                .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
                .unwrap_or_else(|| "–".into()),
            undo = escape(&undo_hint(e, undos.get(e.id.as_str()).copied())),
        );
    }
    out.push_str("</tbody></table></section>\n");
}
