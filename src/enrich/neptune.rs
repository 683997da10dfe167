//! Live Neptune state → `ClusterState`, through the Neptune (RDS) API:
//! DescribeDBClusters, DescribeDBClusterParameters, ListTagsForResource.
//!
//! Clients come from the shared cache (`aws::Clients`, keyed by account and
//! region), so one process serves findings from every region in scope.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_neptune::types::{DbCluster, Filter};
use aws_sdk_neptune::Client;

use crate::accounts::Accounts;
use crate::aws::{Error, NeptuneClients, Place};
use crate::finding::ClusterArn;
use crate::pace::{Api, Pacer};
use crate::state::{AuditParameter, ClusterState, Member, AUDIT_PARAMETER, IN_SYNC};

/// Reads a cluster's live state. `Ok(None)`: the cluster does not exist.
#[async_trait]
pub trait ClusterReader: Send + Sync {
    async fn cluster_state(&self, cluster_arn: &str) -> Result<Option<ClusterState>, Error>;

    /// hubtriage changed this cluster: state read before must not be used again.
    fn forget(&self, _cluster_arn: &str) {}
}

pub struct NeptuneReader {
    clients: Arc<NeptuneClients>,
    accounts: Arc<Accounts>,
    pacer: Arc<Pacer>,
}

impl NeptuneReader {
    pub fn new(clients: Arc<NeptuneClients>, accounts: Arc<Accounts>, pacer: Arc<Pacer>) -> Self {
        NeptuneReader {
            clients,
            accounts,
            pacer,
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

        // Asked by the full ARN, and only an answer with exactly that ARN is this
        // cluster: a same-named cluster in another account, region or partition is not.
        self.pace(&place).await;
        let described = client
            .describe_db_clusters()
            .db_cluster_identifier(cluster_arn)
            .send()
            .await;
        let clusters = match described {
            Ok(out) => out.db_clusters.unwrap_or_default(),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_db_cluster_not_found_fault()) =>
            {
                return Ok(None)
            }
            Err(e) => return Err(Error::from_sdk("Neptune", "DescribeDBClusters", id, &e)),
        };
        let Some(cluster) = the_cluster(clusters, cluster_arn) else {
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
        self.pace(&place).await;
        let audit = audit_parameter(&client, id, &group).await?;

        self.pace(&place).await;
        let tags = client
            .list_tags_for_resource()
            .resource_name(cluster_arn)
            .send()
            .await
            .map_err(|e| Error::from_sdk("Neptune", "ListTagsForResource", id, &e))?
            .tag_list
            .unwrap_or_default()
            .into_iter()
            .filter_map(|t| Some((t.key?, t.value.unwrap_or_default())))
            .collect();

        // Who else uses the group matters only for custom groups.
        let shared_with = if group.starts_with("default.") || group.is_empty() {
            Vec::new()
        } else {
            self.pace(&place).await;
            clusters_on_group(&client, id, &group).await?
        };
        Ok(Some(to_state(&cluster, audit, tags, shared_with)))
    }
}

/// The cluster in a DescribeDBClusters answer whose `DBClusterArn` is exactly
/// `arn`; any other cluster in the answer is logged and never used.
fn the_cluster(clusters: Vec<DbCluster>, arn: &str) -> Option<DbCluster> {
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
        let page = page
            .map_err(|e| Error::from_sdk("Neptune", "DescribeDBClusterParameters", cluster, &e))?;
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

async fn clusters_on_group(
    client: &Client,
    cluster: &str,
    group: &str,
) -> Result<Vec<String>, Error> {
    let mut others = Vec::new();
    let engine = Filter::builder().name("engine").values("neptune").build();
    let mut pages = client
        .describe_db_clusters()
        .filters(engine)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page =
            page.map_err(|e| Error::from_sdk("Neptune", "DescribeDBClusters", cluster, &e))?;
        for c in page.db_clusters() {
            let id = c.db_cluster_identifier().unwrap_or_default();
            if id != cluster && c.db_cluster_parameter_group() == Some(group) {
                others.push(id.to_string());
            }
        }
    }
    Ok(others)
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
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
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
        let mut data = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let n = stream.read(&mut buf).unwrap_or(0);
            if n == 0 {
                break;
            }
            data.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&data);
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let length = head
                    .lines()
                    .find_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        k.eq_ignore_ascii_case("content-length")
                            .then(|| v.trim().parse::<usize>().ok())?
                    })
                    .unwrap_or(0);
                if body.len() >= length {
                    return body.to_string();
                }
            }
        }
        String::new()
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
            Arc::new(Pacer::new(crate::pace::Rates::unpaced())),
        )
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
