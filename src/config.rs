//! Typed configuration: a TOML file plus `HUBTRIAGE__SECTION__KEY` environment
//! overrides, read with the `config` crate.
//!
//! Every table rejects unknown keys, and every error names the file, the key and
//! what was expected. Values are validated here, once, so the rest of the code can
//! trust them.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use chrono::{DateTime, NaiveDate, Utc};
use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize};

pub mod report;

/// The prefix of environment overrides: `HUBTRIAGE__REMEDIATION__MODE=dry-run`.
pub const ENV_PREFIX: &str = "HUBTRIAGE";
pub const ENV_SEPARATOR: &str = "__";
/// The whole config as TOML, when `--config` is not given.
pub const CONFIG_TOML_ENV: &str = "HUBTRIAGE_CONFIG_TOML";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("config {file}: {message}")]
    Load { file: String, message: String },
    #[error("config {file}: {key}: {message}")]
    Invalid {
        file: String,
        key: String,
        message: String,
    },
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub scope: Scope,
    #[serde(default)]
    pub remediation: Remediation,
    #[serde(default)]
    pub suppress: Vec<Suppression>,
    #[serde(default)]
    pub rule: Vec<Rule>,
    #[serde(default)]
    pub default: DefaultAction,
    /// Required by `hubtriage run`; not by `explain` or `check-config`.
    #[serde(default)]
    pub queue: Option<Queue>,
    #[serde(default)]
    pub daemon: Daemon,
    #[serde(default)]
    pub securityhub: SecurityHub,
    #[serde(default)]
    pub ticket: Ticket,
    #[serde(default)]
    pub events: Option<Events>,
    #[serde(default)]
    pub metrics: MetricsConfig,
    #[serde(default)]
    pub setup: Setup,
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
    /// The EventBridge rule (default bus) that routes Neptune.2 findings to the queue.
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

/// `apply` changes clusters; `dry-run` (the default) only plans and notes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    Apply,
    #[default]
    DryRun,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RebootPolicy {
    Immediate,
    #[default]
    MaintenanceWindow,
    Never,
}

/// What to do when the cluster's custom parameter group is used by other clusters too.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SharedGroupPolicy {
    /// Give the cluster its own copy of the group.
    #[default]
    Copy,
    /// Change the shared group (every cluster on it gets the audit log).
    Modify,
    /// Change nothing; open a ticket.
    Ticket,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Suppression {
    pub name: String,
    pub reason: String,
    pub expires: Expiry,
    #[serde(default, rename = "match")]
    pub matcher: Match,
}

/// A suppression's expiry: a date (valid through that day, UTC) or an RFC 3339 time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expiry {
    pub text: String,
    /// The first instant at which the suppression no longer applies.
    pub at: DateTime<Utc>,
}

impl Expiry {
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if let Ok(time) = DateTime::parse_from_rfc3339(text) {
            return Ok(Expiry {
                text: text.to_string(),
                at: time.with_timezone(&Utc),
            });
        }
        let date = NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| {
            format!("expected a date (YYYY-MM-DD) or an RFC 3339 time, found {text:?}")
        })?;
        let next_day = date
            .succ_opt()
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .ok_or_else(|| format!("date {text:?} is out of range"))?;
        Ok(Expiry {
            text: text.to_string(),
            at: next_day.and_utc(),
        })
    }

    pub fn is_expired(&self, now: DateTime<Utc>) -> bool {
        now >= self.at
    }
}

impl<'de> Deserialize<'de> for Expiry {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Expiry::parse(&text).map_err(de::Error::custom)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    pub name: String,
    pub action: RuleAction,
    #[serde(default, rename = "match")]
    pub matcher: Match,
}

/// What a rule (or `[default]`) may choose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RuleAction {
    Remediate,
    Ticket,
    Ignore,
}

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

