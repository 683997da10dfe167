//! The controls as a table, from the registry: `hubtriage controls`. Its
//! markdown is the README's table of controls, and `tests/offline` holds the
//! two equal, so the docs say what the code does.

use serde_json::{json, Value};

use super::{all, ids, Control};

/// How `hubtriage controls` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Markdown,
    Json,
}

impl Format {
    pub fn parse(word: &str) -> Result<Format, String> {
        match word {
            "markdown" => Ok(Format::Markdown),
            "json" => Ok(Format::Json),
            other => Err(format!(
                "unknown format {other:?}: expected markdown or json"
            )),
        }
    }
}

/// The table in `format`, ending in a newline.
pub fn render(format: Format) -> String {
    match format {
        Format::Markdown => markdown(),
        Format::Json => {
            let rows: Vec<Value> = all().iter().map(|c| row(*c)).collect();
            format!("{:#}\n", Value::Array(rows))
        }
    }
}

/// One control as JSON: the same facts as a markdown row, keyed.
fn row(c: &dyn Control) -> Value {
    json!({
        "id": c.id(),
        "title": c.title(),
        "resource": c.kind(),
        "passes_when": c.passes_when(),
        "fix": c.fix_summary(),
        "safety": c.safety(),
        "iam_actions": c.iam_actions(),
        "config_keys": c.config_keys(),
        "also_decides": decided_as(c),
    })
}

/// The RDS controls whose findings on Neptune resources are decided as `c`.
fn decided_as(c: &dyn Control) -> Vec<&'static str> {
    ids::RDS
        .iter()
        .filter(|r| r.neptune == Some(c.id()))
        .map(|r| r.id)
        .collect()
}

fn markdown() -> String {
    let mut out = String::from(
        "| control | resource | compliant when (live state) | fix, in `apply` mode | class | IAM actions of the fix |\n\
         |---|---|---|---|---|---|\n",
    );
    for c in all() {
        let also = decided_as(c);
        let also = if also.is_empty() {
            String::new()
        } else {
            format!(" (also {})", also.join(", "))
        };
        let actions = if c.iam_actions().is_empty() {
            "none".to_string()
        } else {
            c.iam_actions()
                .iter()
                .map(|a| format!("`{a}`"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let cells = [
            format!("{}{also}: {}", c.id(), c.title()),
            c.kind().noun().to_string(),
            c.passes_when().to_string(),
            c.fix_summary().to_string(),
            c.safety().as_str().to_string(),
            actions,
        ];
        let cells: Vec<String> = cells.iter().map(|cell| cell.replace('|', "\\|")).collect();
        out.push_str(&format!("| {} |\n", cells.join(" | ")));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_row_per_control_in_both_formats() {
        let md = render(Format::Markdown);
        assert_eq!(md.lines().count(), 2 + all().len(), "{md}");
        assert!(md.contains("| Neptune.4 (also RDS.7): Neptune DB clusters should have deletion protection enabled | cluster | `DeletionProtection` | ModifyDBCluster DeletionProtection=true | auto | `rds:ModifyDBCluster` |"), "{md}");
        assert!(md.contains("| ticket only | none |"), "{md}");
        let rows: Value = serde_json::from_str(&render(Format::Json)).unwrap();
        let rows = rows.as_array().unwrap();
        assert_eq!(rows.len(), all().len());
        assert_eq!(rows[2]["resource"], "cluster-snapshot");
        assert_eq!(rows[2]["also_decides"], json!(["RDS.1"]));
        assert_eq!(rows[4]["config_keys"], json!(["min_retention_days"]));
        assert_eq!(rows[6]["safety"], "opt-in");
        assert!(Format::parse("yaml")
            .unwrap_err()
            .contains("markdown or json"));
    }
}
