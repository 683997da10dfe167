//! `hubtriage explain` golden outputs: the built binary run over the fixture
//! combinations, its stdout compared byte for byte with the checked-in
//! `tests/fixtures/golden/explain-<config>-<inputs>.jsonl`.
//!
//! A change to the decide step that is meant to change no decision (a refactor)
//! must leave every file as it is. A change that is meant to change decisions
//! rewrites the files with
//!
//! ```text
//! HUBTRIAGE_BLESS=1 cargo test --test explain_golden
//! ```
//!
//! and the diff of `tests/fixtures/golden/` shows, decision by decision, what
//! changed.

use std::path::{Path, PathBuf};
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_hubtriage");
const NOW: &str = "2026-11-25T12:00:00Z";

/// The configs, by name: `None` is the complete example `config/hubtriage.toml`.
const CONFIGS: &[(&str, Option<&str>)] = &[
    ("example", None),
    (
        "remediate",
        Some(
            "[remediation]\nmode = \"apply\"\nreboot = \"immediate\"\nlog_retention_days = 365\n\
             [default]\naction = \"remediate\"\n",
        ),
    ),
    (
        "remediate-never-shared-ticket",
        Some(
            "[remediation]\nreboot = \"never\"\nshared_parameter_group = \"ticket\"\n\
             [default]\naction = \"remediate\"\n",
        ),
    ),
    (
        "remediate-window-shared-modify",
        Some(
            "[remediation]\nreboot = \"maintenance-window\"\nshared_parameter_group = \"modify\"\n\
             [default]\naction = \"remediate\"\n",
        ),
    ),
    (
        "suppress",
        Some(
            "[[suppress]]\nname = \"expired\"\nreason = \"Accepted until the last migration (RISK-1)\"\n\
             expires = \"2026-11-24\"\nmatch = {}\n\
             [[suppress]]\nname = \"orders-accepted\"\nreason = \"Accepted until the Q1 migration (RISK-9)\"\n\
             expires = \"2026-12-31\"\nmatch = { tags = { team = \"orders\" } }\n\
             [[rule]]\nname = \"scratch\"\naction = \"ignore\"\nmatch = { clusters = [\"scratch-*\"] }\n\
             [default]\naction = \"remediate\"\n",
        ),
    ),
];

/// The saved inputs, by name: `explain` arguments after `--config`.
/// A name in braces is a file the test writes (see `DERIVED`).
const INPUTS: &[(&str, &[&str])] = &[
    (
        "one-prod",
        &[
            "--event",
            "neptune2-failed-event.json",
            "--clusters",
            "describe-db-clusters.json",
            "--parameters",
            "describe-db-cluster-parameters.json",
            "--tags",
            "list-tags-for-resource.json",
        ],
    ),
    (
        "one-dev",
        &[
            "--event",
            "neptune2-failed-event.json",
            "--clusters",
            "describe-db-clusters.json",
            "--tags",
            "list-tags-dev.json",
        ],
    ),
    (
        "one-notified",
        &[
            "--event",
            "{notified}",
            "--clusters",
            "describe-db-clusters.json",
            "--parameters",
            "describe-db-cluster-parameters.json",
        ],
    ),
    (
        "one-other-account",
        &[
            "--event",
            "neptune2-failed-event.json",
            "--clusters",
            "describe-db-clusters.json",
            "--account",
            "123456789012",
        ],
    ),
    (
        "one-gone",
        &[
            "--event",
            "neptune2-failed-event.json",
            "--clusters",
            "{gone}",
        ],
    ),
    (
        "one-modifying",
        &[
            "--event",
            "neptune2-failed-event.json",
            "--clusters",
            "{modifying}",
            "--tags",
            "list-tags-dev.json",
        ],
    ),
    (
        "one-no-window",
        &[
            "--event",
            "neptune2-failed-event.json",
            "--clusters",
            "{no-window}",
            "--tags",
            "list-tags-dev.json",
        ],
    ),
    (
        "one-aurora",
        &[
            "--event",
            "neptune2-failed-event.json",
            "--clusters",
            "{aurora}",
        ],
    ),
    (
        "one-skip-tag",
        &[
            "--event",
            "neptune2-failed-event.json",
            "--clusters",
            "describe-db-clusters.json",
            "--tags",
            "{skip-tag}",
        ],
    ),
    (
        "two",
        &[
            "--event",
            "two-findings-event.json",
            "--clusters",
            "describe-db-clusters-three.json",
            "--parameters",
            "describe-db-cluster-parameters.json",
        ],
    ),
    (
        "two-audit-on",
        &[
            "--event",
            "two-findings-event.json",
            "--clusters",
            "describe-db-clusters-three.json",
            "--parameters",
            "describe-db-cluster-parameters-audit-on.json",
        ],
    ),
];

fn manifest_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn golden_dir() -> PathBuf {
    manifest_dir().join("tests/fixtures/golden")
}

