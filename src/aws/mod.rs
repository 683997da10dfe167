//! What every AWS adapter shares, and nothing else of hubtriage's:
//!
//! - this file: the SDK configuration (the default credential chain and
//!   region, so ECS task credentials work unchanged; endpoints from
//!   `AWS_ENDPOINT_URL` / `AWS_ENDPOINT_URL_<SERVICE>`; timeouts longer than
//!   SQS's 20-second long poll; the retry modes);
//! - [`error`]: one error type for a failed call of any service, classified in
//!   one place, and the extension trait that turns SDK results into it;
//! - [`accounts`]: whose credentials a call uses (the daemon's own, or a
//!   member account's assumed role), and where it goes ([`Place`]);
//! - [`clients`]: SDK clients made per place and kept.

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};

pub mod accounts;
pub mod clients;
pub mod error;

pub use accounts::{Accounts, Place, RoleSettings};
pub(crate) use clients::client_maker;
pub use clients::{neptune_clients, Clients, NeptuneClients, IDLE, MAX_CLIENTS};
pub use error::{describe, is_throttling, AwsResult, Error, InRegion};

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
        // Adaptive: besides retrying throttled calls with backoff, the client
        // slows its own sending once it has been throttled. (Security Hub's
        // client uses standard retries: see `run::security_hub`.)
        .retry_config(RetryConfig::adaptive())
        .load()
        .await
}

/// `sdk` with standard, not adaptive, retries: for the clients whose calls
/// must not wait on the SDK's own rate limiter (SQS, whose visibility
/// extensions have a deadline; DynamoDB, whose leases do; Security Hub, paced
/// already). Measured with the emulator: after a throttle, adaptive mode held
/// the next calls of a low-rate client for seconds to about 20 s each, and in
/// a fault storm the extensions came too late, so messages came back while
/// still being worked on and the daemons choked on their own redeliveries.
pub fn standard_retries(sdk: &SdkConfig) -> SdkConfig {
    sdk.to_builder()
        .retry_config(RetryConfig::standard())
        .build()
}
