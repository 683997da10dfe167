//! Neptune.6: Neptune DB cluster snapshots should be encrypted at rest. No
//! fix in place: an unencrypted snapshot cannot be encrypted, and Neptune
//! refuses a copy with a KMS key; the fix restores it into an encrypted
//! cluster and snapshots that. Usually a symptom of Neptune.1 on the cluster
//! it was taken of. Ticket only.

use super::{Control, Criteria, Kind, Plan, Safety, Target};
use crate::state::LiveResource;

pub struct Neptune6;

pub static CONTROL: Neptune6 = Neptune6;

impl Control for Neptune6 {
    fn id(&self) -> &'static str {
        "Neptune.6"
    }

    fn title(&self) -> &'static str {
        "Neptune DB cluster snapshots should be encrypted at rest"
    }

    fn failing(&self) -> &'static str {
        "is not encrypted at rest"
    }

    fn kind(&self) -> Kind {
        Kind::ClusterSnapshot
    }

    fn safety(&self) -> Safety {
        Safety::TicketOnly
    }

    fn problems(&self, live: LiveResource<'_>, _criteria: Criteria<'_>) -> Vec<String> {
        match live {
            LiveResource::Snapshot(s) if !s.storage_encrypted => {
                vec!["the snapshot is not encrypted at rest".to_string()]
            }
            _ => Vec::new(),
        }
    }

    fn compliant(&self, _criteria: Criteria<'_>) -> String {
        "the snapshot is encrypted at rest.".into()
    }

    fn plan(&self, _live: LiveResource<'_>, _criteria: Criteria<'_>) -> Result<Plan, String> {
        Err("Neptune.6 has no fix in place.".into())
    }

    fn not_automatic(&self) -> &'static str {
        "Neptune.6 has no fix in place: an unencrypted snapshot cannot be encrypted, only restored into an encrypted cluster and snapshotted again."
    }

    fn manual_fix(&self, t: &Target<'_>) -> Vec<String> {
        let (s, r) = (t.snapshot.unwrap_or("<snapshot>"), t.region);
        vec![
            format!("Restore it into a temporary encrypted cluster (a copy with a KMS key is refused for an unencrypted snapshot): aws neptune restore-db-cluster-from-snapshot --region {r} --db-cluster-identifier {s}-encrypted --snapshot-identifier {s} --engine neptune --kms-key-id <KMS key ARN>"),
            format!("Snapshot the encrypted cluster: aws neptune create-db-cluster-snapshot --region {r} --db-cluster-identifier {s}-encrypted --db-cluster-snapshot-identifier {s}-encrypted"),
            format!("Delete the temporary cluster: aws neptune delete-db-cluster --region {r} --db-cluster-identifier {s}-encrypted --skip-final-snapshot"),
            format!("Decide whether to delete the unencrypted snapshot: aws neptune delete-db-cluster-snapshot --region {r} --db-cluster-snapshot-identifier {s}"),
            format!("If the cluster it was taken of ({}) is not encrypted, its Neptune.1 finding is the cause: new snapshots of it are unencrypted too.", t.cluster),
        ]
    }

    fn iam_actions(&self) -> &'static [&'static str] {
        &[]
    }

    fn passes_when(&self) -> &'static str {
        "`StorageEncrypted`"
    }

    fn fix_summary(&self) -> &'static str {
        "none in place: restore into an encrypted cluster and snapshot that"
    }

    fn reads(&self) -> &'static [&'static str] {
        &["StorageEncrypted"]
    }

    fn verified(&self, _live: LiveResource<'_>, _criteria: Criteria<'_>) -> String {
        String::new()
    }
}
