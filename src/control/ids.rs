//! The ids of the controls hubtriage triages, as findings spell them.
//!
//! - The registry's controls ([`triaged`], from [`super::all`]: no second
//!   list); standard-specific findings of the AWS Control Tower standard write
//!   them `CT.Neptune.N` ([`crate::finding::normalize_control_id`]).
//! - RDS controls that Security Hub also evaluates on Neptune resources: each
//!   is decided as the Neptune control that checks the same thing, or ignored
//!   with the reason none does.

/// An RDS control that can fire on Neptune resources.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RdsTwin {
    pub id: &'static str,
    /// The Neptune control that checks the same thing on the same resource.
    pub neptune: Option<&'static str>,
    /// When none does: why, in words for the finding's reason.
    pub why_none: &'static str,
}

/// Security Hub: RDS.1, RDS.2, RDS.3, RDS.4 and RDS.7 "can also generate
/// findings" for Neptune resources.
pub const RDS: [RdsTwin; 5] = [
    RdsTwin {
        id: "RDS.1",
        neptune: Some("Neptune.3"),
        why_none: "",
    },
    RdsTwin {
        id: "RDS.2",
        neptune: None,
        why_none: "RDS.2 checks a DB instance's public access, which Neptune instances do not have; no Neptune control checks it",
    },
    RdsTwin {
        id: "RDS.3",
        neptune: None,
        why_none: "RDS.3 checks a DB instance's encryption; a Neptune instance's storage is its cluster's, which Neptune.1 checks on the cluster's own finding",
    },
    RdsTwin {
        id: "RDS.4",
        neptune: Some("Neptune.6"),
        why_none: "",
    },
    RdsTwin {
        id: "RDS.7",
        neptune: Some("Neptune.4"),
        why_none: "",
    },
];

/// The id of every control hubtriage triages, in the registry's order.
pub fn triaged() -> Vec<&'static str> {
    super::all().iter().map(|c| c.id()).collect()
}

/// A triaged control id (`Neptune.4`), or an RDS control that fires on Neptune.
pub fn is_known(id: &str) -> bool {
    is_triaged(id) || rds(id).is_some()
}

/// Whether the registry has a control `id` (exactly as the registry spells it).
pub fn is_triaged(id: &str) -> bool {
    super::all().iter().any(|c| c.id() == id)
}

pub fn rds(id: &str) -> Option<&'static RdsTwin> {
    RDS.iter().find(|r| r.id == id)
}

/// The ids an EventBridge rule routes: every triaged control and the RDS
/// controls decided as one.
pub fn routed() -> Vec<&'static str> {
    triaged()
        .into_iter()
        .chain(RDS.iter().filter(|r| r.neptune.is_some()).map(|r| r.id))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_as_findings_write_them() {
        assert!(is_known("RDS.7") && is_known("Neptune.9"));
        assert!(!is_known("Neptune.10") && !is_known("RDS.8") && !is_known("EC2.1"));
        assert_eq!(routed().len(), 12);
    }
}
