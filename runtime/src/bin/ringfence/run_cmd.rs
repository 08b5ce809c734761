//! `ringfence run`: run a module (or a script for an installed runtime) for a project now, on
//! the host, and print the job as its researcher sees it — never the guest's output or
//! anything else it chose.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use ringfence::job::{JobRequest, ModuleSource, ScriptSource};
use ringfence::queue::{ExportQueue, JobRun};
use ringfence::sandbox::{CacheOutcome, Sandbox};
use ringfence::view::ResearcherJob;

use crate::{Cli, Outcome, load_policy, researcher_view, shown, today};

/// Arguments of `ringfence run`.
#[derive(Args)]
pub(crate) struct RunArgs {
    /// The project's policy file.
    #[arg(long)]
    policy: PathBuf,
    /// The researcher submitting the job.
    #[arg(long)]
    user: String,
    /// The analysis: a wasm32-wasip1 command module, or a Python script (`.py`) for the
    /// installed `python` runtime.
    module: PathBuf,
    /// Arguments passed to the analysis.
    #[arg(last = true)]
    args: Vec<String>,
}

pub(crate) fn run(cli: &Cli, args: &RunArgs) -> anyhow::Result<Outcome> {
    let policy = match load_policy(cli, &args.policy)? {
        Ok(policy) => policy,
        Err(message) => return Ok(Outcome::BadInput(message)),
    };
    let runtime = ringfence::interpreters::for_script(&args.module);
    let bytes = match std::fs::read(&args.module) {
        Ok(bytes) => bytes,
        Err(err) => {
            let what = if runtime.is_some() { "script" } else { "module" };
            return Ok(Outcome::BadInput(format!("cannot read {what} {}: {err}", shown(&args.module))));
        }
    };
    let module = match runtime {
        Some(runtime) => ModuleSource::Script(ScriptSource { runtime: runtime.name, text: &bytes }),
        None => ModuleSource::Submitted(&bytes),
    };
    let mut queue = ExportQueue::open(&cli.home)?;
    let sandbox = Sandbox::new(&queue.home().module_cache_dir())?;
    let request = JobRequest { policy: &policy, user: &args.user, module, args: &args.args };
    let run = match queue.run_job(&sandbox, &request, today()) {
        Ok(run) => run,
        Err(err) if err.is_bad_input() => {
            return Ok(Outcome::BadInput(format!("{}: {err}", shown(&args.module))));
        }
        Err(err) => return Err(err).context("the job could not be run"),
    };
    print_summary(&queue, &run)?;
    Ok(if run.record.status.is_success() { Outcome::Ok } else { Outcome::JobFailed })
}

/// The job as its researcher sees it (the same view the service gives them): its state, whole
/// seconds, and per output the kind, outcome and the checks it did not pass; never what the
/// guest printed, named or exported, nor its exit code, sizes or exact times. Operators find
/// all of that in the job record and with `ringfence exports show`.
fn print_summary(queue: &ExportQueue, run: &JobRun) -> anyhow::Result<()> {
    let record = &run.record;
    let row = queue.job(&record.id)?.with_context(|| format!("job {} is not in the job table", record.id))?;
    let module = match record.module_cache {
        CacheOutcome::Memory => "already loaded",
        CacheOutcome::Hit => "loaded from cache",
        CacheOutcome::Miss => "compiled (now cached)",
        CacheOutcome::Rebuilt => "recompiled (the cache entry was corrupt)",
    };
    researcher_view::print_job(&ResearcherJob::new(&row, None, &run.requests));
    println!("module    {module}");
    println!("record    {} (for operators and checkers)", shown(&queue.home().job_dir(&record.id)));
    Ok(())
}
