//! `ringfence run`: run a module for a project and print the job summary — never the guest's
//! output.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use ringfence::home::Home;
use ringfence::job::{JobRequest, ModuleSource};
use ringfence::queue::{ExportQueue, JobRun};
use ringfence::sandbox::{CacheOutcome, Sandbox};

use crate::{Cli, Outcome, load_policy, shown, today};

/// Arguments of `ringfence run`.
#[derive(Args)]
pub(crate) struct RunArgs {
    /// The project's policy file.
    #[arg(long)]
    policy: PathBuf,
    /// The researcher submitting the job.
    #[arg(long)]
    user: String,
    /// The analysis, a wasm32-wasip1 command module.
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
    let wasm = match std::fs::read(&args.module) {
        Ok(wasm) => wasm,
        Err(err) => return Ok(Outcome::BadInput(format!("cannot read module {}: {err}", shown(&args.module)))),
    };
    let mut queue = ExportQueue::open(&cli.home)?;
    let sandbox = Sandbox::new(&queue.home().module_cache_dir())?;
    let request =
        JobRequest { policy: &policy, user: &args.user, module: ModuleSource::Submitted(&wasm), args: &args.args };
    let run = match queue.run_job(&sandbox, &request, today()) {
        Ok(run) => run,
        Err(err) if err.is_bad_input() => {
            return Ok(Outcome::BadInput(format!("{}: {err}", shown(&args.module))));
        }
        Err(err) => return Err(err).context("the job could not be run"),
    };
    print_summary(&run, queue.home());
    Ok(if run.record.status.is_success() { Outcome::Ok } else { Outcome::JobFailed })
}

/// The researcher's view of a job: how it went and how its outputs fared in the checks (which
/// checks did not pass, never the numbers behind them), never what the guest printed or
/// exported.
pub(crate) fn print_summary(run: &JobRun, home: &Home) {
    let record = &run.record;
    let module = match record.module_cache {
        CacheOutcome::Memory => format!("already loaded ({:.1} ms)", record.module_load_ms),
        CacheOutcome::Hit => format!("loaded from cache in {:.1} ms", record.module_load_ms),
        CacheOutcome::Miss => format!("compiled in {:.0} ms (now cached)", record.module_load_ms),
        CacheOutcome::Rebuilt => format!("recompiled in {:.0} ms (cache entry was corrupt)", record.module_load_ms),
    };
    let exports = match record.exports.len() {
        1 => "1 file captured, held for review".to_string(),
        n => format!("{n} files captured, held for review"),
    };
    println!("job       {}", record.id);
    println!("project   {}", record.project);
    println!("status    {}", record.status);
    println!("duration  {:.1} ms wall, {:.1} ms CPU", record.duration_ms, record.cpu_ms);
    println!("memory    {:.1} MiB peak", record.peak_memory_bytes as f64 / f64::from(1 << 20));
    println!("module    {module}");
    println!("exports   {exports}");
    if !record.discarded.is_empty() {
        println!("discarded {} entries under /export (see the job record)", record.discarded.len());
    }
    let stream = |s: &ringfence::sandbox::OutputSummary| {
        let mark = if s.truncated { format!(" of {} written (truncated)", s.written_bytes) } else { String::new() };
        format!("{} bytes captured{mark}, not shown", s.captured_bytes)
    };
    println!("stdout    {}", stream(&record.stdout));
    println!("stderr    {}", stream(&record.stderr));
    println!("record    {}", shown(&home.job_dir(&record.id)));
    for request in &run.requests {
        let outcome = request.outcome.map_or("not checked".to_string(), |o| o.to_string());
        let flagged: Vec<&str> = request
            .report
            .iter()
            .flat_map(|r| &r.results)
            .filter(|r| r.outcome != ringfence::disclosure::Outcome::Pass)
            .map(|r| r.check.as_str())
            .collect();
        let flagged = if flagged.is_empty() { String::new() } else { format!(" ({})", flagged.join(", ")) };
        println!("export    #{} {}: {outcome}{flagged}, {}", request.id, request.file, request.status);
    }
}
