//! Typed configuration: a TOML file plus `HUBTRIAGE__SECTION__KEY` environment
//! overrides, read with the `config` crate.
//!
//! Every table rejects unknown keys, and every error names the file, the key and
//! what was expected. Values are validated here, once, so the rest of the code can
//! trust them.
//!
//! The parts: [`Config`] and loading it (this file), one struct per table
//! (`tables.rs`), single values and lists (`values.rs`), a rule's `match`
//! (`matching.rs`), the checks types cannot make (`validate.rs`), the
//! environment overrides (`env.rs`), and what `check-config` prints ([`report`]).

use std::collections::HashMap;
use std::path::Path;

use serde::Deserialize;

mod controls;
mod env;
mod matching;
mod pacing;
pub mod report;
mod tables;
mod validate;
mod values;

#[cfg(test)]
mod tests;

pub use controls::{covers, ControlTable, Controls, DEFAULT_MIN_RETENTION_DAYS};
pub use env::{CONFIG_TOML_ENV, ENV_PREFIX, ENV_SEPARATOR};
pub use matching::{Match, Subject, TagMatch};
pub use pacing::{Rate, Rates};
pub use tables::ACCOUNT_PLACEHOLDER;
pub use tables::{
    Accounts, Coordination, Daemon, DefaultAction, Enrich, Events, JournalConfig, MetricsConfig,
    Queue, Remediation, Rule, Scope, SecurityHub, Setup, Suppression, Ticket,
};
pub use validate::RETENTION_DAYS;
pub use values::{
    Expiry, FindingsApiVersion, Glob, IacPolicy, Mode, OnResolve, OwnAccount, RebootPolicy,
    Regression, RuleAction, SharedGroupPolicy, TicketKind,
};

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
    /// `[controls."<id>"]`: per-control settings.
    #[serde(default)]
    pub controls: Controls,
    #[serde(default)]
    pub suppress: Vec<Suppression>,
    #[serde(default)]
    pub rule: Vec<Rule>,
    #[serde(default)]
    pub default: DefaultAction,
    /// Required by `hubtriage run` and `setup` (see [`Config::require_queue`]);
    /// not by `explain` or `check-config`.
    #[serde(default)]
    pub queue: Option<Queue>,
    #[serde(default)]
    pub daemon: Daemon,
    #[serde(default)]
    pub enrich: Enrich,
    #[serde(default)]
    pub securityhub: SecurityHub,
    /// `[accounts]`: member accounts through an assumed role.
    #[serde(default)]
    pub accounts: Accounts,
    /// `[pacing]`: client-side rates per AWS API and (account, region).
    #[serde(default)]
    pub pacing: Rates,
    #[serde(default)]
    pub ticket: Ticket,
    /// `[coordination]`: the DynamoDB table the tasks of a deployment share.
    #[serde(default)]
    pub coordination: Option<Coordination>,
    /// `[journal]`: the change journal's table; absent: no journal is kept.
    #[serde(default)]
    pub journal: Option<JournalConfig>,
    #[serde(default)]
    pub events: Option<Events>,
    #[serde(default)]
    pub metrics: MetricsConfig,
    #[serde(default)]
    pub setup: Setup,
}

impl Config {
    /// Reads `path` and the `HUBTRIAGE__` environment overrides, then validates.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        Self::load_with_env(path, env::vars())
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
                Ok((Self::from_toml_with_env(&name, &text, env::vars())?, name))
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
        let env_map: HashMap<String, String> = env.into_iter().collect();
        let source = env::layered(file, text, &env_map)?;
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

    /// The queue settings, which `hubtriage run` and `hubtriage setup` require:
    /// the one place that says so when they are missing.
    pub fn require_queue(&self, file: &str) -> Result<&Queue, ConfigError> {
        self.queue.as_ref().ok_or_else(|| ConfigError::Invalid {
            file: file.to_string(),
            key: "queue.url".into(),
            message: "missing: `hubtriage run` needs the SQS queue URL".into(),
        })
    }
}

/// The error for a bad `key` of `file`, naming the environment override
/// (from `env`) when one is what set the key.
fn invalid(file: &str, key: &str, env: &HashMap<String, String>, message: String) -> ConfigError {
    let key = if key.is_empty() || key == "." {
        "(top level)".to_string()
    } else {
        key.to_string()
    };
    let message = env::name_override(&key, env, message);
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