/// Conditions of a rule or suppression. All keys given must hold; a list
/// matches any of its items; an empty `match` matches everything.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Match {
    #[serde(default, deserialize_with = "opt_accounts")]
    pub accounts: Option<Vec<String>>,
    #[serde(default, deserialize_with = "opt_regions")]
    pub regions: Option<Vec<String>>,
    /// Globs on the cluster identifier (`*`, `?`, `[...]`).
    #[serde(default, deserialize_with = "opt_globs")]
    pub clusters: Option<Vec<Glob>>,
    #[serde(default)]
    pub tags: Option<BTreeMap<String, TagMatch>>,
    #[serde(default, deserialize_with = "opt_severities")]
    pub severity: Option<Vec<String>>,
}

/// What a rule is matched against.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    pub account: &'a str,
    pub region: &'a str,
    pub cluster: &'a str,
    pub tags: &'a BTreeMap<String, String>,
    pub severity: Option<&'a str>,
}

impl Match {
    pub fn matches(&self, s: &Subject<'_>) -> bool {
        fn any_of(list: &Option<Vec<String>>, value: &str) -> bool {
            list.as_ref().is_none_or(|l| l.iter().any(|v| v == value))
        }
        any_of(&self.accounts, s.account)
            && any_of(&self.regions, s.region)
            && self
                .clusters
                .as_ref()
                .is_none_or(|globs| globs.iter().any(|g| g.matches(s.cluster)))
            && self.tags.as_ref().is_none_or(|tags| {
                tags.iter()
                    .all(|(key, want)| s.tags.get(key).is_some_and(|v| want.matches(v)))
            })
            && self.severity.as_ref().is_none_or(|labels| {
                s.severity
                    .is_some_and(|sev| labels.iter().any(|l| l.eq_ignore_ascii_case(sev)))
            })
    }

    pub fn is_empty(&self) -> bool {
        self.accounts.is_none()
            && self.regions.is_none()
            && self.clusters.is_none()
            && self.tags.is_none()
            && self.severity.is_none()
    }
}

impl fmt::Display for Match {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("everything");
        }
        let mut parts = Vec::new();
        if let Some(a) = &self.accounts {
            parts.push(format!("accounts {}", a.join("|")));
        }
        if let Some(r) = &self.regions {
            parts.push(format!("regions {}", r.join("|")));
        }
        if let Some(c) = &self.clusters {
            let globs: Vec<&str> = c.iter().map(|g| g.text.as_str()).collect();
            parts.push(format!("clusters {}", globs.join("|")));
        }
        if let Some(t) = &self.tags {
            for (k, v) in t {
                parts.push(format!("tag {k}={v}"));
            }
        }
        if let Some(s) = &self.severity {
            parts.push(format!("severity {}", s.join("|")));
        }
        f.write_str(&parts.join(" and "))
    }
}

/// A tag condition: `"*"` (any value), one value, or a list of values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TagMatch {
    Any,
    OneOf(Vec<String>),
}

impl TagMatch {
    pub fn matches(&self, value: &str) -> bool {
        match self {
            TagMatch::Any => true,
            TagMatch::OneOf(values) => values.iter().any(|v| v == value),
        }
    }
}

impl fmt::Display for TagMatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TagMatch::Any => f.write_str("*"),
            TagMatch::OneOf(v) => f.write_str(&v.join("|")),
        }
    }
}

impl<'de> Deserialize<'de> for TagMatch {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let values = one_or_many(d, "a tag value, a list of tag values, or \"*\"")?;
        if values.iter().any(|v| v == "*") {
            Ok(TagMatch::Any)
        } else {
            Ok(TagMatch::OneOf(values))
        }
    }
}

/// A glob on cluster identifiers, kept with its text for messages.
#[derive(Debug, Clone)]
pub struct Glob {
    pub text: String,
    pattern: glob::Pattern,
}

impl Glob {
    pub fn new(text: &str) -> Result<Self, String> {
        let pattern =
            glob::Pattern::new(text).map_err(|e| format!("invalid glob {text:?}: {}", e.msg))?;
        Ok(Glob {
            text: text.to_string(),
            pattern,
        })
    }

