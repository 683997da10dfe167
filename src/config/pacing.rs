//! `[pacing]`: client-side rates per AWS API, per account and region (the
//! pacer in `crate::pace` applies them). Defaults are the documented quotas.

use serde::Deserialize;

/// A rate: `per_second` calls a second on average, `burst` at once after a
/// quiet spell. `per_second = 0` turns pacing off for that API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rate {
    pub per_second: u32,
    pub burst: u32,
}

/// `[pacing]`: the rate of each API, per account and region.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rates {
    #[serde(default = "default_batch_update")]
    pub batch_update_findings: Rate,
    #[serde(default = "default_get_findings")]
    pub get_findings: Rate,
    #[serde(default = "default_batch_update")]
    pub batch_update_findings_v2: Rate,
    #[serde(default = "default_get_findings")]
    pub get_findings_v2: Rate,
    #[serde(default = "default_neptune_read")]
    pub neptune_read: Rate,
}

impl Default for Rates {
    fn default() -> Self {
        Rates {
            batch_update_findings: default_batch_update(),
            get_findings: default_get_findings(),
            batch_update_findings_v2: default_batch_update(),
            get_findings_v2: default_get_findings(),
            neptune_read: default_neptune_read(),
        }
    }
}

impl Rates {
    /// No pacing at all (tests).
    pub fn unpaced() -> Self {
        let off = Rate {
            per_second: 0,
            burst: 1,
        };
        Rates {
            batch_update_findings: off,
            get_findings: off,
            batch_update_findings_v2: off,
            get_findings_v2: off,
            neptune_read: off,
        }
    }
}

fn default_batch_update() -> Rate {
    Rate {
        per_second: 10,
        burst: 30,
    }
}

fn default_get_findings() -> Rate {
    Rate {
        per_second: 3,
        burst: 6,
    }
}

fn default_neptune_read() -> Rate {
    Rate {
        per_second: 10,
        burst: 200,
    }
}
