//! `hubtriage run`: build the AWS clients and the pipeline from the config,
//! wire SIGTERM/SIGINT to a graceful shutdown, and run the receive loop.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::act::driver::RemediationDriver;
use crate::act::neptune_api::AwsFixApi;
use crate::act::recheck::Limiter;
use crate::act::settle::Sweeper;
use crate::act::ticket::http::{Auth, Http, JsonApi};
use crate::act::ticket::tracker::{Tracker, TrackerTickets};
use crate::act::ticket::webhook::WebhookTickets;
use crate::act::ticket::{jira, servicenow, LogTickets, TicketSink};
use crate::aws::accounts::{own_identity, Accounts, Identity, RoleSettings};
use crate::config::{Config, Mode, TicketKind};
use crate::coordination::DynamoCoordinator;
use crate::daemon::{self, Settings};
use crate::decide::AccountReach;
use crate::enrich::cache::CachedReader;
use crate::enrich::neptune::NeptuneReader;
use crate::events::Publisher;
use crate::journal::{DynamoJournal, Journal};
use crate::metrics::Metrics;
use crate::pace::Pacer;
use crate::pipeline::{Parts, Pipeline};
use crate::record::securityhub::SecurityHub;
use crate::record::{Recorder, RecorderSettings};
use crate::source::sqs::Queue;

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The environment or config cannot work (exit 64).
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    Queue(#[from] crate::aws::Error),
    #[error("{0}")]
    Daemon(#[from] daemon::DaemonError),
    /// STS GetCallerIdentity failed: hubtriage cannot tell its own account.
    #[error("STS GetCallerIdentity (to learn the account hubtriage runs in): {0}")]
    Identity(crate::aws::Error),
}

/// `queue_config` is `config.queue`, which the caller has required with
/// [`Config::require_queue`].
pub async fn run(
    config: Config,
    queue_config: crate::config::Queue,
    until_empty: bool,
) -> Result<(), RunError> {
    let sdk = crate::aws::load().await;
    if sdk.region().is_none() {
        return Err(RunError::Usage(
            "no AWS region: set AWS_REGION (or a profile's region) for the queue's region".into(),
        ));
    }

    let role = RoleSettings::from_config(&config.accounts).map_err(RunError::Usage)?;
    // Secrets named by the config are read before any AWS call.
    let tickets = ticket_sink(&config, &sdk).map_err(RunError::Usage)?;
    let config = Arc::new(config);
    let Identity { account, partition } = own_identity(&sdk).await.map_err(RunError::Identity)?;
    let reach = AccountReach::own(&account)
        .in_partition(partition)
        .with_role(role.is_some());
    match &role {
        Some(r) => {
            tracing::info!(account = %account, role = %r.role_arn, "hubtriage runs in this account; other accounts are reached through the role")
        }
        None => {
            tracing::info!(account = %account, "hubtriage runs in this account; findings of other accounts are ignored (no [accounts] role_arn)")
        }
    }
    let accounts = Arc::new(Accounts::new(
        &sdk,
        account,
        config.accounts.own_account,
        role,
    ));

    let queue = Queue::new(
        aws_sdk_sqs::Client::new(&crate::aws::standard_retries(&sdk)),
        &queue_config.url,
    );
    // Fail fast, before any work, when the queue cannot be read.
    let queue_visibility = queue.visibility_timeout().await?;
    let visibility = queue_config
        .visibility_timeout_seconds
        .unwrap_or(queue_visibility);

    let (pipeline, recorder_task, sweeper) =
        pipeline(&sdk, config.clone(), reach, accounts, tickets, &queue);
    let sweeping = start_sweeping(sweeper).await;

    let (stop, shutdown) = watch::channel(false);
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutdown requested; no new messages will be received");
        let _ = stop.send(true);
        // Keep the sender alive so receivers see a steady `true`.
        std::future::pending::<()>().await;
    });

    let settings = Settings {
        max_messages: queue_config.max_messages,
        parallel_receives: queue_config.parallel_receives,
        wait_seconds: queue_config.wait_seconds,
        visibility_seconds: visibility,
        max_in_flight: config.daemon.max_in_flight,
        grace: Duration::from_secs(config.daemon.shutdown_grace_seconds),
        until_empty,
        heartbeat_file: Some(config.daemon.heartbeat_file.clone().into()),
        metrics_namespace: config.metrics.namespace.clone(),
        metrics_interval: Duration::from_secs(config.metrics.interval_seconds),
    };
    let ran = daemon::run(Arc::new(queue), pipeline, recorder_task, settings, shutdown).await;
    if let Some(sweeping) = sweeping {
        sweeping.abort();
    }
    ran?;
    Ok(())
}

/// The pipeline, its recorder's task, and the sweeper of open changes.
type Built = (
    Arc<Pipeline>,
    tokio::task::JoinHandle<()>,
    Option<Arc<Sweeper>>,
);

