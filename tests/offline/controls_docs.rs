//! The docs and the deployment material come from the control registry:
//! `hubtriage controls` prints its table, and README.md and `deploy/*.yaml`
//! say the same (a control added to the registry fails here until they do).
//! The IAM actions each control's fix needs are held to both templates'
//! policies by `deploy.rs`.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_hubtriage");
const BEGIN: &str =
    "<!-- the table of `hubtriage controls --format markdown`; a test holds them equal -->\n";
const END: &str = "<!-- end of the table -->";

fn controls(format: &str) -> String {
    let out = Command::new(BIN)
        .args(["controls", "--format", format])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)).unwrap()
}

/// The controls as JSON: (id, the RDS ids decided as it, its IAM actions).
fn rows() -> Vec<(String, Vec<String>, Vec<String>)> {
    let rows: Value = serde_json::from_str(&controls("json")).unwrap();
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_string())
            .collect()
    };
    rows.as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["id"].as_str().unwrap().to_string(),
                strings(&r["also_decides"]),
                strings(&r["iam_actions"]),
            )
        })
        .collect()
}

#[test]
fn the_readme_table_is_what_hubtriage_controls_prints() {
    let readme = read("README.md");
    let start = readme
        .find(BEGIN)
        .expect("README marks the controls table's start")
        + BEGIN.len();
    let len = readme[start..]
        .find(END)
        .expect("README marks the controls table's end");
    let table = &readme[start..start + len];
    let printed = controls("markdown");
    if table != printed {
        panic!(
            "README.md's table of controls differs from `hubtriage controls --format markdown`; \
             paste its output between the markers:\n{printed}"
        );
    }
}

#[test]
fn the_templates_route_and_name_every_control() {
    let rows = rows();
    let template = read("deploy/hubtriage.yaml");
    let (first, last) = (&rows[0].0, &rows[rows.len() - 1].0);
    let description = &template[..template.find("\nParameters:").unwrap_or(template.len())];
    let flat = description.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        flat.contains(&format!("({first} to {last},")),
        "the template's description names the range of controls: {flat}"
    );
    // The rule's list of consolidated ids: every control and each RDS id
    // decided as one, in the registry's order.
    let routed: Vec<String> = rows
        .iter()
        .map(|r| r.0.clone())
        .chain(
            rows.iter()
                .flat_map(|r| r.1.clone())
                .collect::<BTreeSet<_>>(),
        )
        .collect();
    let line = format!("SecurityControlId: [{}]", routed.join(", "));
    assert!(template.contains(&line), "deploy/hubtriage.yaml has {line}");
    for rds in rows.iter().flat_map(|r| r.1.iter()) {
        assert!(flat.contains(rds.as_str()), "the description names {rds}");
    }

    // The member role's description names each control it may fix.
    let member = read("deploy/member-role.yaml");
    let description = &member[..member.find("\nParameters:").unwrap_or(member.len())];
    let flat = description.split_whitespace().collect::<Vec<_>>().join(" ");
    for (id, _, actions) in &rows {
        if actions.is_empty() {
            continue;
        }
        let number = id.rsplit('.').next().unwrap_or_default();
        assert!(
            flat.contains(&format!("{id},"))
                || flat.contains(&format!(".{number},"))
                || flat.contains(&format!(".{number})")),
            "deploy/member-role.yaml's description names {id}, which it may fix: {flat}"
        );
    }
}
