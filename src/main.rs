//! The `hubtriage` command: parse the command line, load the config, run the
//! subcommand, map errors to exit codes (64 usage/config, 65 bad input file).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use chrono::{DateTime, Utc};
use clap::{Parser, Subcommand};

use hubtriage::config::Config;
use hubtriage::exit;
use hubtriage::explain::{explain, Inputs};

#[derive(Parser)]
#[command(
    name = "hubtriage",
    version,
    about = "Triage AWS Security Hub Neptune.2 findings from live cluster state"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Where the config comes from: `--config F`, or else the whole TOML in
/// `HUBTRIAGE_CONFIG_TOML` (how ECS passes it from SSM Parameter Store).
#[derive(clap::Args)]
struct ConfigSource {
    /// The config file (absent: the TOML in $HUBTRIAGE_CONFIG_TOML).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// Print what hubtriage would decide for the findings in an event, from saved AWS CLI outputs.
    Explain {
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        /// The EventBridge event (an SQS message body).
        #[arg(long, value_name = "FILE")]
        event: PathBuf,
        /// `aws neptune describe-db-clusters` output.
        #[arg(long, value_name = "FILE")]
        clusters: PathBuf,
        /// `aws neptune describe-db-cluster-parameters` output for the cluster's group
        /// (absent: neptune_enable_audit_log is the engine default, 0).
        #[arg(long, value_name = "FILE")]
        parameters: Option<PathBuf>,
        /// `aws neptune list-tags-for-resource` output (absent: no tags).
        #[arg(long, value_name = "FILE")]
        tags: Option<PathBuf>,
        /// The time to decide at, RFC 3339 (default: now).
        #[arg(long, value_name = "RFC3339", value_parser = parse_time)]
        now: Option<DateTime<Utc>>,
        /// The account hubtriage runs in (default: $AWS_ACCOUNT_ID, else the
        /// account of the clusters in the describe-db-clusters output).
        #[arg(long, value_name = "ACCOUNT_ID", value_parser = parse_account)]
        account: Option<String>,
    },
    /// Drain the findings queue: decide, act and record each finding. Runs until
    /// SIGTERM/SIGINT, or with --until-empty until the queue is empty.
    Run {
        #[command(flatten)]
        source: ConfigSource,
        /// Exit 0 once the queue is empty and every finding is recorded.
        #[arg(long)]
        until_empty: bool,
    },
    /// Validate a config and print its rules and suppressions.
    CheckConfig {
        #[command(flatten)]
        source: ConfigSource,
        /// The time to judge expiries at, RFC 3339 (default: now).
        #[arg(long, value_name = "RFC3339", value_parser = parse_time)]
        now: Option<DateTime<Utc>>,
    },
    /// Create or update the queue's DLQ and redrive policy, the queue policy and
    /// the EventBridge rule with its SQS target. Idempotent.
    Setup {
        #[command(flatten)]
        source: ConfigSource,
        /// Print what would change; change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Exit 0 only while the receive loop has made progress recently (container health check).
    Healthcheck {
        #[command(flatten)]
        source: ConfigSource,
        /// The oldest heartbeat that counts as healthy (default: twice the long-poll wait, at least 10).
        #[arg(long, value_name = "SECONDS")]
        max_age_seconds: Option<i64>,
    },
}

fn parse_time(s: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("expected an RFC 3339 time such as 2026-11-25T12:00:00Z: {e}"))
}

