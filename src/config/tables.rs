//! One struct per config table, in the order the tables appear in
//! [`Config`](super::Config), with the defaults of absent keys.
//!
//! Contract: every table rejects unknown keys; a value that a type alone
//! cannot check is checked in `validate.rs`.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::controls::opt_controls;
use super::matching::Match;
use super::values::{
    accounts, regions, Expiry, Mode, OnResolve, OwnAccount, RebootPolicy, Regression, RuleAction,
    SharedGroupPolicy, TicketKind,
};

/// `[scope]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scope {
    /// Allowlist of account ids; empty or absent = all accounts.
    #[serde(default, deserialize_with = "accounts")]
    pub accounts: Vec<String>,
    /// Allowlist of regions; empty or absent = all regions.
    #[serde(default, deserialize_with = "regions")]
    pub regions: Vec<String>,
}

impl Scope {
    pub fn allows_account(&self, account: &str) -> bool {
        self.accounts.is_empty() || self.accounts.iter().any(|a| a == account)
    }

    pub fn allows_region(&self, region: &str) -> bool {
        self.regions.is_empty() || self.regions.iter().any(|r| r == region)
    }
}

/// `[remediation]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Remediation {
    #[serde(default)]
    pub mode: Mode,
    #[serde(default)]
    pub reboot: RebootPolicy,
    #[serde(default)]
    pub shared_parameter_group: SharedGroupPolicy,
    #[serde(default = "default_prefix")]
    pub parameter_group_prefix: String,
    /// Absent = leave the audit log group's retention alone.
    #[serde(default)]
    pub log_retention_days: Option<i32>,
    /// Clusters being changed at once by this process; more wait.
    #[serde(default = "default_max_concurrent")]
    pub max_concurrent: usize,
    /// Remediations started per hour by this process; more wait.
    #[serde(default = "default_max_per_hour")]
    pub max_per_hour: usize,
    /// How long after the last change verification may take before it becomes a ticket.
    #[serde(default = "default_verify_deadline")]
    pub verify_deadline_minutes: u64,
    /// How often a remediation in progress is checked again.
    #[serde(default = "default_recheck")]
    pub recheck_seconds: u64,
}

fn default_max_concurrent() -> usize {
    5
}

fn default_max_per_hour() -> usize {
    20
}

fn default_verify_deadline() -> u64 {
    60
}

fn default_recheck() -> u64 {
    60
}

impl Default for Remediation {
    fn default() -> Self {
        Remediation {
            mode: Mode::default(),
            reboot: RebootPolicy::default(),
            shared_parameter_group: SharedGroupPolicy::default(),
            parameter_group_prefix: default_prefix(),
            log_retention_days: None,
            max_concurrent: default_max_concurrent(),
            max_per_hour: default_max_per_hour(),
            verify_deadline_minutes: default_verify_deadline(),
            recheck_seconds: default_recheck(),
        }
    }
}

fn default_prefix() -> String {
    "hubtriage-audit-".into()
}

/// One `[[suppress]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Suppression {
    pub name: String,
    pub reason: String,
    pub expires: Expiry,
    /// The controls it applies to; absent: every control.
    #[serde(default, deserialize_with = "opt_controls")]
    pub controls: Option<Vec<String>>,
    #[serde(default, rename = "match")]
    pub matcher: Match,
}

/// One `[[rule]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    pub name: String,
    pub action: RuleAction,
    /// The controls it applies to; absent: every control. An opt-in
    /// control (Neptune.7) is remediated only by a rule that names it here.
    #[serde(default, deserialize_with = "opt_controls")]
    pub controls: Option<Vec<String>>,
    #[serde(default, rename = "match")]
    pub matcher: Match,
}

/// `[default]`: the action when no rule matches.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DefaultAction {
    pub action: RuleAction,
}

impl Default for DefaultAction {
    fn default() -> Self {
        DefaultAction {
            action: RuleAction::Ticket,
        }
    }
}

/// `[queue]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Queue {
    pub url: String,
    #[serde(default = "default_wait_seconds")]
    pub wait_seconds: i32,
    #[serde(default = "default_max_messages")]
    pub max_messages: i32,
    /// Long-polls at once while the queue is deep (each returns up to
    /// `max_messages`); one while it is not.
    #[serde(default = "default_parallel_receives")]
    pub parallel_receives: usize,
    /// Absent = the queue's own visibility timeout.
    #[serde(default)]
    pub visibility_timeout_seconds: Option<i32>,
}

fn default_wait_seconds() -> i32 {
    20
}

fn default_max_messages() -> i32 {
    10
}

fn default_parallel_receives() -> usize {
    4
}

