//! `[controls."<id>"]`: settings of one control, and the `controls` list a
//! `[[rule]]` or `[[suppress]]` may limit itself to.
//!
//! Contract: control ids are Security Hub's (`Neptune.1` … `Neptune.9`); an
//! unknown one is an error naming its key. Only Neptune.5 has a setting
//! today: `min_retention_days` (Security Hub's minimumBackupRetentionPeriod,
//! 7 to 35, default 7).

use std::collections::BTreeMap;

use serde::de::{self, Deserializer};
use serde::Deserialize;

use crate::control::ids;

/// Neptune.5's minimum when `[controls."Neptune.5"] min_retention_days` is absent.
pub const DEFAULT_MIN_RETENTION_DAYS: u32 = 7;

/// `[controls]`: control id → its settings.
#[derive(Debug, Clone, Default)]
pub struct Controls(pub BTreeMap<String, ControlTable>);

/// One control's settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ControlTable {
    /// Neptune.5: the fewest days of automated backups that pass.
    #[serde(default)]
    pub min_retention_days: Option<u32>,
}

impl Controls {
    /// `[controls."<id>"]`, when the config has it.
    pub fn of(&self, id: &str) -> Option<&ControlTable> {
        self.0.get(id)
    }
}

impl ControlTable {
    /// The keys set in this table (the control says which it takes).
    pub fn keys(&self) -> Vec<&'static str> {
        let ControlTable { min_retention_days } = self;
        min_retention_days
            .map(|_| "min_retention_days")
            .into_iter()
            .collect()
    }
}

impl<'de> Deserialize<'de> for Controls {
    /// `[controls."Neptune.5"]` arrives as the key `Neptune.5`, or (the
    /// config layering splits keys at dots) as `Neptune` holding `5`: both
    /// are read as `Neptune.5`.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = BTreeMap::<String, serde_json::Value>::deserialize(d)?;
        let mut tables = BTreeMap::new();
        for (key, value) in raw {
            let nested = value.as_object().filter(|m| {
                !m.is_empty() && m.keys().all(|k| k.chars().all(|c| c.is_ascii_digit()))
            });
            let entries: Vec<(String, serde_json::Value)> = match nested {
                Some(m) => m
                    .iter()
                    .map(|(n, v)| (format!("{key}.{n}"), v.clone()))
                    .collect(),
                None => vec![(key, value)],
            };
            for (key, table) in entries {
                // An environment override spells it NEPTUNE_5 and arrives
                // lower-cased (`neptune_5`): the id it stands for.
                let id = canonical(&key).unwrap_or(key);
                if !ids::is_neptune(&id) {
                    return Err(de::Error::custom(format!(
                        "unknown control {id:?} in [controls]; expected one of {}",
                        ids::NEPTUNE.join(", ")
                    )));
                }
                let table: ControlTable = serde_json::from_value(table)
                    .map_err(|e| de::Error::custom(format!("[controls.\"{id}\"]: {e}")))?;
                tables.insert(id, table);
            }
        }
        Ok(Controls(tables))
    }
}

/// The control id a `[controls]` key stands for, whatever its case and
/// with `_` for the dot (`neptune_5`, `NEPTUNE.5` → `Neptune.5`).
fn canonical(key: &str) -> Option<String> {
    let wanted = key.to_ascii_lowercase().replace('_', ".");
    ids::NEPTUNE
        .iter()
        .find(|id| id.to_ascii_lowercase() == wanted)
        .map(|id| id.to_string())
}

/// A rule's or suppression's `controls`: known Neptune control ids, at least one.
pub(super) fn opt_controls<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Vec<String>>, D::Error> {
    let list = super::values::one_or_many(d, "a control id or a list of them")?;
    if list.is_empty() {
        return Err(de::Error::custom(
            "expected at least one control id (an empty list would match nothing; leave the key out for every control)",
        ));
    }
    for id in &list {
        if !ids::is_neptune(id) {
            return Err(de::Error::custom(format!(
                "unknown control {id:?}; expected one of {}",
                ids::NEPTUNE.join(", ")
            )));
        }
    }
    Ok(Some(list))
}

/// Whether a rule limited to `controls` applies to a finding of `control`.
pub fn covers(controls: &Option<Vec<String>>, control: &str) -> bool {
    controls
        .as_ref()
        .is_none_or(|list| list.iter().any(|c| c == control))
}
