//! `ringfence`: the command-line edge of the library. Reads the environment, parses arguments,
//! prints summaries and maps outcomes to exit codes; everything else is library calls.
//!
//! Every command but `remote` works on the state directory and is the operator's (and, for
//! review, the checkers') tool on the host: whoever can read the state directory can read
//! everything. Researchers use `ringfence remote`, a client of the service.

mod acting;
mod audit_cmd;
mod dataset_cmd;
mod demo_cmd;
mod exports_cmd;
mod policy_cmd;
mod remote_cmd;
mod researcher_view;
mod run_cmd;
mod runtime_cmd;
mod serve_cmd;
mod token_cmd;
mod worker_cmd;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use ringfence::audit::{self, Action, Event};
use ringfence::catalog::Catalog;
use ringfence::policy::{OperatorCaps, Policy, PolicyError};
use ringfence::store::{Database, Store};
use ringfence::untrusted;

/// Exit code for a request that was refused: bad policy, unknown user, invalid module.
const EXIT_BAD_INPUT: u8 = 2;
/// Exit code for a job whose guest failed or hit a limit.
const EXIT_JOB_FAILED: u8 = 3;
/// Exit code for an audit log that failed verification.
const EXIT_AUDIT_BROKEN: u8 = 4;

/// Run researchers' WebAssembly analyses on confidential microdata under project policies.
#[derive(Parser)]
#[command(name = "ringfence", version, about)]
struct Cli {
    /// State directory: job records, modules, caches.
    #[arg(long, global = true, env = "RINGFENCE_HOME", default_value = "ringfence-home")]
    home: PathBuf,
    /// Operator caps (TOML); defaults to `<home>/caps.toml` when that exists, else built-in caps.
    #[arg(long, global = true)]
    caps: Option<PathBuf>,
    /// Keep the state in this PostgreSQL database (`postgres://user:password@host/name`)
    /// instead of the embedded SQLite file: given once, the state directory remembers it (in
    /// `<home>/database.toml`), so every worker and service that mounts the directory uses it.
    #[arg(long, global = true, env = "RINGFENCE_DATABASE", value_name = "URL")]
    database: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The whole flow on the built-in demo: synthetic data, demo project, two analyses, checks,
    /// and the resulting export queue.
    Demo(demo_cmd::DemoArgs),
    /// Run a module (or a script for an installed runtime) for a project, in the sandbox its
    /// policy describes.
    Run(run_cmd::RunArgs),
    /// Work with project policies.
    #[command(subcommand)]
    Policy(policy_cmd::PolicyCommand),
    /// Work with the dataset catalog.
    #[command(subcommand)]
    Dataset(dataset_cmd::DatasetCommand),
    /// Install and list interpreter runtimes (Python) for script jobs.
    #[command(subcommand)]
    Runtime(runtime_cmd::RuntimeCommand),
    /// Review and release outputs: the export queue.
    #[command(subcommand)]
    Exports(exports_cmd::ExportsCommand),
    /// Read and verify the audit log.
    #[command(subcommand)]
    Audit(audit_cmd::AuditCommand),
    /// Serve the HTTP API for researchers and checkers.
    Serve(serve_cmd::ServeArgs),
    /// Run queued jobs in this process, beside the service and other workers on the same state
    /// directory.
    Worker(worker_cmd::WorkerArgs),
    /// The researcher's client: work with a ringfence service over HTTP with a personal token.
    Remote(remote_cmd::RemoteArgs),
    /// Issue, list and revoke personal API tokens.
    #[command(subcommand)]
    Token(token_cmd::TokenCommand),
}

/// How a command ended, for the exit code.
enum Outcome {
    Ok,
    BadInput(String),
    JobFailed,
    AuditBroken(usize),
}

