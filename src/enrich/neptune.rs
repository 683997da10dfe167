//! Live Neptune state → `ClusterState`, through the Neptune (RDS) API:
//! DescribeDBClusters, DescribeDBClusterParameters, ListTagsForResource.
//!
//! Clients come from the shared cache (`aws::Clients`, keyed by account and
//! region), so one process serves findings from every region in scope.
//!
//! In a storm, reading each cluster on its own costs three Neptune calls, and
//! the RDS API's account quota (12 calls/s) then bounds the drain. So, with a
//! cache TTL, the reader also keeps a *listing* per account and region for half
//! the TTL: one paginated DescribeDBClusters (engine neptune, 100 a page), and
//! the audit parameter of each parameter group once. A cluster then costs one
//! call (ListTagsForResource); one the listing does not hold (created since) is
//! asked for by ARN, as without a listing. `forget` drops the listing of the
//! cluster's account and region with the cluster's own entry.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_neptune::types::{DbCluster, Filter};
use aws_sdk_neptune::Client;
use tokio::sync::OnceCell;
use tokio::time::Instant;

use crate::aws::accounts::Accounts;
use crate::aws::{AwsResult, Error, NeptuneClients, Place};
use crate::finding::ClusterArn;
use crate::pace::{Api, Pacer};
use crate::state::{
    AuditParameter, ClusterSettings, ClusterState, Member, SnapshotState, AUDIT_PARAMETER, IN_SYNC,
};

/// Reads a cluster's live state. `Ok(None)`: the cluster does not exist.
#[async_trait]
pub trait ClusterReader: Send + Sync {
    async fn cluster_state(&self, cluster_arn: &str) -> Result<Option<ClusterState>, Error>;

    /// A cluster snapshot's live state (read afresh each time). `Ok(None)`:
    /// it does not exist.
    async fn snapshot_state(&self, snapshot_arn: &str) -> Result<Option<SnapshotState>, Error>;

    /// hubtriage changed this cluster: state read before must not be used again.
    fn forget(&self, _cluster_arn: &str) {}

    /// The ARN of the Neptune cluster whose `DbClusterResourceId` is
    /// `resource_id` in `account` and `region` (an OCSF finding may name its
    /// cluster by that id alone); `None` when there is none.
    async fn cluster_arn_by_resource_id(
        &self,
        account: &str,
        region: &str,
        resource_id: &str,
    ) -> Result<Option<String>, Error>;
}

pub struct NeptuneReader {
    clients: Arc<NeptuneClients>,
    accounts: Arc<Accounts>,
    pacer: Arc<Pacer>,
    /// How long a listing is used (zero: no listing; every cluster is asked for).
    listing_ttl: Duration,
    listings: Mutex<HashMap<Place, ListingEntry>>,
}

/// The Neptune clusters of one account and region, and the audit parameter of
/// the parameter groups looked at since.
struct Listing {
    clusters: Vec<DbCluster>,
    groups: Mutex<HashMap<String, AuditParameter>>,
}

struct ListingEntry {
    started: Instant,
    listing: Arc<OnceCell<Arc<Listing>>>,
}

impl NeptuneReader {
    /// `cache_ttl`: `[enrich] cache_seconds`; listings live half of it.
    pub fn new(
        clients: Arc<NeptuneClients>,
        accounts: Arc<Accounts>,
        pacer: Arc<Pacer>,
        cache_ttl: Duration,
    ) -> Self {
        NeptuneReader {
            clients,
            accounts,
            pacer,
            listing_ttl: cache_ttl / 2,
            listings: Mutex::default(),
        }
    }

