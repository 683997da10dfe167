//! Test support for end-to-end tests: the project's loopback emulator
//! (`tests/emulator/hubemu.py`: moto plus a Security Hub emulator), a "world"
//! with the queue, DLQ, EventBridge rule and Neptune clusters a test needs, and
//! helpers to run the real `hubtriage` binary against it.
//!
//! Every address used here is 127.0.0.1.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_neptune::types::{ApplyMethod, CloudwatchLogsExportConfiguration, Parameter, Tag};
use aws_sdk_sqs::types::QueueAttributeName;
use serde_json::{json, Value};

pub const ACCOUNT: &str = "111122223333";
pub const REGION: &str = "us-east-1";
pub const BIN: &str = env!("CARGO_BIN_EXE_hubtriage");

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The emulator venv's python, made once per test binary.
fn python() -> &'static PathBuf {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON.get_or_init(|| {
        let out = Command::new(root().join("scripts/emulator-venv.sh"))
            .output()
            .expect("scripts/emulator-venv.sh runs");
        assert!(
            out.status.success(),
            "emulator venv setup failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        PathBuf::from(stdout.lines().last().expect("venv python path").trim())
    })
}

/// One emulator process, stopped when dropped (and when the test process dies:
/// it exits on stdin EOF).
pub struct Emulator {
    child: Child,
    _stdin: ChildStdin,
    pub moto: String,
    pub securityhub: String,
    _dir: tempfile::TempDir,
}

