//! `ringfence audit …`: read and verify the hash-chained audit log.

use clap::Subcommand;
use ringfence::audit;
use ringfence::queue::ExportQueue;
use ringfence::untrusted;

use crate::{Cli, Outcome};

/// Audit-log commands.
#[derive(Subcommand)]
pub(crate) enum AuditCommand {
    /// Check every entry's hash and link, and that every job and request is accounted for.
    Verify,
    /// Print the log, oldest first.
    Show {
        /// Only this project's entries.
        #[arg(long)]
        project: Option<String>,
    },
}

pub(crate) fn run(cli: &Cli, command: &AuditCommand) -> anyhow::Result<Outcome> {
    let queue = ExportQueue::open(&cli.home)?;
    match command {
        AuditCommand::Verify => {
            let verification = audit::verify(queue.store())?;
            if verification.is_intact() {
                println!("audit log intact: {} entries, head {}", verification.entries, verification.head);
                return Ok(Outcome::Ok);
            }
            for b in &verification.breaks {
                if b.seq > 0 {
                    println!("entry {}: {}", b.seq, b.problem);
                } else {
                    println!("{}", b.problem);
                }
            }
            Ok(Outcome::AuditBroken(verification.breaks.len()))
        }
        AuditCommand::Show { project } => {
            for e in audit::entries(queue.store(), project.as_deref())? {
                let project = e.project.as_deref().unwrap_or("-");
                let subject = e.subject.as_deref().unwrap_or("-");
                let line = format!(
                    "{:>5} {} {:<26} {:<16} {:<14} {} {}",
                    e.seq, e.at, e.action, e.actor, project, subject, e.detail
                );
                println!("{}", untrusted::shown(&line));
            }
            Ok(Outcome::Ok)
        }
    }
}