    /// The place's listing, read once per half TTL (single-flight); `None`
    /// without a TTL. A failed listing is not kept.
    async fn listing(&self, place: &Place, client: &Client) -> Result<Option<Arc<Listing>>, Error> {
        if self.listing_ttl.is_zero() {
            return Ok(None);
        }
        let cell = {
            let mut listings = crate::lock(&self.listings);
            let now = Instant::now();
            match listings.get(place) {
                Some(e) if now.duration_since(e.started) < self.listing_ttl => e.listing.clone(),
                _ => {
                    let cell = Arc::new(OnceCell::new());
                    listings.insert(
                        place.clone(),
                        ListingEntry {
                            started: now,
                            listing: cell.clone(),
                        },
                    );
                    cell
                }
            }
        };
        let listing = cell
            .get_or_try_init(|| async {
                self.pace(place).await;
                let clusters = neptune_clusters(client).await?;
                Ok::<_, Error>(Arc::new(Listing {
                    clusters,
                    groups: Mutex::default(),
                }))
            })
            .await;
        match listing {
            Ok(l) => Ok(Some(l.clone())),
            Err(e) => {
                let mut listings = crate::lock(&self.listings);
                if listings
                    .get(place)
                    .is_some_and(|l| Arc::ptr_eq(&l.listing, &cell))
                {
                    listings.remove(place);
                }
                Err(e)
            }
        }
    }

    /// Waits for room in the Neptune read rate of the cluster's place.
    async fn pace(&self, place: &Place) {
        self.pacer
            .wait(Api::NeptuneRead, place.account.as_deref(), &place.region)
            .await;
    }
}

#[async_trait]
impl ClusterReader for NeptuneReader {
    async fn cluster_state(&self, cluster_arn: &str) -> Result<Option<ClusterState>, Error> {
        let Some(arn) = ClusterArn::parse(cluster_arn) else {
            return Ok(None);
        };
        self.read(cluster_arn, arn)
            .await
            .map_err(|e| e.in_region(arn.region))
    }

    async fn snapshot_state(&self, snapshot_arn: &str) -> Result<Option<SnapshotState>, Error> {
        let Some(arn) = ClusterArn::parse_snapshot(snapshot_arn) else {
            return Ok(None);
        };
        self.read_snapshot(snapshot_arn, arn)
            .await
            .map_err(|e| e.in_region(arn.region))
    }

    fn forget(&self, cluster_arn: &str) {
        if let Some(arn) = ClusterArn::parse(cluster_arn) {
            let place = self.accounts.place(arn.account, arn.region);
            crate::lock(&self.listings).remove(&place);
        }
    }

    async fn cluster_arn_by_resource_id(
        &self,
        account: &str,
        region: &str,
        resource_id: &str,
    ) -> Result<Option<String>, Error> {
        let place = self.accounts.place(account, region);
        self.accounts.ready(&place).await?;
        let client = self.clients.get(&place);
        let clusters = match self.listing(&place, &client).await? {
            Some(listing) => listing.clusters.clone(),
            None => {
                self.pace(&place).await;
                neptune_clusters(&client).await?
            }
        };
        Ok(clusters
            .iter()
            .find(|c| c.db_cluster_resource_id() == Some(resource_id))
            .and_then(|c| c.db_cluster_arn())
            .map(str::to_string))
    }
}

impl NeptuneReader {
    async fn read(
        &self,
        cluster_arn: &str,
        arn: ClusterArn<'_>,
    ) -> Result<Option<ClusterState>, Error> {
        // In the cluster's own account: the daemon's, or a member account
        // through its role (which must be assumable before anything is asked).
        let place = self.accounts.place(arn.account, arn.region);
        self.accounts.ready(&place).await?;
        let client = self.clients.get(&place);
        let id = arn.identifier;
        let listing = self.listing(&place, &client).await?;
        let Some(cluster) = self
            .find(&place, &client, listing.as_deref(), cluster_arn, id)
            .await?
        else {
            return Ok(None);
        };
        if cluster.engine() != Some("neptune") {
            // Not ours to read further; the decision ignores it.
            return Ok(Some(to_state(
                &cluster,
                AuditParameter::engine_default(),
                BTreeMap::new(),
                vec![],
            )));
        }
        let group = cluster
            .db_cluster_parameter_group()
            .unwrap_or_default()
            .to_string();
        let audit = self
            .audit_parameter(&place, &client, listing.as_deref(), id, &group)
            .await?;
        self.pace(&place).await;
        let tags = tags(&client, cluster_arn, id).await?;
        // Who else uses the group matters only for custom groups.
        let shared_with = if group.starts_with("default.") || group.is_empty() {
            Vec::new()
        } else if let Some(l) = &listing {
            on_group(&l.clusters, id, &group)
        } else {
            self.pace(&place).await;
            on_group(&neptune_clusters(&client).await?, id, &group)
        };
        Ok(Some(to_state(&cluster, audit, tags, shared_with)))
    }

