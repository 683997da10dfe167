//! The `hubtriage` command: parse the command line, run the subcommand's
//! function, and map its error to an exit code (64 usage/config, 65 bad input
//! file, 1 runtime failure).
//!
//! Contract: each subcommand is one function returning `Result<(), CliError>`;
//! only `main` prints an error (`hubtriage: {message}` on stderr) and exits.

#![forbid(unsafe_code)]

use std::fmt::Display;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use chrono::{DateTime, Utc};
use clap::{Parser, Subcommand};

use hubtriage::config::{Config, Queue};
use hubtriage::exit;
use hubtriage::explain::{ExplainError, Inputs};
use hubtriage::journal::Filter;
use hubtriage::run::RunError;

#[derive(Parser)]
#[command(
    name = "hubtriage",
    version,
    about = "Triage AWS Security Hub findings of the Neptune controls from live state: remediate, ticket, suppress or resolve, and journal every change"
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
    Explain(ExplainArgs),
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
        #[arg(long, value_name = "RFC3339", value_parser = hubtriage::explain::parse_time)]
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
    /// Print the change journal, newest first: what hubtriage changed and decided.
    History(HistoryArgs),
    /// Write one self-contained HTML page of what hubtriage changed and decided.
    Report(ReportArgs),
    /// Put a change from the journal back (prints what it would do without --apply).
    Undo(UndoArgs),
    /// Print the controls hubtriage triages: what passes, the fix, its class and IAM actions.
    Controls {
        /// markdown (the README's table) or json (an array, one object a control).
        #[arg(long, value_name = "FORMAT", default_value = "markdown", value_parser = hubtriage::control::table::Format::parse)]
        format: hubtriage::control::table::Format,
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

#[derive(clap::Args)]
struct HistoryArgs {
    #[command(flatten)]
    source: ConfigSource,
    /// From when: a duration back from now (30m, 12h, 7d, 2w) or an RFC 3339 time.
    #[arg(long, value_name = "DURATION|RFC3339", default_value = "7d")]
    since: String,
    /// Until when, RFC 3339 (default: now).
    #[arg(long, value_name = "RFC3339", value_parser = hubtriage::explain::parse_time)]
    until: Option<DateTime<Utc>>,
    /// Only this account's entries.
    #[arg(long, value_name = "ID", value_parser = hubtriage::explain::parse_account)]
    account: Option<String>,
    /// Only this region's entries.
    #[arg(long, value_name = "REGION")]
    region: Option<String>,
    /// Only this control's entries (Neptune.4).
    #[arg(long, value_name = "ID")]
    control: Option<String>,
    /// Only this cluster's or snapshot's entries: its ARN, or its name in any account.
    #[arg(long, value_name = "ARN|NAME")]
    resource: Option<String>,
    /// Only changes, decisions or undos.
    #[arg(long, value_name = "KIND", value_parser = hubtriage::history::parse_kind)]
    kind: Option<hubtriage::journal::Kind>,
    /// table (120 columns), json (one entry a line) or csv.
    #[arg(long, value_name = "FORMAT", default_value = "table", value_parser = hubtriage::history::Format::parse)]
    format: hubtriage::history::Format,
}

#[derive(clap::Args)]
struct ReportArgs {
    /// The config, for the journal's table (not needed with --history).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Where to write the page.
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// From when: a duration back from now (30m, 12h, 7d, 2w) or an RFC 3339 time.
    #[arg(long, value_name = "DURATION|RFC3339", default_value = "7d")]
    since: String,
    /// A `hubtriage history --format json` file to read instead of the table (offline).
    #[arg(long, value_name = "FILE")]
    history: Option<PathBuf>,
}

#[derive(clap::Args)]
struct UndoArgs {
    /// The change's journal entry id (hubtriage history, report).
    #[arg(value_name = "ID")]
    id: String,
    #[command(flatten)]
    source: ConfigSource,
    /// Make the change: without it, undo says what it would do and changes nothing.
    #[arg(long)]
    apply: bool,
    /// Why, for the undo entry and the resource's hubtriage:skip tag.
    #[arg(long, value_name = "TEXT")]
    reason: Option<String>,
    /// Needed to undo Neptune.3: the snapshot becomes public again.
    #[arg(long)]
    make_public: bool,
}

// The flags of `hubtriage explain` (a plain comment: a doc comment here would
// become clap's help text).
#[derive(clap::Args)]
struct ExplainArgs {
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
    /// The EventBridge event (an SQS message body).
    #[arg(
        long,
        value_name = "FILE",
        required_unless_present = "live",
        conflicts_with = "live"
    )]
    event: Option<PathBuf>,
    /// `aws neptune describe-db-clusters` output, whole (not saved with --query). Cluster
    /// controls need it: without it their findings are refused (exit 64), never taken as gone.
    #[arg(
        long,
        value_name = "FILE",
        required_unless_present_any = ["live", "snapshots"],
        conflicts_with = "live"
    )]
    clusters: Option<PathBuf>,
    /// `aws neptune describe-db-cluster-snapshots` output. Snapshot controls (Neptune.3,
    /// Neptune.6) need it: without it their findings are refused (exit 64).
    #[arg(long, value_name = "FILE", conflicts_with = "live")]
    snapshots: Option<PathBuf>,
    /// `aws neptune describe-db-cluster-snapshot-attributes` output for the finding's
    /// snapshot. Neptune.3 needs it: without it its findings are refused (exit 64), never
    /// taken as private; another snapshot's is refused too (exit 65).
    #[arg(
        long,
        value_name = "FILE",
        conflicts_with = "live",
        requires = "snapshots"
    )]
    snapshot_attributes: Option<PathBuf>,
    /// Read the finding (--finding-id) from Security Hub and its cluster's live
    /// state through the same account reach as `run`; change nothing.
    #[arg(long, requires = "finding_id", conflicts_with_all = ["parameters", "tags", "account"])]
    live: bool,
    /// With --live: the finding's Id (its ARN); without --live it is refused (exit 64).
    #[arg(long, value_name = "ARN", requires = "live")]
    finding_id: Option<String>,
    /// `aws neptune describe-db-cluster-parameters` output for the cluster's group
    /// (absent: neptune_enable_audit_log is the engine default, 0).
    #[arg(long, value_name = "FILE")]
    parameters: Option<PathBuf>,
    /// `aws neptune list-tags-for-resource` output (absent: no tags; rules on tags, the
    /// skip tag and a stack's tags then cannot match).
    #[arg(long, value_name = "FILE")]
    tags: Option<PathBuf>,
    /// The time to decide at, RFC 3339 (default: now).
    #[arg(long, value_name = "RFC3339", value_parser = hubtriage::explain::parse_time)]
    now: Option<DateTime<Utc>>,
    /// The account hubtriage runs in (default: $AWS_ACCOUNT_ID, else the
    /// account of the clusters in the describe-db-clusters output).
    #[arg(long, value_name = "ACCOUNT_ID", value_parser = hubtriage::explain::parse_account)]
    account: Option<String>,
}

