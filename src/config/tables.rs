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
    accounts, regions, Expiry, IacPolicy, Mode, OnResolve, OwnAccount, RebootPolicy, Regression,
    RuleAction, SharedGroupPolicy, TicketKind,
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
#[serde(default, deny_unknown_fields)]
pub struct Remediation {
    pub mode: Mode,
    pub reboot: RebootPolicy,
    pub shared_parameter_group: SharedGroupPolicy,
    pub parameter_group_prefix: String,
    /// Absent = leave the audit log group's retention alone.
    pub log_retention_days: Option<i32>,
    /// Clusters being changed at once by this process; more wait.
    pub max_concurrent: usize,
    /// Remediations started per hour by this process; more wait.
    pub max_per_hour: usize,
    /// How long after the last change verification may take before it becomes a ticket.
    pub verify_deadline_minutes: u64,
    /// How often a remediation in progress is checked again.
    pub recheck_seconds: u64,
    /// How long a remediation waits for a resource on its way back to
    /// `available` (a backup, a modification) before it becomes a ticket.
    pub wait_for_available_minutes: u64,
    /// A reboot hubtriage asked for, or may have (the call was cut off or
    /// answered 5xx), is given this long to show before the same instance,
    /// still waiting for a reboot, is rebooted again.
    pub reboot_settle_seconds: u64,
    /// Resources owned by infrastructure as code: `ticket` (the fix is a
    /// change to the stack) or `remediate` (fixed in place anyway).
    pub iac_managed: IacPolicy,
    /// Tags (`key=value`, or a key alone) that mark a resource as owned by
    /// another tool, besides CloudFormation's `aws:cloudformation:stack-name`.
    pub iac_tags: Vec<String>,
    /// A control's fix made this many times on one resource within
    /// `repeat_window_days` (the journal says) is not made again: a ticket.
    pub max_repeats: usize,
    pub repeat_window_days: u32,
}

impl Default for Remediation {
    fn default() -> Self {
        Remediation {
            mode: Mode::default(),
            reboot: RebootPolicy::default(),
            shared_parameter_group: SharedGroupPolicy::default(),
            parameter_group_prefix: "hubtriage-audit-".into(),
            log_retention_days: None,
            max_concurrent: 5,
            max_per_hour: 20,
            verify_deadline_minutes: 60,
            recheck_seconds: 60,
            wait_for_available_minutes: 60,
            reboot_settle_seconds: 180,
            iac_managed: IacPolicy::default(),
            iac_tags: Vec::new(),
            max_repeats: 2,
            repeat_window_days: 7,
        }
    }
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
#[serde(default, deny_unknown_fields)]
pub struct Daemon {
    /// Findings being decided and acted on at once (work slots).
    pub concurrency: usize,
    /// Messages held at once, including those whose updates wait to be written
    /// in a batch (a slot is not held for that wait).
    pub max_in_flight: usize,
    /// How long in-flight work may take to finish after SIGTERM (below ECS's stop timeout).
    pub shutdown_grace_seconds: u64,
    /// Touched by the receive loop; `hubtriage healthcheck` reads its age.
    pub heartbeat_file: String,
}

impl Default for Daemon {
    fn default() -> Self {
        Daemon {
            concurrency: 8,
            max_in_flight: 1000,
            shutdown_grace_seconds: 25,
            heartbeat_file: "/tmp/hubtriage.heartbeat".into(),
        }
    }
}

/// `[enrich]`: how live state is read.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Enrich {
    /// How long a cluster's live state is reused for other findings of the same
    /// cluster (0: read it for every finding). Dropped as soon as hubtriage
    /// changes the cluster.
    pub cache_seconds: u64,
}

impl Default for Enrich {
    fn default() -> Self {
        Enrich { cache_seconds: 30 }
    }
}

/// Stands for the finding's account in `[accounts] role_arn`.
pub const ACCOUNT_PLACEHOLDER: &str = "{account}";

