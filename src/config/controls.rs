//! `[controls."<id>"]`: settings of one control, and the `controls` list a
//! `[[rule]]` or `[[suppress]]` may limit itself to.
//!
//! Contract: control ids are Security Hub's (`Neptune.1` … `Neptune.9`), in
//! any case and, from an environment override, with `_` for the dot; which
//! ids exist and which keys each control takes is the control registry's to
//! say (`control::check_settings`, run on every loaded config), so this
//! module reads any id. Only Neptune.5 has a setting today:
//! `min_retention_days` (Security Hub's minimumBackupRetentionPeriod, 7 to
//! 35, default 7).

use std::collections::BTreeMap;

use serde::de::{self, Deserializer};
use serde::Deserialize;

/// Neptune.5's minimum when `[controls."Neptune.5"] min_retention_days` is absent.
pub const DEFAULT_MIN_RETENTION_DAYS: u32 = 7;

/// `[controls]`: control id (as written) → its settings.
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
    /// `[controls."<id>"]`, when the config has it, however the id's case
    /// is written.
    pub fn of(&self, id: &str) -> Option<&ControlTable> {
        self.0
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(id))
            .map(|(_, table)| table)
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

    /// This table with `over`'s settings in place of its own.
    fn overlaid(self, over: ControlTable) -> ControlTable {
        let ControlTable { min_retention_days } = over;
        ControlTable {
            min_retention_days: min_retention_days.or(self.min_retention_days),
        }
    }
}

impl<'de> Deserialize<'de> for Controls {
    /// `[controls."Neptune.5"]` arrives as the key `Neptune.5`, or (the
    /// config layering splits keys at dots) as `Neptune` holding `5`, or
    /// from the environment override `HUBTRIAGE__CONTROLS__NEPTUNE_5__...`
    /// as `neptune_5`: all are read as one id, the override's settings over
    /// the file's.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = BTreeMap::<String, serde_json::Value>::deserialize(d)?;
        let mut entries: Vec<(String, serde_json::Value)> = Vec::new();
        for (key, value) in raw {
            let nested = value.as_object().filter(|m| {
                !m.is_empty() && m.keys().all(|k| k.chars().all(|c| c.is_ascii_digit()))
            });
            match nested {
                Some(m) => entries.extend(m.iter().map(|(n, v)| (format!("{key}.{n}"), v.clone()))),
                None => entries.push((key, value)),
            }
        }
        // The environment's spelling last, so that its settings win.
        entries.sort_by_key(|(key, _)| from_environment(key));
        let mut tables: BTreeMap<String, ControlTable> = BTreeMap::new();
        for (key, table) in entries {
            let id = if from_environment(&key) {
                key.replace('_', ".")
            } else {
                key
            };
            let table: ControlTable = serde_json::from_value(table)
                .map_err(|e| de::Error::custom(format!("[controls.\"{id}\"]: {e}")))?;
            match tables.iter_mut().find(|(k, _)| k.eq_ignore_ascii_case(&id)) {
                Some((_, earlier)) => *earlier = std::mem::take(earlier).overlaid(table),
                None => {
                    tables.insert(id, table);
                }
            }
        }
        Ok(Controls(tables))
    }
}

/// Whether a `[controls]` key is an environment override's spelling of an
/// id (`neptune_5`: `_` for the dot).
fn from_environment(key: &str) -> bool {
    key.contains('_') && !key.contains('.')
}

/// A rule's or suppression's `controls`: at least one control id (which ids
/// exist is the registry's to say: `control::check_settings`).
pub(super) fn opt_controls<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Vec<String>>, D::Error> {
    let list = super::values::one_or_many(d, "a control id or a list of them")?;
    if list.is_empty() {
        return Err(de::Error::custom(
            "expected at least one control id (an empty list would match nothing; leave the key out for every control)",
        ));
    }
    Ok(Some(list))
}

/// Whether a rule limited to `controls` applies to a finding of `control`.
pub fn covers(controls: &Option<Vec<String>>, control: &str) -> bool {
    controls
        .as_ref()
        .is_none_or(|list| list.iter().any(|c| c == control))
}