    pub fn matches(&self, cluster: &str) -> bool {
        self.pattern.matches(cluster)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Queue {
    pub url: String,
    #[serde(default = "default_wait_seconds")]
    pub wait_seconds: i32,
    #[serde(default = "default_max_messages")]
    pub max_messages: i32,
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

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Daemon {
    /// Findings worked on at once.
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
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
            shutdown_grace_seconds: default_grace(),
            heartbeat_file: default_heartbeat(),
        }
    }
}

fn default_concurrency() -> usize {
    8
}

fn default_grace() -> u64 {
    25
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecurityHub {
    /// Where BatchUpdateFindings goes; absent = the SDK's region.
    #[serde(default)]
    pub region: Option<String>,
}

/// The ticket system. Absent = `log`: tickets are log lines.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ticket {
    #[serde(default, rename = "type")]
    pub kind: TicketKind,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TicketKind {
    #[default]
    Log,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Events {
    /// EventBridge bus name or ARN for decision events.
    pub bus: String,
}

/// A config value that is one of a fixed set of words. Deserializing it gives
/// an error that lists the words, which serde's derive does not do here.
trait Choice: Sized + Copy + 'static {
    const CHOICES: &'static [(&'static str, Self)];
}

fn choose<'de, D: Deserializer<'de>, T: Choice>(d: D) -> Result<T, D::Error> {
    let word = String::deserialize(d)?;
    T::CHOICES
        .iter()
        .find(|(w, _)| *w == word)
        .map(|(_, v)| *v)
        .ok_or_else(|| {
            let words: Vec<String> = T::CHOICES.iter().map(|(w, _)| format!("\"{w}\"")).collect();
            de::Error::custom(format!(
                "expected one of {}, found {word:?}",
                words.join(", ")
            ))
        })
}

macro_rules! choice {
    ($t:ty: $($word:literal => $v:expr),+ $(,)?) => {
        impl Choice for $t {
            const CHOICES: &'static [(&'static str, Self)] = &[$(($word, $v)),+];
        }
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                choose(d)
            }
        }
    };
}

choice!(Mode: "apply" => Mode::Apply, "dry-run" => Mode::DryRun);
choice!(RebootPolicy:
    "immediate" => RebootPolicy::Immediate,
    "maintenance-window" => RebootPolicy::MaintenanceWindow,
    "never" => RebootPolicy::Never);
choice!(SharedGroupPolicy:
    "copy" => SharedGroupPolicy::Copy,
    "modify" => SharedGroupPolicy::Modify,
    "ticket" => SharedGroupPolicy::Ticket);
choice!(RuleAction:
    "remediate" => RuleAction::Remediate,
    "ticket" => RuleAction::Ticket,
    "ignore" => RuleAction::Ignore);
choice!(TicketKind: "log" => TicketKind::Log);

/// CloudWatch Logs accepts only these retention periods.
pub const RETENTION_DAYS: &[i32] = &[
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
    3288, 3653,
];

