//! SDK clients of one service, made per [`Place`] (account and region) on
//! first use and kept.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use aws_config::{Region, SdkConfig};
use aws_credential_types::provider::SharedCredentialsProvider;

use super::accounts::{Accounts, Place};

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
