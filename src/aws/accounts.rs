//! Reaching a finding's account. hubtriage runs in the delegated administrator
//! account; a finding from a member account is read and fixed through a role
//! it assumes there (`[accounts] role_arn`, with `{account}` standing for the
//! finding's AwsAccountId). Credentials come from STS AssumeRole (with the
//! external id and session name), are kept per account and renewed before they
//! expire; a failure is remembered for a short while, so an account whose role
//! cannot be assumed does not cost an AssumeRole per finding.
//!
//! [`Accounts::place`] says whose credentials a call uses; [`Accounts::ready`]
//! makes sure they can be had before any other call into that account.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use aws_config::SdkConfig;
use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::{future, ProvideCredentials, SharedCredentialsProvider};
use aws_credential_types::Credentials;
use tokio::time::Instant;

use super::error::{AwsResult, Error};
use crate::config::{OwnAccount, ACCOUNT_PLACEHOLDER};

/// Credentials are renewed when they have less than this left.
const RENEW_BEFORE: Duration = Duration::from_secs(5 * 60);
/// How long a failed AssumeRole is remembered before it is tried again.
const RETRY_FAILED_AFTER: Duration = Duration::from_secs(30);
/// The life asked for assumed-role credentials.
const SESSION_SECONDS: i32 = 3600;

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

/// The account the daemon's own credentials act in, and its partition
/// (`aws`, `aws-cn`, `aws-us-gov`), learnt once at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub account: String,
    pub partition: String,
}

/// Asks STS GetCallerIdentity who the daemon's own credentials are.
pub async fn own_identity(sdk: &SdkConfig) -> Result<Identity, Error> {
    let out = aws_sdk_sts::Client::new(sdk)
        .get_caller_identity()
        .send()
        .await
        .aws("STS", "GetCallerIdentity", "")?;
    let account = match out.account() {
        Some(a) if a.len() == 12 && a.bytes().all(|b| b.is_ascii_digit()) => a.to_string(),
        other => {
            return Err(Error::other(
                "STS",
                "GetCallerIdentity",
                "",
                format!("expected a 12-digit account id, got {other:?}"),
            ))
        }
    };
    // arn:<partition>:sts::<account>:assumed-role/...
    let partition = out
        .arn()
        .and_then(|arn| arn.split(':').nth(1))
        .filter(|p| p.starts_with("aws"))
        .unwrap_or("aws")
        .to_string();
    Ok(Identity { account, partition })
}

impl RoleSettings {
    /// `[accounts]` with the external id read from its environment variable;
    /// `None` without a role. A variable named but not set (or of the wrong
    /// length) is an error naming it.
    pub fn from_config(a: &crate::config::Accounts) -> Result<Option<RoleSettings>, String> {
        let Some(role_arn) = &a.role_arn else {
            return Ok(None);
        };
        let external_id = match &a.external_id_env {
            None => None,
            Some(name) => match std::env::var(name) {
                Ok(v) if (2..=1224).contains(&v.len()) => Some(v),
                Ok(_) => {
                    return Err(format!(
                        "{name} ([accounts] external_id_env) must hold 2 to 1224 characters (STS's limit)"
                    ))
                }
                Err(_) => {
                    return Err(format!(
                        "{name} is not set: [accounts] external_id_env names it as the external id for AssumeRole"
                    ))
                }
            },
        };
        Ok(Some(RoleSettings {
            role_arn: role_arn.clone(),
            external_id,
            session_name: a.session_name.clone(),
        }))
    }
}

/// How hubtriage reaches accounts: its own, and others through a role.
pub struct Accounts {
    own_account: String,
    own: OwnAccount,
    role: Option<RoleSettings>,
    sts: aws_sdk_sts::Client,
    assumed: Mutex<HashMap<String, Arc<AssumedRole>>>,
}

/// `[accounts]`, with the external id read from its environment variable.
#[derive(Clone)]
pub struct RoleSettings {
    /// `arn:aws:iam::{account}:role/hubtriage-member`
    pub role_arn: String,
    pub external_id: Option<String>,
    pub session_name: String,
}

impl std::fmt::Debug for RoleSettings {
    /// The external id is left out: it is a shared secret of sorts.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RoleSettings")
            .field("role_arn", &self.role_arn)
            .field("external_id", &self.external_id.as_ref().map(|_| "(set)"))
            .field("session_name", &self.session_name)
            .finish()
    }
}

