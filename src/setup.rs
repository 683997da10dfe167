//! `hubtriage setup`: for users without CloudFormation (and for tests), create or
//! update what feeds the queue: the dead-letter queue and redrive policy, the
//! queue policy, and the EventBridge rule with its SQS target; and, with
//! `[coordination] table` and `[journal] table`, those DynamoDB tables
//! (`setup/tables.rs`). Idempotent: a second run
//! changes nothing. The rule's event pattern is defined here once;
//! `deploy/hubtriage.yaml` is checked against it by a test.

use aws_sdk_eventbridge::types::{RuleState, Target};
use aws_sdk_sqs::types::QueueAttributeName;
use serde_json::{json, Value};

use crate::aws::{AwsResult, Error};
use crate::config::{Config, Queue};
use crate::control::ids;
use crate::finding::Compliance;

mod tables;

use tables::TableSpec;

/// The EventBridge pattern for Security Hub's findings of the controls
/// hubtriage triages (every Neptune control, and the RDS controls decided as
/// one: `control::ids::routed`), FAILED and PASSED (so resolutions are seen
/// too), from Security Hub's own product only, in both formats: CSPM's ASFF
/// events (the consolidated `Compliance.SecurityControlId`, and the
/// standard-specific `ProductFields.ControlId`, also in Control Tower's
/// `CT.` form) and the new Security Hub's OCSF events (`compliance.control`).
/// One flat `$or` of three alternatives.
pub fn event_pattern() -> Value {
    let (asff_statuses, ocsf_statuses) = Compliance::routed();
    let routed = ids::routed();
    let standard_specific: Vec<String> = routed
        .iter()
        .map(|id| id.to_string())
        .chain(ids::triaged().iter().map(|id| format!("CT.{id}")))
        .collect();
    let asff = |control: Value| {
        json!({
            "detail-type": [crate::finding::DETAIL_TYPE_IMPORTED],
            "detail": {"findings": merge(json!({
                "ProductArn": [{"suffix": "::product/aws/securityhub"}],
                "Compliance": {"Status": asff_statuses}
            }), control)}
        })
    };
    json!({
        "source": ["aws.securityhub"],
        "$or": [
            asff(json!({"Compliance": {"SecurityControlId": routed}})),
            asff(json!({"ProductFields": {"ControlId": standard_specific}})),
            {
                "detail-type": [crate::finding::DETAIL_TYPE_V2],
                "detail": {"findings": {
                    "metadata": {"product": {"uid": [{"suffix": "::productv2/aws/securityhub"}]}},
                    "compliance": {"control": routed, "status": ocsf_statuses}
                }}
            }
        ]
    })
}

/// `extra`'s fields added to `base`, objects merged key by key.
fn merge(mut base: Value, extra: Value) -> Value {
    if let (Some(b), Value::Object(e)) = (base.as_object_mut(), extra) {
        for (k, v) in e {
            let merged = match b.remove(&k) {
                Some(old) if old.is_object() && v.is_object() => merge(old, v),
                _ => v,
            };
            b.insert(k, merged);
        }
    }
    base
}

#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("{0}")]
    Aws(#[from] Error),
    #[error("config: {0}")]
    Config(String),
    /// Something setup made did not become ready in time.
    #[error("{0}")]
    Timeout(String),
}

/// One thing setup did (or, with `--dry-run`, would do).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change(pub String);

pub struct Setup {
    sqs: aws_sdk_sqs::Client,
    events: aws_sdk_eventbridge::Client,
    dynamodb: aws_sdk_dynamodb::Client,
    dry_run: bool,
    changes: Vec<Change>,
    /// How long a new DynamoDB table is waited for, and how often it is looked at.
    table_wait: (std::time::Duration, std::time::Duration),
}

/// A new coordination table becomes ACTIVE within this long, or setup says so.
pub const TABLE_WAIT: std::time::Duration = std::time::Duration::from_secs(120);