/// `[events]`'s publisher, when the config names a bus.
fn events(sdk: &aws_config::SdkConfig, config: &Config) -> Option<Arc<Publisher>> {
    let bus = config.events.as_ref()?.bus.clone();
    Some(Arc::new(Publisher::new(
        aws_sdk_eventbridge::Client::new(sdk),
        bus,
    )))
}

/// How often the journal's open changes are swept at most.
const SWEEP_EVERY: Duration = Duration::from_secs(300);

/// Changes a killed task left open are settled before any new work, and
/// every few minutes after (until the returned task is aborted).
async fn start_sweeping(sweeper: Option<Arc<Sweeper>>) -> Option<tokio::task::JoinHandle<()>> {
    let sweeper = sweeper?;
    sweeper.sweep(chrono::Utc::now()).await;
    let every = sweeper
        .settle_after
        .to_std()
        .unwrap_or(SWEEP_EVERY)
        .min(SWEEP_EVERY);
    Some(tokio::spawn(sweeper.run_every(every)))
}

/// `[journal]`'s table, when the config names one.
fn journal(sdk: &aws_config::SdkConfig, config: &Config) -> Option<Arc<dyn Journal>> {
    let Some(j) = &config.journal else {
        tracing::warn!("no [journal] table: no change journal is kept");
        return None;
    };
    tracing::info!(table = %j.table, keep_days = j.keep_days, "every change and decision is journaled");
    Some(DynamoJournal::new(sdk, &j.table, j.keep_days) as Arc<dyn Journal>)
}

/// In apply mode with a journal: the sweeper of its open changes.
fn sweeper(
    sdk: &aws_config::SdkConfig,
    config: &Config,
    journal: &Option<Arc<dyn Journal>>,
    neptune: &Arc<crate::aws::NeptuneClients>,
    accounts: &Arc<Accounts>,
    pacer: &Arc<Pacer>,
) -> Option<Arc<Sweeper>> {
    let (Some(journal), Some(settings), Mode::Apply) =
        (journal, &config.journal, config.remediation.mode)
    else {
        return None;
    };
    Some(Arc::new(Sweeper {
        journal: journal.clone(),
        reader: Arc::new(NeptuneReader::new(
            neptune.clone(),
            accounts.clone(),
            pacer.clone(),
            Duration::ZERO,
        )),
        apis: Arc::new(AwsFixApi::new(
            sdk,
            neptune.clone(),
            accounts.clone(),
            pacer.clone(),
        )),
        settle_after: chrono::Duration::seconds(
            i64::try_from(settings.settle_after_seconds).unwrap_or(300),
        ),
    }))
}

/// The pipeline and its recorder, wired to the AWS clients the config asks
/// for; in apply mode with a journal, the sweeper of its open changes.
fn pipeline(
    sdk: &aws_config::SdkConfig,
    config: Arc<Config>,
    reach: AccountReach,
    accounts: Arc<Accounts>,
    tickets: Arc<dyn TicketSink>,
    queue: &Queue,
) -> Built {
    let neptune = Arc::new(crate::aws::neptune_clients(sdk, accounts.clone()));
    let pacer = Arc::new(Pacer::new(config.pacing));
    let hub = Arc::new(SecurityHub::from_config(
        sdk,
        &config.securityhub,
        pacer.clone(),
    ));
    let metrics = Arc::new(Metrics::default());
    let (recorder, recorder_task) = Recorder::start(
        hub.clone(),
        RecorderSettings::holding(config.daemon.max_in_flight),
        metrics.clone(),
    );

    let events = events(sdk, &config);
    // With `[coordination] table`, remediations hold across tasks: the caps
    // count in the table, and one task at a time works on a cluster.
    let coordinator = config.coordination.as_ref().map(|c| {
        Arc::new(DynamoCoordinator::new(
            sdk,
            &c.table,
            Duration::from_secs(c.lease_seconds),
        ))
    });
    let journal = journal(sdk, &config);
    let sweeper = sweeper(sdk, &config, &journal, &neptune, &accounts, &pacer);
    let driver = (config.remediation.mode == Mode::Apply).then(|| {
        let limiter = Limiter::new(
            config.remediation.max_concurrent,
            config.remediation.max_per_hour,
        );
        RemediationDriver::new(
            Arc::new(AwsFixApi::new(
                sdk,
                neptune.clone(),
                accounts.clone(),
                pacer.clone(),
            )),
            Arc::new(queue.clone()),
            match &coordinator {
                Some(c) => limiter.shared(c.clone()),
                None => limiter,
            },
            coordinator
                .clone()
                .map(|c| c as Arc<dyn crate::coordination::Coordinator>),
            config.clone(),
            metrics.clone(),
        )
        .with_journal(journal.clone())
    });
    let cache_ttl = Duration::from_secs(config.enrich.cache_seconds);
    let pipeline = Arc::new(Pipeline::new(Parts {
        config,
        reach,
        clusters: Arc::new(CachedReader::new(
            Arc::new(NeptuneReader::new(neptune, accounts, pacer, cache_ttl)),
            cache_ttl,
        )),
        findings: hub,
        tickets,
        driver,
        recorder,
        events,
        metrics,
        journal,
    }));
    (pipeline, recorder_task, sweeper)
}