/// Why a subcommand failed: the exit code, and what to print after `hubtriage: `
/// (nothing when the output itself cannot be written).
struct CliError {
    code: u8,
    message: Option<String>,
}

impl CliError {
    fn new(code: u8, error: impl Display) -> Self {
        CliError {
            code,
            message: Some(error.to_string()),
        }
    }

    /// Bad command line or config (64).
    fn usage(error: impl Display) -> Self {
        Self::new(exit::USAGE, error)
    }

    /// An input file that cannot be read or parsed (65).
    fn data(error: impl Display) -> Self {
        Self::new(exit::DATA, error)
    }

    /// A runtime failure (1).
    fn failure(error: impl Display) -> Self {
        Self::new(exit::FAILURE, error)
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
    let result = match cli.command {
        Command::Explain(args) => explain(args),
        Command::Run {
            source,
            until_empty,
        } => run(&source, until_empty),
        Command::CheckConfig { source, now } => check_config(&source, now),
        Command::Setup { source, dry_run } => setup(&source, dry_run),
        Command::History(args) => history(args),
        Command::Report(args) => report(args),
        Command::Undo(args) => undo(args),
        Command::Controls { format } => print_out(&hubtriage::control::table::render(format)),
        Command::Healthcheck {
            source,
            max_age_seconds,
        } => healthcheck(&source, max_age_seconds),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if let Some(message) = e.message {
                eprintln!("hubtriage: {message}");
            }
            ExitCode::from(e.code)
        }
    }
}

