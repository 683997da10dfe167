//! `hubtriage report` in a real browser: the page made from an end-to-end
//! journal (from the table, and offline from `history --format json`) is
//! rendered by headless Chromium (Debian's `chromium`). Every connection it
//! opens goes to a loopback proxy that forwards nothing, and Chromium's
//! NetLog tells which requests the page made (their initiator is the page)
//! from the browser's own (Chromium asks Google's servers for the time and
//! the account at start; their initiator is "not an origin"): the page may
//! make none. The same check run on a page that loads an image must see it.
//! The figures the browser shows must equal the journal's, and a screenshot
//! is saved as `target/report/report.png`.
//!
//! `scripts/test.sh` installs Chromium where it can and sets
//! `HUBTRIAGE_REQUIRE_BROWSER=1`; without a browser (and without that
//! switch) the browser half is skipped with a loud message.

use crate::support::World;

use std::collections::BTreeMap;
use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

use serde_json::Value;

fn out_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/report");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The headline figures the journal's entries make, counted here from the
/// JSON (as README's "The report" defines them), by `<mode>-<figure>`.
fn expected_figures(entries: &[Value]) -> BTreeMap<String, usize> {
    let mut f = BTreeMap::new();
    for mode in ["apply", "dry-run"] {
        for name in [
            "changes",
            "verified",
            "failed",
            "unsettled",
            "planned",
            "tickets",
            "suppressed",
            "resolved",
            "undone",
        ] {
            f.insert(format!("{mode}-{name}"), 0);
        }
    }
    for e in entries {
        let mode = e["mode"].as_str().unwrap();
        let mut add = |name: &str| *f.get_mut(&format!("{mode}-{name}")).unwrap() += 1;
        match (e["kind"].as_str().unwrap(), e["result"].as_str().unwrap()) {
            ("change", "done") => {
                add("changes");
                if e["verified_at"].is_string() {
                    add("verified");
                }
            }
            ("change", "failed") => add("failed"),
            ("change", "started" | "unknown") => add("unsettled"),
            ("change", "planned") => add("planned"),
            ("decision", _) => {
                match e["action"].as_str() {
                    Some("ticket") => add("tickets"),
                    Some("suppress") => add("suppressed"),
                    _ => {}
                }
                if e["workflow"] == "RESOLVED" {
                    add("resolved");
                }
            }
            ("undo", _) => add("undone"),
            _ => {}
        }
    }
    f
}

/// The figures a page shows: `data-figure="<name>">N<`.
fn figures_in(html: &str) -> BTreeMap<String, usize> {
    html.split("data-figure=\"")
        .skip(1)
        .filter_map(|rest| {
            let (name, rest) = rest.split_once('"')?;
            let value = rest.strip_prefix('>')?.split('<').next()?;
            Some((name.to_string(), value.trim().parse().ok()?))
        })
        .collect()
}

/// Chromium's path, if this machine has it.
fn chromium() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("HUBTRIAGE_CHROMIUM") {
        return Some(PathBuf::from(p));
    }
    ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

/// A loopback proxy that takes every connection Chromium opens and notes
/// its first line (nothing is forwarded: nothing leaves this machine).
fn counting_proxy() -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut buf = [0u8; 512];
            let n = stream.read(&mut buf).unwrap_or(0);
            let first = String::from_utf8_lossy(&buf[..n])
                .lines()
                .next()
                .unwrap_or("(nothing)")
                .to_string();
            log.lock().unwrap().push(first);
        }
    });
    (addr, seen)
}

/// The requests `page` made in a Chromium NetLog (JSON): each URL request
/// whose initiator is a page (`null`, the origin of a file), not the
/// browser itself (`not an origin`), other than the file itself.
fn page_requests(net_log: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(net_log).expect("chromium wrote its NetLog");
    let log: Value = serde_json::from_str(&text).expect("the NetLog is JSON");
    let start_job = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"].clone();
    log["events"]
        .as_array()
        .expect("NetLog events")
        .iter()
        .filter(|e| e["type"] == start_job)
        .filter_map(|e| {
            let url = e["params"]["url"].as_str()?;
            let initiator = e["params"]["initiator"].as_str().unwrap_or("not an origin");
            (initiator != "not an origin" && !url.starts_with("file:")).then(|| url.to_string())
        })
        .collect()
}

