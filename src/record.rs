//! Record step: write the outcome on the finding with `BatchUpdateFindings`.
//!
//! Updates are batched: findings with an identical update (same workflow status,
//! note and fields) share one call of up to 100 identifiers, flushed when full or
//! after a short linger. Notes and fields are written so that findings with the
//! same decision can share them (action, rule, reason; not the cluster, which the
//! finding already names), so a storm costs about N/100 calls. Calls are paced
//! to Security Hub's 10 requests/second. Retryable `UnprocessedFindings`
//! (`ConcurrentUpdateError`, `InternalFailure`) and throttled or failed calls are
//! retried with backoff; other failures are reported with their error code.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::decide::{Action, Decision, Step};
use crate::finding::Finding;
use crate::metrics::Metrics;

/// `Note.UpdatedBy` on every note hubtriage writes.
pub const UPDATED_BY: &str = "hubtriage";
/// BatchUpdateFindings limits.
pub const MAX_IDENTIFIERS: usize = 100;
pub const MAX_NOTE_CHARS: usize = 512;
/// UserDefinedFields hubtriage writes.
pub const FIELD_ACTION: &str = "hubtriage:action";
pub const FIELD_RULE: &str = "hubtriage:rule";
pub const FIELD_EXPIRES: &str = "hubtriage:expires";
pub const FIELD_TICKET: &str = "hubtriage:ticket";
pub const FIELD_REMEDIATION: &str = "hubtriage:remediation";
pub const FIELD_REMEDIATION_STARTED: &str = "hubtriage:remediation-started";

/// Which finding, as BatchUpdateFindings identifies it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FindingId {
    pub id: String,
    pub product_arn: String,
}

impl FindingId {
    pub fn of(f: &Finding) -> Self {
        FindingId {
            id: f.id.clone(),
            product_arn: f.product_arn.clone(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Workflow {
    Notified,
    Resolved,
    Suppressed,
}

impl Workflow {
    pub fn as_str(self) -> &'static str {
        match self {
            Workflow::Notified => "NOTIFIED",
            Workflow::Resolved => "RESOLVED",
            Workflow::Suppressed => "SUPPRESSED",
        }
    }
}

/// What one BatchUpdateFindings call sets on every finding it names.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FindingUpdate {
    pub workflow: Workflow,
    pub note: String,
    pub fields: BTreeMap<String, String>,
}

/// What the act step did, which the update reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Acted {
    Nothing,
    /// A ticket was opened; `key` when the ticket system returns one.
    Ticketed {
        key: Option<String>,
    },
    /// A remediation plan was recorded but not carried out.
    Planned {
        dry_run: bool,
    },
}

impl FindingUpdate {
    /// The update a recorded decision implies; `None` for `ignore`.
    pub fn for_decision(d: &Decision, acted: &Acted) -> Option<FindingUpdate> {
        let mut fields = base_fields(d.action.as_str(), d.rule.as_deref());
        let (workflow, note) = match d.action {
            Action::Ignore => return None,
            Action::Resolve => (
                Workflow::Resolved,
                format!("hubtriage resolved this finding. {}", d.reason),
            ),
            Action::Suppress => {
                if let Some(expires) = &d.expires {
                    fields.insert(FIELD_EXPIRES.to_string(), expires.clone());
                }
                (
                    Workflow::Suppressed,
                    format!("hubtriage suppressed this finding. {}", d.reason),
                )
            }
            Action::Ticket => {
                let opened = match acted {
                    Acted::Ticketed { key: Some(key) } => {
                        fields.insert(FIELD_TICKET.to_string(), key.clone());
                        format!("hubtriage opened ticket {key}.")
                    }
                    _ => "hubtriage opened a ticket.".to_string(),
                };
                (Workflow::Notified, format!("{opened} {}", d.reason))
            }
            Action::Remediate => {
                let how = match acted {
                    Acted::Planned { dry_run: true } => {
                        "planned a remediation (dry-run: nothing was changed)"
                    }
                    _ => "planned a remediation (nothing was changed yet)",
                };
                fields.insert(FIELD_REMEDIATION.to_string(), "planned".into());
                (
                    Workflow::Notified,
                    format!(
                        "hubtriage {how}. {} Plan: {}.",
                        d.reason,
                        describe_plan(&d.plan)
                    ),
                )
            }
        };
        Some(FindingUpdate {
            workflow,
            note: truncate(&note, MAX_NOTE_CHARS),
            fields,
        })
    }

