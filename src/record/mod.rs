//! Record step: write the outcome on the finding with `BatchUpdateFindings`.
//!
//! - [`update`]: what is written — the workflow status, the note and the fields
//!   a decision implies (all note wording lives there), and how hubtriage
//!   recognises its own update when Security Hub echoes it back.
//! - [`batcher`]: the [`Recorder`] that batches alike updates (up to 100
//!   findings a call), paces calls to Security Hub's quota and retries.
//! - [`securityhub`]: the Security Hub adapter behind [`FindingsApi`].

use async_trait::async_trait;

use crate::aws::Error;
use crate::config::FindingsApiVersion;
use crate::finding::Finding;

pub mod batcher;
pub mod securityhub;
pub mod update;

pub use crate::finding::Workflow;
pub use batcher::{Recorder, RecorderSettings};
pub use update::{describe_plan, is_own_update, Acted, FindingUpdate};

/// BatchUpdateFindings takes at most this many identifiers a call (V2 too).
pub const MAX_IDENTIFIERS: usize = 100;

/// Which finding, as BatchUpdateFindings identifies it (`Id`, `ProductArn`),
/// or BatchUpdateFindingsV2 (`FindingInfoUid`, `MetadataProductUid`,
/// `CloudAccountUid`): a `…::productv2/…` product is a V2 finding.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FindingId {
    pub id: String,
    pub product_arn: String,
    pub account: String,
}

const PRODUCT_V1: &str = "::product/";
const PRODUCT_V2: &str = "::productv2/";

impl FindingId {
    /// The finding as it came.
    pub fn of(f: &Finding) -> Self {
        FindingId {
            id: f.id.clone(),
            product_arn: f.product_arn.clone(),
            account: f.account.clone(),
        }
    }

    /// The finding as `api` answers it: the ASFF and OCSF findings of one
    /// check share the id, and their products differ by `product`/`productv2`.
    pub fn answering(f: &Finding, api: FindingsApiVersion) -> Self {
        let mut id = FindingId::of(f);
        match api {
            FindingsApiVersion::Auto => {}
            FindingsApiVersion::V1 => {
                id.product_arn = id.product_arn.replace(PRODUCT_V2, PRODUCT_V1)
            }
            FindingsApiVersion::V2 => {
                id.product_arn = id.product_arn.replace(PRODUCT_V1, PRODUCT_V2)
            }
        }
        id
    }

    /// A finding of the new Security Hub (BatchUpdateFindingsV2, GetFindingsV2).
    pub fn is_v2(&self) -> bool {
        self.product_arn.contains(PRODUCT_V2)
    }
}

/// A finding BatchUpdateFindings did not update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unprocessed {
    pub finding: FindingId,
    pub code: String,
    pub message: String,
}

/// The few Security Hub calls hubtriage makes.
#[async_trait]
pub trait FindingsApi: Send + Sync {
    async fn batch_update(
        &self,
        ids: &[FindingId],
        update: &FindingUpdate,
    ) -> Result<Vec<Unprocessed>, Error>;
    /// The finding as Security Hub holds it now (`None`: not found).
    async fn get_finding(&self, id: &FindingId) -> Result<Option<Finding>, Error>;
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    #[error("BatchUpdateFindings left the finding unprocessed: {code}: {message}")]
    Unprocessed { code: String, message: String },
    #[error("{0}")]
    Call(String),
    #[error("the recorder has stopped")]
    Stopped,
}

/// Unprocessed error codes worth retrying (V1's, then V2's).
pub fn is_retryable_code(code: &str) -> bool {
    matches!(
        code,
        "ConcurrentUpdateError"
            | "InternalFailure"
            | "ConflictException"
            | "InternalServerException"
    )
}