    /// A snapshot's state: DescribeDBClusterSnapshots (by identifier, in the
    /// snapshot's own account and region; only the answer with exactly the
    /// finding's ARN is used), its `restore` attribute, and its tags.
    async fn read_snapshot(
        &self,
        snapshot_arn: &str,
        arn: ClusterArn<'_>,
    ) -> Result<Option<SnapshotState>, Error> {
        let place = self.accounts.place(arn.account, arn.region);
        self.accounts.ready(&place).await?;
        let client = self.clients.get(&place);
        let id = arn.identifier;
        self.pace(&place).await;
        let mut ask = client
            .describe_db_cluster_snapshots()
            .db_cluster_snapshot_identifier(id);
        if id.starts_with("rds:") {
            ask = ask.snapshot_type("automated");
        }
        let described = ask
            .send()
            .await
            .absent_if(|e| e.is_db_cluster_snapshot_not_found_fault())
            .aws("Neptune", "DescribeDBClusterSnapshots", id)?;
        let Some(snapshot) = described.and_then(|out| {
            out.db_cluster_snapshots
                .unwrap_or_default()
                .into_iter()
                .find(|s| s.db_cluster_snapshot_arn() == Some(snapshot_arn))
        }) else {
            return Ok(None);
        };
        let mut state = SnapshotState {
            identifier: snapshot
                .db_cluster_snapshot_identifier()
                .unwrap_or(id)
                .to_string(),
            arn: snapshot_arn.to_string(),
            cluster: snapshot
                .db_cluster_identifier()
                .unwrap_or_default()
                .to_string(),
            engine: snapshot.engine().unwrap_or_default().to_string(),
            status: snapshot.status().unwrap_or_default().to_string(),
            snapshot_type: snapshot.snapshot_type().unwrap_or_default().to_string(),
            storage_encrypted: snapshot.storage_encrypted().unwrap_or(false),
            restore: Vec::new(),
            tags: BTreeMap::new(),
        };
        if state.engine != "neptune" {
            // Not ours to read further; the decision ignores it.
            return Ok(Some(state));
        }
        self.pace(&place).await;
        state.restore = snapshot_restore(&client, id).await?.unwrap_or_default();
        self.pace(&place).await;
        state.tags = tags(&client, snapshot_arn, id).await?;
        Ok(Some(state))
    }

    /// The cluster with exactly the finding's ARN, from the listing or asked
    /// for by ARN: a same-named cluster in another account, region or
    /// partition is not this cluster.
    async fn find(
        &self,
        place: &Place,
        client: &Client,
        listing: Option<&Listing>,
        cluster_arn: &str,
        id: &str,
    ) -> Result<Option<DbCluster>, Error> {
        let listed = listing.and_then(|l| {
            l.clusters
                .iter()
                .find(|c| c.db_cluster_arn() == Some(cluster_arn))
                .cloned()
        });
        match listed {
            Some(c) => Ok(Some(c)),
            None => self.describe(place, client, cluster_arn, id).await,
        }
    }

    /// `neptune_enable_audit_log` in `group`, read once per listing.
    async fn audit_parameter(
        &self,
        place: &Place,
        client: &Client,
        listing: Option<&Listing>,
        id: &str,
        group: &str,
    ) -> Result<AuditParameter, Error> {
        if let Some(known) = listing.and_then(|l| crate::lock(&l.groups).get(group).cloned()) {
            return Ok(known);
        }
        self.pace(place).await;
        let a = audit_parameter(client, id, group).await?;
        if let Some(l) = listing {
            crate::lock(&l.groups).insert(group.to_string(), a.clone());
        }
        Ok(a)
    }

