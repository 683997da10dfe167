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
    },
    /// Drain the findings queue: decide, act and record each finding. Runs until
    /// SIGTERM/SIGINT, or with --until-empty until the queue is empty.
    Run {
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        /// Exit 0 once the queue is empty and every finding is recorded.
        #[arg(long)]
        until_empty: bool,
    },
    /// Validate a config file and print its rules and suppressions.
    CheckConfig {
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        /// The time to judge expiries at, RFC 3339 (default: now).
        #[arg(long, value_name = "RFC3339", value_parser = parse_time)]
        now: Option<DateTime<Utc>>,
    },
}

fn parse_time(s: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("expected an RFC 3339 time such as 2026-11-25T12:00:00Z: {e}"))
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
        } => {
            let config = match Config::load(&config) {
                Ok(c) => c,
                Err(e) => return fail(exit::USAGE, &e),
            };
            let inputs = Inputs {
                event,
                clusters,
                parameters,
                tags,
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
            config: path,
            until_empty,
        } => {
            let config = match Config::load(&path) {
                Ok(c) => c,
                Err(e) => return fail(exit::USAGE, &e),
            };
            if let Err(e) = config.require_queue(&path.display().to_string()) {
                return fail(exit::USAGE, &e);
            }
            hubtriage::telemetry::init();
            let runtime = match tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
            {
                Ok(r) => r,
                Err(e) => return fail(exit::FAILURE, &e),
            };
            match runtime.block_on(hubtriage::run::run(config, until_empty)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(hubtriage::run::RunError::Usage(m)) => fail(exit::USAGE, &m),
                Err(e) => {
                    tracing::error!(error = %e, "hubtriage run failed");
                    fail(exit::FAILURE, &e)
                }
            }
        }
        Command::CheckConfig { config: path, now } => match Config::load(&path) {
            Ok(config) => {
                print!(
                    "{}",
                    hubtriage::config::report::render(
                        &path.display().to_string(),
                        &config,
                        now.unwrap_or_else(Utc::now)
                    )
                );
                for warning in
                    hubtriage::config::report::warnings(&config, now.unwrap_or_else(Utc::now))
                {
                    eprintln!("warning: {warning}");
                }
                ExitCode::SUCCESS
            }
            Err(e) => fail(exit::USAGE, &e),
        },
    }
}

fn fail(code: u8, error: &dyn std::fmt::Display) -> ExitCode {
    eprintln!("hubtriage: {error}");
    ExitCode::from(code)
}
