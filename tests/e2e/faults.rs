//! Crashes and faults, end to end, with two daemons on one queue and the
//! coordination table (as every rolling deployment runs):
//! - one daemon killed with SIGKILL at random points of a remediation run and
//!   restarted: every cluster is fixed, each instance rebooted once, the caps
//!   hold, and the dead task's leases are taken over when they expire;
//! - a storm of findings with faults injected on every AWS API hubtriage
//!   calls: nothing lost, nothing done twice, the queue left empty.
//!
//! Seeds and sizes come from the environment, so a longer run is one command
//! (README, "Crashes and faults"): `HUBTRIAGE_KILL_SEEDS=1,2,3,4,5` and
//! `HUBTRIAGE_FAULT_FINDINGS=1000`, `HUBTRIAGE_FAULT_SEED`.

use crate::support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::{jira_table, ClusterSpec, TicketFakes, World, WorldOptions, JIRA_ENV};

const TABLE: &str = "hubtriage-state";

/// A small deterministic generator (xorshift64*): one seed, one run.
struct Dice(u64);

impl Dice {
    fn new(seed: u64) -> Dice {
        Dice(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// A number in `lo..hi`.
    fn between(&mut self, lo: u64, hi: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        lo + self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % (hi - lo)
    }
}

fn env_number(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => v
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name} must be a number, found {v:?}")),
        Err(_) => default,
    }
}

/// A daemon writing its output to files (a killed process leaves no pipe to drain).
struct Daemon {
    name: String,
    child: Child,
    stdout: PathBuf,
    stderr: PathBuf,
}

impl Daemon {
    fn start(w: &World, config: &Path, env: &[(&str, &str)], name: &str) -> Daemon {
        let stdout = w.dir.path().join(format!("{name}.out"));
        let stderr = w.dir.path().join(format!("{name}.err"));
        let child = w
            .daemon(config, &["--until-empty"])
            .envs(env.iter().copied())
            .stdout(Stdio::from(std::fs::File::create(&stdout).unwrap()))
            .stderr(Stdio::from(std::fs::File::create(&stderr).unwrap()))
            .spawn()
            .unwrap();
        Daemon {
            name: name.into(),
            child,
            stdout,
            stderr,
        }
    }

    fn output(&self) -> String {
        let tail = |p: &Path| {
            let text = std::fs::read_to_string(p).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            lines[lines.len().saturating_sub(40)..].join("\n")
        };
        format!(
            "{} stdout (last lines):\n{}\nstderr:\n{}",
            self.name,
            tail(&self.stdout),
            tail(&self.stderr)
        )
    }

