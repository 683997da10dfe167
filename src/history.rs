//! `hubtriage history`: the change journal, newest first, filtered, as a
//! table that fits 120 columns, JSON lines (the entries as stored) or CSV.
//!
//! Every filtered question is a Query on the journal's keys (`journal::dynamo`):
//! by resource, by account, else by day. The time range defaults to the
//! last 7 days.

use std::fmt::Write;

use chrono::{DateTime, Duration, Utc};

use crate::journal::{Entry, Filter, Kind};

/// How far back `history` and `report` look without `--since`.
pub const DEFAULT_SINCE_DAYS: i64 = 7;
/// The table's width.
pub const TABLE_WIDTH: usize = 120;

/// `--since`: a duration back from `now` (`30m`, `12h`, `7d`, `2w`) or an
/// RFC 3339 time. The error names what was expected.
pub fn parse_since(text: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    if let Some(d) = parse_duration(text) {
        return Ok(now - d);
    }
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| {
            format!(
                "expected a duration such as 30m, 12h, 7d or 2w, or an RFC 3339 time such as 2026-12-01T00:00:00Z, found {text:?}"
            )
        })
}

fn parse_duration(text: &str) -> Option<Duration> {
    let unit = text.chars().last()?;
    let n: i64 = text[..text.len() - unit.len_utf8()].parse().ok()?;
    if n < 0 {
        return None;
    }
    match unit {
        'm' => Duration::try_minutes(n),
        'h' => Duration::try_hours(n),
        'd' => Duration::try_days(n),
        'w' => Duration::try_weeks(n),
        _ => None,
    }
}

/// How `history` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Table,
    Json,
    Csv,
}

impl Format {
    pub fn parse(word: &str) -> Result<Format, String> {
        match word {
            "table" => Ok(Format::Table),
            "json" => Ok(Format::Json),
            "csv" => Ok(Format::Csv),
            _ => Err(format!("expected table, json or csv, found {word:?}")),
        }
    }
}

/// `--kind`.
pub fn parse_kind(word: &str) -> Result<Kind, String> {
    Kind::parse(word).ok_or_else(|| format!("expected change, decision or undo, found {word:?}"))
}

/// The entries, printed as `format` asks.
pub fn render(entries: &[Entry], format: Format) -> String {
    match format {
        Format::Json => entries
            .iter()
            .filter_map(|e| serde_json::to_string(e).ok())
            .map(|line| line + "\n")
            .collect(),
        Format::Csv => csv(entries),
        Format::Table => table(entries),
    }
}

/// The entries a `history --format json` file holds (the report's
/// `--history`); a bad line is an error naming its number.
pub fn read_json_lines(text: &str) -> Result<Vec<Entry>, String> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(n, line)| {
            serde_json::from_str(line)
                .map_err(|e| format!("line {}: not a journal entry: {e}", n + 1))
        })
        .collect()
}

/// Newest first, as `history` prints them.
pub fn newest_first(mut entries: Vec<Entry>) -> Vec<Entry> {
    entries.sort_by(|a, b| b.id.cmp(&a.id));
    entries
}

/// `filter`'s entries among `entries` (a `--history` file, read offline).
pub fn select(entries: Vec<Entry>, filter: &Filter) -> Vec<Entry> {
    newest_first(entries.into_iter().filter(|e| filter.matches(e)).collect())
}

const CSV_FIELDS: [&str; 20] = [
    "id",
    "time",
    "kind",
    "mode",
    "account",
    "region",
    "resource",
    "control",
    "finding_ids",
    "rule",
    "action",
    "call",
    "setting",
    "before",
    "after",
    "result",
    "error",
    "verified_at",
    "ticket",
    "task",
];

/// CSV with a header; `finding_ids` joined with `;`.
fn csv(entries: &[Entry]) -> String {
    let mut out = CSV_FIELDS.join(",") + "\n";
    for e in entries {
        let Ok(serde_json::Value::Object(v)) = serde_json::to_value(e) else {
            continue;
        };
        let cells: Vec<String> = CSV_FIELDS
            .iter()
            .map(|f| match v.get(*f) {
                Some(serde_json::Value::String(s)) => csv_cell(s),
                Some(serde_json::Value::Array(a)) => csv_cell(
                    &a.iter()
                        .filter_map(|x| x.as_str())
                        .collect::<Vec<_>>()
                        .join(";"),
                ),
                _ => String::new(),
            })
            .collect();
        out.push_str(&cells.join(","));
        out.push('\n');
    }
    out
}