impl Setup {
    pub fn new(sdk: &aws_config::SdkConfig, dry_run: bool) -> Self {
        Setup {
            sqs: aws_sdk_sqs::Client::new(sdk),
            events: aws_sdk_eventbridge::Client::new(sdk),
            dynamodb: aws_sdk_dynamodb::Client::new(sdk),
            dry_run,
            changes: Vec::new(),
            table_wait: (TABLE_WAIT, std::time::Duration::from_secs(2)),
        }
    }

    /// Waits `total` for a new table, looking every `every` (tests make it short).
    pub fn with_table_wait(
        mut self,
        total: std::time::Duration,
        every: std::time::Duration,
    ) -> Self {
        self.table_wait = (total, every);
        self
    }

    fn change(&mut self, what: String) -> bool {
        let verb = if self.dry_run { "would " } else { "" };
        self.changes.push(Change(format!("{verb}{what}")));
        !self.dry_run
    }

    /// Brings the queue, DLQ, policies and rule to what `config` asks for;
    /// `queue` is `config.queue`, which the caller has required with
    /// [`Config::require_queue`].
    pub async fn run(mut self, config: &Config, queue: &Queue) -> Result<Vec<Change>, SetupError> {
        let queue_url = queue.url.clone();
        let queue_name = queue_url
            .rsplit('/')
            .next()
            .filter(|n| !n.is_empty())
            .ok_or_else(|| SetupError::Config(format!("[queue] url {queue_url:?} names no queue")))?
            .to_string();
        let dlq_name = format!("{queue_name}-dlq");

        let queue_url = self.ensure_queue(&queue_name).await?;
        let dlq_url = self.ensure_queue(&dlq_name).await?;
        let queue_arn = self.queue_arn(queue_url.as_deref(), &queue_name).await?;
        let dlq_arn = self.queue_arn(dlq_url.as_deref(), &dlq_name).await?;
        let rule_arn = self.ensure_rule(&config.setup.rule_name).await?;
        self.ensure_target(&config.setup.rule_name, &queue_arn)
            .await?;

        let redrive = json!({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": config.setup.max_receive_count});
        let policy = json!({
            "Version": "2012-10-17",
            "Statement": [{
                "Sid": "EventBridgeRuleOnly",
                "Effect": "Allow",
                "Principal": {"Service": "events.amazonaws.com"},
                "Action": "sqs:SendMessage",
                "Resource": queue_arn,
                "Condition": {"ArnEquals": {"aws:SourceArn": rule_arn}}
            }]
        });
        if let Some(url) = &queue_url {
            let current = self
                .sqs
                .get_queue_attributes()
                .queue_url(url)
                .attribute_names(QueueAttributeName::RedrivePolicy)
                .attribute_names(QueueAttributeName::Policy)
                .send()
                .await
                .aws("SQS", "GetQueueAttributes", url)?
                .attributes
                .unwrap_or_default();
            let same = |name: QueueAttributeName, want: &Value| {
                current
                    .get(&name)
                    .and_then(|v| serde_json::from_str::<Value>(v).ok())
                    .is_some_and(|have| normalise(&have) == normalise(want))
            };
            if !same(QueueAttributeName::RedrivePolicy, &redrive)
                && self.change(format!(
                    "set the redrive policy of {queue_name}: to {dlq_name} after {} receives",
                    config.setup.max_receive_count
                ))
            {
                self.set_attribute(url, QueueAttributeName::RedrivePolicy, &redrive)
                    .await?;
            }
            if !same(QueueAttributeName::Policy, &policy)
                && self.change(format!(
                    "set the queue policy of {queue_name}: only events.amazonaws.com from rule {} may send",
                    config.setup.rule_name
                ))
            {
                self.set_attribute(url, QueueAttributeName::Policy, &policy).await?;
            }
        } else {
            self.change(format!(
                "set the redrive policy and queue policy of {queue_name}"
            ));
        }
        self.tables(config).await
    }

    /// Brings `[coordination] table` and `[journal] table` (when set) to what
    /// `config` asks for; what changed.
    pub async fn tables(mut self, config: &Config) -> Result<Vec<Change>, SetupError> {
        if let Some(c) = &config.coordination {
            self.ensure_table(&TableSpec::coordination(&c.table))
                .await?;
        }
        if let Some(j) = &config.journal {
            self.ensure_table(&TableSpec::journal(&j.table)).await?;
        }
        Ok(self.changes)
    }

    /// The queue's URL, creating the queue when missing (`None` only in a dry run).
    async fn ensure_queue(&mut self, name: &str) -> Result<Option<String>, SetupError> {
        let found = self
            .sqs
            .get_queue_url()
            .queue_name(name)
            .send()
            .await
            .absent_if(|e| e.is_queue_does_not_exist())
            .aws("SQS", "GetQueueUrl", name)?;
        if let Some(out) = found {
            return Ok(out.queue_url);
        }
        if !self.change(format!("create queue {name} (server-side encryption on)")) {
            return Ok(None);
        }
        let out = self
            .sqs
            .create_queue()
            .queue_name(name)
            .attributes(QueueAttributeName::SqsManagedSseEnabled, "true")
            .send()
            .await
            .aws("SQS", "CreateQueue", name)?;
        Ok(out.queue_url)
    }

    async fn queue_arn(&self, url: Option<&str>, name: &str) -> Result<String, SetupError> {
        let Some(url) = url else {
            // Dry run of a queue that does not exist yet: its ARN as it will be.
            return Ok(format!("arn:aws:sqs:<region>:<account>:{name}"));
        };
        let attrs = self
            .sqs
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .aws("SQS", "GetQueueAttributes", url)?;
        attrs
            .attributes
            .and_then(|mut a| a.remove(&QueueAttributeName::QueueArn))
            .ok_or_else(|| {
                Error::other("SQS", "GetQueueAttributes", url, "no QueueArn in the reply").into()
            })
    }

    async fn set_attribute(
        &self,
        url: &str,
        name: QueueAttributeName,
        value: &Value,
    ) -> Result<(), SetupError> {
        self.sqs
            .set_queue_attributes()
            .queue_url(url)
            .attributes(name, value.to_string())
            .send()
            .await
            .aws("SQS", "SetQueueAttributes", url)?;
        Ok(())
    }

    /// The rule's ARN, creating or updating the rule when needed.
    async fn ensure_rule(&mut self, name: &str) -> Result<String, SetupError> {
        let want = event_pattern();
        let current = self
            .events
            .describe_rule()
            .name(name)
            .send()
            .await
            .absent_if(|e| e.is_resource_not_found_exception())
            .aws("EventBridge", "DescribeRule", name)?;
        let up_to_date = current.as_ref().is_some_and(|r| {
            r.state() == Some(&RuleState::Enabled)
                && r.event_pattern()
                    .and_then(|p| serde_json::from_str::<Value>(p).ok())
                    .is_some_and(|p| normalise(&p) == normalise(&want))
        });
        if up_to_date {
            return Ok(current.and_then(|r| r.arn).unwrap_or_default());
        }
        let what = if current.is_some() {
            "update"
        } else {
            "create"
        };
        if !self.change(format!(
            "{what} EventBridge rule {name} (Neptune findings, FAILED and PASSED)"
        )) {
            return Ok(current
                .and_then(|r| r.arn)
                .unwrap_or_else(|| format!("arn:aws:events:<region>:<account>:rule/{name}")));
        }
        let out = self
            .events
            .put_rule()
            .name(name)
            .event_pattern(want.to_string())
            .state(RuleState::Enabled)
            .description("Security Hub Neptune findings to the hubtriage queue")
            .send()
            .await
            .aws("EventBridge", "PutRule", name)?;
        Ok(out.rule_arn.unwrap_or_default())
    }

    async fn ensure_target(&mut self, rule: &str, queue_arn: &str) -> Result<(), SetupError> {
        let listed = self
            .events
            .list_targets_by_rule()
            .rule(rule)
            .send()
            .await
            .absent_if(|e| e.is_resource_not_found_exception())
            .aws("EventBridge", "ListTargetsByRule", rule)?;
        let has = listed.is_some_and(|out| out.targets().iter().any(|t| t.arn() == queue_arn));
        if has || !self.change(format!("point rule {rule} at the queue")) {
            return Ok(());
        }
        let target = Target::builder()
            .id("hubtriage-queue")
            .arn(queue_arn)
            .build()
            .map_err(|e| SetupError::Config(e.to_string()))?;
        let out = self
            .events
            .put_targets()
            .rule(rule)
            .targets(target)
            .send()
            .await
            .aws("EventBridge", "PutTargets", rule)?;
        if out.failed_entry_count() > 0 {
            return Err(Error::other(
                "EventBridge",
                "PutTargets",
                rule,
                format!("{:?}", out.failed_entries()),
            )
            .into());
        }
        Ok(())
    }
}

/// JSON compared by meaning: numbers written as strings ("5") equal numbers (5).
fn normalise(v: &Value) -> Value {
    match v {
        Value::String(s) => s
            .parse::<i64>()
            .map(Value::from)
            .unwrap_or_else(|_| v.clone()),
        Value::Array(items) => Value::Array(items.iter().map(normalise).collect()),
        Value::Object(map) => {
            Value::Object(map.iter().map(|(k, v)| (k.clone(), normalise(v))).collect())
        }
        _ => v.clone(),
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::net::TcpListener;

    use super::*;

    /// A loopback DynamoDB where no table exists, a table made stays
    /// CREATING, and every call is answered.
    fn dynamodb_that_never_finishes_a_table() -> String {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        std::thread::spawn(move || {
            let mut created = false;
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let (head, _) = crate::testing::read_http_request(&mut stream);
                let target = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("x-amz-target:")
                            .map(|t| t.trim().to_string())
                    })
                    .unwrap_or_default();
                let (status, body) = match target.rsplit('.').next().unwrap_or("") {
                    "describetable" if !created => (
                        400,
                        r#"{"__type":"com.amazonaws.dynamodb.v20120810#ResourceNotFoundException","message":"Requested resource not found"}"#.to_string(),
                    ),
                    "describetable" => (
                        200,
                        r#"{"Table":{"TableName":"hubtriage-state","TableStatus":"CREATING","KeySchema":[{"AttributeName":"pk","KeyType":"HASH"}]}}"#.to_string(),
                    ),
                    "createtable" => {
                        created = true;
                        (200, r#"{"TableDescription":{"TableName":"hubtriage-state","TableStatus":"CREATING"}}"#.to_string())
                    }
                    _ => (200, "{}".to_string()),
                };
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status} X\r\nContent-Type: application/x-amz-json-1.0\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        url
    }

    #[tokio::test]
    async fn a_table_that_never_becomes_active_is_an_error_naming_it() {
        let url = dynamodb_that_never_finishes_a_table();
        let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .endpoint_url(&url)
            .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
                "testing", "testing", None, None, "tests",
            ))
            .load()
            .await;
        let mut setup = Setup::new(&sdk, false).with_table_wait(
            std::time::Duration::from_millis(300),
            std::time::Duration::from_millis(50),
        );
        let err = setup
            .ensure_table(&TableSpec::coordination("hubtriage-state"))
            .await
            .unwrap_err();
        assert!(matches!(err, SetupError::Timeout(_)), "{err}");
        let text = err.to_string();
        assert!(
            text.contains("DynamoDB table hubtriage-state is still CREATING"),
            "{text}"
        );
        assert_eq!(
            setup.changes,
            vec![Change(
                "create DynamoDB table hubtriage-state (pay per request, partition key pk)".into()
            )],
            "TTL is not claimed while the table is not active"
        );
    }
}
