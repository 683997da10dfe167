//! One error type for a failed AWS call of any service, and the one
//! classifier that says whether it was throttled and whether it is worth
//! trying again.

use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_runtime_api::http::Response;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

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

    /// SQS no longer knows the receipt: the message came back to the queue
    /// and another receive holds it.
    pub fn is_invalid_receipt(&self) -> bool {
        self.code.as_deref() == Some("ReceiptHandleIsInvalid")
    }

    /// The role of a member account could not be assumed (STS AssumeRole
    /// failed, or no role is configured for it): nothing in that account can
    /// be read until it can.
    pub fn is_unassumable_role(&self) -> bool {
        self.service == "STS" && self.operation == "AssumeRole"
    }
}

/// SDK results, classified into [`Error`]: `.aws(service, operation, target)`
/// names what was called and on what; `.absent_if(..)` first turns the
/// service errors that mean "not there" (a not-found fault, a condition
/// that did not hold) into `Ok(None)`.
// The errors are as large as the SDK's and hubtriage's own: one per failed
// call, on a path that is about to log it, not a hot loop.
#[allow(clippy::result_large_err)]
pub trait AwsResult<T, E> {
    fn aws(
        self,
        service: &'static str,
        operation: &'static str,
        target: impl Into<String>,
    ) -> Result<T, Error>;

    fn absent_if(self, absent: impl FnOnce(&E) -> bool)
        -> Result<Option<T>, SdkError<E, Response>>;
}

impl<T, E> AwsResult<T, E> for Result<T, SdkError<E, Response>>
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    fn aws(
        self,
        service: &'static str,
        operation: &'static str,
        target: impl Into<String>,
    ) -> Result<T, Error> {
        self.map_err(|e| Error::from_sdk(service, operation, target, &e))
    }

    fn absent_if(
        self,
        absent: impl FnOnce(&E) -> bool,
    ) -> Result<Option<T>, SdkError<E, Response>> {
        match self {
            Ok(t) => Ok(Some(t)),
            Err(e) if e.as_service_error().is_some_and(absent) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// A classified result, placed: `.in_region(region)` names the region the call went to.
pub trait InRegion {
    fn in_region(self, region: &str) -> Self;
}

impl<T> InRegion for Result<T, Error> {
    fn in_region(self, region: &str) -> Self {
        self.map_err(|e| e.in_region(region))
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
