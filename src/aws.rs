//! AWS SDK configuration shared by every adapter: the default credential chain
//! and region (ECS container credentials work unchanged), endpoints from
//! `AWS_ENDPOINT_URL` / `AWS_ENDPOINT_URL_<SERVICE>`, and timeouts longer than
//! SQS's 20-second long poll, and the adaptive retry mode. And what every adapter shares: one error type for
//! a failed call of any service, classified in one place, and one client cache.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_runtime_api::http::Response;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use crate::accounts::Accounts;

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

/// A failed AWS call, whatever the service: what was called, for what, where,
/// and how it failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{service} {operation}{}{}: {message}",
    on(target),
    place(account, region)
)]
pub struct Error {
    /// `SQS`, `Neptune`, `Security Hub`, ...
    pub service: &'static str,
    /// `DescribeDBClusters`, `BatchUpdateFindings`, ...
    pub operation: &'static str,
    /// What the call was about (a cluster, a group, a queue URL); may be empty.
    pub target: String,
    /// The service's error code (`ThrottlingException`); `None` for timeouts and I/O.
    pub code: Option<String>,
    /// `code: message` from the service, or the whole error chain without a code.
    pub message: String,
    /// Throttling: worth counting and backing off.
    pub throttled: bool,
    /// Worth trying again: throttling, a 5xx, a timeout or a connection failure.
    pub retryable: bool,
    /// The account the call acted in, when it is not simply the daemon's own.
    pub account: Option<String>,
    /// The region the call went to, when it matters to the reader.
    pub region: Option<String>,
}

fn on(target: &str) -> String {
    if target.is_empty() {
        String::new()
    } else {
        format!(" on {target}")
    }
}

fn place(account: &Option<String>, region: &Option<String>) -> String {
    match (account, region) {
        (Some(a), Some(r)) => format!(" (account {a}, {r})"),
        (Some(a), None) => format!(" (account {a})"),
        (None, Some(r)) => format!(" ({r})"),
        (None, None) => String::new(),
    }
}

impl Error {
    /// Classifies an SDK error of any service (the one classifier).
    pub fn from_sdk<E>(
        service: &'static str,
        operation: &'static str,
        target: impl Into<String>,
        err: &SdkError<E, Response>,
    ) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        let code = err.code().map(str::to_string);
        let status = err.raw_response().map(|r| r.status().as_u16());
        let throttled = is_throttling(code.as_deref()) || status == Some(429);
        let server = status.is_some_and(|s| (500..600).contains(&s));
        let transient = matches!(
            err,
            SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_)
        );
        Error {
            service,
            operation,
            target: target.into(),
            code,
            message: describe(err),
            throttled,
            retryable: throttled || server || transient,
            account: None,
            region: None,
        }
    }

    /// A call that failed without an SDK error: a bad request built, a reply
    /// missing what it must hold, a partial failure.
    pub fn other(
        service: &'static str,
        operation: &'static str,
        target: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Error {
            service,
            operation,
            target: target.into(),
            code: None,
            message: message.into(),
            throttled: false,
            retryable: false,
            account: None,
            region: None,
        }
    }

    /// The same error, naming the region the call went to.
    pub fn in_region(mut self, region: &str) -> Self {
        self.region = Some(region.to_string());
        self
    }
}