/// `[daemon]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Daemon {
    /// Findings being decided and acted on at once (work slots).
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
    /// Messages held at once, including those whose updates wait to be written
    /// in a batch (a slot is not held for that wait).
    #[serde(default = "default_max_in_flight")]
    pub max_in_flight: usize,
    /// How long in-flight work may take to finish after SIGTERM (below ECS's stop timeout).
    #[serde(default = "default_grace")]
    pub shutdown_grace_seconds: u64,
    /// Touched by the receive loop; `hubtriage healthcheck` reads its age.
    #[serde(default = "default_heartbeat")]
    pub heartbeat_file: String,
}

fn default_heartbeat() -> String {
    "/tmp/hubtriage.heartbeat".into()
}

impl Default for Daemon {
    fn default() -> Self {
        Daemon {
            concurrency: default_concurrency(),
            max_in_flight: default_max_in_flight(),
            shutdown_grace_seconds: default_grace(),
            heartbeat_file: default_heartbeat(),
        }
    }
}

fn default_concurrency() -> usize {
    8
}

/// Enough for a storm of several controls and actions (each a different note,
/// so a batch of its own) to fill 100-finding batches while they linger, and
/// small next to the visibility the loop keeps extending. With 300, a mix of
/// seven controls drained at 85% of the rate of one (docs/benchmarks.md).
fn default_max_in_flight() -> usize {
    1000
}

/// `[enrich]`: how live state is read.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Enrich {
    /// How long a cluster's live state is reused for other findings of the same
    /// cluster (0: read it for every finding). Dropped as soon as hubtriage
    /// changes the cluster.
    #[serde(default = "default_cache_seconds")]
    pub cache_seconds: u64,
}

fn default_cache_seconds() -> u64 {
    30
}

impl Default for Enrich {
    fn default() -> Self {
        Enrich {
            cache_seconds: default_cache_seconds(),
        }
    }
}

fn default_grace() -> u64 {
    25
}

/// Stands for the finding's account in `[accounts] role_arn`.
pub const ACCOUNT_PLACEHOLDER: &str = "{account}";

/// `[accounts]`: how hubtriage reaches member accounts.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Accounts {
    /// The role to assume in a finding's account, `{account}` standing for its
    /// AwsAccountId. Absent: the daemon's own account only.
    #[serde(default)]
    pub role_arn: Option<String>,
    /// The environment variable holding the external id sent with AssumeRole.
    #[serde(default)]
    pub external_id_env: Option<String>,
    #[serde(default = "default_session_name")]
    pub session_name: String,
    #[serde(default)]
    pub own_account: OwnAccount,
}

impl Default for Accounts {
    fn default() -> Self {
        Accounts {
            role_arn: None,
            external_id_env: None,
            session_name: default_session_name(),
            own_account: OwnAccount::default(),
        }
    }
}

fn default_session_name() -> String {
    "hubtriage".into()
}

/// `[securityhub]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecurityHub {
    /// Where BatchUpdateFindings goes; absent = the SDK's region.
    #[serde(default)]
    pub region: Option<String>,
    /// Which API answers findings: each in its own format (`auto`), or all
    /// with BatchUpdateFindings (`v1`) or BatchUpdateFindingsV2 (`v2`).
    #[serde(default)]
    pub api: super::FindingsApiVersion,
}

/// The ticket system. Absent = `log`: tickets are log lines. Secrets come
/// only from the environment variables named here (README: Tickets).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ticket {
    #[serde(default, rename = "type")]
    pub kind: TicketKind,
    /// Where tickets go: `https://`, or a loopback `http://` (tests, local fakes).
    #[serde(default)]
    pub url: Option<String>,
    /// What the ticket gets when its finding passes or is resolved.
    #[serde(default)]
    pub on_resolve: OnResolve,
    /// A resolved problem that fails again: its ticket reopened, or a new one.
    #[serde(default)]
    pub regression: Regression,
    /// Tickets closed longer ago than this are not reopened; a new one names the old.
    #[serde(default = "default_reopen_within_days")]
    pub reopen_within_days: u32,

    // ---- jira / jira-dc
    #[serde(default)]
    pub project: Option<String>,
    #[serde(default = "default_issue_type")]
    pub issue_type: String,
    /// Labels every ticket gets, besides the problem key.
    #[serde(default)]
    pub labels: Vec<String>,
    /// Severity label → Jira priority name; a severity not listed sets none.
    #[serde(default)]
    pub priority: BTreeMap<String, String>,
    /// Jira Cloud: the account's email (Basic email:api_token).
    #[serde(default)]
    pub email_env: Option<String>,
    /// Jira Cloud API token, the Data Center personal access token, or a
    /// ServiceNow OAuth token (Bearer).
    #[serde(default)]
    pub token_env: Option<String>,
    /// The transition `on_resolve = "close"` takes.
    #[serde(default = "default_done_transition")]
    pub done_transition: String,
    /// The transition a regression takes.
    #[serde(default = "default_reopen_transition")]
    pub reopen_transition: String,

    // ---- servicenow
    #[serde(default = "default_table")]
    pub table: String,
    #[serde(default)]
    pub user_env: Option<String>,
    #[serde(default)]
    pub password_env: Option<String>,
    #[serde(default)]
    pub assignment_group: Option<String>,
    #[serde(default)]
    pub category: Option<String>,
    /// Severity label → urgency ("1" high … "3" low).
    #[serde(default = "default_urgency")]
    pub urgency: BTreeMap<String, String>,
    /// Severity label → impact ("1" high … "3" low).
    #[serde(default = "default_impact")]
    pub impact: BTreeMap<String, String>,
    #[serde(default = "default_close_code")]
    pub close_code: String,

    // ---- webhook
    /// The environment variable holding the HMAC-SHA256 secret.
    #[serde(default)]
    pub secret_env: Option<String>,
}