impl Config {
    /// Reads `path` and the `HUBTRIAGE__` environment overrides, then validates.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let env: Vec<(String, String)> = std::env::vars()
            .filter(|(k, _)| k.starts_with(&format!("{ENV_PREFIX}{ENV_SEPARATOR}")))
            .collect();
        Self::load_with_env(path, env)
    }

    /// The config named on the command line, or else the whole TOML in
    /// `HUBTRIAGE_CONFIG_TOML` (how ECS passes it from SSM Parameter Store).
    /// Returns the config and the name errors use for its source.
    pub fn load_from(path: Option<&Path>) -> Result<(Config, String), ConfigError> {
        match path {
            Some(p) => Ok((Self::load(p)?, p.display().to_string())),
            None => {
                let name = format!("${CONFIG_TOML_ENV}");
                let text = std::env::var(CONFIG_TOML_ENV).map_err(|_| ConfigError::Load {
                    file: name.clone(),
                    message: format!("no --config given and {CONFIG_TOML_ENV} is not set"),
                })?;
                let env: Vec<(String, String)> = std::env::vars()
                    .filter(|(k, _)| k.starts_with(&format!("{ENV_PREFIX}{ENV_SEPARATOR}")))
                    .collect();
                Ok((Self::from_toml_with_env(&name, &text, env)?, name))
            }
        }
    }

    /// As [`Config::load`], with the environment given (tests).
    pub fn load_with_env(path: &Path, env: Vec<(String, String)>) -> Result<Config, ConfigError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Load {
            file: file.clone(),
            message: format!("cannot read: {e}"),
        })?;
        Self::from_toml_with_env(&file, &text, env)
    }

    /// Parses TOML `text` (named `file` in errors) with environment overrides.
    pub fn from_toml_with_env(
        file: &str,
        text: &str,
        env: Vec<(String, String)>,
    ) -> Result<Config, ConfigError> {
        let env_map: std::collections::HashMap<String, String> = env.into_iter().collect();
        let source = config::Config::builder()
            .add_source(config::File::from_str(text, config::FileFormat::Toml))
            .add_source(
                config::Environment::with_prefix(ENV_PREFIX)
                    .prefix_separator(ENV_SEPARATOR)
                    .separator(ENV_SEPARATOR)
                    .try_parsing(true)
                    .source(Some(env_map.clone())),
            )
            .build()
            .map_err(|e| ConfigError::Load {
                file: file.to_string(),
                message: e.to_string(),
            })?;
        let config: Config = serde_path_to_error::deserialize(source).map_err(|e| {
            let key = e.path().to_string();
            let message = clean_message(&e.inner().to_string());
            invalid(file, &key, &env_map, message)
        })?;
        config
            .validate()
            .map_err(|(key, message)| invalid(file, &key, &env_map, message))?;
        Ok(config)
    }

    /// Checks of values that the types alone do not catch: (key, message).
    fn validate(&self) -> Result<(), (String, String)> {
        let r = &self.remediation;
        check_prefix(&r.parameter_group_prefix)
            .map_err(|m| ("remediation.parameter_group_prefix".into(), m))?;
        if let Some(days) = r.log_retention_days {
            if !RETENTION_DAYS.contains(&days) {
                return Err((
                    "remediation.log_retention_days".into(),
                    format!("expected one of CloudWatch Logs' retention periods {RETENTION_DAYS:?}, found {days}"),
                ));
            }
        }
        if r.max_concurrent == 0 {
            return Err((
                "remediation.max_concurrent".into(),
                "expected at least 1".into(),
            ));
        }
        if r.max_per_hour == 0 {
            return Err((
                "remediation.max_per_hour".into(),
                "expected at least 1".into(),
            ));
        }
        if !(1..=10_080).contains(&r.verify_deadline_minutes) {
            return Err((
                "remediation.verify_deadline_minutes".into(),
                format!(
                    "expected 1 to 10080 (a week), found {}",
                    r.verify_deadline_minutes
                ),
            ));
        }
        if !(1..=900).contains(&r.recheck_seconds) {
            return Err((
                "remediation.recheck_seconds".into(),
                format!(
                    "expected 1 to 900 (SQS's longest delay), found {}",
                    r.recheck_seconds
                ),
            ));
        }
        let mut seen = std::collections::HashSet::new();
        for (i, s) in self.suppress.iter().enumerate() {
            if s.name.trim().is_empty() {
                return Err((
                    format!("suppress[{i}].name"),
                    "expected a non-empty name".into(),
                ));
            }
            if s.reason.trim().is_empty() {
                return Err((
                    format!("suppress[{i}].reason"),
                    "expected a non-empty reason".into(),
                ));
            }
            if !seen.insert(s.name.as_str()) {
                return Err((
                    format!("suppress[{i}].name"),
                    format!("{:?} is used twice", s.name),
                ));
            }
        }
        let mut seen = std::collections::HashSet::new();
        for (i, rule) in self.rule.iter().enumerate() {
            if rule.name.trim().is_empty() {
                return Err((
                    format!("rule[{i}].name"),
                    "expected a non-empty name".into(),
                ));
            }
            if !seen.insert(rule.name.as_str()) {
                return Err((
                    format!("rule[{i}].name"),
                    format!("{:?} is used twice", rule.name),
                ));
            }
        }
        if let Some(q) = &self.queue {
            if q.url.trim().is_empty() {
                return Err(("queue.url".into(), "expected the queue's URL".into()));
            }
            if !(0..=20).contains(&q.wait_seconds) {
                return Err((
                    "queue.wait_seconds".into(),
                    format!("expected 0 to 20, found {}", q.wait_seconds),
                ));
            }
            if !(1..=10).contains(&q.max_messages) {
                return Err((
                    "queue.max_messages".into(),
                    format!("expected 1 to 10, found {}", q.max_messages),
                ));
            }
            if let Some(v) = q.visibility_timeout_seconds {
                if !(30..=43_200).contains(&v) {
                    return Err((
                        "queue.visibility_timeout_seconds".into(),
                        format!("expected 30 to 43200, found {v}"),
                    ));
                }
            }
        }
        if !(1..=256).contains(&self.daemon.concurrency) {
            return Err((
                "daemon.concurrency".into(),
                format!("expected 1 to 256, found {}", self.daemon.concurrency),
            ));
        }
        if self.daemon.shutdown_grace_seconds > 115 {
            return Err((
                "daemon.shutdown_grace_seconds".into(),
                format!(
                    "expected at most 115 (ECS's stop timeout is at most 120), found {}",
                    self.daemon.shutdown_grace_seconds
                ),
            ));
        }
        if let Some(region) = &self.securityhub.region {
            check_region(region).map_err(|m| ("securityhub.region".into(), m))?;
        }
        if self.metrics.namespace.trim().is_empty() || self.metrics.namespace.len() > 255 {
            return Err((
                "metrics.namespace".into(),
                "expected 1 to 255 characters".into(),
            ));
        }
        if self.metrics.interval_seconds == 0 {
            return Err((
                "metrics.interval_seconds".into(),
                "expected at least 1".into(),
            ));
        }
        if !(1..=1000).contains(&self.setup.max_receive_count) {
            return Err((
                "setup.max_receive_count".into(),
                format!("expected 1 to 1000, found {}", self.setup.max_receive_count),
            ));
        }
        let rule_ok = !self.setup.rule_name.is_empty()
            && self.setup.rule_name.len() <= 64
            && self
                .setup
                .rule_name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
        if !rule_ok {
            return Err((
                "setup.rule_name".into(),
                format!(
                    "expected 1 to 64 letters, digits, '.', '-' or '_', found {:?}",
                    self.setup.rule_name
                ),
            ));
        }
        if let Some(events) = &self.events {
            if events.bus.trim().is_empty() {
                return Err((
                    "events.bus".into(),
                    "expected an event bus name or ARN".into(),
                ));
            }
        }
        Ok(())
    }

    /// The queue settings, which `hubtriage run` requires.
    pub fn require_queue(&self, file: &str) -> Result<&Queue, ConfigError> {
        self.queue.as_ref().ok_or_else(|| ConfigError::Invalid {
            file: file.to_string(),
            key: "queue.url".into(),
            message: "missing: `hubtriage run` needs the SQS queue URL".into(),
        })
    }
}

