//! `ringfence policy check FILE`: validate a policy and say what it grants.

use std::path::PathBuf;

use clap::Subcommand;
use ringfence::policy::Policy;

use crate::{Cli, Outcome, load_caps, shown, today};

/// Policy commands.
#[derive(Subcommand)]
pub(crate) enum PolicyCommand {
    /// Validate a policy file; prints what it grants, or the first error with file, key and reason.
    Check {
        /// The policy file.
        file: PathBuf,
    },
}

pub(crate) fn run(cli: &Cli, command: &PolicyCommand) -> anyhow::Result<Outcome> {
    let PolicyCommand::Check { file } = command;
    let caps = match load_caps(cli) {
        Ok(caps) => caps,
        Err(err) => return Ok(Outcome::BadInput(err.to_string())),
    };
    let policy = match Policy::load(file, &caps, today()) {
        Ok(policy) => policy,
        Err(err) => return Ok(Outcome::BadInput(err.to_string())),
    };
    let limits = &policy.limits;
    println!("{}: ok", shown(file));
    println!("project   {} ({}), expires {}", policy.project.id, policy.project.title, policy.project.expires);
    for member in &policy.members {
        let roles: Vec<String> = member.roles.iter().map(|r| format!("{r:?}").to_lowercase()).collect();
        println!("member    {} [{}]", member.user, roles.join(", "));
    }
    for grant in &policy.datasets {
        println!("dataset   /data/{}/ <- {}", grant.mount, shown(&grant.path));
    }
    println!(
        "limits    memory {} MiB, cpu {} s, wall {} s, export {} bytes in {} files, {} jobs per user",
        limits.memory_bytes >> 20,
        limits.cpu.as_secs(),
        limits.wall.as_secs(),
        limits.export_max_bytes,
        limits.export_max_files,
        limits.max_concurrent_jobs_per_user
    );
    Ok(Outcome::Ok)
}