/// `hubtriage explain`: one JSON decision a line on stdout.
fn explain(args: ExplainArgs) -> Result<(), CliError> {
    let config = Config::load(&args.config).map_err(CliError::usage)?;
    controls_take(&config, &args.config.display().to_string())?;
    let now = args.now.unwrap_or_else(Utc::now);
    if args.finding_id.is_some() && !args.live {
        return Err(CliError::usage(
            "--finding-id names the finding --live reads: add --live",
        ));
    }
    let decisions =
        match (args.live, args.event, args.finding_id) {
            (true, _, Some(id)) => vec![explain_live(&config, &id, now)?],
            (false, Some(event), _) if args.clusters.is_some() || args.snapshots.is_some() => {
                let inputs = Inputs {
                    event,
                    clusters: args.clusters,
                    parameters: args.parameters,
                    tags: args.tags,
                    snapshots: args.snapshots,
                    snapshot_attributes: args.snapshot_attributes,
                    account: hubtriage::explain::account(args.account).map_err(CliError::usage)?,
                };
                hubtriage::explain::explain(&config, &inputs, now).map_err(|e| match e {
                    ExplainError::Usage(_) => CliError::usage(e),
                    ExplainError::Data(_) => CliError::data(e),
                })?
            }
            _ => return Err(CliError::usage(
                "explain needs --event and --clusters (or --snapshots), or --live and --finding-id",
            )),
        };
    if decisions.is_empty() {
        eprintln!("hubtriage: the event holds no findings: there is nothing to explain");
    }
    let mut lines = String::new();
    for d in decisions {
        lines += &serde_json::to_string(&d).map_err(CliError::failure)?;
        lines.push('\n');
    }
    print_out(&lines)
}

/// `explain --live`: one finding, from Security Hub and live state.
fn explain_live(
    config: &Config,
    finding_id: &str,
    now: DateTime<Utc>,
) -> Result<hubtriage::decide::Decision, CliError> {
    use hubtriage::explain::live::LiveError;
    current_thread()?
        .block_on(hubtriage::explain::live::explain_live(
            config, finding_id, now,
        ))
        .map_err(|e| match e {
            LiveError::Usage(_) => CliError::usage(e),
            LiveError::NotFound(_) => CliError::data(e),
            LiveError::Aws(_) => CliError::failure(e),
        })
}

/// `hubtriage run`: the daemon, until a signal (or an empty queue).
fn run(source: &ConfigSource, until_empty: bool) -> Result<(), CliError> {
    let (config, queue) = load_with_queue(source)?;
    hubtriage::telemetry::init();
    // Workers get 8 MiB stacks, not tokio's 2: a finding's work is one deep
    // future, and debug builds keep every frame of it.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_stack_size(8 * 1024 * 1024)
        .build()
        .map_err(CliError::failure)?;
    runtime
        .block_on(hubtriage::run::run(config, queue, until_empty))
        .map_err(|e| match e {
            RunError::Usage(m) => CliError::usage(m),
            e => {
                tracing::error!(error = %e, "hubtriage run failed");
                CliError::failure(e)
            }
        })
}

/// `hubtriage check-config`: the rules and suppressions on stdout, warnings on stderr.
fn check_config(source: &ConfigSource, now: Option<DateTime<Utc>>) -> Result<(), CliError> {
    let (config, name) = load(source)?;
    let now = now.unwrap_or_else(Utc::now);
    print!("{}", hubtriage::config::report::render(&name, &config, now));
    print!("{}", hubtriage::control::report::render(&config));
    for warning in hubtriage::config::report::warnings(&config, now)
        .into_iter()
        .chain(hubtriage::control::report::warnings(&config))
    {
        eprintln!("warning: {warning}");
    }
    let is_set = |name: &str| std::env::var_os(name).is_some_and(|v| !v.is_empty());
    for warning in hubtriage::config::report::unset_variables(&config, is_set) {
        eprintln!("warning: {warning}");
    }
    Ok(())
}

/// `hubtriage setup`: what changed (or would) on stdout, a line each.
fn setup(source: &ConfigSource, dry_run: bool) -> Result<(), CliError> {
    let (config, queue) = load_with_queue(source)?;
    let changes = current_thread()?
        .block_on(async {
            let sdk = hubtriage::aws::load().await;
            hubtriage::setup::Setup::new(&sdk, dry_run)
                .run(&config, &queue)
                .await
        })
        .map_err(CliError::failure)?;
    if changes.is_empty() {
        println!("nothing to change: the queue, its DLQ, the queue policy and the rule are as configured");
    }
    for c in changes {
        println!("{}", c.0);
    }
    Ok(())
}

/// A runtime for one command's AWS calls.
fn current_thread() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(CliError::failure)
}

/// `hubtriage history`: the journal's entries on stdout.
fn history(args: HistoryArgs) -> Result<(), CliError> {
    let (config, _) = load(&args.source)?;
    hubtriage::history::journal_config(&config).map_err(CliError::usage)?;
    let filter = Filter {
        account: args.account,
        region: args.region,
        control: args.control,
        resource: args.resource,
        kind: args.kind,
        ..hubtriage::history::time_range(&args.since, args.until, Utc::now())
            .map_err(CliError::usage)?
    };
    let entries = current_thread()?
        .block_on(hubtriage::history::read(&config, &filter))
        .map_err(CliError::failure)?;
    print_out(&hubtriage::history::render(&entries, args.format))
}