fn parse_account(s: &str) -> Result<String, String> {
    if s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit()) {
        Ok(s.to_string())
    } else {
        Err(format!("expected a 12-digit AWS account id, found {s:?}"))
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { exit::USAGE } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    match cli.command {
        Command::Explain {
            config,
            event,
            clusters,
            parameters,
            tags,
            now,
            account,
        } => {
            let account = match account.map(Ok).or_else(|| {
                std::env::var("AWS_ACCOUNT_ID")
                    .ok()
                    .filter(|a| !a.is_empty())
                    .map(|a| parse_account(&a).map_err(|e| format!("AWS_ACCOUNT_ID: {e}")))
            }) {
                Some(Ok(a)) => Some(a),
                Some(Err(e)) => return fail(exit::USAGE, &e),
                None => None,
            };
            let config = match Config::load(&config) {
                Ok(c) => c,
                Err(e) => return fail(exit::USAGE, &e),
            };
            let inputs = Inputs {
                event,
                clusters,
                parameters,
                tags,
                account,
            };
            match explain(&config, &inputs, now.unwrap_or_else(Utc::now)) {
                Ok(decisions) => {
                    let mut out = std::io::stdout().lock();
                    for d in decisions {
                        let line = match serde_json::to_string(&d) {
                            Ok(l) => l,
                            Err(e) => return fail(exit::FAILURE, &e),
                        };
                        if writeln!(out, "{line}").is_err() {
                            return ExitCode::from(exit::FAILURE);
                        }
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => fail(exit::DATA, &e),
            }
        }
        Command::Run {
            source,
            until_empty,
        } => {
            let (config, name) = match Config::load_from(source.config.as_deref()) {
                Ok(c) => c,
                Err(e) => return fail(exit::USAGE, &e),
            };
            let queue = match config.require_queue(&name) {
                Ok(q) => q.clone(),
                Err(e) => return fail(exit::USAGE, &e),
            };
            hubtriage::telemetry::init();
            let runtime = match tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
            {
                Ok(r) => r,
                Err(e) => return fail(exit::FAILURE, &e),
            };
            match runtime.block_on(hubtriage::run::run(config, queue, until_empty)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(hubtriage::run::RunError::Usage(m)) => fail(exit::USAGE, &m),
                Err(e) => {
                    tracing::error!(error = %e, "hubtriage run failed");
                    fail(exit::FAILURE, &e)
                }
            }
        }
        Command::CheckConfig { source, now } => match Config::load_from(source.config.as_deref()) {
            Ok((config, name)) => {
                let now = now.unwrap_or_else(Utc::now);
                print!("{}", hubtriage::config::report::render(&name, &config, now));
                for warning in hubtriage::config::report::warnings(&config, now) {
                    eprintln!("warning: {warning}");
                }
                ExitCode::SUCCESS
            }
            Err(e) => fail(exit::USAGE, &e),
        },
        Command::Setup { source, dry_run } => {
            let (config, name) = match Config::load_from(source.config.as_deref()) {
                Ok(c) => c,
                Err(e) => return fail(exit::USAGE, &e),
            };
            let queue = match config.require_queue(&name) {
                Ok(q) => q.clone(),
                Err(e) => return fail(exit::USAGE, &e),
            };
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(r) => r,
                Err(e) => return fail(exit::FAILURE, &e),
            };
            let result = runtime.block_on(async {
                let sdk = hubtriage::aws::load().await;
                hubtriage::setup::Setup::new(&sdk, dry_run)
                    .run(&config, &queue)
                    .await
            });
            match result {
                Ok(changes) if changes.is_empty() => {
                    println!("nothing to change: the queue, its DLQ, the queue policy and the rule are as configured");
                    ExitCode::SUCCESS
                }
                Ok(changes) => {
                    for c in changes {
                        println!("{}", c.0);
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => fail(exit::FAILURE, &e),
            }
        }
        Command::Healthcheck {
            source,
            max_age_seconds,
        } => {
            // The check needs only the heartbeat file and the long-poll wait: with
            // no config at all (an image run with its baked-in CMD) the defaults do.
            let given = source.config.is_some()
                || std::env::var_os(hubtriage::config::CONFIG_TOML_ENV).is_some();
            let loaded = if given {
                Config::load_from(source.config.as_deref()).map(|(c, _)| c)
            } else {
                Config::from_toml_with_env("(defaults)", "", vec![])
            };
            let config = match loaded {
                Ok(c) => c,
                Err(e) => return fail(exit::USAGE, &e),
            };
            let wait = config.queue.as_ref().map(|q| q.wait_seconds).unwrap_or(20);
            let max_age =
                max_age_seconds.unwrap_or_else(|| hubtriage::health::default_max_age(wait));
            let file = PathBuf::from(&config.daemon.heartbeat_file);
            match hubtriage::health::check(&file, max_age, Utc::now()) {
                Ok(age) => {
                    println!("healthy: the receive loop made progress {age} s ago");
                    ExitCode::SUCCESS
                }
                Err(e) => fail(exit::FAILURE, &e),
            }
        }
    }
}

fn fail(code: u8, error: &dyn std::fmt::Display) -> ExitCode {
    eprintln!("hubtriage: {error}");
    ExitCode::from(code)
}
