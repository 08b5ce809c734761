//! `ringfence worker`: runs queued jobs in a process of its own (see `ringfence::worker`).

use std::time::Duration;

use clap::Args;
use ringfence::worker::{self, WorkerConfig};

use crate::{Cli, Outcome, cpus, load_caps};

/// Arguments of `ringfence worker`.
#[derive(Args)]
pub(crate) struct WorkerArgs {
    /// Jobs this worker runs at once; default: one per CPU.
    #[arg(long)]
    jobs: Option<u32>,
    /// How often an idle worker looks for queued jobs and for jobs whose worker died, in
    /// milliseconds.
    #[arg(long, default_value_t = 250)]
    poll_ms: u64,
    /// End once no queued job may start, instead of waiting for more.
    #[arg(long)]
    until_idle: bool,
    /// Look for jobs at once whenever a byte arrives on stdin, and stop (once the running jobs
    /// have ended) when stdin ends: how `ringfence serve` drives the worker it starts.
    #[arg(long)]
    wake_on_stdin: bool,
}

pub(crate) fn run(cli: &Cli, args: &WorkerArgs) -> anyhow::Result<Outcome> {
    let config = WorkerConfig {
        home: cli.home.clone(),
        caps: load_caps(cli)?,
        jobs: args.jobs.unwrap_or_else(cpus),
        poll: Duration::from_millis(args.poll_ms),
        until_idle: args.until_idle,
    };
    println!("worker {} on {}: {} jobs at once", std::process::id(), cli.home.display(), config.jobs);
    let wake: Option<Box<dyn std::io::Read + Send>> =
        if args.wake_on_stdin { Some(Box::new(std::io::stdin())) } else { None };
    worker::run(&config, wake, &|run| println!("job {} {}", run.record.id, run.record.status))?;
    Ok(Outcome::Ok)
}