/// Inputs the test writes, by the name the inputs use: a fixture file with one
/// piece of text replaced (fixture, from, to).
const DERIVED: &[(&str, &str, &str, &str)] = &[
    (
        "{notified}",
        "neptune2-failed-event.json",
        "\"Workflow\": { \"Status\": \"NEW\" }",
        "\"Workflow\": { \"Status\": \"NOTIFIED\" }",
    ),
    (
        "{gone}",
        "describe-db-clusters.json",
        "cluster:orders-graph\"",
        "cluster:orders-graph-restored\"",
    ),
    (
        "{modifying}",
        "describe-db-clusters.json",
        "\"Status\": \"available\"",
        "\"Status\": \"modifying\"",
    ),
    (
        "{no-window}",
        "describe-db-clusters.json",
        "\"PreferredMaintenanceWindow\": \"sun:06:00-sun:06:30\",",
        "",
    ),
    (
        "{aurora}",
        "describe-db-clusters.json",
        "\"Engine\": \"neptune\"",
        "\"Engine\": \"aurora-postgresql\"",
    ),
    (
        "{skip-tag}",
        "list-tags-dev.json",
        "\"Key\": \"team\"",
        "\"Key\": \"hubtriage:skip\"",
    ),
];

/// Writes the `DERIVED` files into `dir`: (name, path).
fn derived_inputs(dir: &Path) -> Vec<(&'static str, String)> {
    DERIVED
        .iter()
        .map(|(name, fixture, from, to)| {
            let text = std::fs::read_to_string(manifest_dir().join("tests/fixtures").join(fixture))
                .unwrap();
            assert!(text.contains(from), "{fixture} holds {from}");
            let path = dir.join(format!("{}.json", name.trim_matches(['{', '}'])));
            std::fs::write(&path, text.replacen(from, to, 1)).unwrap();
            (*name, path.display().to_string())
        })
        .collect()
}

/// The argument as a path: a derived file, a fixture file or a plain value.
fn resolve(arg: &str, derived: &[(&str, String)]) -> String {
    if let Some((_, path)) = derived.iter().find(|(name, _)| *name == arg) {
        return path.clone();
    }
    let fixture = manifest_dir().join("tests/fixtures").join(arg);
    if arg.ends_with(".json") {
        return fixture.display().to_string();
    }
    arg.to_string()
}

fn config_path(dir: &Path, name: &str, text: Option<&str>) -> String {
    match text {
        None => manifest_dir().join("config/hubtriage.toml"),
        Some(text) => {
            let path = dir.join(format!("{name}.toml"));
            std::fs::write(&path, text).unwrap();
            path
        }
    }
    .display()
    .to_string()
}

fn explain_stdout(config: &str, args: &[String]) -> Vec<u8> {
    let out = Command::new(BIN)
        .arg("explain")
        .args(["--config", config])
        .args(args)
        .args(["--now", NOW])
        .env_remove("AWS_ACCOUNT_ID")
        .env_remove("RUST_BACKTRACE")
        .output()
        .expect("the hubtriage binary runs");
    assert_eq!(
        out.status.code(),
        Some(0),
        "explain --config {config} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Where two outputs first differ, as the two lines there.
fn first_difference(want: &str, got: &str) -> String {
    let mut want_lines = want.lines();
    let mut got_lines = got.lines();
    for n in 1.. {
        match (want_lines.next(), got_lines.next()) {
            (Some(w), Some(g)) if w == g => continue,
            (None, None) => break,
            (w, g) => {
                return format!(
                    "line {n}:\n  golden: {}\n  now:    {}",
                    w.unwrap_or("(none)"),
                    g.unwrap_or("(none)")
                )
            }
        }
    }
    "the line ends differ".into()
}

#[test]
fn explain_output_matches_the_golden_files() {
    let bless = std::env::var("HUBTRIAGE_BLESS").is_ok_and(|v| v == "1");
    let dir = tempfile::tempdir().unwrap();
    let derived = derived_inputs(dir.path());
    if bless {
        std::fs::create_dir_all(golden_dir()).unwrap();
    }

    let mut expected_files = Vec::new();
    let mut failures = Vec::new();
    for (config_name, text) in CONFIGS {
        let config = config_path(dir.path(), config_name, *text);
        for (inputs_name, args) in INPUTS {
            let args: Vec<String> = args.iter().map(|a| resolve(a, &derived)).collect();
            let got = explain_stdout(&config, &args);
            let file = format!("explain-{config_name}-{inputs_name}.jsonl");
            let path = golden_dir().join(&file);
            expected_files.push(file.clone());
            if bless {
                std::fs::write(&path, &got).unwrap();
                continue;
            }
            let want = std::fs::read(&path).unwrap_or_default();
            if want != got {
                failures.push(format!(
                    "{file}: {}",
                    first_difference(
                        &String::from_utf8_lossy(&want),
                        &String::from_utf8_lossy(&got)
                    )
                ));
            }
        }
    }

    // A golden file no case writes is a case that was dropped.
    let mut stale: Vec<String> = std::fs::read_dir(golden_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("explain-") && !expected_files.contains(name))
        .collect();
    stale.sort();

    assert!(
        failures.is_empty() && stale.is_empty(),
        "explain output differs from the golden files (HUBTRIAGE_BLESS=1 rewrites them if the change is meant):\n{}\nstale golden files: {stale:?}",
        failures.join("\n")
    );
}