    /// The cluster asked for by its full ARN; `None` when it does not exist or
    /// the answer holds no cluster with that ARN.
    async fn describe(
        &self,
        place: &Place,
        client: &Client,
        cluster_arn: &str,
        id: &str,
    ) -> Result<Option<DbCluster>, Error> {
        self.pace(place).await;
        let described = client
            .describe_db_clusters()
            .db_cluster_identifier(cluster_arn)
            .send()
            .await
            .absent_if(|e| e.is_db_cluster_not_found_fault())
            .aws("Neptune", "DescribeDBClusters", id)?;
        Ok(described
            .and_then(|out| exactly_this_cluster(out.db_clusters.unwrap_or_default(), cluster_arn)))
    }
}

/// The cluster in a DescribeDBClusters answer whose `DBClusterArn` is exactly
/// `arn`; any other cluster in the answer is logged and never used.
fn exactly_this_cluster(clusters: Vec<DbCluster>, arn: &str) -> Option<DbCluster> {
    let mut found = None;
    for c in clusters {
        if c.db_cluster_arn() == Some(arn) {
            found = Some(c);
        } else {
            tracing::warn!(
                wanted = arn,
                answered = c.db_cluster_arn().unwrap_or("(no ARN)"),
                "DescribeDBClusters answered with another cluster; not this finding's cluster, ignored"
            );
        }
    }
    found
}

/// A snapshot's `restore` attribute; `None` when the snapshot does not exist.
pub async fn snapshot_restore(
    client: &Client,
    snapshot: &str,
) -> Result<Option<Vec<String>>, Error> {
    let described = client
        .describe_db_cluster_snapshot_attributes()
        .db_cluster_snapshot_identifier(snapshot)
        .send()
        .await
        .absent_if(|e| e.is_db_cluster_snapshot_not_found_fault())
        .aws("Neptune", "DescribeDBClusterSnapshotAttributes", snapshot)?;
    Ok(described.map(|out| {
        out.db_cluster_snapshot_attributes_result()
            .map(|r| r.db_cluster_snapshot_attributes())
            .unwrap_or_default()
            .iter()
            .filter(|a| a.attribute_name() == Some("restore"))
            .flat_map(|a| a.attribute_values().iter().cloned())
            .collect()
    }))
}

/// The resource's tags.
async fn tags(
    client: &Client,
    cluster_arn: &str,
    id: &str,
) -> Result<BTreeMap<String, String>, Error> {
    Ok(client
        .list_tags_for_resource()
        .resource_name(cluster_arn)
        .send()
        .await
        .aws("Neptune", "ListTagsForResource", id)?
        .tag_list
        .unwrap_or_default()
        .into_iter()
        .filter_map(|t| Some((t.key?, t.value.unwrap_or_default())))
        .collect())
}

async fn audit_parameter(
    client: &Client,
    cluster: &str,
    group: &str,
) -> Result<AuditParameter, Error> {
    let mut pages = client
        .describe_db_cluster_parameters()
        .db_cluster_parameter_group_name(group)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.aws("Neptune", "DescribeDBClusterParameters", cluster)?;
        if let Some(p) = page
            .parameters()
            .iter()
            .find(|p| p.parameter_name() == Some(AUDIT_PARAMETER))
        {
            return Ok(AuditParameter {
                value: p.parameter_value().unwrap_or("0").to_string(),
                source: p.source().map(str::to_string),
                apply_method: p.apply_method().map(|m| m.as_str().to_string()),
            });
        }
    }
    Ok(AuditParameter::engine_default())
}

/// Every Neptune cluster of the client's account and region (all pages).
async fn neptune_clusters(client: &Client) -> Result<Vec<DbCluster>, Error> {
    let mut clusters = Vec::new();
    let engine = Filter::builder().name("engine").values("neptune").build();
    let mut pages = client
        .describe_db_clusters()
        .filters(engine)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.aws("Neptune", "DescribeDBClusters", "")?;
        clusters.extend(page.db_clusters.unwrap_or_default());
    }
    Ok(clusters)
}

/// The other clusters on `group`.
fn on_group(clusters: &[DbCluster], cluster: &str, group: &str) -> Vec<String> {
    clusters
        .iter()
        .filter(|c| c.db_cluster_parameter_group() == Some(group))
        .filter_map(|c| c.db_cluster_identifier())
        .filter(|id| *id != cluster)
        .map(str::to_string)
        .collect()
}