/// The ticket system `[ticket]` names, with its secrets read from the
/// environment variables the config names (not set: a usage error naming it).
fn ticket_sink(
    config: &Config,
    sdk: &aws_config::SdkConfig,
) -> Result<Arc<dyn TicketSink>, String> {
    let t = &config.ticket;

    let url = || {
        t.url
            .clone()
            .ok_or_else(|| "[ticket] url is not set".to_string())
    };
    match t.kind {
        TicketKind::Log => Ok(Arc::new(LogTickets)),
        TicketKind::Webhook => {
            let secret = secret(&t.secret_env, "secret_env", "the webhook's signing secret")?;
            let http = Http::new("webhook", "secret_env").map_err(|e| e.to_string())?;
            Ok(Arc::new(WebhookTickets::new(url()?, secret, http)))
        }
        TicketKind::Jira | TicketKind::JiraDc => {
            let (flavor, auth) = if t.kind == TicketKind::Jira {
                let user = secret(&t.email_env, "email_env", "the Jira account's email")?;
                let secret = secret(&t.token_env, "token_env", "the Jira API token")?;
                (jira::Flavor::Cloud, Auth::Basic { user, secret })
            } else {
                let token = secret(&t.token_env, "token_env", "the Jira personal access token")?;
                (jira::Flavor::DataCenter, Auth::Bearer { token })
            };
            let settings = jira::JiraSettings {
                url: url()?,
                project: t.project.clone().unwrap_or_default(),
                issue_type: t.issue_type.clone(),
                labels: t.labels.clone(),
                priority: t.priority.clone(),
                done_transition: t.done_transition.clone(),
                reopen_transition: t.reopen_transition.clone(),
            };
            let (system, keys) = flavor.system();
            let http = Http::new(system, keys).map_err(|e| e.to_string())?;
            let jira = jira::Jira::new(flavor, settings, JsonApi::new(http, auth));
            let tickets = TrackerTickets::new(jira, t.regression, t.reopen_within_days);
            Ok(coordinated(tickets, config, sdk))
        }
        TicketKind::Servicenow => {
            let (auth, keys) = match &t.token_env {
                Some(_) => (
                    Auth::Bearer {
                        token: secret(&t.token_env, "token_env", "the ServiceNow OAuth token")?,
                    },
                    "token_env",
                ),
                None => (
                    Auth::Basic {
                        user: secret(&t.user_env, "user_env", "the ServiceNow user")?,
                        secret: secret(&t.password_env, "password_env", "the ServiceNow password")?,
                    },
                    "user_env and password_env",
                ),
            };
            let settings = servicenow::ServiceNowSettings {
                url: url()?,
                table: t.table.clone(),
                assignment_group: t.assignment_group.clone(),
                category: t.category.clone(),
                urgency: t.urgency.clone(),
                impact: t.impact.clone(),
                close_code: t.close_code.clone(),
            };
            let http = Http::new("servicenow", keys).map_err(|e| e.to_string())?;
            let sn = servicenow::ServiceNow::new(settings, JsonApi::new(http, auth));
            let tickets = TrackerTickets::new(sn, t.regression, t.reopen_within_days);
            Ok(coordinated(tickets, config, sdk))
        }
    }
}

/// With `[coordination] table`, a tracker shares leases and tickets with the
/// deployment's other tasks.
fn coordinated<T: Tracker + 'static>(
    tickets: TrackerTickets<T>,
    config: &Config,
    sdk: &aws_config::SdkConfig,
) -> Arc<dyn TicketSink> {
    match &config.coordination {
        Some(c) => Arc::new(tickets.with_coordination(Arc::new(DynamoCoordinator::new(
            sdk,
            &c.table,
            std::time::Duration::from_secs(c.lease_seconds),
        )))),
        None => Arc::new(tickets),
    }
}

/// The value of the environment variable `[ticket] <key>` names; not set (or
/// empty) is an error naming the variable, never its value.
fn secret(name: &Option<String>, key: &str, what: &str) -> Result<String, String> {
    let Some(name) = name else {
        return Err(format!(
            "[ticket] {key} is not set: it names the variable holding {what}"
        ));
    };
    match std::env::var(name) {
        Ok(v) if !v.is_empty() => Ok(v),
        _ => Err(format!(
            "{name} is not set: [ticket] {key} names it as {what}"
        )),
    }
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
