//! The report's chart: changes made per day, stacked by control, as inline
//! SVG (no script): one bar a day, a colour a control, the day's total on
//! top, and a legend. Every bar has a `<title>` a screen reader (or a
//! pointer) reads.

use std::collections::BTreeMap;
use std::fmt::Write;

use chrono::{DateTime, NaiveDate, Utc};

use super::escape;
use crate::journal::Entry;

const WIDTH: f64 = 960.0;
const HEIGHT: f64 = 220.0;
const LEFT: f64 = 36.0;
const BOTTOM: f64 = 28.0;
const TOP: f64 = 16.0;

/// A control's colour: one of a fixed palette, told apart in colour-blind
/// viewing (Okabe–Ito), the same control always the same colour.
pub fn colour(control: &str) -> &'static str {
    const PALETTE: [&str; 8] = [
        "#0072B2", "#E69F00", "#009E73", "#CC79A7", "#D55E00", "#56B4E9", "#F0E442", "#000000",
    ];
    let n = control
        .rsplit('.')
        .next()
        .and_then(|d| d.parse::<usize>().ok())
        .unwrap_or(0);
    PALETTE[n % PALETTE.len()]
}

/// Changes per day and control, and the controls, sorted.
type Counts = (BTreeMap<NaiveDate, BTreeMap<String, usize>>, Vec<String>);

fn count(changes: &[&Entry]) -> Counts {
    let mut counts: BTreeMap<NaiveDate, BTreeMap<String, usize>> = BTreeMap::new();
    let mut controls: Vec<String> = Vec::new();
    for e in changes {
        let control = e.control.clone().unwrap_or_else(|| "(none)".into());
        *counts
            .entry(e.time.date_naive())
            .or_default()
            .entry(control.clone())
            .or_default() += 1;
        if !controls.contains(&control) {
            controls.push(control);
        }
    }
    controls.sort();
    (counts, controls)
}

/// The SVG of `changes` (made, apply mode) per day from `since` to `until`.
pub fn per_day(changes: &[&Entry], since: DateTime<Utc>, until: DateTime<Utc>) -> String {
    let days: Vec<NaiveDate> = since
        .date_naive()
        .iter_days()
        .take_while(|d| *d <= until.date_naive())
        .take(800)
        .collect();
    let (counts, controls) = count(changes);
    let max = counts
        .values()
        .map(|c| c.values().sum::<usize>())
        .max()
        .unwrap_or(0)
        .max(1);
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {}" width="100%" role="img" aria-labelledby="chart-title"><title id="chart-title">Changes made per day, by control</title>"#,
        HEIGHT + 24.0 * controls.len().div_ceil(6).max(1) as f64
    );
    let _ = write!(
        svg,
        r##"<line x1="{LEFT}" y1="{}" x2="{WIDTH}" y2="{}" stroke="#888"/><text x="{}" y="{}" class="axis" text-anchor="end">{max}</text><text x="{}" y="{}" class="axis" text-anchor="end">0</text>"##,
        HEIGHT - BOTTOM,
        HEIGHT - BOTTOM,
        LEFT - 6.0,
        TOP + 4.0,
        LEFT - 6.0,
        HEIGHT - BOTTOM
    );
    let slot = (WIDTH - LEFT) / days.len().max(1) as f64;
    let label_every = (days.len() / 10).max(1);
    for (i, day) in days.iter().enumerate() {
        let x = LEFT + slot * i as f64;
        bar(&mut svg, x, slot, *day, counts.get(day), &controls, max);
        if i % label_every == 0 {
            let _ = write!(
                svg,
                r#"<text x="{:.1}" y="{:.1}" class="axis" text-anchor="middle">{}</text>"#,
                x + slot / 2.0,
                HEIGHT - BOTTOM + 16.0,
                day.format("%m-%d")
            );
        }
    }
    legend(&mut svg, &controls);
    svg.push_str("</svg>");
    svg
}

/// One day's bar, stacked by control, its total on top, in the slot at `x`.
fn bar(
    svg: &mut String,
    x: f64,
    slot: f64,
    day: NaiveDate,
    counts: Option<&BTreeMap<String, usize>>,
    controls: &[String],
    max: usize,
) {
    let plot_h = HEIGHT - BOTTOM - TOP;
    let width = (slot * 0.7).max(1.0);
    let x = x + (slot - width) / 2.0;
    let mut y = HEIGHT - BOTTOM;
    let mut total = 0;
    for control in controls {
        let n = counts.and_then(|c| c.get(control)).copied().unwrap_or(0);
        if n == 0 {
            continue;
        }
        total += n;
        let h = plot_h * n as f64 / max as f64;
        y -= h;
        let _ = write!(
            svg,
            r#"<rect x="{x:.1}" y="{y:.1}" width="{width:.1}" height="{h:.1}" fill="{}"><title>{} {}: {n}</title></rect>"#,
            colour(control),
            day.format("%Y-%m-%d"),
            escape(control)
        );
    }
    if total > 0 && slot >= 14.0 {
        let _ = write!(
            svg,
            r#"<text x="{:.1}" y="{:.1}" class="axis" text-anchor="middle" data-day="{}">{total}</text>"#,
            x + width / 2.0,
            y - 3.0,
            day.format("%Y-%m-%d")
        );
    }
}

fn legend(svg: &mut String, controls: &[String]) {
    for (i, control) in controls.iter().enumerate() {
        let x = LEFT + 150.0 * (i % 6) as f64;
        let y = HEIGHT + 8.0 + 24.0 * (i / 6) as f64;
        let _ = write!(
            svg,
            r#"<rect x="{x}" y="{y}" width="12" height="12" fill="{}"/><text x="{}" y="{}" class="legend">{}</text>"#,
            colour(control),
            x + 18.0,
            y + 11.0,
            escape(control)
        );
    }
    if controls.is_empty() {
        let _ = write!(
            svg,
            r#"<text x="{LEFT}" y="{}" class="legend">No change was made in this period.</text>"#,
            HEIGHT + 18.0
        );
    }
}
