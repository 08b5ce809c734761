//! `ringfence policy check FILE`: validate a policy and say what it grants.

use std::path::PathBuf;

use clap::Subcommand;
use ringfence::policy::{Policy, Registry};
use ringfence::view::channel::Bound;

use ringfence::audit::Action;

use crate::{Cli, Outcome, load_policy, record_operator_action, shown};

/// Policy commands.
#[derive(Subcommand)]
pub(crate) enum PolicyCommand {
    /// Validate a policy file; prints what it grants, or the first error with file, key and reason.
    Check {
        /// The policy file.
        file: PathBuf,
    },
    /// Validate a policy and register it with the state directory, replacing the project's
    /// earlier policy: registered projects are the ones whose datasets cannot be removed.
    Register {
        /// The policy file.
        file: PathBuf,
    },
}

pub(crate) fn run(cli: &Cli, command: &PolicyCommand) -> anyhow::Result<Outcome> {
    let (PolicyCommand::Check { file } | PolicyCommand::Register { file }) = command;
    let policy = match load_policy(cli, file)? {
        Ok(policy) => policy,
        Err(message) => return Ok(Outcome::BadInput(message)),
    };
    if let PolicyCommand::Register { .. } = command {
        let registered = register(cli, &policy, &policy.source.display().to_string())?;
        println!("registered project {} as {}", policy.project.id, shown(&registered));
        return Ok(Outcome::Ok);
    }
    let limits = &policy.limits;
    println!("{}: ok", shown(file));
    println!("project   {} ({}), expires {}", policy.project.id, policy.project.title, policy.project.expires);
    for member in &policy.members {
        let roles: Vec<String> = member.roles.iter().map(|r| format!("{r:?}").to_lowercase()).collect();
        println!("member    {} [{}]", member.user, roles.join(", "));
    }
    for grant in &policy.datasets {
        let filter = grant.filter.as_ref().map(|f| format!(" where {f}")).unwrap_or_default();
        println!(
            "dataset   /data/{}/ <- {} version {}: {}{filter}",
            grant.mount,
            grant.dataset,
            grant.version,
            grant.columns.join(", ")
        );
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
    let bound = Bound::of(limits, &policy.disclosure);
    println!(
        "channel   before review a hostile analysis can signal at most {:.1} bits a job, {} jobs a day: {:.0} bits a day",
        bound.bits_per_job, bound.jobs_per_day, bound.bits_per_day
    );
    Ok(Outcome::Ok)
}

/// Registers a validated policy with the state directory and records that in the audit log,
/// naming where the policy came from.
pub(crate) fn register(cli: &Cli, policy: &Policy, source: &str) -> anyhow::Result<PathBuf> {
    let registered = Registry::open(&cli.home)?.register(policy)?;
    let detail = serde_json::json!({ "sha256": policy.sha256, "source": source });
    let project = Some(policy.project.id.as_str());
    record_operator_action(cli, Action::PolicyRegistered, project, format!("policy:{}", policy.project.id), detail)?;
    Ok(registered)
}
