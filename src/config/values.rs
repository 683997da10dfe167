//! Single config values: the fixed words (`mode`, `reboot`, `action`, ...),
//! a suppression's expiry, and the lists of account ids, regions, severities
//! and cluster globs that `[scope]` and `match` take.
//!
//! Contract: a value that reaches a table struct is already well formed; a bad
//! one fails deserialization with a message that says what was expected and
//! what was found (the caller puts the file and key in front).

use std::fmt;

use chrono::{DateTime, NaiveDate, Utc};
use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize};

/// `apply` changes clusters; `dry-run` (the default) only plans and notes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    Apply,
    #[default]
    DryRun,
}

/// What hubtriage does with a resource a stack (or another tool) owns.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum IacPolicy {
    /// A ticket whose fix is the change to make in the stack.
    #[default]
    Ticket,
    /// Fixed in place, as if no tool owned it (the stack drifts).
    Remediate,
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

/// What a rule (or `[default]`) may choose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RuleAction {
    Remediate,
    Ticket,
    Ignore,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TicketKind {
    #[default]
    Log,
    /// A signed JSON POST per ticket event to `[ticket] url`.
    Webhook,
    /// Jira Cloud, REST v3.
    Jira,
    /// Jira Data Center, REST v2.
    JiraDc,
    /// ServiceNow's Table API.
    Servicenow,
}

/// A resolved problem that fails again.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Regression {
    /// Its ticket is reopened (closed less than `reopen_within_days` ago).
    #[default]
    Reopen,
    /// A new ticket that names the old one.
    New,
}

/// What a ticket gets when its finding passes (or a person resolves it).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum OnResolve {
    /// A comment with the live state, then closed.
    #[default]
    Close,
    /// A comment only.
    Comment,
    Nothing,
}

/// Findings in the daemon's own account, when a role is configured: read and
/// changed with the task's own credentials (`direct`), or through the role too.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum OwnAccount {
    #[default]
    Direct,
    Assume,
}

/// `[securityhub] api`: which API findings are answered with.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FindingsApiVersion {
    /// Each in the format it came in: ASFF with BatchUpdateFindings, OCSF with
    /// BatchUpdateFindingsV2.
    #[default]
    Auto,
    /// BatchUpdateFindings for every finding (an OCSF one by its ASFF twin).
    V1,
    /// BatchUpdateFindingsV2 for every finding (an ASFF one by its OCSF twin).
    V2,
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
choice!(IacPolicy: "ticket" => IacPolicy::Ticket, "remediate" => IacPolicy::Remediate);
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
choice!(TicketKind:
    "log" => TicketKind::Log,
    "webhook" => TicketKind::Webhook,
    "jira" => TicketKind::Jira,
    "jira-dc" => TicketKind::JiraDc,
    "servicenow" => TicketKind::Servicenow);
choice!(Regression: "reopen" => Regression::Reopen, "new" => Regression::New);
choice!(OnResolve:
    "close" => OnResolve::Close,
    "comment" => OnResolve::Comment,
    "nothing" => OnResolve::Nothing);
choice!(OwnAccount: "direct" => OwnAccount::Direct, "assume" => OwnAccount::Assume);
choice!(FindingsApiVersion:
    "auto" => FindingsApiVersion::Auto,
    "v1" => FindingsApiVersion::V1,
    "v2" => FindingsApiVersion::V2);

pub(super) fn check_region(region: &str) -> Result<(), String> {
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
pub(super) fn one_or_many<'de, D: Deserializer<'de>>(
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

pub(super) fn accounts<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    checked_list(d, "an account id or a list of account ids", check_account)
}

pub(super) fn regions<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
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

pub(super) fn opt_accounts<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Vec<String>>, D::Error> {
    non_empty(accounts(d)?, "account")
}

pub(super) fn opt_regions<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Vec<String>>, D::Error> {
    non_empty(regions(d)?, "region")
}

pub(super) fn opt_severities<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Vec<String>>, D::Error> {
    let list = checked_list(d, "a severity label or a list of them", check_severity)?;
    non_empty(list, "severity label")
}

pub(super) fn opt_globs<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<Glob>>, D::Error> {
    let list = one_or_many(d, "a cluster glob or a list of them")?;
    let list = non_empty::<D::Error>(list, "cluster glob")?.unwrap_or_default();
    list.iter()
        .map(|g| Glob::new(g).map_err(de::Error::custom))
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
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