    /// The JSON log lines it wrote.
    fn log_lines(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.stdout)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    fn kill(&mut self) {
        // std's kill is SIGKILL on Unix: no shutdown, no lease released.
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Waits for the end (at most `limit`) and checks it exited 0.
    fn finish(mut self, limit: Duration) -> Daemon {
        let deadline = Instant::now() + limit;
        while self.running() {
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!(
                    "{} did not finish within {limit:?}\n{}",
                    self.name,
                    self.output()
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        let status = self.child.wait().unwrap();
        assert!(status.success(), "{status:?}\n{}", self.output());
        self
    }
}

/// A world for two daemons: messages back after 10 s (ten deliveries before
/// the DLQ), the coordination table, and reboots taking `reboot_seconds`.
async fn two_daemon_world(reboot_seconds: u32) -> World {
    let w = World::with_rds_role(WorldOptions {
        visibility_seconds: 10,
        max_receive_count: 10,
    })
    .await;
    w.create_coordination_table(TABLE).await;
    w.emu.http(
        "POST",
        "/_emu/neptune/timing",
        Some(&json!({"reboot_seconds": reboot_seconds})),
    );
    w
}

/// The stored finding, as Security Hub has it.
fn stored(w: &World, f: &Value) -> Value {
    w.stored(f["Id"].as_str().unwrap())
}

/// The emulator's reboots take a second or so: a reboot that may have been
/// made (cut off by a kill or a fault) is asked for again after 15 s, not the
/// default three minutes.
fn apply_with_table(w: &World, remediation: &str) -> PathBuf {
    w.config_with(
        &format!(
            "mode = \"apply\"\nreboot = \"immediate\"\nrecheck_seconds = 1\nreboot_settle_seconds = 15\n{remediation}"
        ),
        // Re-checks read their finding back each second: not paced to
        // Security Hub's GetFindings quota here, to keep the tests short.
        &format!(
            "\n[coordination]\ntable = \"{TABLE}\"\nlease_seconds = 10\n[pacing]\nget_findings = {{ per_second = 0, burst = 1 }}\n"
        ),
    )
}

/// Each instance rebooted exactly once, per the call log.
fn assert_each_instance_rebooted_once(w: &World, instances: usize, context: &str) {
    let reboots = w.reboots();
    let mut per_instance: BTreeMap<&str, usize> = BTreeMap::new();
    for r in &reboots {
        *per_instance.entry(r.as_str()).or_default() += 1;
    }
    let twice: Vec<_> = per_instance.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        twice.is_empty(),
        "rebooted more than once: {twice:?}\n{context}"
    );
    assert_eq!(
        per_instance.len(),
        instances,
        "every instance rebooted\n{context}"
    );
}

/// No cluster is left with a remediation's progress or a live lease.
async fn assert_no_lease_left(w: &World, context: &str) {
    let now = chrono::Utc::now().timestamp();
    for (pk, item) in w.coordination_items(TABLE).await {
        if !pk.starts_with("cluster#") {
            continue;
        }
        assert!(
            !item.contains_key("progress"),
            "{pk} kept a remediation's progress: {item:?}\n{context}"
        );
        if let Some(expires) = item.get("expires") {
            let expires: i64 = expires.parse().unwrap();
            assert!(
                expires <= now + 10,
                "{pk} holds a lease beyond its duration: {item:?}\n{context}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_at_random_points_then_restart_fixes_every_cluster_once() {
    let seeds: Vec<u64> = std::env::var("HUBTRIAGE_KILL_SEEDS")
        .unwrap_or_else(|_| "1,2".into())
        .split(',')
        .map(|s| {
            s.trim()
                .parse()
                .expect("HUBTRIAGE_KILL_SEEDS: numbers, comma-separated")
        })
        .collect();
    for seed in seeds {
        kill_run(seed).await;
    }
}

/// One run: 8 clusters of 2 instances, two findings each; daemon `a` is
/// killed twice at random moments and started again each time.
async fn kill_run(seed: u64) {
    // Reboots take two seconds, so a kill can land while one is under way.
    let w = two_daemon_world(2).await;
    let (clusters, findings) = w.dev_clusters_with_two_findings("k", 8, 2).await;
    let config = apply_with_table(&w, "max_concurrent = 2\nmax_per_hour = 100");

    let mut dice = Dice::new(seed);
    let b = Daemon::start(&w, &config, &[], "b");
    let mut a = Daemon::start(&w, &config, &[], "a0");
    let mut kills = Vec::new();
    let started = Instant::now();
    for k in 1..=2 {
        let after = Duration::from_millis(dice.between(1_500, 20_000));
        tokio::time::sleep(after).await;
        if !a.running() {
            break;
        }
        a.kill();
        kills.push(format!(
            "{} at {:.1}s",
            a.name,
            started.elapsed().as_secs_f64()
        ));
        tokio::time::sleep(Duration::from_millis(dice.between(200, 3_000))).await;
        a = Daemon::start(&w, &config, &[], &format!("a{k}"));
    }
    let limit = Duration::from_secs(300);
    let (a, b) = tokio::task::spawn_blocking(move || (a.finish(limit), b.finish(limit)))
        .await
        .unwrap();
    let context = format!(
        "seed {seed}, killed {kills:?}, run {:.0}s\n{}\n----\n{}",
        started.elapsed().as_secs_f64(),
        a.output(),
        b.output()
    );
    println!(
        "kill run: seed {seed}: killed {kills:?}; all done in {:.0}s",
        started.elapsed().as_secs_f64()
    );

    for f in &findings {
        assert_eq!(
            stored(&w, f)["Workflow"]["Status"],
            "RESOLVED",
            "{}\n{context}",
            f["Id"]
        );
    }
    for id in &clusters {
        let c = w.cluster(id).await;
        assert!(
            c.enabled_cloudwatch_logs_exports()
                .contains(&"audit".to_string()),
            "{id}\n{context}"
        );
    }
    assert_each_instance_rebooted_once(&w, clusters.len() * 2, &context);
    let most = w.most_clusters_changed_at_once();
    if most > 2 {
        let (_, calls) = w
            .emu
            .http("GET", "/_emu/calls?mutating=true&service=rds", None);
        let timeline: Vec<String> = calls
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|c| {
                format!(
                    "{:.1} {} {}",
                    c["time"].as_f64().unwrap_or_default() % 1000.0,
                    c["operation"].as_str().unwrap_or_default(),
                    c["request"]["DBClusterIdentifier"]
                        .as_str()
                        .or(c["request"]["DBInstanceIdentifier"].as_str())
                        .or(c["request"]["DBClusterParameterGroupName"].as_str())
                        .unwrap_or_default()
                )
            })
            .collect();
        panic!(
            "{most} clusters changed at once\n{}\n{context}",
            timeline.join("\n")
        );
    }
    assert_eq!(w.depth(&w.queue_url).await, 0, "{context}");
    assert_eq!(w.depth(&w.dlq_url).await, 0, "{context}");
    assert_no_lease_left(&w, &context).await;
}

/// The services hubtriage calls, as the emulator names them (SigV4 scope).
const SERVICES: [&str; 8] = [
    "sqs",
    "securityhub",
    "rds",
    "logs",
    "iam",
    "sts",
    "dynamodb",
    "events",
];

/// The faults of the storm, on every service: the rates the docs give.
fn storm_faults() -> Vec<Value> {
    let mut faults = Vec::new();
    for service in SERVICES {
        let (code, status) = match service {
            "securityhub" => ("InternalException", 500),
            _ => ("InternalFailure", 500),
        };
        faults.extend([
            json!({"service": service, "operation": "*", "rate": 0.03, "throttle": 1}),
            json!({"service": service, "operation": "*", "rate": 0.02, "error_code": code, "status": status}),
            json!({"service": service, "operation": "*", "rate": 0.01, "error_code": "ServiceUnavailable", "status": 503}),
            json!({"service": service, "operation": "*", "rate": 0.02, "delay_ms": 1500}),
            json!({"service": service, "operation": "*", "rate": 0.01, "reset": true}),
            json!({"service": service, "operation": "*", "rate": 0.005, "reset": true, "after": true}),
        ]);
    }
    faults.extend([
        json!({"operation": "BatchUpdateFindings", "rate": 0.05, "unprocessed": 1, "error_code": "ConcurrentUpdateError"}),
        json!({"operation": "DeleteMessageBatch", "rate": 0.05, "entries": 1}),
        json!({"operation": "ChangeMessageVisibilityBatch", "rate": 0.05, "entries": 1}),
    ]);
    faults
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fault_storm_on_every_api_loses_nothing_and_does_nothing_twice() {
    let total = usize::try_from(env_number("HUBTRIAGE_FAULT_FINDINGS", 120)).unwrap();
    let seed = env_number("HUBTRIAGE_FAULT_SEED", 1);
    assert!(
        total >= 4 && total % 4 == 0,
        "HUBTRIAGE_FAULT_FINDINGS: a multiple of 4"
    );
    let w = two_daemon_world(1).await;
    let fakes = TicketFakes::start();

    // Four findings per cluster (consolidated, standard-specific); one cluster
    // in five is dev (remediated), the others prod (one Jira issue each).
    let clusters = total / 4;
    let mut dev = Vec::new();
    let mut prod = Vec::new();
    let mut findings = Vec::new();
    for n in 0..clusters {
        let env = if n % 5 == 0 { "dev" } else { "prod" };
        let id = format!("{env}{n:04}");
        w.create_cluster(ClusterSpec {
            id: &id,
            tags: &[("env", env)],
            members: 1,
            ..Default::default()
        })
        .await;
        if env == "dev" {
            dev.push(id)
        } else {
            prod.push(id)
        }
    }
    for suffix in ["consolidated", "fsbp", "nist", "pci"] {
        for id in dev.iter().chain(&prod) {
            findings.push(w.finding_as(id, suffix));
        }
    }
    w.import(&findings);
    w.emu.http("DELETE", "/_emu/calls", None);
    w.emu
        .http("POST", "/_emu/faults/seed", Some(&json!({"seed": seed})));
    for fault in storm_faults() {
        w.emu.fault(fault);
    }

    let dev_clusters = dev.len();
    let config = w.config_with(
        &format!(
            "mode = \"apply\"\nreboot = \"immediate\"\nrecheck_seconds = 2\nreboot_settle_seconds = 15\nmax_concurrent = {}\nmax_per_hour = {clusters}\n",
            // A reboot cut off by a fault is asked for again after 15 s (as in
            // apply_with_table). Remediations waiting for a slot check again every recheck_seconds
            // and take a work slot each time: the cap is set so that waiting
            // does not starve the storm itself.
            (dev_clusters / 2).max(10)
        ),
        &format!(
            "{}\n[coordination]\ntable = \"{TABLE}\"\nlease_seconds = 10\n[pacing]\nget_findings = {{ per_second = 0, burst = 1 }}\n",
            jira_table("jira", &fakes.url("jira"))
        ),
    );
    let started = Instant::now();
    let a = Daemon::start(&w, &config, &JIRA_ENV, "a");
    let b = Daemon::start(&w, &config, &JIRA_ENV, "b");
    let limit = Duration::from_secs(if total > 400 { 1800 } else { 600 });
    let (a, b) = tokio::task::spawn_blocking(move || (a.finish(limit), b.finish(limit)))
        .await
        .unwrap();
    let took = started.elapsed().as_secs_f64();

    // What the faults hit, then the outcome with the faults cleared.
    let (_, left) = w.emu.http("GET", "/_emu/faults", None);
    let mut hits: BTreeMap<String, u64> = BTreeMap::new();
    let mut per_service: BTreeMap<String, u64> = BTreeMap::new();
    for f in left.as_array().unwrap() {
        let service = f["service"]
            .as_str()
            .unwrap_or(match f["operation"].as_str() {
                Some("BatchUpdateFindings") => "securityhub",
                _ => "sqs",
            });
        *per_service.entry(service.to_string()).or_default() += f["hits"].as_u64().unwrap_or(0);
        let kind = ["throttle", "unprocessed", "entries"]
            .into_iter()
            .find(|k| f.get(*k).is_some())
            .unwrap_or(if f["reset"] == true {
                if f["after"] == true {
                    "reset-after"
                } else {
                    "reset"
                }
            } else if f.get("delay_ms").is_some() {
                "slow"
            } else if f["status"] == 503 {
                "503"
            } else {
                "500"
            });
        *hits.entry(kind.to_string()).or_default() += f["hits"].as_u64().unwrap_or(0);
    }
    w.emu.http("DELETE", "/_emu/faults", None);
    let (_, calls) = w.emu.http("GET", "/_emu/calls", None);
    let mut calls_per_service: BTreeMap<String, u64> = BTreeMap::new();
    for c in calls.as_array().unwrap() {
        let service = c["service"].as_str().unwrap_or("unknown").to_string();
        *calls_per_service.entry(service).or_default() += 1;
    }
    let calls = calls.as_array().unwrap().len();
    let context = format!("{}\n----\n{}", a.output(), b.output());

    let dead: Vec<String> = w.take_all(&w.dlq_url).await;
    let dead_lettered: BTreeSet<String> = findings
        .iter()
        .filter_map(|f| f["Id"].as_str())
        .filter(|id| dead.iter().any(|body| body.contains(id)))
        .map(str::to_string)
        .collect();
    let mut recorded = 0;
    let mut lost = Vec::new();
    for f in &findings {
        let got = stored(&w, f);
        let id = f["Id"].as_str().unwrap();
        let cluster = got["Resources"][0]["Id"].as_str().unwrap_or_default();
        let wanted = if cluster.contains(":cluster:dev") {
            "RESOLVED"
        } else {
            "NOTIFIED"
        };
        let noted = got["Note"]["Text"].as_str().is_some_and(|t| !t.is_empty());
        if got["Workflow"]["Status"] == wanted && noted {
            recorded += 1;
        } else if !dead_lettered.contains(id) {
            lost.push(format!(
                "{id}: {} {}",
                got["Workflow"]["Status"], got["Note"]["Text"]
            ));
        }
    }
    let reboots = w.reboots();
    let duplicate_reboots = reboots.len() - reboots.iter().collect::<BTreeSet<_>>().len();
    let issues = fakes.state("jira")["issues"].as_array().unwrap().len();
    let duplicate_tickets = issues.saturating_sub(prod.len());
    let received: u64 = [&a, &b]
        .iter()
        .flat_map(|d| d.log_lines())
        .filter(|l| l.get("_aws").is_some())
        .map(|l| l["FindingsReceived"].as_u64().unwrap_or(0))
        .sum();
    println!(
        "FAULT RUN: seed {seed}: findings in {total}, recorded {recorded}, lost {}, dead-lettered {}, \
         duplicate remediations {duplicate_reboots}, duplicate tickets {duplicate_tickets}; \
         clusters {} remediated / {} ticketed ({issues} issues); {received} finding deliveries, \
         {calls} API calls {calls_per_service:?}; faults hit by kind {hits:?}, by service {per_service:?}; {took:.0} s",
        lost.len(),
        dead_lettered.len(),
        dev.len(),
        prod.len(),
    );

    assert!(
        lost.is_empty(),
        "{} findings lost: {lost:?}\n{context}",
        lost.len()
    );
    assert!(
        dead_lettered.is_empty(),
        "dead-lettered: {dead_lettered:?}\n{context}"
    );
    assert_eq!(recorded, total, "{context}");
    assert_eq!(duplicate_reboots, 0, "{reboots:?}\n{context}");
    assert_eq!(
        reboots.len(),
        dev.len(),
        "each dev instance rebooted\n{context}"
    );
    assert_eq!(
        duplicate_tickets,
        0,
        "{issues} issues for {} problems\n{context}",
        prod.len()
    );
    assert_eq!(issues, prod.len(), "{context}");
    for id in &dev {
        let c = w.cluster(id).await;
        assert!(
            c.enabled_cloudwatch_logs_exports()
                .contains(&"audit".to_string()),
            "{id}\n{context}"
        );
    }
    assert_eq!(
        w.depth(&w.queue_url).await,
        0,
        "the queue is left empty\n{context}"
    );
    // Every service called often enough was hit (about 9.5 % of its calls).
    for (service, n) in &calls_per_service {
        if *n >= 100 {
            assert!(
                per_service.get(service).is_some_and(|hit| *hit > 0),
                "no fault hit {service} in {n} calls: {per_service:?}"
            );
        }
    }
}