fn invalid(
    file: &str,
    key: &str,
    env: &std::collections::HashMap<String, String>,
    message: String,
) -> ConfigError {
    let key = if key.is_empty() || key == "." {
        "(top level)".to_string()
    } else {
        key.to_string()
    };
    // Name the environment override when one is what set the bad key.
    let var = format!(
        "{ENV_PREFIX}{ENV_SEPARATOR}{}",
        key.split('[')
            .next()
            .unwrap_or("")
            .replace('.', ENV_SEPARATOR)
            .to_uppercase()
    );
    let message = if env.contains_key(&var) {
        format!("{message} (set by environment variable {var})")
    } else {
        message
    };
    ConfigError::Invalid {
        file: file.to_string(),
        key,
        message,
    }
}

/// Rewords serde's and the config crate's messages: users wrote keys, not
/// fields, and the key is already named in front of the message.
fn clean_message(message: &str) -> String {
    let message = match message.find(" for key `") {
        Some(at) => &message[..at],
        None => message,
    };
    if let Some(rest) = message.strip_prefix("missing configuration field \"") {
        let path = rest.trim_end_matches('"');
        let key = path.rsplit(['.', ']']).next().unwrap_or(path);
        return format!("missing key `{key}`");
    }
    message
        .replace("unknown field", "unknown key")
        .replace("missing field", "missing key")
}