impl Accounts {
    /// `role`: `None` when no role is configured (own account only).
    pub fn new(
        sdk: &SdkConfig,
        own_account: impl Into<String>,
        own: OwnAccount,
        role: Option<RoleSettings>,
    ) -> Self {
        Accounts {
            own_account: own_account.into(),
            own,
            role,
            sts: aws_sdk_sts::Client::new(sdk),
            assumed: Mutex::default(),
        }
    }

    pub fn own_account(&self) -> &str {
        &self.own_account
    }

    /// Whose credentials calls for `account` in `region` use: the daemon's own
    /// (`account: None`) or the account's role.
    pub fn place(&self, account: &str, region: &str) -> Place {
        let direct =
            self.role.is_none() || (account == self.own_account && self.own == OwnAccount::Direct);
        Place {
            account: (!direct).then(|| account.to_string()),
            region: region.to_string(),
        }
    }

    /// The role ARN for `account`, when a role is configured.
    pub fn role_arn(&self, account: &str) -> Option<String> {
        self.role
            .as_ref()
            .map(|r| r.role_arn.replace(ACCOUNT_PLACEHOLDER, account))
    }

    /// Makes sure calls at `place` can be made: for another account, that its
    /// role can be assumed (an AssumeRole the first time, and when the
    /// credentials near their expiry). The error names the account, the role
    /// and the AWS error code.
    pub async fn ready(&self, place: &Place) -> Result<(), Error> {
        match &place.account {
            None => Ok(()),
            Some(account) => match self.assumed(account) {
                Some(role) => role.credentials().await.map(|_| ()),
                None => Err(Error::other(
                    "STS",
                    "AssumeRole",
                    "",
                    format!("no role to assume in account {account} ([accounts] role_arn)"),
                )),
            },
        }
    }

    /// The credentials provider for calls at `place` (`None`: the SDK's own chain).
    pub fn provider(&self, place: &Place) -> Option<SharedCredentialsProvider> {
        let account = place.account.as_deref()?;
        let role = self.assumed(account)?;
        Some(SharedCredentialsProvider::new(Provider(role)))
    }

    /// The account's role, made on first use and kept.
    fn assumed(&self, account: &str) -> Option<Arc<AssumedRole>> {
        let settings = self.role.as_ref()?;
        let mut assumed = crate::lock(&self.assumed);
        let role = assumed.entry(account.to_string()).or_insert_with(|| {
            Arc::new(AssumedRole {
                sts: self.sts.clone(),
                account: account.to_string(),
                role_arn: settings.role_arn.replace(ACCOUNT_PLACEHOLDER, account),
                external_id: settings.external_id.clone(),
                session_name: settings.session_name.clone(),
                cached: tokio::sync::Mutex::new(Cached::Nothing),
            })
        });
        Some(role.clone())
    }
}

/// One account's role and the credentials last had from it.
struct AssumedRole {
    sts: aws_sdk_sts::Client,
    account: String,
    role_arn: String,
    external_id: Option<String>,
    session_name: String,
    cached: tokio::sync::Mutex<Cached>,
}

enum Cached {
    Nothing,
    Credentials(Credentials),
    Failed(Error, Instant),
}

impl AssumedRole {
    /// Credentials with time left, assuming the role again when needed. One
    /// AssumeRole at a time per account: concurrent callers wait for it.
    async fn credentials(&self) -> Result<Credentials, Error> {
        let mut cached = self.cached.lock().await;
        match &*cached {
            Cached::Credentials(c) if has_time_left(c) => return Ok(c.clone()),
            Cached::Failed(e, at) if at.elapsed() < RETRY_FAILED_AFTER => return Err(e.clone()),
            _ => {}
        }
        let result = self.assume().await;
        *cached = match &result {
            Ok(c) => Cached::Credentials(c.clone()),
            Err(e) => Cached::Failed(e.clone(), Instant::now()),
        };
        result
    }