/// Chromium, headless, every connection through `proxy`, on `page`; its
/// NetLog written to `net_log`.
fn browse(
    chromium: &Path,
    proxy: &str,
    page: &Path,
    net_log: &Path,
    args: &[String],
) -> std::process::Output {
    let profile = tempfile::tempdir().unwrap();
    Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
            "--disable-default-apps",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("--proxy-server=http://{proxy}"))
        .arg("--proxy-bypass-list=<-loopback>")
        .arg(format!("--log-net-log={}", net_log.display()))
        .args(args)
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("chromium runs")
}

/// Makes the report from `entries`' journal (the table, and the history
/// file offline), checks its figures, and renders it in Chromium.
pub fn check_report(w: &World, config: &Path, entries: &[Value]) {
    let dir = out_dir();
    let history = dir.join("history.jsonl");
    let (code, json, err) = w.command(config, &["history", "--format", "json", "--since", "1d"]);
    assert_eq!(code, 0, "{err}");
    std::fs::write(&history, &json).unwrap();
    let page = dir.join("report.html");
    let offline = dir.join("report-offline.html");
    let (code, out, err) = w.command(
        config,
        &["report", "--out", page.to_str().unwrap(), "--since", "1d"],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("wrote "), "{out}");
    let (code, _, err) = w.command(
        config,
        &[
            "report",
            "--out",
            offline.to_str().unwrap(),
            "--since",
            "1d",
            "--history",
            history.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{err}");
    let want = expected_figures(entries);
    let html = std::fs::read_to_string(&page).unwrap();
    assert_eq!(
        figures_in(&html),
        want,
        "the page's figures (from the table)"
    );
    let html_offline = std::fs::read_to_string(&offline).unwrap();
    assert_eq!(
        figures_in(&html_offline),
        want,
        "the page's figures (offline)"
    );
    for banned in ["<script", "<link", " src=", "url(", "@import"] {
        assert!(!html.contains(banned), "{banned} in the page");
    }

    let Some(chromium) = chromium() else {
        let required = std::env::var("HUBTRIAGE_REQUIRE_BROWSER").is_ok_and(|v| v == "1");
        assert!(
            !required,
            "HUBTRIAGE_REQUIRE_BROWSER=1 but no chromium was found"
        );
        eprintln!("\n*** BROWSER CHECK SKIPPED: no chromium on this machine (scripts/test.sh installs Debian's chromium where it can) ***\n");
        return;
    };
    let (proxy, connections) = counting_proxy();
    // The check sees a page that loads something.
    let leaky = dir.join("leaky.html");
    std::fs::write(
        &leaky,
        "<html><body><img src=\"http://images.example.invalid/x.png\"></body></html>",
    )
    .unwrap();
    let leaky_log = dir.join("leaky-netlog.json");
    browse(
        &chromium,
        &proxy,
        &leaky,
        &leaky_log,
        &["--dump-dom".to_string()],
    );
    assert_eq!(
        page_requests(&leaky_log),
        ["http://images.example.invalid/x.png"],
        "the request check sees what a page loads"
    );
    let net_log = dir.join("report-netlog.json");
    let dom = browse(
        &chromium,
        &proxy,
        &page,
        &net_log,
        &["--dump-dom".to_string()],
    );
    assert!(
        dom.status.success(),
        "{}",
        String::from_utf8_lossy(&dom.stderr)
    );
    let rendered = String::from_utf8_lossy(&dom.stdout).to_string();
    assert!(rendered.contains("What hubtriage changed"), "{rendered}");
    assert_eq!(figures_in(&rendered), want, "the figures the browser shows");
    let screenshot = dir.join("report.png");
    let _ = std::fs::remove_file(&screenshot);
    let shot = browse(
        &chromium,
        &proxy,
        &page,
        &dir.join("screenshot-netlog.json"),
        &[
            format!("--screenshot={}", screenshot.display()),
            "--window-size=1280,2000".to_string(),
        ],
    );
    assert!(
        shot.status.success(),
        "{}",
        String::from_utf8_lossy(&shot.stderr)
    );
    let png = std::fs::read(&screenshot).expect("the screenshot is saved");
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 20_000,
        "{} bytes",
        png.len()
    );
    let made = page_requests(&net_log);
    assert!(made.is_empty(), "the page made requests: {made:?}");
    let made = page_requests(&dir.join("screenshot-netlog.json"));
    assert!(made.is_empty(), "the page made requests: {made:?}");
    eprintln!(
        "report rendered in {}: no request from the page ({} connections of the browser's own, none forwarded); screenshot: {}",
        chromium.display(),
        connections.lock().unwrap().len(),
        screenshot.display()
    );
}
