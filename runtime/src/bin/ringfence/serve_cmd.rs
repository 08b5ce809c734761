//! `ringfence serve`: the HTTP API for researchers and checkers.

use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use ringfence::service::jurisdiction::{self, CountryTable, Jurisdiction};
use ringfence::service::local_worker::WorkerCommand;
use ringfence::service::{Service, ServiceConfig};
use ringfence::tokens;

use crate::{Cli, Outcome, cpus, load_caps};

/// Arguments of `ringfence serve`.
#[derive(Args)]
pub(crate) struct ServeArgs {
    /// Address to listen on (port 0 picks a free port; the chosen address is printed).
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// A token unused for this long must be replaced (rule 4): e.g. 30m, 8h.
    #[arg(long, default_value = "30m")]
    idle_timeout: String,
    /// Largest module upload, in MiB.
    #[arg(long, default_value_t = 64)]
    max_upload_mb: usize,
    /// Address → country table: CSV lines `network,country` (e.g. `192.0.2.0/24,NL`). Requests
    /// from addresses it does not list are refused.
    #[arg(long)]
    countries: PathBuf,
    /// Allowed countries, one ISO code per line; default: the EEA and the EU adequacy countries.
    #[arg(long)]
    allowed_countries: Option<PathBuf>,
    /// A reverse proxy whose `X-Forwarded-For` is believed (repeatable).
    #[arg(long)]
    trusted_proxy: Vec<IpAddr>,
    /// Jobs the service's own worker (a `ringfence worker` process it starts, and starts again
    /// if it dies) runs at once; default: one per CPU. With 0 it starts none, and only
    /// `ringfence worker` processes an operator started on the same state directory run jobs.
    #[arg(long)]
    workers: Option<u32>,
}

pub(crate) fn run(cli: &Cli, args: &ServeArgs) -> anyhow::Result<Outcome> {
    let idle_timeout = match tokens::parse_lifetime(&args.idle_timeout) {
        Ok(idle) => idle,
        Err(message) => return Ok(Outcome::BadInput(message)),
    };
    let table = match CountryTable::load(&args.countries) {
        Ok(table) => table,
        Err(err) => return Ok(Outcome::BadInput(err.to_string())),
    };
    let allowed = match &args.allowed_countries {
        Some(file) => match jurisdiction::load_allowed(file) {
            Ok(allowed) => allowed,
            Err(err) => return Ok(Outcome::BadInput(err.to_string())),
        },
        None => jurisdiction::DEFAULT_ALLOWED.iter().map(|c| c.to_string()).collect(),
    };
    let jurisdiction = Jurisdiction { table, allowed, trusted_proxies: args.trusted_proxy.clone() };
    let config = ServiceConfig {
        home: cli.home.clone(),
        caps: load_caps(cli)?,
        idle_timeout,
        max_upload_bytes: args.max_upload_mb << 20,
        jurisdiction,
        compilers: cpus(),
        local_worker: match args.workers.unwrap_or_else(cpus) {
            0 => None,
            jobs => Some(local_worker(cli, jobs)?),
        },
    };
    let service = Service::new(config)?;
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("cannot listen on {}", args.listen))?;
        let address = listener.local_addr()?;
        println!("listening on http://{address}");
        std::io::stdout().flush()?;
        let shutdown = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        service.serve(listener, shutdown).await.context("the service failed")
    })?;
    Ok(Outcome::Ok)
}

/// `ringfence worker` on the same state directory and caps, running `jobs` at once, woken by
/// the service over its stdin.
fn local_worker(cli: &Cli, jobs: u32) -> anyhow::Result<WorkerCommand> {
    let program = std::env::current_exe().context("cannot find the ringfence executable to start its worker")?;
    let mut args: Vec<std::ffi::OsString> = vec!["--home".into(), cli.home.clone().into()];
    if let Some(caps) = &cli.caps {
        args.extend(["--caps".into(), caps.clone().into()]);
    }
    args.extend(["worker".into(), "--jobs".into(), jobs.to_string().into(), "--wake-on-stdin".into()]);
    Ok(WorkerCommand { program, args })
}