/// `hubtriage report`: the page, written to `--out`.
fn report(args: ReportArgs) -> Result<(), CliError> {
    let now = Utc::now();
    let filter = hubtriage::history::time_range(&args.since, None, now).map_err(CliError::usage)?;
    let since = filter.since;
    let (entries, source) = match &args.history {
        Some(file) => hubtriage::history::read_file(file, &filter).map_err(CliError::data)?,
        None => {
            let (config, _) = load(&ConfigSource {
                config: args.config.clone(),
            })?;
            let table = hubtriage::history::journal_config(&config)
                .map_err(CliError::usage)?
                .table
                .clone();
            let entries = current_thread()?
                .block_on(hubtriage::history::read(&config, &filter))
                .map_err(CliError::failure)?;
            (entries, format!("DynamoDB table {table}"))
        }
    };
    let page = hubtriage::report::Report {
        entries: &entries,
        since,
        until: now,
        now,
        source,
    }
    .render();
    std::fs::write(&args.out, page)
        .map_err(|e| CliError::failure(format!("{}: cannot write: {e}", args.out.display())))?;
    println!(
        "wrote {}: {} journal entries since {}",
        args.out.display(),
        entries.len(),
        since.format("%Y-%m-%d %H:%M UTC")
    );
    Ok(())
}

/// `hubtriage undo`: what was (or would be) put back, a line each.
fn undo(args: UndoArgs) -> Result<(), CliError> {
    use hubtriage::undo::UndoError;
    let (config, _) = load(&args.source)?;
    let options = hubtriage::undo::Options {
        apply: args.apply,
        reason: args.reason,
        make_public: args.make_public,
    };
    let lines = current_thread()?
        .block_on(hubtriage::undo::run(&config, &args.id, &options))
        .map_err(|e| match e {
            UndoError::Usage(_) => CliError::usage(e),
            UndoError::ChangedSince(_) => CliError::new(exit::CHANGED_SINCE, e),
            UndoError::Aws(_) | UndoError::Journal(_) => CliError::failure(e),
        })?;
    print_out(&(lines.join("\n") + "\n"))
}

/// Writes `text` to stdout; a closed stdout ends quietly with 1.
fn print_out(text: &str) -> Result<(), CliError> {
    std::io::stdout()
        .lock()
        .write_all(text.as_bytes())
        .map_err(|_| CliError {
            code: exit::FAILURE,
            message: None,
        })
}

/// `hubtriage healthcheck`: exit 0 while the heartbeat file is fresh.
fn healthcheck(source: &ConfigSource, max_age_seconds: Option<i64>) -> Result<(), CliError> {
    // The check needs only the heartbeat file and the long-poll wait: with
    // no config at all (an image run with its baked-in CMD) the defaults do.
    let given =
        source.config.is_some() || std::env::var_os(hubtriage::config::CONFIG_TOML_ENV).is_some();
    let config = if given {
        load(source)?.0
    } else {
        Config::from_toml_with_env("(defaults)", "", vec![]).map_err(CliError::usage)?
    };
    let wait = config.queue.as_ref().map(|q| q.wait_seconds).unwrap_or(20);
    let max_age = max_age_seconds.unwrap_or_else(|| hubtriage::health::default_max_age(wait));
    let file = PathBuf::from(&config.daemon.heartbeat_file);
    let age = hubtriage::health::check(&file, max_age, Utc::now()).map_err(CliError::failure)?;
    println!("healthy: the receive loop made progress {age} s ago");
    Ok(())
}

/// The config from `--config` or `$HUBTRIAGE_CONFIG_TOML`, and its name for messages.
fn load(source: &ConfigSource) -> Result<(Config, String), CliError> {
    let (config, name) = Config::load_from(source.config.as_deref()).map_err(CliError::usage)?;
    controls_take(&config, &name)?;
    Ok((config, name))
}

/// Each `[controls."<id>"]` table holds only keys its control takes (the
/// control says which), as a config error naming the file and key.
fn controls_take(config: &Config, name: &str) -> Result<(), CliError> {
    hubtriage::control::check_settings(config)
        .map_err(|(key, message)| CliError::usage(format!("config {name}: {key}: {message}")))
}

/// The config of a subcommand that needs `[queue]` (`run`, `setup`), and that queue.
fn load_with_queue(source: &ConfigSource) -> Result<(Config, Queue), CliError> {
    let (config, name) = load(source)?;
    let queue = config
        .require_queue(&name)
        .map_err(CliError::usage)?
        .clone();
    Ok((config, queue))
}
