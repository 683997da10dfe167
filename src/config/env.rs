//! Environment overrides: `HUBTRIAGE__SECTION__KEY=value` sets `[section] key`
//! on top of the TOML, and an error about a key names the variable when one
//! set it.
//!
//! Contract: [`vars`] is the only place that reads the process environment for
//! overrides; [`layered`] is the only place that puts them over the TOML.

use std::collections::HashMap;

use super::ConfigError;

/// The prefix of environment overrides: `HUBTRIAGE__REMEDIATION__MODE=dry-run`.
pub const ENV_PREFIX: &str = "HUBTRIAGE";
pub const ENV_SEPARATOR: &str = "__";
/// The whole config as TOML, when `--config` is not given.
pub const CONFIG_TOML_ENV: &str = "HUBTRIAGE_CONFIG_TOML";

/// The override variables set in this process.
pub(super) fn vars() -> Vec<(String, String)> {
    std::env::vars()
        .filter(|(k, _)| k.starts_with(&format!("{ENV_PREFIX}{ENV_SEPARATOR}")))
        .collect()
}

/// The TOML `text` (named `file` in errors) with the overrides in `env` on top.
pub(super) fn layered(
    file: &str,
    text: &str,
    env: &HashMap<String, String>,
) -> Result<::config::Config, ConfigError> {
    ::config::Config::builder()
        .add_source(::config::File::from_str(text, ::config::FileFormat::Toml))
        .add_source(
            ::config::Environment::with_prefix(ENV_PREFIX)
                .prefix_separator(ENV_SEPARATOR)
                .separator(ENV_SEPARATOR)
                .try_parsing(true)
                .source(Some(env.clone())),
        )
        .build()
        .map_err(|e| ConfigError::Load {
            file: file.to_string(),
            message: e.to_string(),
        })
}

/// The variable that overrides `key`: `remediation.mode` →
/// `HUBTRIAGE__REMEDIATION__MODE`; a quoted part's dots become `_`
/// (`controls."Neptune.5".min_retention_days` →
/// `HUBTRIAGE__CONTROLS__NEPTUNE_5__MIN_RETENTION_DAYS`).
pub fn variable(key: &str) -> String {
    let key = key.split('[').next().unwrap_or("");
    let mut parts = Vec::new();
    let mut rest = key;
    while !rest.is_empty() {
        if let Some(quoted) = rest.strip_prefix('"') {
            let end = quoted.find('"').unwrap_or(quoted.len());
            parts.push(quoted[..end].replace('.', "_"));
            rest = quoted.get(end + 1..).unwrap_or("").trim_start_matches('.');
        } else {
            let end = rest.find('.').unwrap_or(rest.len());
            parts.push(rest[..end].to_string());
            rest = rest.get(end + 1..).unwrap_or("");
        }
    }
    format!(
        "{ENV_PREFIX}{ENV_SEPARATOR}{}",
        parts.join(ENV_SEPARATOR).to_uppercase()
    )
}

/// `message`, followed by the variable's name when an override in `env` is
/// what set `key` (`remediation.mode` → `HUBTRIAGE__REMEDIATION__MODE`).
pub(super) fn name_override(key: &str, env: &HashMap<String, String>, message: String) -> String {
    let var = variable(key);
    if env.contains_key(&var) {
        format!("{message} (set by environment variable {var})")
    } else {
        message
    }
}
