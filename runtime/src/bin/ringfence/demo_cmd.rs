//! `ringfence demo`: the whole flow on the embedded default — synthetic population, demo
//! project, two example analyses, automatic checks — ending with the export queue as the
//! operator and the checkers see it (guest text escaped).

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use clap::Args;
use ringfence::catalog::{Catalog, DemoPopulation};
use ringfence::job::{JobRequest, ModuleSource};
use ringfence::policy::Policy;
use ringfence::queue::ExportQueue;
use ringfence::sandbox::Sandbox;
use ringfence::untrusted;
use ringfence::view::ResearcherRequest;

use crate::dataset_cmd::{Bar, DEMO_SEED, imported_version};
use crate::exports_cmd::{print_list, print_report};
use crate::researcher_view::request_line;
use crate::{Cli, Outcome, load_caps, policy_cmd, shown, today};

/// The demo project's policy, shipped in the binary.
const DEMO_POLICY: &str = include_str!("../../../../policies/demo.toml");

/// The analyses the demo runs: (module, researcher, arguments).
const DEMO_JOBS: &[(&str, &str, &[&str])] =
    &[("income-by-region", "alice", &[]), ("crosstab", "alice", &[]), ("crosstab", "bob", &["region", "age"])];

/// Arguments of `ringfence demo`.
#[derive(Args)]
pub(crate) struct DemoArgs {
    /// Where the example guests' `.wasm` files are (built by `scripts/setup`).
    #[arg(long, default_value = "target/wasm32-wasip1/guest")]
    modules: PathBuf,
    /// Rows of the synthetic population, when it has to be generated.
    #[arg(long, default_value_t = 100_000)]
    rows: u64,
}

pub(crate) fn run(cli: &Cli, args: &DemoArgs) -> anyhow::Result<Outcome> {
    let started = Instant::now();
    let wasm: Vec<Vec<u8>> = DEMO_JOBS
        .iter()
        .map(|(name, _, _)| {
            let path = args.modules.join(format!("{name}.wasm"));
            std::fs::read(&path)
                .with_context(|| format!("cannot read {} (build the guests with scripts/setup)", shown(&path)))
        })
        .collect::<Result<_, _>>()?;

    let catalog = Catalog::open(&cli.home)?;
    if catalog.get("persons", 1).is_err() {
        println!("generating the synthetic population ({} persons)…", args.rows);
        let bar = Bar::new();
        let population = DemoPopulation { rows: args.rows, seed: DEMO_SEED };
        let generated = catalog.generate_demo("persons", population, &bar);
        bar.finish();
        if let Outcome::BadInput(message) = imported_version(cli, generated)? {
            return Ok(Outcome::BadInput(message));
        }
    }

    let policy_file = cli.home.join("demo-policy.toml");
    std::fs::write(&policy_file, DEMO_POLICY).with_context(|| format!("cannot write {}", shown(&policy_file)))?;
    let policy = Policy::load(&policy_file, &load_caps(cli)?, &catalog, today())?;
    policy_cmd::register(cli, &policy, "built-in demo policy")?;
    println!("project {} registered ({})", policy.project.id, policy.project.title);

    let mut queue = ExportQueue::open(&cli.home)?;
    let sandbox = Sandbox::new(&queue.home().module_cache_dir())?;
    let mut requests = Vec::new();
    for ((name, user, job_args), wasm) in DEMO_JOBS.iter().zip(&wasm) {
        let job_args: Vec<String> = job_args.iter().map(|a| a.to_string()).collect();
        let request = JobRequest { policy: &policy, user, module: ModuleSource::Submitted(wasm), args: &job_args };
        let run = queue.run_job(&sandbox, &request, today())?;
        let command = std::iter::once(*name).chain(job_args.iter().map(String::as_str)).collect::<Vec<_>>().join(" ");
        println!(
            "ran {command} for {user}: {} in {:.0} ms, {} output(s) queued",
            run.record.status,
            run.record.duration_ms,
            run.requests.len()
        );
        requests.extend(run.requests);
    }

    println!("\nexport queue (this run's requests)");
    print_list(&requests);
    for request in &requests {
        println!(
            "\n#{} {} — {}",
            request.id,
            untrusted::shown(&request.file),
            untrusted::shown(&request.guest_description)
        );
        if let Some(report) = &request.report {
            print_report(report, false);
        }
    }
    println!("\nwhat the researchers see of these jobs before review (the service's researcher view):");
    for request in &requests {
        println!("  {}: {}", request.submitted_by, request_line(&ResearcherRequest::new(request)));
    }
    println!("\ndemo finished in {:.1} s; state in {}", started.elapsed().as_secs_f64(), shown(&cli.home));
    println!(
        "next, as the operator: ringfence exports show ID (the table and the full suggested suppression);\n\
         as checker carol:      RINGFENCE_TOKEN=$(ringfence token issue --user carol) ringfence exports approve ID;\n\
         as researcher alice:   ringfence serve, then ringfence remote (see the README)"
    );
    Ok(Outcome::Ok)
}