    async fn assume(&self) -> Result<Credentials, Error> {
        let fail = |message: String, code: Option<String>| {
            let mut e = Error::other("STS", "AssumeRole", &self.role_arn, message);
            e.account = Some(self.account.clone());
            e.code = code;
            e
        };
        let out = self
            .sts
            .assume_role()
            .role_arn(&self.role_arn)
            .role_session_name(&self.session_name)
            .set_external_id(self.external_id.clone())
            .duration_seconds(SESSION_SECONDS)
            .send()
            .await
            .aws("STS", "AssumeRole", &self.role_arn)
            .map_err(|mut err| {
                err.account = Some(self.account.clone());
                err
            })?;
        let Some(c) = out.credentials() else {
            return Err(fail("the reply holds no credentials".into(), None));
        };
        let expires = SystemTime::try_from(*c.expiration()).map_err(|e| {
            fail(
                format!("the credentials' expiration cannot be read: {e}"),
                None,
            )
        })?;
        tracing::info!(account = %self.account, role = %self.role_arn, "assumed the member account's role");
        Ok(Credentials::new(
            c.access_key_id(),
            c.secret_access_key(),
            Some(c.session_token().to_string()),
            Some(expires),
            "hubtriage-assume-role",
        ))
    }
}

fn has_time_left(c: &Credentials) -> bool {
    match c.expiry() {
        Some(at) => at
            .duration_since(SystemTime::now())
            .is_ok_and(|left| left > RENEW_BEFORE),
        None => true,
    }
}

/// An account's role as an SDK credentials provider.
struct Provider(Arc<AssumedRole>);

impl std::fmt::Debug for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AssumedRole({})", self.0.role_arn)
    }
}

impl ProvideCredentials for Provider {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        future::ProvideCredentials::new(async move {
            self.0
                .credentials()
                .await
                .map_err(CredentialsError::provider_error)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn accounts(own: OwnAccount, role: bool) -> Accounts {
        let sdk = aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .build();
        let role = role.then(|| RoleSettings {
            role_arn: "arn:aws:iam::{account}:role/hubtriage-member".into(),
            external_id: Some("secret-ish".into()),
            session_name: "hubtriage".into(),
        });
        Accounts::new(&sdk, "111122223333", own, role)
    }

    #[tokio::test]
    async fn calls_use_the_role_only_where_one_is_needed() {
        let a = accounts(OwnAccount::Direct, true).await;
        assert_eq!(
            a.place("111122223333", "eu-west-1"),
            Place::own("eu-west-1")
        );
        let member = a.place("222222222222", "eu-west-1");
        assert_eq!(member.account.as_deref(), Some("222222222222"));
        assert_eq!(member.region, "eu-west-1");
        assert_eq!(
            a.role_arn("222222222222").as_deref(),
            Some("arn:aws:iam::222222222222:role/hubtriage-member")
        );
        assert!(a.provider(&member).is_some());
        assert!(a.provider(&Place::own("eu-west-1")).is_none());

        let assume = accounts(OwnAccount::Assume, true).await;
        assert_eq!(
            assume.place("111122223333", "us-east-1").account.as_deref(),
            Some("111122223333")
        );

        let none = accounts(OwnAccount::Direct, false).await;
        assert_eq!(
            none.place("222222222222", "us-east-1"),
            Place::own("us-east-1")
        );
        assert!(none.role_arn("222222222222").is_none());
    }

    #[tokio::test]
    async fn clients_are_reused_per_place_and_bounded() {
        let a = Arc::new(accounts(OwnAccount::Direct, true).await);
        let sdk = aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .build();
        let clients: crate::aws::Clients<(String, bool)> =
            crate::aws::Clients::new(sdk, a.clone(), |_, region, credentials| {
                (region.to_string(), credentials.is_some())
            });
        let member = a.place("222222222222", "eu-west-1");
        assert_eq!(clients.get(&member), ("eu-west-1".to_string(), true));
        assert!(!clients.get(&Place::own("eu-west-1")).1);
        assert_eq!(clients.len(), 2);
        clients.get(&member);
        assert_eq!(clients.len(), 2, "reused");
        for n in 0..(crate::aws::MAX_CLIENTS + 10) {
            clients.get(&a.place(
                &format!("{:012}", 300_000_000_000u64 + n as u64),
                "us-east-1",
            ));
        }
        assert_eq!(clients.len(), crate::aws::MAX_CLIENTS, "bounded");
    }

    #[test]
    fn the_external_id_is_never_printed() {
        let r = RoleSettings {
            role_arn: "arn:aws:iam::{account}:role/r".into(),
            external_id: Some("do-not-print".into()),
            session_name: "s".into(),
        };
        let text = format!("{r:?}");
        assert!(!text.contains("do-not-print"), "{text}");
        assert!(text.contains("(set)"), "{text}");
    }
}