impl Default for Ticket {
    fn default() -> Self {
        Ticket {
            kind: TicketKind::Log,
            url: None,
            on_resolve: OnResolve::default(),
            regression: Regression::default(),
            reopen_within_days: default_reopen_within_days(),
            project: None,
            issue_type: default_issue_type(),
            labels: Vec::new(),
            priority: BTreeMap::new(),
            email_env: None,
            token_env: None,
            done_transition: default_done_transition(),
            reopen_transition: default_reopen_transition(),
            table: default_table(),
            user_env: None,
            password_env: None,
            assignment_group: None,
            category: None,
            urgency: default_urgency(),
            impact: default_impact(),
            close_code: default_close_code(),
            secret_env: None,
        }
    }
}

fn default_reopen_within_days() -> u32 {
    30
}
fn default_issue_type() -> String {
    "Task".into()
}
fn default_done_transition() -> String {
    "Done".into()
}
fn default_reopen_transition() -> String {
    "To Do".into()
}
fn default_table() -> String {
    "incident".into()
}
fn default_close_code() -> String {
    "Solution provided".into()
}
fn severity_map(values: [&str; 5]) -> BTreeMap<String, String> {
    ["CRITICAL", "HIGH", "MEDIUM", "LOW", "INFORMATIONAL"]
        .into_iter()
        .zip(values)
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}
fn default_urgency() -> BTreeMap<String, String> {
    severity_map(["1", "1", "2", "3", "3"])
}
fn default_impact() -> BTreeMap<String, String> {
    severity_map(["1", "2", "2", "3", "3"])
}

/// `[coordination]`: one DynamoDB table shared by every task of a deployment
/// (leases per problem and the problems' tickets).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Coordination {
    pub table: String,
    /// How long a lease lasts unless renewed: a dead task's work is taken
    /// over after this long.
    #[serde(default = "default_lease_seconds")]
    pub lease_seconds: u64,
}

fn default_lease_seconds() -> u64 {
    60
}

/// `[journal]`: the change journal, a DynamoDB table of every change and
/// decision hubtriage made (README: The change journal).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JournalConfig {
    pub table: String,
    /// How long entries are kept (the table's TTL).
    #[serde(default = "default_keep_days")]
    pub keep_days: u32,
    /// A change still `started` or `unknown` this long after its entry was
    /// written is settled from live state by the daemon's sweep (its task
    /// died, or its call's fate was not known). Longer than any call takes.
    #[serde(default = "default_settle_after")]
    pub settle_after_seconds: u64,
}

fn default_keep_days() -> u32 {
    400
}

fn default_settle_after() -> u64 {
    300
}

/// `[events]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Events {
    /// EventBridge bus name or ARN for decision events.
    pub bus: String,
}

/// CloudWatch Embedded Metric Format lines on stdout.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    #[serde(default = "default_namespace")]
    pub namespace: String,
    /// How often a metrics line is written (and once more at exit).
    #[serde(default = "default_metrics_interval")]
    pub interval_seconds: u64,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            namespace: default_namespace(),
            interval_seconds: default_metrics_interval(),
        }
    }
}

fn default_namespace() -> String {
    "hubtriage".into()
}

fn default_metrics_interval() -> u64 {
    60
}

/// What `hubtriage setup` creates next to `[queue] url`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Setup {
    /// The EventBridge rule (default bus) that routes the Neptune controls'
    /// findings to the queue (its default name is from when it routed Neptune.2 alone).
    #[serde(default = "default_rule_name")]
    pub rule_name: String,
    /// Receives before a message moves to the dead-letter queue `<queue>-dlq`.
    #[serde(default = "default_max_receive_count")]
    pub max_receive_count: u32,
}

impl Default for Setup {
    fn default() -> Self {
        Setup {
            rule_name: default_rule_name(),
            max_receive_count: default_max_receive_count(),
        }
    }
}

fn default_rule_name() -> String {
    "hubtriage-neptune2-findings".into()
}

fn default_max_receive_count() -> u32 {
    5
}