fn main() -> ExitCode {
    // Like other Unix tools, end quietly when the reader of our output goes away
    // (`ringfence audit show | head`), instead of panicking on the failed write.
    // SAFETY: restoring the default disposition of SIGPIPE before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("RINGFENCE_LOG").unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let attached = match (&cli.database, &cli.command) {
        (Some(url), command) if !matches!(command, Command::Remote(_)) => Database::attach(&cli.home, url),
        _ => Ok(()),
    };
    if let Err(err) = attached {
        eprintln!("error: {}", untrusted::shown_lines(&err.to_string()));
        return ExitCode::FAILURE;
    }
    let result = match &cli.command {
        Command::Run(args) => run_cmd::run(&cli, args),
        Command::Policy(command) => policy_cmd::run(&cli, command),
        Command::Dataset(command) => dataset_cmd::run(&cli, command),
        Command::Runtime(command) => runtime_cmd::run(&cli, command),
        Command::Exports(command) => exports_cmd::run(&cli, command),
        Command::Audit(command) => audit_cmd::run(&cli, command),
        Command::Demo(args) => demo_cmd::run(&cli, args),
        Command::Token(command) => token_cmd::run(&cli, command),
        Command::Serve(args) => serve_cmd::run(&cli, args),
        Command::Worker(args) => worker_cmd::run(&cli, args),
        Command::Remote(args) => remote_cmd::run(&cli, args),
    };
    match result {
        Ok(Outcome::Ok) => ExitCode::SUCCESS,
        Ok(Outcome::JobFailed) => ExitCode::from(EXIT_JOB_FAILED),
        Ok(Outcome::AuditBroken(problems)) => {
            eprintln!("error: the audit log failed verification ({problems} problems)");
            ExitCode::from(EXIT_AUDIT_BROKEN)
        }
        // Messages can quote what a module or a service sent (an import's name, a refusal):
        // escaped like any untrusted text.
        Ok(Outcome::BadInput(message)) => {
            eprintln!("error: {}", untrusted::shown_lines(&message));
            ExitCode::from(EXIT_BAD_INPUT)
        }
        Err(err) => {
            eprintln!("error: {}", untrusted::shown_lines(&error_text(&err)));
            ExitCode::FAILURE
        }
    }
}

/// An error and its causes on one line, each cause said once: the library's errors already
/// quote their source, so a cause whose text the line holds is not repeated.
fn error_text(err: &anyhow::Error) -> String {
    err.chain().fold(String::new(), |mut text, cause| {
        let cause = cause.to_string();
        if text.is_empty() {
            text = cause;
        } else if !text.contains(&cause) {
            text = format!("{text}: {cause}");
        }
        text
    })
}

/// The operator caps in force: `--caps`, else `<home>/caps.toml`, else the built-in defaults.
/// This machine's CPUs: the default number of jobs a service or a worker runs at once.
fn cpus() -> u32 {
    std::thread::available_parallelism().map_or(1, |n| u32::try_from(n.get()).unwrap_or(u32::MAX))
}

fn load_caps(cli: &Cli) -> Result<OperatorCaps, PolicyError> {
    let default_file = cli.home.join("caps.toml");
    match &cli.caps {
        Some(path) => OperatorCaps::load(path),
        None if default_file.exists() => OperatorCaps::load(&default_file),
        None => Ok(OperatorCaps::default()),
    }
}

/// Loads the policy at `path` against the caps and the catalog in force, or says why not.
fn load_policy(cli: &Cli, path: &Path) -> anyhow::Result<Result<Policy, String>> {
    let caps = match load_caps(cli) {
        Ok(caps) => caps,
        Err(err) => return Ok(Err(err.to_string())),
    };
    let catalog = Catalog::open(&cli.home)?;
    Ok(Policy::load(path, &caps, &catalog, today()).map_err(|e| e.to_string()))
}

/// Today's date in UTC: the day expiry dates are checked against.
fn today() -> chrono::NaiveDate {
    chrono::Utc::now().date_naive()
}

/// How the audit log names the operator at this terminal: `operator:<login>`.
fn operator() -> String {
    format!("operator:{}", std::env::var("USER").unwrap_or_else(|_| "unknown".into()))
}

/// Records an operator's change in the audit log, with the login that made it.
fn record_operator_action(
    cli: &Cli,
    action: Action,
    project: Option<&str>,
    subject: String,
    detail: serde_json::Value,
) -> anyhow::Result<()> {
    let actor = operator();
    let store = Store::open(&cli.home)?;
    audit::record(&store, Event { actor: &actor, action, project, subject: Some(subject), detail })?;
    Ok(())
}

/// Renders a path for messages.
fn shown(path: &Path) -> std::path::Display<'_> {
    path.display()
}
