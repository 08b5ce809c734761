//! Who is acting at the command line: the review commands take the actor from a personal token
//! (`--token-file FILE` or `RINGFENCE_TOKEN`), or, for an operator at the host acting for
//! someone, from `--on-behalf-of USER` (the audit log names both). Never from a typed name.

use std::path::PathBuf;

use clap::Args;
use ringfence::audit::{self, Action, Event};
use ringfence::store::Store;
use ringfence::tokens::{self, Actor, AuthError};

use crate::{Cli, operator, shown};

/// How a review command proves who is acting.
#[derive(Args)]
pub(crate) struct ActingAs {
    /// A file holding your personal token (`ringfence token issue`); without it, the token in
    /// $RINGFENCE_TOKEN.
    #[arg(long, value_name = "FILE")]
    token_file: Option<PathBuf>,
    /// As an operator at this host, act for USER without their token; the audit log records
    /// both the user and the operator.
    #[arg(long, value_name = "USER", conflicts_with = "token_file")]
    on_behalf_of: Option<String>,
}

/// The environment variable a personal token may come from.
pub(crate) const TOKEN_ENV: &str = "RINGFENCE_TOKEN";

/// A personal token from `file`, else from [`TOKEN_ENV`]; `Err` says how to give one.
pub(crate) fn token(file: Option<&PathBuf>) -> Result<String, String> {
    let secret = match file {
        Some(path) => {
            std::fs::read_to_string(path).map_err(|e| format!("cannot read token file {}: {e}", shown(path)))?
        }
        None => std::env::var(TOKEN_ENV).map_err(|_| {
            format!("this command needs your personal token: --token-file FILE or {TOKEN_ENV} (operators: --on-behalf-of USER)")
        })?,
    };
    Ok(secret.trim().to_string())
}

impl ActingAs {
    /// The proved actor, or why there is none (a refused token is audited, as the service does).
    pub(crate) fn actor(&self, cli: &Cli) -> anyhow::Result<Result<Actor, String>> {
        if let Some(user) = &self.on_behalf_of {
            return Ok(Ok(Actor::on_behalf_of(user, &operator())));
        }
        let secret = match token(self.token_file.as_ref()) {
            Ok(secret) => secret,
            Err(message) => return Ok(Err(message)),
        };
        let store = Store::open(&cli.home)?;
        match tokens::authenticate(&store, Some(&secret), chrono::Utc::now(), tokens::DEFAULT_IDLE_TIMEOUT) {
            Ok(actor) => Ok(Ok(actor)),
            Err(AuthError::Store(e)) => Err(e.into()),
            Err(refused) => {
                let event = Event {
                    actor: "anonymous",
                    action: Action::AuthenticationRefused,
                    project: None,
                    subject: None,
                    detail: serde_json::json!({ "reason": refused.to_string(), "address": "command line" }),
                };
                audit::record(&store, event)?;
                Ok(Err(format!("the token was not accepted ({refused})")))
            }
        }
    }
}