fn to_state(
    c: &DbCluster,
    audit_parameter: AuditParameter,
    tags: BTreeMap<String, String>,
    group_shared_with: Vec<String>,
) -> ClusterState {
    ClusterState {
        identifier: c.db_cluster_identifier().unwrap_or_default().to_string(),
        arn: c.db_cluster_arn().unwrap_or_default().to_string(),
        engine: c.engine().unwrap_or_default().to_string(),
        engine_version: c.engine_version().unwrap_or_default().to_string(),
        status: c.status().unwrap_or_default().to_string(),
        parameter_group: c
            .db_cluster_parameter_group()
            .unwrap_or_default()
            .to_string(),
        exported_logs: c.enabled_cloudwatch_logs_exports().to_vec(),
        members: c
            .db_cluster_members()
            .iter()
            .map(|m| Member {
                instance: m.db_instance_identifier().unwrap_or_default().to_string(),
                is_writer: m.is_cluster_writer().unwrap_or(false),
                parameter_group_status: m
                    .db_cluster_parameter_group_status()
                    .unwrap_or(IN_SYNC)
                    .to_string(),
            })
            .collect(),
        maintenance_window: c.preferred_maintenance_window().map(str::to_string),
        audit_parameter,
        tags,
        group_shared_with,
        audit_log_retention_days: None,
        settings: settings_of(c),
    }
}