impl Emulator {
    pub fn start() -> Emulator {
        let dir = tempfile::tempdir().unwrap();
        let ready = dir.path().join("ready.json");
        let mut child = Command::new(python())
            .arg(root().join("tests/emulator/hubemu.py"))
            .arg("--ready-file")
            .arg(&ready)
            .arg("--exit-on-stdin-eof")
            .arg("--account")
            .arg(ACCOUNT)
            // Findings of every account arrive on the administrator's bus, as
            // Security Hub's aggregation delivers them.
            .arg("--events-account")
            .arg(ACCOUNT)
            .arg("--events-region")
            .arg(REGION)
            .arg("--region")
            .arg(REGION)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the emulator starts");
        let stdin = child.stdin.take().unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        let info: Value = loop {
            if let Ok(text) = std::fs::read_to_string(&ready) {
                if let Ok(v) = serde_json::from_str(&text) {
                    break v;
                }
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!("the emulator exited early: {status}");
            }
            assert!(
                Instant::now() < deadline,
                "the emulator did not start within 60 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        Emulator {
            child,
            _stdin: stdin,
            moto: info["moto"].as_str().unwrap().to_string(),
            securityhub: info["securityhub"].as_str().unwrap().to_string(),
            _dir: dir,
        }
    }

    /// Environment for the daemon: fake credentials, endpoints on loopback.
    pub fn env(&self) -> Vec<(String, String)> {
        [
            ("AWS_ENDPOINT_URL", self.moto.as_str()),
            ("AWS_ENDPOINT_URL_SECURITYHUB", self.securityhub.as_str()),
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
            ("AWS_REGION", REGION),
            ("AWS_EC2_METADATA_DISABLED", "true"),
            ("HUBTRIAGE_LOG_FORMAT", "json"),
            ("RUST_LOG", "info"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    pub async fn sdk(&self, endpoint: &str) -> SdkConfig {
        aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new(REGION))
            .endpoint_url(endpoint)
            .credentials_provider(aws_sdk_sqs::config::Credentials::new(
                "testing", "testing", None, None, "tests",
            ))
            .load()
            .await
    }

    /// An HTTP request to the emulator's Security Hub port (control API, imports).
    pub fn http(&self, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
        http_to(&self.securityhub, method, path, body)
    }

    /// The emulator's call log, filtered by service and operation.
    pub fn calls(&self, service: &str, operation: &str) -> Vec<Value> {
        let (_, v) = self.http(
            "GET",
            &format!("/_emu/calls?service={service}&operation={operation}"),
            None,
        );
        v.as_array().cloned().unwrap_or_default()
    }

    pub fn fault(&self, fault: Value) {
        let (status, v) = self.http("POST", "/_emu/faults", Some(&fault));
        assert!(status < 300, "fault not accepted: {v}");
    }
}

/// An HTTP/1.1 request to a loopback server at `base` (`http://127.0.0.1:P`):
/// (status, JSON body or null).
pub fn http_to(base: &str, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
    let addr = base.trim_start_matches("http://");
    let mut stream = TcpStream::connect(addr).expect("loopback server reachable");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let text = String::from_utf8_lossy(&response);
    let (head, payload) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let value = serde_json::from_str(payload).unwrap_or(Value::Null);
    (status, value)
}

/// The loopback fakes of Jira Cloud, Jira Data Center and ServiceNow
/// (`tests/emulator/ticketfakes.py`), stopped when dropped.
pub struct TicketFakes {
    child: Child,
    _stdin: ChildStdin,
    /// System (`jira`, `jira-dc`, `servicenow`) → base URL.
    pub urls: Value,
    _dir: tempfile::TempDir,
}

/// The fakes' credentials (tests/emulator/ticketfakes.py).
pub const JIRA_EMAIL: &str = "hubtriage-bot@example.com";
pub const JIRA_API_TOKEN: &str = "jira-cloud-token-5f2a9c";
pub const JIRA_DC_PAT: &str = "jira-dc-pat-77c1e0";
pub const SN_USER: &str = "hubtriage.bot";
pub const SN_PASSWORD: &str = "sn-pass-31d8b4";

impl TicketFakes {
    pub fn start() -> TicketFakes {
        let dir = tempfile::tempdir().unwrap();
        let ready = dir.path().join("ready.json");
        let mut child = Command::new(python())
            .arg(root().join("tests/emulator/ticketfakes.py"))
            .arg("--ready-file")
            .arg(&ready)
            .arg("--exit-on-stdin-eof")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the ticket fakes start");
        let stdin = child.stdin.take().unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        let urls: Value = loop {
            if let Ok(text) = std::fs::read_to_string(&ready) {
                if let Ok(v) = serde_json::from_str(&text) {
                    break v;
                }
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!("the ticket fakes exited early: {status}");
            }
            assert!(Instant::now() < deadline, "the ticket fakes did not start");
            std::thread::sleep(Duration::from_millis(50));
        };
        TicketFakes {
            child,
            _stdin: stdin,
            urls,
            _dir: dir,
        }
    }

    pub fn url(&self, system: &str) -> String {
        self.urls[system].as_str().unwrap().to_string()
    }

    /// Sets fault switches of one system (`rate_limit`, `fail_after_write`, ...).
    pub fn faults(&self, system: &str, faults: Value) {
        let (status, v) = http_to(&self.url(system), "POST", "/_fake/faults", Some(&faults));
        assert!(status < 300, "faults not accepted: {v}");
    }

    /// Everything one system holds: `issues` or `incidents`, and `requests`.
    pub fn state(&self, system: &str) -> Value {
        http_to(&self.url(system), "GET", "/_fake/state", None).1
    }

    /// A control call (`age`, `close`).
    pub fn control(&self, system: &str, what: &str, body: Value) {
        let (status, v) = http_to(
            &self.url(system),
            "POST",
            &format!("/_fake/{what}"),
            Some(&body),
        );
        assert!(status < 300, "{what} not accepted: {v}");
    }
}

impl Drop for TicketFakes {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Live state a test checks after a run.
impl World {
    pub async fn cluster(&self, id: &str) -> aws_sdk_neptune::types::DbCluster {
        self.neptune
            .describe_db_clusters()
            .db_cluster_identifier(id)
            .send()
            .await
            .unwrap()
            .db_clusters
            .unwrap()
            .remove(0)
    }

    /// `neptune_enable_audit_log` in `group`.
    pub async fn audit_parameter(&self, group: &str) -> String {
        self.neptune
            .describe_db_cluster_parameters()
            .db_cluster_parameter_group_name(group)
            .send()
            .await
            .unwrap()
            .parameters()
            .iter()
            .find(|p| p.parameter_name() == Some("neptune_enable_audit_log"))
            .and_then(|p| p.parameter_value())
            .unwrap_or("0")
            .to_string()
    }

    pub async fn group_exists(&self, group: &str) -> bool {
        self.neptune
            .describe_db_cluster_parameter_groups()
            .db_cluster_parameter_group_name(group)
            .send()
            .await
            .is_ok()
    }

    /// Retention of a log group: `None` when the group does not exist.
    pub async fn retention(&self, log_group: &str) -> Option<Option<i32>> {
        let sdk = self.emu.sdk(&self.emu.moto).await;
        let logs = aws_sdk_cloudwatchlogs::Client::new(&sdk);
        let out = logs
            .describe_log_groups()
            .log_group_name_prefix(log_group)
            .send()
            .await
            .unwrap();
        out.log_groups()
            .iter()
            .find(|g| g.log_group_name() == Some(log_group))
            .map(|g| g.retention_in_days())
    }

    /// Instances rebooted, in order.
    /// The instances rebooted, once per reboot carried out (a reboot refused,
    /// or cut off by a connection reset before it was made, is not one).
    pub fn reboots(&self) -> Vec<String> {
        self.emu
            .calls("rds", "RebootDBInstance")
            .iter()
            .filter(|c| c["status"] == 200 || c["status"] == "reset-after")
            .filter_map(|c| {
                c["request"]["DBInstanceIdentifier"]
                    .as_str()
                    .map(str::to_string)
            })
            .collect()
    }

    /// Mutating calls made to `service`, as "Operation".
    pub fn mutating_calls(&self, service: &str) -> Vec<String> {
        let (_, v) = self.emu.http(
            "GET",
            &format!("/_emu/calls?mutating=true&service={service}"),
            None,
        );
        v.as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .filter_map(|c| c["operation"].as_str().map(str::to_string))
            .collect()
    }

    /// The `[coordination] table` as `hubtriage setup` makes it: one string
    /// partition key `pk`, pay per request.
    /// The coordination table's items, `pk` → attribute → value as text.
    pub async fn coordination_items(
        &self,
        table: &str,
    ) -> std::collections::BTreeMap<String, std::collections::BTreeMap<String, String>> {
        use aws_sdk_dynamodb::types::AttributeValue;
        let dynamodb = aws_sdk_dynamodb::Client::new(&self.emu.sdk(&self.emu.moto).await);
        let out = dynamodb.scan().table_name(table).send().await.unwrap();
        out.items
            .unwrap_or_default()
            .into_iter()
            .map(|item| {
                let text = |v: &AttributeValue| match v {
                    AttributeValue::S(s) | AttributeValue::N(s) => s.clone(),
                    other => format!("{other:?}"),
                };
                let pk = item.get("pk").map(text).unwrap_or_default();
                let attrs = item.iter().map(|(k, v)| (k.clone(), text(v))).collect();
                (pk, attrs)
            })
            .collect()
    }

    /// The most clusters whose RDS changes overlap at any moment of the call
    /// log: each cluster's changes span from its first mutating call to its last.
    pub fn most_clusters_changed_at_once(&self) -> usize {
        let (_, calls) = self
            .emu
            .http("GET", "/_emu/calls?mutating=true&service=rds", None);
        let mut spans: std::collections::BTreeMap<String, (f64, f64)> = Default::default();
        for c in calls.as_array().cloned().unwrap_or_default() {
            let r = &c["request"];
            let Some(name) = r["DBClusterIdentifier"]
                .as_str()
                .or(r["DBInstanceIdentifier"].as_str())
                .or(r["DBClusterParameterGroupName"].as_str())
            else {
                continue;
            };
            let cluster = name
                .trim_start_matches("hubtriage-audit-")
                .split('-')
                .next()
                .unwrap_or_default()
                .to_string();
            let t = c["time"].as_f64().unwrap_or_default();
            let span = spans.entry(cluster).or_insert((t, t));
            span.0 = span.0.min(t);
            span.1 = span.1.max(t);
        }
        spans
            .values()
            .map(|(start, _)| {
                spans
                    .values()
                    .filter(|(s, e)| s <= start && start <= e)
                    .count()
            })
            .max()
            .unwrap_or(0)
    }

    pub async fn create_coordination_table(&self, name: &str) {
        self.create_tables(&format!("[coordination]\ntable = \"{name}\"\n"))
            .await;
    }

    /// The change journal's table, made by `hubtriage setup`'s code.
    pub async fn create_journal_table(&self, name: &str) {
        self.create_tables(&format!("[journal]\ntable = \"{name}\"\n"))
            .await;
    }

    /// The DynamoDB tables `toml` names, made as `hubtriage setup` makes them.
    async fn create_tables(&self, toml: &str) {
        let config =
            hubtriage::config::Config::from_toml_with_env("tables.toml", toml, vec![]).unwrap();
        let sdk = self.emu.sdk(&self.emu.moto).await;
        hubtriage::setup::Setup::new(&sdk, false)
            .with_table_wait(Duration::from_secs(30), Duration::from_millis(100))
            .tables(&config)
            .await
            .unwrap();
    }

    /// `hubtriage <args> --config <config>` run to its end: (exit code, stdout, stderr).
    pub fn command(&self, config: &Path, args: &[&str]) -> (i32, String, String) {
        self.command_with_env(config, args, &[])
    }

    /// As `command`, with more environment variables.
    pub fn command_with_env(
        &self,
        config: &Path,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> (i32, String, String) {
        let mut cmd = Command::new(BIN);
        cmd.args(args).arg("--config").arg(config);
        for (k, v) in self.emu.env() {
            cmd.env(k, v);
        }
        cmd.envs(env.iter().copied());
        let out = cmd.env_remove("AWS_PROFILE").output().unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    }

    /// The change journal as `hubtriage history --format json` prints it
    /// (`args`: more filters), oldest first.
    pub fn history(&self, config: &Path, args: &[&str]) -> Vec<Value> {
        let mut all = vec!["history", "--format", "json", "--since", "1d"];
        all.extend(args);
        let (code, out, err) = self.command(config, &all);
        assert_eq!(code, 0, "history failed: {err}");
        let mut entries: Vec<Value> = out
            .lines()
            .map(|l| serde_json::from_str(l).expect("a JSON entry a line"))
            .collect();
        entries.reverse();
        entries
    }

    /// A Neptune client acting in `account` (through moto's AssumeRole) in `region`.
    pub async fn neptune_at(&self, account: &str, region: &str) -> aws_sdk_neptune::Client {
        let sdk = self.emu.sdk(&self.emu.moto).await;
        let creds = aws_sdk_sts::Client::new(&sdk)
            .assume_role()
            .role_arn(format!("arn:aws:iam::{account}:role/test-setup"))
            .role_session_name("test-setup")
            .send()
            .await
            .unwrap()
            .credentials
            .unwrap();
        let config = aws_sdk_neptune::config::Builder::from(&sdk)
            .credentials_provider(aws_sdk_neptune::config::Credentials::new(
                creds.access_key_id(),
                creds.secret_access_key(),
                Some(creds.session_token().to_string()),
                None,
                "test-setup",
            ))
            .region(Region::new(region.to_string()))
            .build();
        aws_sdk_neptune::Client::from_conf(config)
    }

    /// Creates the RDS service-linked role (Neptune needs it to publish logs).
    pub fn create_service_linked_role(&self) {
        let (status, v) = self.emu.http(
            "POST",
            "/_emu/iam/rds-service-linked-role",
            Some(&json!({})),
        );
        assert!(status < 300, "{v}");
    }
}

/// A Neptune cluster for a test.
pub struct ClusterSpec<'a> {
    pub id: &'a str,
    pub engine_version: &'a str,
    /// A custom cluster parameter group (created beforehand), or the default.
    pub group: Option<&'a str>,
    pub tags: &'a [(&'a str, &'a str)],
    pub members: usize,
    pub audit_export: bool,
    pub window: &'a str,
}

impl Default for ClusterSpec<'_> {
    fn default() -> Self {
        ClusterSpec {
            id: "orders-graph",
            engine_version: "1.3.2.1",
            group: None,
            tags: &[],
            members: 2,
            audit_export: false,
            window: "sun:06:00-sun:06:30",
        }
    }
}

/// Everything one end-to-end test works in.
pub struct World {
    pub emu: Emulator,
    pub sqs: aws_sdk_sqs::Client,
    pub neptune: aws_sdk_neptune::Client,
    pub events: aws_sdk_eventbridge::Client,
    pub queue_url: String,
    pub dlq_url: String,
    pub decisions_url: String,
    pub dir: tempfile::TempDir,
}

pub struct WorldOptions {
    /// The queue's visibility timeout.
    pub visibility_seconds: u32,
    /// Receives before a message moves to the DLQ.
    pub max_receive_count: u32,
}

impl Default for WorldOptions {
    fn default() -> Self {
        WorldOptions {
            visibility_seconds: 30,
            max_receive_count: 3,
        }
    }
}

impl World {
    /// A world whose account has the RDS service-linked role, as a real one
    /// has (remediation checks for it).
    pub async fn with_rds_role(options: WorldOptions) -> World {
        let w = World::new(options).await;
        w.create_service_linked_role();
        w
    }

    pub async fn new(options: WorldOptions) -> World {
        let emu = Emulator::start();
        let sdk = emu.sdk(&emu.moto).await;
        let sqs = aws_sdk_sqs::Client::new(&sdk);
        let neptune = aws_sdk_neptune::Client::new(&sdk);
        let events = aws_sdk_eventbridge::Client::new(&sdk);

        let dlq_url = sqs
            .create_queue()
            .queue_name("hubtriage-findings-dlq")
            .send()
            .await
            .unwrap()
            .queue_url
            .unwrap();
        let dlq_arn = queue_arn(&sqs, &dlq_url).await;
        let redrive = json!({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": options.max_receive_count.to_string()});
        let queue_url = sqs
            .create_queue()
            .queue_name("hubtriage-findings")
            .attributes(
                QueueAttributeName::VisibilityTimeout,
                options.visibility_seconds.to_string(),
            )
            .attributes(QueueAttributeName::RedrivePolicy, redrive.to_string())
            .send()
            .await
            .unwrap()
            .queue_url
            .unwrap();
        let queue_arn_ = queue_arn(&sqs, &queue_url).await;
        // moto cannot match patterns that reach into arrays of objects, so the
        // test rule matches on source and detail-type (both formats');
        // hubtriage ignores other controls.
        route(
            &events,
            "neptune2-findings",
            json!({"source": ["aws.securityhub"], "detail-type": ["Security Hub Findings - Imported", "Findings Imported V2"]}),
            &queue_arn_,
        )
        .await;

        let decisions_url = sqs
            .create_queue()
            .queue_name("hubtriage-decisions")
            .send()
            .await
            .unwrap()
            .queue_url
            .unwrap();
        let decisions_arn = queue_arn(&sqs, &decisions_url).await;
        route(
            &events,
            "hubtriage-decisions",
            json!({"source": ["hubtriage"]}),
            &decisions_arn,
        )
        .await;

        World {
            emu,
            sqs,
            neptune,
            events,
            queue_url,
            dlq_url,
            decisions_url,
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub async fn create_parameter_group(&self, name: &str, family: &str, audit: Option<&str>) {
        self.neptune
            .create_db_cluster_parameter_group()
            .db_cluster_parameter_group_name(name)
            .db_parameter_group_family(family)
            .description("test group")
            .send()
            .await
            .unwrap();
        if let Some(value) = audit {
            self.neptune
                .modify_db_cluster_parameter_group()
                .db_cluster_parameter_group_name(name)
                .parameters(
                    Parameter::builder()
                        .parameter_name("neptune_enable_audit_log")
                        .parameter_value(value)
                        .apply_method(ApplyMethod::PendingReboot)
                        .build(),
                )
                .send()
                .await
                .unwrap();
        }
    }

    /// Creates the cluster and its instances (the first is the writer).
    pub async fn create_cluster(&self, spec: ClusterSpec<'_>) -> String {
        create_cluster_with(&self.neptune, spec).await
    }

    /// As `create_cluster`, in another account (through moto's AssumeRole)
    /// and region.
    pub async fn create_cluster_in(
        &self,
        account: &str,
        region: &str,
        spec: ClusterSpec<'_>,
    ) -> String {
        create_cluster_with(&self.neptune_at(account, region).await, spec).await
    }

    /// A Neptune.2 finding for `cluster` as Security Hub would import it (no
    /// `Details`: decisions use live state). `edit` changes it before import.
    pub fn finding(&self, cluster: &str, edit: impl FnOnce(&mut Value)) -> Value {
        let event: Value =
            serde_json::from_str(include_str!("../fixtures/neptune2-failed-event.json")).unwrap();
        let mut f = event["detail"]["findings"][0].clone();
        let id = format!(
            "arn:aws:securityhub:{REGION}:{ACCOUNT}:security-control/Neptune.2/finding/{}",
            uuid_like(cluster)
        );
        f["Id"] = json!(id);
        let arn = format!("arn:aws:rds:{REGION}:{ACCOUNT}:cluster:{cluster}");
        f["Resources"] =
            json!([{"Type": "AwsRdsDbCluster", "Id": arn, "Partition": "aws", "Region": REGION}]);
        f["ProductFields"]["Resources:0/Id"] = json!(arn);
        f.as_object_mut().unwrap().remove("Workflow");
        f.as_object_mut().unwrap().remove("WorkflowState");
        edit(&mut f);
        f
    }

    /// `cluster`'s finding under the id `<its id>-<suffix>`, as the
    /// consolidated and the standard-specific findings of one cluster differ.
    pub fn finding_as(&self, cluster: &str, suffix: &str) -> Value {
        self.finding(cluster, |f| {
            let id = format!("{}-{suffix}", f["Id"].as_str().unwrap_or_default());
            f["Id"] = json!(id);
        })
    }

    /// `clusters` one-instance prod clusters `<prefix>-<n>`, and `count`
    /// findings spread over them round-robin (unique ids). Returns the
    /// clusters' ARNs and the findings, not yet imported.
    pub async fn prod_storm(
        &self,
        prefix: &str,
        clusters: usize,
        count: usize,
    ) -> (Vec<String>, Vec<Value>) {
        let mut arns = Vec::new();
        for c in 0..clusters {
            let id = format!("{prefix}-{c}");
            let spec = ClusterSpec {
                id: &id,
                tags: &[("env", "prod")],
                members: 1,
                ..Default::default()
            };
            arns.push(self.create_cluster(spec).await);
        }
        let findings = (0..count)
            .map(|n| {
                self.finding(&format!("{prefix}-{}", n % clusters), |f| {
                    let id = format!("{}-{n}", f["Id"].as_str().unwrap_or_default());
                    f["Id"] = json!(id);
                })
            })
            .collect();
        (arns, findings)
    }

    /// Imports findings (100 per call, as the API takes); Security Hub (the
    /// emulator) emits their Imported events.
    pub fn import(&self, findings: &[Value]) {
        for chunk in findings.chunks(100) {
            let (status, v) = self.emu.http(
                "POST",
                "/findings/import",
                Some(&json!({"Findings": chunk})),
            );
            assert_eq!(status, 200, "{v}");
            assert_eq!(v["FailedCount"], 0, "{v}");
        }
    }

    /// The finding as Security Hub holds it now.
    pub fn stored(&self, id: &str) -> Value {
        let (_, v) = self.emu.http(
            "POST",
            "/findings",
            Some(&json!({"Filters": {"Id": [{"Value": id, "Comparison": "EQUALS"}]}})),
        );
        v["Findings"][0].clone()
    }

    /// `count` dev clusters `<prefix>01…` of `members` instances, each with two
    /// findings imported (the consolidated one and a standard-specific one),
    /// and the call log cleared. Returns the clusters and the findings.
    pub async fn dev_clusters_with_two_findings(
        &self,
        prefix: &str,
        count: usize,
        members: usize,
    ) -> (Vec<String>, Vec<Value>) {
        let clusters: Vec<String> = (1..=count).map(|n| format!("{prefix}{n:02}")).collect();
        let mut findings = Vec::new();
        for id in &clusters {
            self.create_cluster(ClusterSpec {
                id,
                tags: &[("env", "dev")],
                members,
                ..Default::default()
            })
            .await;
            for suffix in ["consolidated", "fsbp"] {
                findings.push(self.finding_as(id, suffix));
            }
        }
        self.import(&findings);
        self.emu.http("DELETE", "/_emu/calls", None);
        (clusters, findings)
    }

    /// The new Security Hub's OCSF twin of finding `id`, as the emulator holds it now.
    pub fn stored_v2(&self, id: &str) -> Value {
        let (_, all) = self.emu.http("GET", "/_emu/findingsv2", None);
        all.as_array()
            .and_then(|a| a.iter().find(|f| f["finding_info"]["uid"] == id).cloned())
            .unwrap_or(Value::Null)
    }

    /// Imports also make OCSF twins with their V2 events; with `asff_events`
    /// false only the V2 events are emitted.
    pub fn mirror_v2(&self, asff_events: bool) {
        let (status, v) = self.emu.http(
            "POST",
            "/_emu/v2",
            Some(&json!({"mirror": true, "asff_events": asff_events})),
        );
        assert_eq!(status, 200, "{v}");
    }

    /// BatchUpdateFindings calls that named finding `id`.
    pub fn updates_of(&self, id: &str) -> usize {
        self.emu
            .calls("securityhub", "BatchUpdateFindings")
            .iter()
            .filter(|c| {
                c["request"]["FindingIdentifiers"]
                    .as_array()
                    .is_some_and(|ids| ids.iter().any(|i| i["Id"] == id))
                    && c["status"] == 200
            })
            .count()
    }

    /// A config for the daemon with this world's queue, plus `extra` TOML.
    pub fn config(&self, extra: &str) -> PathBuf {
        self.config_with("mode = \"dry-run\"\nreboot = \"immediate\"", extra)
    }

    /// As `config`, with `remediation` as the body of `[remediation]`.
    pub fn config_with(&self, remediation: &str, extra: &str) -> PathBuf {
        let text = format!(
            r#"
[remediation]
{remediation}

[[suppress]]
name = "sandbox-clusters"
reason = "Sandbox clusters hold no customer data (RISK-142)"
expires = "2099-12-31"
match = {{ clusters = ["sandbox-*"] }}

[[rule]]
name = "prod-needs-change-ticket"
action = "ticket"
match = {{ tags = {{ env = "prod" }} }}

[[rule]]
name = "non-prod-auto-fix"
action = "remediate"
match = {{ tags = {{ env = ["dev", "test"] }} }}

[default]
action = "ticket"

[queue]
url = "{}"
wait_seconds = 1

[events]
bus = "default"
{extra}
"#,
            self.queue_url
        );
        let path = self
            .dir
            .path()
            .join(format!("hubtriage-{}.toml", uuid_like(&text)));
        std::fs::write(&path, text).unwrap();
        path
    }

    pub fn daemon(&self, config: &Path, args: &[&str]) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.arg("run").arg("--config").arg(config).args(args);
        for (k, v) in self.emu.env() {
            cmd.env(k, v);
        }
        cmd.env_remove("AWS_PROFILE");
        cmd
    }

    /// Starts `hubtriage run` (until signalled), capturing its output.
    pub fn spawn(&self, config: &Path) -> Child {
        self.daemon(config, &[])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    /// Runs `hubtriage run --until-empty` to the end (at most `limit`) and
    /// checks that it exited 0.
    pub fn drain(&self, config: &Path, limit: Duration) -> Output {
        self.drain_with_env(config, &[], limit)
    }

    /// As `drain`, with more environment variables for the daemon.
    pub fn drain_with_env(&self, config: &Path, env: &[(&str, &str)], limit: Duration) -> Output {
        let child = self
            .daemon(config, &["--until-empty"])
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let out = wait_with_limit(child, limit);
        assert!(out.status.success(), "{}", show(&out));
        out
    }

    /// Runs `n` daemons (`run --until-empty`) on the one queue at once and
    /// waits for all of them (each at most `limit`), checking each exited 0.
    pub fn drain_with_daemons(
        &self,
        n: usize,
        config: &Path,
        env: &[(&str, &str)],
        limit: Duration,
    ) -> Vec<Output> {
        let daemons: Vec<Child> = (0..n)
            .map(|_| {
                self.daemon(config, &["--until-empty"])
                    .envs(env.iter().copied())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        // All at once: a daemon whose output is not read stalls on a full pipe.
        let outs = wait_all_with_limit(daemons, limit);
        for out in &outs {
            assert!(out.status.success(), "{}", show(out));
        }
        outs
    }

    pub async fn send_raw(&self, body: &str) {
        self.sqs
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(body)
            .send()
            .await
            .unwrap();
    }

    /// Receives (and deletes) whatever `queue` holds now.
    pub async fn take_all(&self, queue: &str) -> Vec<String> {
        let mut bodies = Vec::new();
        loop {
            let out = self
                .sqs
                .receive_message()
                .queue_url(queue)
                .max_number_of_messages(10)
                .wait_time_seconds(0)
                .send()
                .await
                .unwrap();
            let messages = out.messages.unwrap_or_default();
            if messages.is_empty() {
                return bodies;
            }
            for m in messages {
                bodies.push(m.body.clone().unwrap_or_default());
                self.sqs
                    .delete_message()
                    .queue_url(queue)
                    .receipt_handle(m.receipt_handle.unwrap())
                    .send()
                    .await
                    .unwrap();
            }
        }
    }

    pub async fn depth(&self, queue: &str) -> i64 {
        let out = self
            .sqs
            .get_queue_attributes()
            .queue_url(queue)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesDelayed)
            .send()
            .await
            .unwrap();
        out.attributes
            .unwrap_or_default()
            .values()
            .filter_map(|v| v.parse::<i64>().ok())
            .sum()
    }
}

async fn queue_arn(sqs: &aws_sdk_sqs::Client, url: &str) -> String {
    sqs.get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap()
        .remove(&QueueAttributeName::QueueArn)
        .unwrap()
}

async fn route(events: &aws_sdk_eventbridge::Client, rule: &str, pattern: Value, target_arn: &str) {
    events
        .put_rule()
        .name(rule)
        .event_pattern(pattern.to_string())
        .send()
        .await
        .unwrap();
    events
        .put_targets()
        .rule(rule)
        .targets(
            aws_sdk_eventbridge::types::Target::builder()
                .id("queue")
                .arn(target_arn)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
}

/// A stable pseudo-UUID from a seed (finding ids per cluster).
pub fn uuid_like(seed: &str) -> String {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in seed.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100000001b3);
    }
    let h2 = h.rotate_left(29) ^ 0x9e3779b97f4a7c15;
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        h >> 32,
        (h >> 16) & 0xffff,
        h & 0xffff,
        h2 >> 48,
        h2 & 0xffff_ffff_ffff
    )
}

/// Waits for `child` up to `limit`; kills it and panics with its output past that.
/// Its stdout and stderr are read while it runs: a full pipe would block its
/// log writes and stall it.
pub fn wait_with_limit(mut child: Child, limit: Duration) -> Output {
    let stdout = drain_pipe(child.stdout.take());
    let stderr = drain_pipe(child.stderr.take());
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Ok(Some(status)) = child.try_wait() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "hubtriage did not finish within {limit:?}\nstdout:\n{}\nstderr:\n{}",
                String::from_utf8_lossy(&stdout.join().unwrap_or_default()),
                String::from_utf8_lossy(&stderr.join().unwrap_or_default())
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    Output {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    }
}

/// Waits for several children at once (each at most `limit`): their pipes are
/// drained from the start, so none stalls on a full stdout while another runs.
pub fn wait_all_with_limit(children: Vec<Child>, limit: Duration) -> Vec<Output> {
    let waits: Vec<_> = children
        .into_iter()
        .map(|child| std::thread::spawn(move || wait_with_limit(child, limit)))
        .collect();
    waits
        .into_iter()
        .map(|w| match w.join() {
            Ok(out) => out,
            Err(panic) => std::panic::resume_unwind(panic),
        })
        .collect()
}

/// Reads a child's pipe to its end on a thread of its own.
fn drain_pipe<R: Read + Send + 'static>(pipe: Option<R>) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut out = Vec::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_end(&mut out);
        }
        out
    })
}

/// The total of an EMF metric over a run's metric lines.
pub fn emf_total(out: &Output, name: &str) -> u64 {
    log_lines(out)
        .iter()
        .filter(|l| l.get("_aws").is_some())
        .map(|l| l[name].as_u64().unwrap_or(0))
        .sum()
}

/// The JSON log lines of a run.
pub fn log_lines(out: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

pub fn show(out: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Creates `spec`'s cluster (and its instances) with `neptune`; returns its ARN.
async fn create_cluster_with(neptune: &aws_sdk_neptune::Client, spec: ClusterSpec<'_>) -> String {
    let mut create = neptune
        .create_db_cluster()
        .db_cluster_identifier(spec.id)
        .engine("neptune")
        .engine_version(spec.engine_version)
        .preferred_maintenance_window(spec.window);
    if let Some(group) = spec.group {
        create = create.db_cluster_parameter_group_name(group);
    }
    for (k, v) in spec.tags {
        create = create.tags(Tag::builder().key(*k).value(*v).build());
    }
    let cluster = create.send().await.unwrap().db_cluster.unwrap();
    for i in 1..=spec.members {
        neptune
            .create_db_instance()
            .db_instance_identifier(format!("{}-{i}", spec.id))
            .db_instance_class("db.r5.large")
            .engine("neptune")
            .db_cluster_identifier(spec.id)
            .send()
            .await
            .unwrap();
    }
    if spec.audit_export {
        neptune
            .modify_db_cluster()
            .db_cluster_identifier(spec.id)
            .cloudwatch_logs_export_configuration(
                CloudwatchLogsExportConfiguration::builder()
                    .enable_log_types("audit")
                    .build(),
            )
            .apply_immediately(true)
            .send()
            .await
            .unwrap();
    }
    cluster.db_cluster_arn.unwrap()
}

/// The variables holding the Jira Cloud fake's credentials, for `[ticket]`'s `*_env` keys.
pub const JIRA_ENV: [(&str, &str); 2] = [
    ("HT_TEST_JIRA_EMAIL", JIRA_EMAIL),
    ("HT_TEST_JIRA_TOKEN", JIRA_API_TOKEN),
];

/// A `[ticket]` table for the Jira fake at `url`: `kind` "jira" (Cloud) or "jira-dc".
pub fn jira_table(kind: &str, url: &str) -> String {
    let credentials = if kind == "jira" {
        "email_env = \"HT_TEST_JIRA_EMAIL\"\ntoken_env = \"HT_TEST_JIRA_TOKEN\""
    } else {
        "token_env = \"HT_TEST_JIRA_PAT\""
    };
    format!(
        "\n[ticket]\ntype = \"{kind}\"\nurl = \"{url}\"\nproject = \"SEC\"\nissue_type = \"Task\"\nlabels = [\"security-hub\"]\npriority = {{ CRITICAL = \"Highest\", HIGH = \"High\", MEDIUM = \"Medium\", LOW = \"Low\", INFORMATIONAL = \"Lowest\" }}\n{credentials}\ndone_transition = \"Done\"\nreopen_transition = \"To Do\"\n"
    )
}