/// The code and message of an SDK error (`ThrottlingException: Rate exceeded`),
/// or the whole error chain when the service sent no code (timeouts, I/O).
pub fn describe<E>(err: &SdkError<E, Response>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match (err.code(), err.message()) {
        (Some(code), Some(message)) => format!("{code}: {message}"),
        (Some(code), None) => code.to_string(),
        _ => DisplayErrorContext(err).to_string(),
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

/// Where a client acts: an account (`None`: the daemon's own credentials) and a region.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Place {
    pub account: Option<String>,
    pub region: String,
}

impl Place {
    /// The daemon's own account, in `region`.
    pub fn own(region: &str) -> Self {
        Place {
            account: None,
            region: region.to_string(),
        }
    }
}

/// SDK clients of one service, made per [`Place`] on first use and reused:
/// a place in another account gets that account's role credentials. At most
/// [`MAX_CLIENTS`] are kept; past that, clients idle for [`IDLE`] go first,
/// then the least recently used.
pub struct Clients<C> {
    sdk: SdkConfig,
    accounts: Arc<Accounts>,
    make: fn(&SdkConfig, Region, Option<SharedCredentialsProvider>) -> C,
    clients: std::sync::Mutex<HashMap<Place, (C, std::time::Instant)>>,
}

/// Clients kept per service (accounts × regions in use).
pub const MAX_CLIENTS: usize = 256;
/// A client unused this long may be dropped.
pub const IDLE: Duration = Duration::from_secs(15 * 60);

impl<C: Clone> Clients<C> {
    pub fn new(
        sdk: SdkConfig,
        accounts: Arc<Accounts>,
        make: fn(&SdkConfig, Region, Option<SharedCredentialsProvider>) -> C,
    ) -> Self {
        Clients {
            sdk,
            accounts,
            make,
            clients: Default::default(),
        }
    }

    pub fn get(&self, place: &Place) -> C {
        let now = std::time::Instant::now();
        let mut clients = crate::lock(&self.clients);
        if let Some((client, used)) = clients.get_mut(place) {
            *used = now;
            return client.clone();
        }
        if clients.len() >= MAX_CLIENTS {
            clients.retain(|_, (_, used)| now.duration_since(*used) < IDLE);
        }
        if clients.len() >= MAX_CLIENTS {
            let oldest = clients
                .iter()
                .min_by_key(|(_, (_, used))| *used)
                .map(|(p, _)| p.clone());
            if let Some(p) = oldest {
                clients.remove(&p);
            }
        }
        let client = (self.make)(
            &self.sdk,
            Region::new(place.region.clone()),
            self.accounts.provider(place),
        );
        clients.insert(place.clone(), (client.clone(), now));
        client
    }

    /// Clients kept now.
    pub fn len(&self) -> usize {
        crate::lock(&self.clients).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The function [`Clients`] makes one SDK crate's clients with: the shared
/// config, the place's region, and the account's role credentials (none: the
/// SDK's own chain).
macro_rules! client_maker {
    ($sdk:ident) => {
        |sdk: &::aws_config::SdkConfig,
         region: ::aws_config::Region,
         credentials: Option<::aws_credential_types::provider::SharedCredentialsProvider>| {
            let mut b = $sdk::config::Builder::from(sdk).region(region);
            if credentials.is_some() {
                b.set_credentials_provider(credentials);
            }
            $sdk::Client::from_conf(b.build())
        }
    };
}
pub(crate) use client_maker;

/// The Neptune (RDS API) clients, shared by the reader and the remediation.
pub type NeptuneClients = Clients<aws_sdk_neptune::Client>;

pub fn neptune_clients(sdk: &SdkConfig, accounts: Arc<Accounts>) -> NeptuneClients {
    Clients::new(sdk.clone(), accounts, client_maker!(aws_sdk_neptune))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(code: Option<&str>) -> Error {
        Error {
            service: "Neptune",
            operation: "DescribeDBClusters",
            target: "orders-graph".into(),
            code: code.map(str::to_string),
            message: "ThrottlingException: Rate exceeded".into(),
            throttled: is_throttling(code),
            retryable: true,
            account: None,
            region: None,
        }
    }

    #[test]
    fn errors_name_service_call_target_and_place() {
        let e = error(Some("ThrottlingException"));
        assert_eq!(
            e.to_string(),
            "Neptune DescribeDBClusters on orders-graph: ThrottlingException: Rate exceeded"
        );
        assert!(e.throttled);
        let e = Error {
            account: Some("222222222222".into()),
            ..error(None).in_region("eu-west-1")
        };
        assert_eq!(
            e.to_string(),
            "Neptune DescribeDBClusters on orders-graph (account 222222222222, eu-west-1): ThrottlingException: Rate exceeded"
        );
        let e = Error {
            target: String::new(),
            ..error(None)
        };
        assert!(e.to_string().starts_with("Neptune DescribeDBClusters: "));
    }
}
