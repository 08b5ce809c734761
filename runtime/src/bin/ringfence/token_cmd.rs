//! `ringfence token …`: issue, list and revoke personal API tokens (operators).

use clap::Subcommand;
use ringfence::store::Store;
use ringfence::tokens::{self, Revoke};

use crate::{Cli, Outcome, operator};

/// Token commands.
#[derive(Subcommand)]
pub(crate) enum TokenCommand {
    /// Issue a token for a user; the secret is printed once and only its hash is kept.
    Issue {
        /// The user the token belongs to.
        #[arg(long)]
        user: String,
        /// How long it stays valid: e.g. 30d, 12h, 90m.
        #[arg(long, default_value = "30d")]
        expires: String,
    },
    /// List tokens (never their secrets).
    List {
        /// Only this user's.
        #[arg(long)]
        user: Option<String>,
    },
    /// Revoke a token by id, or every token of a user (a lost token); effective on the next request.
    Revoke {
        /// The token's id.
        #[arg(required_unless_present = "user", conflicts_with = "user")]
        id: Option<String>,
        /// Revoke every live token of this user instead.
        #[arg(long)]
        user: Option<String>,
    },
}

pub(crate) fn run(cli: &Cli, command: &TokenCommand) -> anyhow::Result<Outcome> {
    std::fs::create_dir_all(&cli.home)?;
    let store = Store::open(&cli.home)?;
    match command {
        TokenCommand::Issue { user, expires } => {
            let lifetime = match tokens::parse_lifetime(expires) {
                Ok(lifetime) => lifetime,
                Err(message) => return Ok(Outcome::BadInput(message)),
            };
            let token = tokens::issue(&store, user, lifetime, &operator())?;
            println!("{}", token.secret);
            eprintln!(
                "token {} for {} expires {}; store it now, it is not shown again",
                token.id, token.user, token.expires_at
            );
        }
        TokenCommand::List { user } => {
            for t in tokens::list(&store, user.as_deref())? {
                let state = match (&t.revoked_at, &t.last_used_at) {
                    (Some(at), _) => format!("revoked {at}"),
                    (None, Some(at)) => format!("last used {at}"),
                    (None, None) => "never used".to_string(),
                };
                println!("{}  {:<12} expires {}  {state}", t.id, t.user, t.expires_at);
            }
        }
        TokenCommand::Revoke { id, user } => {
            let which = match (id, user) {
                (Some(id), _) => Revoke::Id(id),
                (None, Some(user)) => Revoke::User(user),
                (None, None) => return Ok(Outcome::BadInput("name a token id or --user".into())),
            };
            let revoked = tokens::revoke(&store, which, &operator())?;
            if revoked == 0 {
                return Ok(Outcome::BadInput("no live token matches".into()));
            }
            println!("revoked {revoked} token(s)");
        }
    }
    Ok(Outcome::Ok)
}