/// `[accounts]`: how hubtriage reaches member accounts.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Accounts {
    /// The role to assume in a finding's account, `{account}` standing for its
    /// AwsAccountId. Absent: the daemon's own account only.
    pub role_arn: Option<String>,
    /// The environment variable holding the external id sent with AssumeRole.
    pub external_id_env: Option<String>,
    pub session_name: String,
    pub own_account: OwnAccount,
}

impl Default for Accounts {
    fn default() -> Self {
        Accounts {
            role_arn: None,
            external_id_env: None,
            session_name: "hubtriage".into(),
            own_account: OwnAccount::default(),
        }
    }
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
#[serde(default, deny_unknown_fields)]
pub struct Ticket {
    #[serde(rename = "type")]
    pub kind: TicketKind,
    /// Where tickets go: `https://`, or a loopback `http://` (tests, local fakes).
    pub url: Option<String>,
    /// What the ticket gets when its finding passes or is resolved.
    pub on_resolve: OnResolve,
    /// A resolved problem that fails again: its ticket reopened, or a new one.
    pub regression: Regression,
    /// Tickets closed longer ago than this are not reopened; a new one names the old.
    pub reopen_within_days: u32,

    // ---- jira / jira-dc
    pub project: Option<String>,
    pub issue_type: String,
    /// Labels every ticket gets, besides the problem key.
    pub labels: Vec<String>,
    /// Severity label → Jira priority name; a severity not listed sets none.
    pub priority: BTreeMap<String, String>,
    /// Jira Cloud: the account's email (Basic email:api_token).
    pub email_env: Option<String>,
    /// Jira Cloud API token, the Data Center personal access token, or a
    /// ServiceNow OAuth token (Bearer).
    pub token_env: Option<String>,
    /// The transition `on_resolve = "close"` takes.
    pub done_transition: String,
    /// The transition a regression takes.
    pub reopen_transition: String,

    // ---- servicenow
    pub table: String,
    pub user_env: Option<String>,
    pub password_env: Option<String>,
    pub assignment_group: Option<String>,
    pub category: Option<String>,
    /// Severity label → urgency ("1" high … "3" low).
    pub urgency: BTreeMap<String, String>,
    /// Severity label → impact ("1" high … "3" low).
    pub impact: BTreeMap<String, String>,
    pub close_code: String,

    // ---- webhook
    /// The environment variable holding the HMAC-SHA256 secret.
    pub secret_env: Option<String>,
}

impl Default for Ticket {
    fn default() -> Self {
        Ticket {
            kind: TicketKind::Log,
            url: None,
            on_resolve: OnResolve::default(),
            regression: Regression::default(),
            reopen_within_days: 30,
            project: None,
            issue_type: "Task".into(),
            labels: Vec::new(),
            priority: BTreeMap::new(),
            email_env: None,
            token_env: None,
            done_transition: "Done".into(),
            reopen_transition: "To Do".into(),
            table: "incident".into(),
            user_env: None,
            password_env: None,
            assignment_group: None,
            category: None,
            urgency: severity_map(["1", "1", "2", "3", "3"]),
            impact: severity_map(["1", "2", "2", "3", "3"]),
            close_code: "Solution provided".into(),
            secret_env: None,
        }
    }
}

fn severity_map(values: [&str; 5]) -> BTreeMap<String, String> {
    ["CRITICAL", "HIGH", "MEDIUM", "LOW", "INFORMATIONAL"]
        .into_iter()
        .zip(values)
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
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
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    pub namespace: String,
    /// How often a metrics line is written (and once more at exit).
    pub interval_seconds: u64,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            namespace: "hubtriage".into(),
            interval_seconds: 60,
        }
    }
}

/// What `hubtriage setup` creates next to `[queue] url`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Setup {
    /// The EventBridge rule (default bus) that routes the Neptune controls'
    /// findings to the queue (its default name is from when it routed Neptune.2 alone).
    pub rule_name: String,
    /// Receives before a message moves to the dead-letter queue `<queue>-dlq`.
    pub max_receive_count: u32,
}

impl Default for Setup {
    fn default() -> Self {
        Setup {
            rule_name: "hubtriage-neptune2-findings".into(),
            max_receive_count: 5,
        }
    }
}
