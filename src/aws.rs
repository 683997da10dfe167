//! AWS SDK configuration shared by every adapter: the default credential chain
//! and region (ECS container credentials work unchanged), endpoints from
//! `AWS_ENDPOINT_URL` / `AWS_ENDPOINT_URL_<SERVICE>`, and timeouts longer than
//! SQS's 20-second long poll.

use std::time::Duration;

use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};

/// One attempt may take this long: above the 20 s long poll.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(30);
/// An operation, retries included.
pub const OPERATION_TIMEOUT: Duration = Duration::from_secs(90);

pub async fn load() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(5))
                .operation_attempt_timeout(ATTEMPT_TIMEOUT)
                .operation_timeout(OPERATION_TIMEOUT)
                .build(),
        )
        .load()
        .await
}

/// SDK clients made per region on first use and kept.
pub struct PerRegion<C> {
    sdk: SdkConfig,
    make: fn(&SdkConfig, Region) -> C,
    clients: std::sync::Mutex<std::collections::HashMap<String, C>>,
}

impl<C: Clone> PerRegion<C> {
    pub fn new(sdk: SdkConfig, make: fn(&SdkConfig, Region) -> C) -> Self {
        PerRegion {
            sdk,
            make,
            clients: Default::default(),
        }
    }

    pub fn get(&self, region: &str) -> C {
        crate::lock(&self.clients)
            .entry(region.to_string())
            .or_insert_with(|| (self.make)(&self.sdk, Region::new(region.to_string())))
            .clone()
    }
}

/// The code and message of an SDK error (`ThrottlingException: Rate exceeded`),
/// or the whole error chain when the service sent no code (timeouts, I/O).
pub fn describe<E>(err: &aws_sdk_sqs::error::SdkError<E>) -> String
where
    E: aws_sdk_sqs::error::ProvideErrorMetadata + std::error::Error + 'static,
{
    use aws_sdk_sqs::error::ProvideErrorMetadata;
    match (err.code(), err.message()) {
        (Some(code), Some(message)) => format!("{code}: {message}"),
        (Some(code), None) => code.to_string(),
        _ => aws_sdk_sqs::error::DisplayErrorContext(err).to_string(),
    }
}

/// Whether an AWS error code means throttling (the codes vary by service).
pub fn is_throttling(code: Option<&str>) -> bool {
    matches!(
        code,
        Some(
            "Throttling"
                | "ThrottlingException"
                | "TooManyRequestsException"
                | "RequestLimitExceeded"
                | "LimitExceededException"
        )
    )
}
