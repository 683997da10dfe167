//! Neptune.3: Neptune DB cluster snapshots should not be public: the
//! snapshot's `restore` attribute must not hold `all`. Fixed in place:
//! ModifyDBClusterSnapshotAttribute removes `all` only, so the accounts named
//! there keep their access; it applies on return. Who copied the snapshot
//! while it was public is not undone: the note and any ticket say so.

use super::{not_skipped, Control, Criteria, Kind, Plan, Safety, Step, Target};
use crate::state::{LiveResource, PUBLIC};

pub struct Neptune3;

pub static CONTROL: Neptune3 = Neptune3;

impl Control for Neptune3 {
    fn id(&self) -> &'static str {
        "Neptune.3"
    }

    fn title(&self) -> &'static str {
        "Neptune DB cluster snapshots should not be public"
    }

    fn failing(&self) -> &'static str {
        "is public"
    }

    fn kind(&self) -> Kind {
        Kind::ClusterSnapshot
    }

    fn safety(&self) -> Safety {
        Safety::Auto
    }

    fn problems(&self, live: LiveResource<'_>, _criteria: Criteria<'_>) -> Vec<String> {
        match live {
            LiveResource::Snapshot(s) if s.is_public() => {
                vec![format!(
                    "the snapshot is public: its restore attribute includes {PUBLIC}"
                )]
            }
            _ => Vec::new(),
        }
    }

    fn compliant(&self, _criteria: Criteria<'_>) -> String {
        "the snapshot is not public.".into()
    }

    fn plan(&self, live: LiveResource<'_>, _criteria: Criteria<'_>) -> Result<Plan, String> {
        not_skipped(live)?;
        let LiveResource::Snapshot(s) = live else {
            return Err("Neptune.3 checks cluster snapshots.".into());
        };
        let mut steps = Vec::new();
        if s.is_public() {
            steps.push(Step::MakeSnapshotPrivate {
                snapshot: s.identifier.clone(),
            });
        }
        steps.push(Step::Verify);
        Ok(Plan {
            steps,
            note: Some(
                "Anyone may have copied it while it was public: treat it as an exposure.".into(),
            ),
        })
    }

    fn not_automatic(&self) -> &'static str {
        ""
    }

    fn manual_fix(&self, t: &Target<'_>) -> Vec<String> {
        let snapshot = t.snapshot.unwrap_or("<snapshot>");
        vec![
            format!("Make the snapshot private, keeping the accounts named in its restore attribute: aws neptune modify-db-cluster-snapshot-attribute --region {} --db-cluster-snapshot-identifier {snapshot} --attribute-name restore --values-to-remove all", t.region),
            "Treat the exposure as an incident: anyone could copy or restore the snapshot while it was public.".into(),
        ]
    }

    fn iam_actions(&self) -> &'static [&'static str] {
        &["rds:ModifyDBClusterSnapshotAttribute"]
    }

    fn passes_when(&self) -> &'static str {
        "its `restore` attribute has no `all`"
    }

    fn fix_summary(&self) -> &'static str {
        "ModifyDBClusterSnapshotAttribute restore: remove all (named accounts keep access)"
    }

    fn reads(&self) -> &'static [&'static str] {
        &["restore"]
    }

    fn verified(&self, live: LiveResource<'_>, _criteria: Criteria<'_>) -> String {
        match live {
            LiveResource::Snapshot(s) if s.restore.is_empty() => {
                "the restore attribute is empty".into()
            }
            LiveResource::Snapshot(s) => {
                format!("the restore attribute holds {}", s.restore.join(", "))
            }
            LiveResource::Cluster(_) => String::new(),
        }
    }
}