fn check_prefix(prefix: &str) -> Result<(), String> {
    let ok = prefix.len() <= 190
        && prefix
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic())
        && prefix
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !prefix.contains("--");
    if ok {
        Ok(())
    } else {
        Err(format!(
            "expected a parameter group name prefix (a letter, then letters, digits and single hyphens, at most 190 characters), found {prefix:?}"
        ))
    }
}

fn check_region(region: &str) -> Result<(), String> {
    let ok = region.len() >= 9
        && region
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && region.contains('-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "expected an AWS region such as \"us-east-1\", found {region:?}"
        ))
    }
}

/// A string or a list of strings.
fn one_or_many<'de, D: Deserializer<'de>>(
    d: D,
    expected: &'static str,
) -> Result<Vec<String>, D::Error> {
    struct Visitor(&'static str);
    impl<'de> de::Visitor<'de> for Visitor {
        type Value = Vec<String>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.0)
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok(vec![v.to_string()])
        }
        // Environment overrides and unquoted TOML numbers (account ids) arrive as numbers.
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            Ok(vec![v.to_string()])
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            Ok(vec![v.to_string()])
        }
        fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            while let Some(item) = seq.next_element::<StringLike>()? {
                out.push(item.0);
            }
            Ok(out)
        }
    }
    d.deserialize_any(Visitor(expected))
}

/// A list item that is a string (or a number written without quotes).
struct StringLike(String);

impl<'de> Deserialize<'de> for StringLike {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl de::Visitor<'_> for Visitor {
            type Value = StringLike;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(StringLike(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(StringLike(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(StringLike(v.to_string()))
            }
        }
        d.deserialize_any(Visitor)
    }
}

fn checked_list<'de, D: Deserializer<'de>>(
    d: D,
    expected: &'static str,
    check: fn(&str) -> Result<String, String>,
) -> Result<Vec<String>, D::Error> {
    one_or_many(d, expected)?
        .iter()
        .map(|v| check(v).map_err(de::Error::custom))
        .collect()
}

fn check_account(v: &str) -> Result<String, String> {
    if v.len() == 12 && v.chars().all(|c| c.is_ascii_digit()) {
        Ok(v.to_string())
    } else {
        Err(format!("expected a 12-digit AWS account id, found {v:?}"))
    }
}

fn check_region_item(v: &str) -> Result<String, String> {
    check_region(v).map(|_| v.to_string())
}

fn check_severity(v: &str) -> Result<String, String> {
    const LABELS: [&str; 5] = ["INFORMATIONAL", "LOW", "MEDIUM", "HIGH", "CRITICAL"];
    let upper = v.to_ascii_uppercase();
    if LABELS.contains(&upper.as_str()) {
        Ok(upper)
    } else {
        Err(format!(
            "expected a severity label ({}), found {v:?}",
            LABELS.join(", ")
        ))
    }
}

fn accounts<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    checked_list(d, "an account id or a list of account ids", check_account)
}

fn regions<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    checked_list(d, "a region or a list of regions", check_region_item)
}

fn non_empty<E: de::Error>(list: Vec<String>, what: &str) -> Result<Option<Vec<String>>, E> {
    if list.is_empty() {
        Err(E::custom(format!(
            "expected at least one {what} (an empty list would match nothing; leave the key out to match all)"
        )))
    } else {
        Ok(Some(list))
    }
}

fn opt_accounts<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    non_empty(accounts(d)?, "account")
}

fn opt_regions<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    non_empty(regions(d)?, "region")
}

fn opt_severities<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    let list = checked_list(d, "a severity label or a list of them", check_severity)?;
    non_empty(list, "severity label")
}

