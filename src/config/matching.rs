//! The `match` of a rule or suppression, and how a finding's subject
//! (account, region, cluster, tags, severity) is matched against it.
//!
//! Contract: pure functions of plain values; no I/O, no clock.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::Deserializer;
use serde::Deserialize;

use super::values::{one_or_many, opt_accounts, opt_globs, opt_regions, opt_severities, Glob};

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