    /// An update from the remediation executor. `progress` is `in-progress`,
    /// `done` or `reboot-pending`; `started` marks when an in-progress one began.
    pub fn remediation(
        workflow: Workflow,
        note: String,
        rule: Option<&str>,
        progress: &str,
        started: Option<DateTime<Utc>>,
    ) -> FindingUpdate {
        let mut fields = base_fields(Action::Remediate.as_str(), rule);
        fields.insert(FIELD_REMEDIATION.to_string(), progress.to_string());
        if let Some(t) = started {
            fields.insert(
                FIELD_REMEDIATION_STARTED.to_string(),
                t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            );
        }
        FindingUpdate {
            workflow,
            note: truncate(&note, MAX_NOTE_CHARS),
            fields,
        }
    }

    /// True when the finding already carries this update (nothing to write).
    pub fn already_on(&self, f: &Finding) -> bool {
        f.workflow_status == self.workflow.as_str()
            && f.note
                .as_ref()
                .is_some_and(|n| n.text == self.note && n.updated_by == UPDATED_BY)
            && self
                .fields
                .iter()
                .all(|(k, v)| f.user_defined_fields.get(k) == Some(v))
    }
}

/// The fields every update carries: the action and the rule (or "none").
fn base_fields(action: &str, rule: Option<&str>) -> BTreeMap<String, String> {
    BTreeMap::from([
        (FIELD_ACTION.to_string(), action.to_string()),
        (FIELD_RULE.to_string(), rule.unwrap_or("none").to_string()),
    ])
}

/// `create_parameter_group hubtriage-audit-x, set_audit_parameter, ...`
pub fn describe_plan(plan: &[Step]) -> String {
    plan.iter()
        .map(|s| match s {
            Step::CreateParameterGroup { name, .. } => format!("create_parameter_group {name}"),
            Step::SetAuditParameter { group } => format!("set_audit_parameter {group}"),
            Step::AttachParameterGroup { group } => format!("attach_parameter_group {group}"),
            Step::EnableAuditExport => "enable_audit_export".to_string(),
            Step::WaitForMaintenanceWindow { window } => {
                format!("wait_for_maintenance_window {window}")
            }
            Step::RebootInstance { instance } => format!("reboot_instance {instance}"),
            Step::SetLogRetention { days, .. } => format!("set_log_retention {days}d"),
            Step::Verify => "verify".to_string(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Cuts `text` to at most `max` characters, marking the cut with "…".
pub fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// True when the event only reflects hubtriage's own update: the note is ours
/// and no provider update came after it. (BatchUpdateFindings leaves the
/// finding's `UpdatedAt` alone, and Security Hub stamps the note's `UpdatedAt`.)
pub fn is_own_update(f: &Finding) -> bool {
    let Some(note) = &f.note else { return false };
    if note.updated_by != UPDATED_BY || !f.user_defined_fields.contains_key(FIELD_ACTION) {
        return false;
    }
    let parse = |t: &Option<String>| {
        t.as_deref()
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&Utc))
    };
    match (parse(&note.updated_at), parse(&f.updated_at)) {
        (Some(noted), Some(updated)) => noted >= updated,
        // Without both times we cannot tell: treat it as news and decide again
        // (the update check then avoids writing the same note twice).
        _ => false,
    }
}

/// A finding BatchUpdateFindings did not update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unprocessed {
    pub finding: FindingId,
    pub code: String,
    pub message: String,
}

#[derive(Debug, Clone, thiserror::Error)]
#[error("Security Hub {operation}: {message}")]
pub struct ApiError {
    pub operation: &'static str,
    pub message: String,
    /// Worth trying again (throttling, 5xx, timeouts).
    pub retryable: bool,
    pub throttled: bool,
}

/// The few Security Hub calls hubtriage makes.
#[async_trait]
pub trait FindingsApi: Send + Sync {
    async fn batch_update(
        &self,
        ids: &[FindingId],
        update: &FindingUpdate,
    ) -> Result<Vec<Unprocessed>, ApiError>;
    /// The finding as Security Hub holds it now (`None`: not found).
    async fn get_finding(&self, id: &FindingId) -> Result<Option<Finding>, ApiError>;
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

/// Unprocessed error codes worth retrying.
pub fn is_retryable_code(code: &str) -> bool {
    matches!(code, "ConcurrentUpdateError" | "InternalFailure")
}

#[derive(Debug, Clone)]
pub struct RecorderSettings {
    /// How long an update waits for others like it.
    pub linger: Duration,
    /// The least time between two calls (10 requests/s → 100 ms).
    pub min_interval: Duration,
    pub max_attempts: u32,
    pub first_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for RecorderSettings {
    fn default() -> Self {
        RecorderSettings {
            linger: Duration::from_millis(250),
            min_interval: Duration::from_millis(100),
            max_attempts: 8,
            first_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(5),
        }
    }
}

struct Request {
    finding: FindingId,
    update: FindingUpdate,
    done: oneshot::Sender<Result<(), RecordError>>,
}

/// Hands updates to the background batcher and waits for their outcome.
#[derive(Clone)]
pub struct Recorder {
    tx: mpsc::Sender<Request>,
}

impl Recorder {
    /// Starts the batcher. It stops, after flushing everything, once every
    /// `Recorder` clone is dropped; await the handle to know it has.
    pub fn start(
        api: Arc<dyn FindingsApi>,
        settings: RecorderSettings,
        metrics: Arc<Metrics>,
    ) -> (Recorder, JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(1024);
        let handle = tokio::spawn(batcher(api, settings, metrics, rx));
        (Recorder { tx }, handle)
    }

    /// Records `update` on `finding`; returns once it is written (or has failed for good).
    pub async fn record(
        &self,
        finding: FindingId,
        update: FindingUpdate,
    ) -> Result<(), RecordError> {
        let (done, wait) = oneshot::channel();
        self.tx
            .send(Request {
                finding,
                update,
                done,
            })
            .await
            .map_err(|_| RecordError::Stopped)?;
        wait.await.map_err(|_| RecordError::Stopped)?
    }
}

struct Group {
    since: Instant,
    waiters: HashMap<FindingId, Vec<oneshot::Sender<Result<(), RecordError>>>>,
    order: Vec<FindingId>,
}

async fn batcher(
    api: Arc<dyn FindingsApi>,
    settings: RecorderSettings,
    metrics: Arc<Metrics>,
    mut rx: mpsc::Receiver<Request>,
) {
    let mut groups: HashMap<FindingUpdate, Group> = HashMap::new();
    let mut pacer = Pacer {
        last: None,
        interval: settings.min_interval,
    };
    loop {
        let next = groups.values().map(|g| g.since + settings.linger).min();
        let received = match next {
            Some(deadline) => tokio::select! {
                r = rx.recv() => Some(r),
                _ = tokio::time::sleep_until(deadline) => None,
            },
            None => Some(rx.recv().await),
        };
        match received {
            Some(Some(req)) => {
                let group = groups.entry(req.update.clone()).or_insert_with(|| Group {
                    since: Instant::now(),
                    waiters: HashMap::new(),
                    order: Vec::new(),
                });
                if !group.waiters.contains_key(&req.finding) {
                    group.order.push(req.finding.clone());
                }
                group.waiters.entry(req.finding).or_default().push(req.done);
                if group.order.len() >= MAX_IDENTIFIERS {
                    if let Some(g) = groups.remove(&req.update) {
                        flush(&*api, &settings, &metrics, &mut pacer, req.update, g).await;
                    }
                }
            }
            Some(None) => {
                // Every sender is gone: flush what is left and stop.
                for (update, g) in groups.drain() {
                    flush(&*api, &settings, &metrics, &mut pacer, update, g).await;
                }
                return;
            }
            None => {
                let now = Instant::now();
                let due: Vec<FindingUpdate> = groups
                    .iter()
                    .filter(|(_, g)| g.since + settings.linger <= now)
                    .map(|(u, _)| u.clone())
                    .collect();
                for update in due {
                    if let Some(g) = groups.remove(&update) {
                        flush(&*api, &settings, &metrics, &mut pacer, update, g).await;
                    }
                }
            }
        }
    }
}

/// Keeps calls at least `interval` apart.
struct Pacer {
    last: Option<Instant>,
    interval: Duration,
}

impl Pacer {
    async fn wait(&mut self) {
        if let Some(last) = self.last {
            tokio::time::sleep_until(last + self.interval).await;
        }
        self.last = Some(Instant::now());
    }
}

async fn flush(
    api: &dyn FindingsApi,
    settings: &RecorderSettings,
    metrics: &Metrics,
    pacer: &mut Pacer,
    update: FindingUpdate,
    mut group: Group,
) {
    let mut finish = |id: &FindingId, result: Result<(), RecordError>| {
        for done in group.waiters.remove(id).unwrap_or_default() {
            let _ = done.send(result.clone());
        }
    };
    let mut remaining = group.order.clone();
    let mut attempt = 0;
    let mut last_error = String::new();
    while !remaining.is_empty() {
        attempt += 1;
        pacer.wait().await;
        match api.batch_update(&remaining, &update).await {
            Ok(unprocessed) => {
                let mut retry = Vec::new();
                for u in &unprocessed {
                    if is_retryable_code(&u.code) && attempt < settings.max_attempts {
                        retry.push(u.finding.clone());
                    } else {
                        tracing::warn!(
                            finding_id = %u.finding.id,
                            error_code = %u.code,
                            error = %u.message,
                            "BatchUpdateFindings left a finding unprocessed"
                        );
                        finish(
                            &u.finding,
                            Err(RecordError::Unprocessed {
                                code: u.code.clone(),
                                message: u.message.clone(),
                            }),
                        );
                    }
                }
                for id in &remaining {
                    if !unprocessed.iter().any(|u| &u.finding == id) {
                        finish(id, Ok(()));
                    }
                }
                if !retry.is_empty() {
                    tracing::info!(
                        count = retry.len(),
                        attempt,
                        "retrying unprocessed findings"
                    );
                }
                remaining = retry;
                last_error = "ConcurrentUpdateError".into();
            }
            Err(e) => {
                if e.throttled {
                    Metrics::inc(&metrics.throttles);
                }
                tracing::warn!(error = %e, attempt, findings = remaining.len(), retryable = e.retryable, "BatchUpdateFindings failed");
                last_error = e.to_string();
                if !e.retryable || attempt >= settings.max_attempts {
                    break;
                }
            }
        }
        if !remaining.is_empty() {
            let backoff = settings
                .first_backoff
                .saturating_mul(1 << (attempt - 1).min(16))
                .min(settings.max_backoff);
            tokio::time::sleep(backoff).await;
        }
    }
    for id in remaining {
        finish(&id, Err(RecordError::Call(last_error.clone())));
    }
}

/// The Security Hub adapter.
pub mod securityhub {
    use async_trait::async_trait;
    use aws_sdk_securityhub::types::{
        AwsSecurityFindingIdentifier, NoteUpdate, StringFilter, StringFilterComparison,
        WorkflowUpdate,
    };
    use aws_sdk_securityhub::Client;

    use super::{ApiError, FindingId, FindingUpdate, FindingsApi, Unprocessed, UPDATED_BY};
    use crate::finding::{Finding, Note};

    pub struct SecurityHub {
        client: Client,
    }

    impl SecurityHub {
        pub fn new(client: Client) -> Self {
            SecurityHub { client }
        }
    }

    fn error<E>(operation: &'static str, err: &aws_sdk_securityhub::error::SdkError<E>) -> ApiError
    where
        E: aws_sdk_securityhub::error::ProvideErrorMetadata + std::error::Error + 'static,
    {
        use aws_sdk_securityhub::error::{ProvideErrorMetadata, SdkError};
        let code = err.code().unwrap_or_default();
        let throttled = crate::aws::is_throttling(Some(code));
        let server = err
            .raw_response()
            .is_some_and(|r| r.status().is_server_error());
        let transient = matches!(
            err,
            SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_)
        );
        ApiError {
            operation,
            message: crate::aws::describe(err),
            retryable: throttled || server || transient,
            throttled,
        }
    }

    #[async_trait]
    impl FindingsApi for SecurityHub {
        async fn batch_update(
            &self,
            ids: &[FindingId],
            update: &FindingUpdate,
        ) -> Result<Vec<Unprocessed>, ApiError> {
            let identifiers: Vec<AwsSecurityFindingIdentifier> = ids
                .iter()
                .map(|f| {
                    AwsSecurityFindingIdentifier::builder()
                        .id(&f.id)
                        .product_arn(&f.product_arn)
                        .build()
                })
                .collect();
            let out = self
                .client
                .batch_update_findings()
                .set_finding_identifiers(Some(identifiers))
                .workflow(
                    WorkflowUpdate::builder()
                        .status(update.workflow.as_str().into())
                        .build(),
                )
                .note(
                    NoteUpdate::builder()
                        .text(&update.note)
                        .updated_by(UPDATED_BY)
                        .build(),
                )
                .set_user_defined_fields(Some(update.fields.clone().into_iter().collect()))
                .send()
                .await
                .map_err(|e| error("BatchUpdateFindings", &e))?;
            Ok(out
                .unprocessed_findings()
                .iter()
                .map(|u| Unprocessed {
                    finding: FindingId {
                        id: u
                            .finding_identifier()
                            .and_then(|f| f.id())
                            .unwrap_or_default()
                            .to_string(),
                        product_arn: u
                            .finding_identifier()
                            .and_then(|f| f.product_arn())
                            .unwrap_or_default()
                            .to_string(),
                    },
                    code: u.error_code().unwrap_or("Unknown").to_string(),
                    message: u.error_message().unwrap_or_default().to_string(),
                })
                .collect())
        }

        async fn get_finding(&self, id: &FindingId) -> Result<Option<Finding>, ApiError> {
            let filter = |v: &str| {
                StringFilter::builder()
                    .value(v)
                    .comparison(StringFilterComparison::Equals)
                    .build()
            };
            let filters = aws_sdk_securityhub::types::AwsSecurityFindingFilters::builder()
                .id(filter(&id.id))
                .product_arn(filter(&id.product_arn))
                .build();
            let out = self
                .client
                .get_findings()
                .filters(filters)
                .max_results(1)
                .send()
                .await
                .map_err(|e| error("GetFindings", &e))?;
            let Some(f) = out.findings().first() else {
                return Ok(None);
            };
            Ok(Some(Finding {
                id: f.id().unwrap_or_default().to_string(),
                product_arn: f.product_arn().unwrap_or_default().to_string(),
                generator_id: f.generator_id().unwrap_or_default().to_string(),
                account: f.aws_account_id().unwrap_or_default().to_string(),
                region: f.region().unwrap_or_default().to_string(),
                control: f
                    .compliance()
                    .and_then(|c| c.security_control_id())
                    .map(str::to_string),
                cluster_arn: f
                    .resources()
                    .iter()
                    .find(|r| r.r#type() == Some("AwsRdsDbCluster"))
                    .and_then(|r| r.id())
                    .map(str::to_string),
                compliance_status: f
                    .compliance()
                    .and_then(|c| c.status())
                    .map(|s| s.as_str().to_string()),
                record_state: f
                    .record_state()
                    .map(|s| s.as_str().to_string())
                    .unwrap_or_else(|| "ACTIVE".into()),
                workflow_status: f
                    .workflow()
                    .and_then(|w| w.status())
                    .map(|s| s.as_str().to_string())
                    .unwrap_or_else(|| "NEW".into()),
                severity_label: f
                    .severity()
                    .and_then(|s| s.label())
                    .map(|l| l.as_str().to_string()),
                user_defined_fields: f
                    .user_defined_fields()
                    .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                    .unwrap_or_default(),
                note: f.note().map(|n| Note {
                    text: n.text().unwrap_or_default().to_string(),
                    updated_by: n.updated_by().unwrap_or_default().to_string(),
                    updated_at: n.updated_at().map(str::to_string),
                }),
                updated_at: f.updated_at().map(str::to_string),
            }))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    fn decision(action: Action) -> Decision {
        Decision {
            finding_id: "f1".into(),
            product_arn: "arn:aws:securityhub:us-east-1::product/aws/securityhub".into(),
            account: "111122223333".into(),
            region: "us-east-1".into(),
            cluster: Some("c1".into()),
            control: Some("Neptune.2".into()),
            action,
            rule: Some("prod".into()),
            reason: "Rule prod chose ticket: the audit log export to CloudWatch Logs is off."
                .into(),
            problems: vec![],
            plan: vec![],
            expires: None,
        }
    }

    fn id(n: usize) -> FindingId {
        FindingId {
            id: format!("f{n}"),
            product_arn: "p".into(),
        }
    }

    #[test]
    fn updates_map_actions_to_workflow_statuses() {
        let t =
            FindingUpdate::for_decision(&decision(Action::Ticket), &Acted::Ticketed { key: None })
                .unwrap();
        assert_eq!(t.workflow, Workflow::Notified);
        assert!(t
            .note
            .starts_with("hubtriage opened a ticket. Rule prod chose ticket"));
        assert_eq!(t.fields[FIELD_ACTION], "ticket");
        assert_eq!(t.fields[FIELD_RULE], "prod");
        let r = FindingUpdate::for_decision(&decision(Action::Resolve), &Acted::Nothing).unwrap();
        assert_eq!(r.workflow, Workflow::Resolved);
        let mut s = decision(Action::Suppress);
        s.expires = Some("2027-03-31".into());
        let s = FindingUpdate::for_decision(&s, &Acted::Nothing).unwrap();
        assert_eq!(s.workflow, Workflow::Suppressed);
        assert_eq!(s.fields[FIELD_EXPIRES], "2027-03-31");
        let mut p = decision(Action::Remediate);
        p.plan = vec![Step::EnableAuditExport, Step::Verify];
        let p = FindingUpdate::for_decision(&p, &Acted::Planned { dry_run: true }).unwrap();
        assert_eq!(p.workflow, Workflow::Notified);
        assert!(
            p.note.contains("dry-run") && p.note.ends_with("Plan: enable_audit_export, verify."),
            "{}",
            p.note
        );
        assert!(FindingUpdate::for_decision(&decision(Action::Ignore), &Acted::Nothing).is_none());
    }

    #[test]
    fn same_decisions_on_different_clusters_share_one_update() {
        let a = decision(Action::Ticket);
        let mut b = decision(Action::Ticket);
        b.finding_id = "f2".into();
        b.cluster = Some("other".into());
        assert_eq!(
            FindingUpdate::for_decision(&a, &Acted::Ticketed { key: None }),
            FindingUpdate::for_decision(&b, &Acted::Ticketed { key: None })
        );
    }

    #[test]
    fn notes_fit_security_hubs_limit() {
        let mut d = decision(Action::Ticket);
        d.reason = "é".repeat(2000);
        let u = FindingUpdate::for_decision(&d, &Acted::Nothing).unwrap();
        assert_eq!(u.note.chars().count(), MAX_NOTE_CHARS);
        assert!(u.note.ends_with('…'));
    }

    fn finding_with_note(noted: &str, updated: &str) -> Finding {
        let mut f = crate::finding::parse_event(
            include_str!("../tests/fixtures/neptune2-failed-event.json").as_bytes(),
        )
        .unwrap()
        .remove(0);
        f.note = Some(crate::finding::Note {
            text: "hubtriage opened a ticket.".into(),
            updated_by: UPDATED_BY.into(),
            updated_at: Some(noted.into()),
        });
        f.user_defined_fields
            .insert(FIELD_ACTION.into(), "ticket".into());
        f.updated_at = Some(updated.into());
        f
    }

    #[test]
    fn own_updates_are_recognised_from_the_finding() {
        assert!(is_own_update(&finding_with_note(
            "2026-11-20T10:20:00Z",
            "2026-11-20T10:14:44.901Z"
        )));
        // A provider update after our note is news.
        assert!(!is_own_update(&finding_with_note(
            "2026-11-20T10:20:00Z",
            "2026-11-21T00:00:00Z"
        )));
        let mut f = finding_with_note("2026-11-20T10:20:00Z", "2026-11-20T10:14:44.901Z");
        f.note.as_mut().unwrap().updated_by = "alice".into();
        assert!(!is_own_update(&f));
    }

    /// Records calls; fails the first `throttle` calls and leaves the first
    /// `unprocessed` identifiers unprocessed with ConcurrentUpdateError.
    #[derive(Default)]
    struct FakeHub {
        calls: Mutex<Vec<(Vec<FindingId>, FindingUpdate)>>,
        throttle: Mutex<u32>,
        unprocessed: Mutex<usize>,
        fatal: Mutex<Option<String>>,
    }

    #[async_trait]
    impl FindingsApi for FakeHub {
        async fn batch_update(
            &self,
            ids: &[FindingId],
            update: &FindingUpdate,
        ) -> Result<Vec<Unprocessed>, ApiError> {
            assert!(ids.len() <= MAX_IDENTIFIERS);
            self.calls
                .lock()
                .unwrap()
                .push((ids.to_vec(), update.clone()));
            {
                let mut t = self.throttle.lock().unwrap();
                if *t > 0 {
                    *t -= 1;
                    return Err(ApiError {
                        operation: "BatchUpdateFindings",
                        message: "TooManyRequestsException".into(),
                        retryable: true,
                        throttled: true,
                    });
                }
            }
            let mut out = Vec::new();
            let mut left = self.unprocessed.lock().unwrap();
            let fatal = self.fatal.lock().unwrap().clone();
            for id in ids {
                if *left > 0 {
                    *left -= 1;
                    out.push(Unprocessed {
                        finding: id.clone(),
                        code: "ConcurrentUpdateError".into(),
                        message: "busy".into(),
                    });
                } else if let Some(code) = &fatal {
                    out.push(Unprocessed {
                        finding: id.clone(),
                        code: code.clone(),
                        message: "no".into(),
                    });
                }
            }
            Ok(out)
        }
        async fn get_finding(&self, _: &FindingId) -> Result<Option<Finding>, ApiError> {
            Ok(None)
        }
    }

    fn fast() -> RecorderSettings {
        RecorderSettings {
            linger: Duration::from_millis(50),
            min_interval: Duration::from_millis(1),
            max_attempts: 5,
            first_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(5),
        }
    }

    fn update(note: &str) -> FindingUpdate {
        FindingUpdate {
            workflow: Workflow::Notified,
            note: note.into(),
            fields: BTreeMap::new(),
        }
    }

    async fn record_all(
        hub: Arc<FakeHub>,
        jobs: Vec<(FindingId, FindingUpdate)>,
    ) -> Vec<Result<(), RecordError>> {
        let (recorder, handle) = Recorder::start(hub, fast(), Arc::default());
        let tasks: Vec<_> = jobs
            .into_iter()
            .map(|(id, u)| {
                let r = recorder.clone();
                tokio::spawn(async move { r.record(id, u).await })
            })
            .collect();
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.unwrap());
        }
        drop(recorder);
        handle.await.unwrap();
        out
    }

    #[tokio::test]
    async fn alike_updates_share_calls_of_at_most_100() {
        let hub = Arc::new(FakeHub::default());
        let mut jobs: Vec<_> = (0..250).map(|n| (id(n), update("same"))).collect();
        jobs.push((id(999), update("different")));
        let results = record_all(hub.clone(), jobs).await;
        assert!(results.iter().all(|r| r.is_ok()));
        let calls = hub.calls.lock().unwrap();
        assert_eq!(calls.len(), 4, "250 alike → 100+100+50, plus one other");
        let total: usize = calls.iter().map(|(ids, _)| ids.len()).sum();
        assert_eq!(total, 251);
    }

    #[tokio::test]
    async fn throttling_and_concurrent_updates_are_retried() {
        let hub = Arc::new(FakeHub::default());
        *hub.throttle.lock().unwrap() = 2;
        *hub.unprocessed.lock().unwrap() = 3;
        let results =
            record_all(hub.clone(), (0..10).map(|n| (id(n), update("u"))).collect()).await;
        assert!(results.iter().all(|r| r.is_ok()), "{results:?}");
        let calls = hub.calls.lock().unwrap();
        assert_eq!(
            calls.len(),
            4,
            "2 throttled, 1 with 3 unprocessed, 1 retry of those 3"
        );
        assert_eq!(calls[3].0.len(), 3);
    }

    #[tokio::test]
    async fn non_retryable_codes_fail_with_their_code() {
        let hub = Arc::new(FakeHub::default());
        *hub.fatal.lock().unwrap() = Some("FindingNotFound".into());
        let results = record_all(hub.clone(), vec![(id(1), update("u"))]).await;
        assert_eq!(
            results[0],
            Err(RecordError::Unprocessed {
                code: "FindingNotFound".into(),
                message: "no".into()
            })
        );
        assert_eq!(hub.calls.lock().unwrap().len(), 1);
    }
}