fn opt_globs<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<Glob>>, D::Error> {
    let list = one_or_many(d, "a cluster glob or a list of them")?;
    let list = non_empty::<D::Error>(list, "cluster glob")?.unwrap_or_default();
    list.iter()
        .map(|g| Glob::new(g).map_err(de::Error::custom))
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = include_str!("../config/hubtriage.toml");

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::from_toml_with_env("test.toml", text, vec![])
    }

    fn error(text: &str) -> String {
        parse(text).unwrap_err().to_string()
    }

    #[test]
    fn the_example_config_is_valid() {
        let c = parse(EXAMPLE).unwrap();
        assert!(!c.rule.is_empty());
        assert!(!c.suppress.is_empty());
    }

    #[test]
    fn the_issue_example_parses_with_its_meanings() {
        let c = parse(
            r#"
[scope]
accounts = ["111122223333"]
regions  = ["us-east-1"]

[remediation]
mode = "apply"
reboot = "immediate"
shared_parameter_group = "copy"
parameter_group_prefix = "hubtriage-audit-"
log_retention_days = 365

[[suppress]]
name = "sandbox-accounts"
reason = "Sandbox accounts hold no customer data (RISK-142)"
expires = "2027-03-31"
match = { accounts = ["444455556666"] }

[[rule]]
name = "prod-needs-change-ticket"
action = "ticket"
match = { tags = { env = "prod" } }

[[rule]]
name = "non-prod-auto-fix"
action = "remediate"
match = { tags = { env = ["dev", "test", "staging"] }, clusters = ["scratch-*"] }

[default]
action = "ticket"
"#,
        )
        .unwrap();
        assert_eq!(c.remediation.mode, Mode::Apply);
        assert_eq!(c.remediation.reboot, RebootPolicy::Immediate);
        assert_eq!(c.remediation.log_retention_days, Some(365));
        assert_eq!(
            c.suppress[0].expires.at.to_rfc3339(),
            "2027-04-01T00:00:00+00:00"
        );
        assert_eq!(c.rule[1].action, RuleAction::Remediate);
        assert_eq!(
            c.rule[1].matcher.tags.as_ref().unwrap()["env"],
            TagMatch::OneOf(vec!["dev".into(), "test".into(), "staging".into()])
        );
        assert!(c.scope.allows_account("111122223333"));
        assert!(!c.scope.allows_account("444455556666"));
    }

    #[test]
    fn defaults_are_safe() {
        let c = parse("").unwrap();
        assert_eq!(c.remediation.mode, Mode::DryRun);
        assert_eq!(c.remediation.reboot, RebootPolicy::MaintenanceWindow);
        assert_eq!(c.default.action, RuleAction::Ticket);
        assert!(c.scope.allows_account("123456789012"));
    }

    #[test]
    fn unknown_keys_are_rejected_with_their_table() {
        let e = error("[remediation]\nmode = \"apply\"\nrebot = \"never\"\n");
        assert!(e.starts_with("config test.toml: remediation"), "{e}");
        assert!(e.contains("unknown key `rebot`"), "{e}");
        let e = error(
            "[[rule]]\nname = \"a\"\naction = \"ticket\"\nmatch = { tag = { env = \"prod\" } }\n",
        );
        assert!(e.contains("rule[0].match"), "{e}");
        assert!(e.contains("unknown key `tag`"), "{e}");
        let e = error("[sope]\naccounts = []\n");
        assert!(e.contains("unknown key `sope`"), "{e}");
    }

    #[test]
    fn wrong_types_and_values_name_the_key() {
        let e = error("[remediation]\nlog_retention_days = \"a year\"\n");
        assert!(e.contains("remediation.log_retention_days"), "{e}");
        let e = error("[remediation]\nlog_retention_days = 42\n");
        assert!(
            e.contains("remediation.log_retention_days: expected one of"),
            "{e}"
        );
        let e = error("[remediation]\nmode = \"yolo\"\n");
        assert!(e.contains("remediation.mode"), "{e}");
        assert!(
            e.contains("expected one of \"apply\", \"dry-run\", found \"yolo\""),
            "{e}"
        );
        let e = error("[scope]\naccounts = [\"1234\"]\n");
        assert!(
            e.contains("scope.accounts: expected a 12-digit AWS account id"),
            "{e}"
        );
        let e = error("[[rule]]\nname = \"r\"\naction = \"fix\"\n");
        assert!(e.contains("rule[0].action"), "{e}");
    }

    #[test]
    fn suppressions_need_a_valid_expiry() {
        let e = error("[[suppress]]\nname = \"s\"\nreason = \"r\"\n");
        assert!(e.contains("suppress[0]"), "{e}");
        assert!(e.contains("missing key `expires`"), "{e}");
        let e = error("[[suppress]]\nname = \"s\"\nreason = \"r\"\nexpires = \"next week\"\n");
        assert!(e.contains("suppress[0].expires: expected a date"), "{e}");
        let c = parse(
            "[[suppress]]\nname = \"s\"\nreason = \"r\"\nexpires = \"2027-01-02T03:04:05+01:00\"\n",
        )
        .unwrap();
        assert_eq!(
            c.suppress[0].expires.at.to_rfc3339(),
            "2027-01-02T02:04:05+00:00"
        );
    }

    #[test]
    fn empty_lists_in_match_are_rejected() {
        let e = error("[[rule]]\nname = \"r\"\naction = \"ticket\"\nmatch = { accounts = [] }\n");
        assert!(
            e.contains("rule[0].match.accounts: expected at least one account"),
            "{e}"
        );
    }

    #[test]
    fn duplicate_names_are_rejected() {
        let e = error("[[rule]]\nname = \"r\"\naction = \"ticket\"\n[[rule]]\nname = \"r\"\naction = \"ignore\"\n");
        assert!(e.contains("rule[1].name: \"r\" is used twice"), "{e}");
    }

    #[test]
    fn environment_overrides_win_and_are_named_in_errors() {
        let env = vec![(
            "HUBTRIAGE__REMEDIATION__MODE".to_string(),
            "apply".to_string(),
        )];
        let c = Config::from_toml_with_env("t.toml", "[remediation]\nmode = \"dry-run\"\n", env)
            .unwrap();
        assert_eq!(c.remediation.mode, Mode::Apply);
        let env = vec![(
            "HUBTRIAGE__REMEDIATION__LOG_RETENTION_DAYS".to_string(),
            "8".to_string(),
        )];
        let e = Config::from_toml_with_env("t.toml", "", env)
            .unwrap_err()
            .to_string();
        assert!(e.contains("remediation.log_retention_days"), "{e}");
        assert!(
            e.contains("HUBTRIAGE__REMEDIATION__LOG_RETENTION_DAYS"),
            "{e}"
        );
    }

    #[test]
    fn tag_keys_keep_their_case() {
        let c = parse(
            "[[rule]]\nname = \"r\"\naction = \"ticket\"\nmatch = { tags = { Env = \"Prod\" } }\n",
        )
        .unwrap();
        assert!(c.rule[0].matcher.tags.as_ref().unwrap().contains_key("Env"));
    }

    #[test]
    fn matching() {
        let c = parse(
            "[[rule]]\nname = \"r\"\naction = \"ticket\"\nmatch = { accounts = \"111122223333\", clusters = [\"scratch-*\", \"dev-?\"], tags = { env = \"*\", team = [\"a\", \"b\"] }, severity = \"high\" }\n",
        )
        .unwrap();
        let m = &c.rule[0].matcher;
        let tags: BTreeMap<String, String> =
            [("env".into(), "x".into()), ("team".into(), "b".into())].into();
        let s = Subject {
            account: "111122223333",
            region: "us-east-1",
            cluster: "scratch-1",
            tags: &tags,
            severity: Some("HIGH"),
        };
        assert!(m.matches(&s));
        assert!(m.matches(&Subject {
            cluster: "dev-7",
            ..s
        }));
        assert!(!m.matches(&Subject {
            cluster: "dev-77",
            ..s
        }));
        assert!(!m.matches(&Subject {
            account: "444455556666",
            ..s
        }));
        assert!(!m.matches(&Subject {
            severity: Some("LOW"),
            ..s
        }));
        assert!(!m.matches(&Subject {
            severity: None,
            ..s
        }));
        let no_team: BTreeMap<String, String> = [("env".into(), "x".into())].into();
        assert!(!m.matches(&Subject {
            tags: &no_team,
            ..s
        }));
        assert!(Match::default().matches(&s));
    }
}