fn csv_cell(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// One row of the table.
fn row(e: &Entry) -> [String; 9] {
    let what = match e.kind {
        Kind::Change => e.setting.clone().or(e.call.clone()).unwrap_or_default(),
        Kind::Decision => e.action.clone().unwrap_or_default(),
        Kind::Undo => format!("undo {}", e.setting.clone().unwrap_or_default()),
    };
    let change = match (&e.before, &e.after, &e.workflow) {
        (Some(b), Some(a), _) => format!("{b} → {a}"),
        (_, _, Some(w)) => format!("→ {w}"),
        _ => String::new(),
    };
    [
        e.time.format("%Y-%m-%d %H:%M").to_string(),
        e.account.clone(),
        e.region.clone(),
        e.resource_name().to_string(),
        e.control.clone().unwrap_or_default(),
        what,
        change,
        e.result.as_str().to_string(),
        if e.verified_at.is_some() { "yes" } else { "-" }.to_string(),
    ]
}

const HEADERS: [&str; 9] = [
    "time",
    "account",
    "region",
    "resource",
    "control",
    "call/setting",
    "before → after",
    "result",
    "verified",
];

/// Columns whose width gives way when the table is too wide, first to
/// last, and the narrowest each may become: before → after, the resource,
/// the call or setting (whose longest setting names stay whole).
const FLEXIBLE: [(usize, usize); 3] = [(6, 14), (3, 12), (5, 21)];
/// Between columns.
const GAP: &str = " ";

/// A table no wider than [`TABLE_WIDTH`]: long cells end in `…`.
fn table(entries: &[Entry]) -> String {
    let rows: Vec<[String; 9]> = entries.iter().map(row).collect();
    let mut widths: Vec<usize> = HEADERS.iter().map(|h| h.chars().count()).collect();
    for r in &rows {
        for (w, cell) in widths.iter_mut().zip(r.iter()) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let total = |w: &[usize]| w.iter().sum::<usize>() + GAP.len() * (w.len() - 1);
    for (col, min) in FLEXIBLE {
        let over = total(&widths).saturating_sub(TABLE_WIDTH);
        widths[col] = widths[col].saturating_sub(over).max(min);
    }
    let mut out = String::new();
    let line = |cells: &[String]| -> String {
        let parts: Vec<String> = cells.iter().zip(&widths).map(|(c, w)| pad(c, *w)).collect();
        parts.join(GAP).trim_end().to_string()
    };
    let header: Vec<String> = HEADERS.iter().map(|h| h.to_string()).collect();
    let _ = writeln!(out, "{}", line(&header));
    for r in &rows {
        let _ = writeln!(out, "{}", line(r));
    }
    if rows.is_empty() {
        out.push_str("(no entries)\n");
    }
    out
}

/// `text` in exactly `width` characters: padded, or cut with `…`.
fn pad(text: &str, width: usize) -> String {
    let n = text.chars().count();
    if n <= width {
        return format!("{text}{}", " ".repeat(width - n));
    }
    let cut: String = text.chars().take(width.saturating_sub(1)).collect();
    format!("{cut}…")
}

/// The time range of `--since` (and `--until`, default `now`), checked.
pub fn time_range(
    since: &str,
    until: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<Filter, String> {
    let since = parse_since(since, now).map_err(|e| format!("--since: {e}"))?;
    let until = until.unwrap_or(now);
    if until < since {
        return Err("--until is before --since".into());
    }
    Ok(Filter::between(since, until))
}

/// The entries of a `history --format json` file that `filter` asks for,
/// and the file named for the report; an error names the file.
pub fn read_file(path: &std::path::Path, filter: &Filter) -> Result<(Vec<Entry>, String), String> {
    let name = path.display();
    let text = std::fs::read_to_string(path).map_err(|e| format!("{name}: cannot read: {e}"))?;
    let entries = read_json_lines(&text).map_err(|e| format!("{name}: {e}"))?;
    Ok((select(entries, filter), format!("history file {name}")))
}

/// `[journal]`, which `history`, `report` (without `--history`) and `undo` need.
pub fn journal_config(
    config: &crate::config::Config,
) -> Result<&crate::config::JournalConfig, String> {
    config.journal.as_ref().ok_or_else(|| {
        "[journal] table is not set: there is no change journal to read (see README: The change journal)"
            .to_string()
    })
}

/// The journal's entries that `filter` asks for, newest first.
pub async fn read(
    config: &crate::config::Config,
    filter: &Filter,
) -> Result<Vec<Entry>, crate::journal::JournalError> {
    use crate::journal::Journal;
    let Ok(table) = journal_config(config) else {
        return Ok(Vec::new());
    };
    let sdk = crate::aws::load().await;
    let journal = crate::journal::DynamoJournal::new(&sdk, &table.table, table.keep_days);
    Ok(newest_first(journal.query(filter).await?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Mode;
    use crate::journal::Outcome;

    fn change(setting: &str, before: &str, after: &str) -> Entry {
        let mut e = Entry::new(
            Kind::Change,
            Mode::Apply,
            "111122223333",
            "ap-southeast-2",
            "arn:aws:rds:ap-southeast-2:111122223333:cluster:a-cluster-with-a-very-long-name-indeed",
        );
        e.control = Some("Neptune.2".into());
        e.call = Some("ModifyDBClusterParameterGroup".into());
        e.setting = Some(setting.into());
        e.before = Some(before.into());
        e.after = Some(after.into());
        e.result = Outcome::Done;
        e
    }

    #[test]
    fn durations_and_times() {
        let now = DateTime::parse_from_rfc3339("2026-12-08T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(parse_since("7d", now).unwrap(), now - Duration::days(7));
        assert_eq!(
            parse_since("30m", now).unwrap(),
            now - Duration::minutes(30)
        );
        assert_eq!(
            parse_since("2026-12-01T00:00:00Z", now)
                .unwrap()
                .to_rfc3339(),
            "2026-12-01T00:00:00+00:00"
        );
        let err = parse_since("seven days", now).unwrap_err();
        assert!(err.contains("30m, 12h, 7d or 2w"), "{err}");
        assert!(parse_since("-1d", now).is_err());
        assert!(Format::parse("xml").is_err());
        assert!(parse_kind("changes")
            .unwrap_err()
            .contains("change, decision or undo"));
    }

    #[test]
    fn the_table_fits_120_columns_whatever_it_holds() {
        let entries = vec![
            change("neptune_enable_audit_log", "0", "1"),
            change(
                "parameters copied from a-shared-group-with-a-long-name",
                "(none)",
                "max_concurrent_queries,query_timeout,neptune_query_timeout",
            ),
        ];
        let text = render(&entries, Format::Table);
        for line in text.lines() {
            assert!(
                line.chars().count() <= TABLE_WIDTH,
                "{} chars: {line}",
                line.chars().count()
            );
        }
        assert!(text.lines().next().unwrap().starts_with("time"));
        assert!(text.contains("0 → 1"), "{text}");
        assert!(text.contains('…'), "{text}");
    }

    #[test]
    fn json_lines_read_back_and_csv_quotes_what_it_must() {
        let mut e = change("restore", "444455556666,all", "444455556666");
        e.finding_ids = vec!["f-1".into(), "f-2".into()];
        let json = render(std::slice::from_ref(&e), Format::Json);
        let back = read_json_lines(&json).unwrap();
        assert_eq!(back[0].id, e.id);
        let csv = render(&[e], Format::Csv);
        let mut lines = csv.lines();
        assert!(lines
            .next()
            .unwrap()
            .starts_with("id,time,kind,mode,account"));
        let row = lines.next().unwrap();
        assert!(row.contains("\"444455556666,all\""), "{row}");
        assert!(row.contains("f-1;f-2"), "{row}");
        let err = read_json_lines("{}\nnot json\n").unwrap_err();
        assert!(err.starts_with("line 1:"), "{err}");
    }
}