/// The settings Neptune.1, .4, .5, .7, .8 and .9 check, as DescribeDBClusters gives them.
pub fn settings_of(c: &DbCluster) -> ClusterSettings {
    ClusterSettings {
        storage_encrypted: c.storage_encrypted().unwrap_or(false),
        deletion_protection: c.deletion_protection().unwrap_or(false),
        backup_retention_period: c.backup_retention_period().unwrap_or(0),
        iam_database_authentication: c.iam_database_authentication_enabled().unwrap_or(false),
        copy_tags_to_snapshot: c.copy_tags_to_snapshot().unwrap_or(false),
        multi_az: c.multi_az().unwrap_or(false),
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::net::TcpListener;
    use std::sync::Mutex;

    use super::*;

    const WANTED: &str = "arn:aws:rds:us-east-1:111122223333:cluster:reports";

    /// A loopback Neptune that answers every DescribeDBClusters with one cluster
    /// whose ARN is `answered_arn`, and records the actions it was asked for.
    fn fake_neptune(answered_arn: &'static str) -> (String, Arc<Mutex<Vec<String>>>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let actions = Arc::new(Mutex::new(Vec::new()));
        let seen = actions.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let request = read_request(&mut stream);
                let action = request
                    .split('&')
                    .find_map(|kv| kv.strip_prefix("Action="))
                    .unwrap_or("")
                    .to_string();
                seen.lock().unwrap().push(action.clone());
                let body = answer(&action, answered_arn);
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        (url, actions)
    }

    fn read_request(stream: &mut std::net::TcpStream) -> String {
        let (_, body) = crate::testing::read_http_request(stream);
        String::from_utf8_lossy(&body).to_string()
    }

    fn answer(action: &str, arn: &str) -> String {
        let result = match action {
            "DescribeDBClusters" => format!(
                "<DBClusters><DBCluster><DBClusterIdentifier>reports</DBClusterIdentifier>\
                 <DBClusterArn>{arn}</DBClusterArn><Engine>neptune</Engine>\
                 <EngineVersion>1.3.2.1</EngineVersion><Status>available</Status>\
                 <DBClusterParameterGroup>default.neptune1.3</DBClusterParameterGroup>\
                 <DBClusterMembers/></DBCluster></DBClusters>"
            ),
            "DescribeDBClusterParameters" => "<Parameters/>".to_string(),
            "ListTagsForResource" => {
                "<TagList><Tag><Key>env</Key><Value>dev</Value></Tag></TagList>".to_string()
            }
            _ => String::new(),
        };
        format!(
            "<{action}Response xmlns=\"http://rds.amazonaws.com/doc/2014-10-31/\">\
             <{action}Result>{result}</{action}Result>\
             <ResponseMetadata><RequestId>1</RequestId></ResponseMetadata></{action}Response>"
        )
    }

    async fn reader(url: &str) -> NeptuneReader {
        reader_with(url, Duration::ZERO).await
    }

    async fn reader_with(url: &str, cache_ttl: Duration) -> NeptuneReader {
        let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .endpoint_url(url)
            .credentials_provider(aws_sdk_neptune::config::Credentials::new(
                "testing", "testing", None, None, "tests",
            ))
            .load()
            .await;
        let accounts = Arc::new(Accounts::new(
            &sdk,
            "123456789012",
            crate::config::OwnAccount::Direct,
            None,
        ));
        NeptuneReader::new(
            Arc::new(crate::aws::neptune_clients(&sdk, accounts.clone())),
            accounts,
            Arc::new(Pacer::new(crate::config::Rates::unpaced())),
            cache_ttl,
        )
    }

    #[tokio::test]
    async fn a_listing_serves_its_places_clusters_until_hubtriage_changes_one() {
        let (url, actions) = fake_neptune(WANTED);
        let r = reader_with(&url, Duration::from_secs(60)).await;
        let first = r.cluster_state(WANTED).await.unwrap().expect("listed");
        assert_eq!(first.arn, WANTED);
        let again = r.cluster_state(WANTED).await.unwrap().expect("listed");
        assert_eq!(again, first);
        // One listing and one parameter read for both; tags each time.
        assert_eq!(
            *actions.lock().unwrap(),
            vec![
                "DescribeDBClusters",
                "DescribeDBClusterParameters",
                "ListTagsForResource",
                "ListTagsForResource"
            ]
        );
        // hubtriage changed the cluster: its place is listed again.
        r.forget(WANTED);
        actions.lock().unwrap().clear();
        r.cluster_state(WANTED).await.unwrap().expect("listed");
        assert_eq!(actions.lock().unwrap()[0], "DescribeDBClusters");
        assert_eq!(actions.lock().unwrap().len(), 3);
    }

    #[tokio::test]
    async fn a_cluster_missing_from_the_listing_is_asked_for_by_arn() {
        // The listing (like every answer of this fake) holds another ARN only.
        let (url, actions) = fake_neptune("arn:aws:rds:us-east-1:111122223333:cluster:other");
        let r = reader_with(&url, Duration::from_secs(60)).await;
        assert_eq!(r.cluster_state(WANTED).await.unwrap(), None);
        assert_eq!(
            *actions.lock().unwrap(),
            vec!["DescribeDBClusters", "DescribeDBClusters"],
            "the listing, then the cluster by its ARN"
        );
    }

    #[tokio::test]
    async fn an_answer_for_another_arn_is_never_used() {
        for other in [
            "arn:aws:rds:us-east-1:123456789012:cluster:reports", // another account
            "arn:aws:rds:eu-west-1:111122223333:cluster:reports", // another region
            "arn:aws-cn:rds:us-east-1:111122223333:cluster:reports", // another partition
        ] {
            let (url, actions) = fake_neptune(other);
            let state = reader(&url).await.cluster_state(WANTED).await.unwrap();
            assert_eq!(state, None, "{other} was taken for {WANTED}");
            // Nothing more was read about it (its tags, its parameter group).
            assert_eq!(*actions.lock().unwrap(), vec!["DescribeDBClusters"]);
        }
    }

    #[tokio::test]
    async fn the_answer_with_the_findings_arn_is_read_in_full() {
        let (url, actions) = fake_neptune(WANTED);
        let state = reader(&url)
            .await
            .cluster_state(WANTED)
            .await
            .unwrap()
            .expect("the cluster");
        assert_eq!(state.arn, WANTED);
        assert_eq!(state.tags.get("env").map(String::as_str), Some("dev"));
        assert_eq!(
            *actions.lock().unwrap(),
            vec![
                "DescribeDBClusters",
                "DescribeDBClusterParameters",
                "ListTagsForResource"
            ]
        );
    }
}
