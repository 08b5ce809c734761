//! Personal API tokens (rule 2): high-entropy secrets shown once, stored only as SHA-256 hashes,
//! with an expiry date, revocable at once ("report loss"), and refused after too long idle
//! (rule 4: disconnect when away).
//!
//! A token reads `rf_` followed by 64 hex digits (256 random bits from the operating system's
//! generator via `rand`'s thread RNG). The database keeps its hash, owner and dates; whoever
//! reads the database cannot use a token.

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use rand::Rng;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::audit::{Action, Event};
use crate::store::{Bookkeeping, DecodeError, Row, Store, StoreError};

/// What every token starts with, so a leaked one is recognisable (secret scanners).
pub const PREFIX: &str = "rf_";

/// A newly issued token: the secret is shown now and never again.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    /// The token's public id, for listing and revoking.
    pub id: String,
    /// Whose token it is.
    pub user: String,
    /// The secret.
    pub secret: String,
    /// When it stops working.
    pub expires_at: DateTime<Utc>,
}

/// What is stored about a token (never the secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TokenInfo {
    /// The public id.
    pub id: String,
    /// Whose token it is.
    pub user: String,
    /// When it was issued (RFC 3339).
    pub created_at: String,
    /// When it stops working.
    pub expires_at: String,
    /// When it was last accepted.
    pub last_used_at: Option<String>,
    /// When it was revoked, if it was.
    pub revoked_at: Option<String>,
}

/// A person whose identity was proved: by a personal token ([`authenticate`]), or by an
/// operator at the host who says on whose behalf they act ([`Actor::on_behalf_of`]). Review
/// actions take one, so who decided, described or released is never a name typed on a command
/// line, and the four-eyes and no-self-review rules hold wherever the action comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    user: String,
    operator: Option<String>,
}

impl Actor {
    /// `user`, as an operator at the host (`operator`, e.g. `operator:olga`) acting for them; the
    /// audit log names both. Whoever can write the state directory can do anything, so this
    /// records the delegation rather than preventing it.
    pub fn on_behalf_of(user: &str, operator: &str) -> Actor {
        Actor { user: user.to_string(), operator: Some(operator.to_string()) }
    }

    /// The person acting.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The operator acting for them, if one is.
    pub fn operator(&self) -> Option<&str> {
        self.operator.as_deref()
    }
}

/// Why a presented token was not accepted. The service answers all of them with the same
/// `401` and no detail; the variants are for the audit log.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// No token was presented.
    #[error("no token")]
    Missing,
    /// The text is not shaped like a token.
    #[error("malformed token")]
    Malformed,
    /// No such token was ever issued.
    #[error("unknown token")]
    Unknown,
    /// The token's expiry date has passed.
    #[error("expired token {0}")]
    Expired(String),
    /// The token was revoked.
    #[error("revoked token {0}")]
    Revoked(String),
    /// The token was not used for longer than the idle timeout.
    #[error("token {0} was idle too long")]
    Idle(String),
    /// The state database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// 256 bits from the thread RNG (seeded by the operating system), as 64 hex digits: for
/// tokens, and for anything else that must not be guessed (session ids, CSRF tokens).
pub fn random_hex() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

fn hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// Issues a token for `user`, valid for `lifetime`, recording who issued it.
pub fn issue(store: &Store, user: &str, lifetime: Duration, actor: &str) -> Result<IssuedToken, StoreError> {
    let secret = format!("{PREFIX}{}", random_hex());
    let id = uuid::Uuid::now_v7().to_string();
    let now = Utc::now();
    let expires_at = now + lifetime;
    let wrap = store.err();
    let mut tx = store.audited()?;
    tx.execute(
        "INSERT INTO tokens (id, username, hash, created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        crate::params![id, user, hash(&secret), timestamp(now), timestamp(expires_at)],
    )
    .map_err(&wrap)?;
    let event = Event {
        actor,
        action: Action::TokenIssued,
        project: None,
        subject: Some(format!("token:{id}")),
        detail: serde_json::json!({ "user": user, "expires_at": timestamp(expires_at) }),
    };
    tx.record(event, now)?;
    tx.commit()?;
    Ok(IssuedToken { id, user: user.to_string(), secret, expires_at })
}

/// Revokes token `id`, or every live token of `user`; returns how many were revoked. Takes
/// effect on the next request.
pub fn revoke(store: &Store, which: Revoke<'_>, actor: &str) -> Result<usize, StoreError> {
    let wrap = store.err();
    let mut tx = store.audited()?;
    let (sql, key) = match which {
        Revoke::Id(id) => ("SELECT id, username FROM tokens WHERE id = ?1 AND revoked_at IS NULL", id),
        Revoke::User(user) => ("SELECT id, username FROM tokens WHERE username = ?1 AND revoked_at IS NULL", user),
    };
    let ids: Vec<(String, String)> =
        tx.query(sql, crate::params![key], |r| Ok((r.get(0)?, r.get(1)?))).map_err(&wrap)?;
    if ids.is_empty() {
        return Ok(0);
    }
    let now = Utc::now();
    for (id, user) in &ids {
        tx.execute("UPDATE tokens SET revoked_at = ?2 WHERE id = ?1", crate::params![id, timestamp(now)])
            .map_err(&wrap)?;
        let event = Event {
            actor,
            action: Action::TokenRevoked,
            project: None,
            subject: Some(format!("token:{id}")),
            detail: serde_json::json!({ "user": user }),
        };
        tx.record(event, now)?;
    }
    tx.commit()?;
    Ok(ids.len())
}

/// Which tokens to revoke.
#[derive(Debug, Clone, Copy)]
pub enum Revoke<'a> {
    /// One token, by id.
    Id(&'a str),
    /// Every live token of a user.
    User(&'a str),
}

/// The columns [`info`] reads.
const INFO_COLUMNS: &str = "id, username, created_at, expires_at, last_used_at, revoked_at";

fn info(r: &Row) -> Result<TokenInfo, DecodeError> {
    Ok(TokenInfo {
        id: r.get(0)?,
        user: r.get(1)?,
        created_at: r.get(2)?,
        expires_at: r.get(3)?,
        last_used_at: r.get(4)?,
        revoked_at: r.get(5)?,
    })
}

/// The tokens of `user` (or everyone), newest first.
pub fn list(store: &Store, user: Option<&str>) -> Result<Vec<TokenInfo>, StoreError> {
    store
        .conn()
        .query(
            &format!(
                "SELECT {INFO_COLUMNS} FROM tokens WHERE CAST(?1 AS TEXT) IS NULL OR username = ?1 \
                 ORDER BY created_at DESC"
            ),
            crate::params![user],
            info,
        )
        .map_err(store.err())
}

/// How stale a token's recorded last use may get before a use is written down: a tenth of the
/// idle timeout, at most 30 s. Recording every use would make every request a durable write;
/// this way a burst of requests costs one write, and the idle timeout errs by at most this much.
fn touch_interval(idle_timeout: Duration) -> Duration {
    (idle_timeout / 10).min(Duration::seconds(30))
}

/// How long a token may go unused before it is refused, where no other timeout is configured
/// (the CLI; `ringfence serve --idle-timeout` has the same default). Rule 4: disconnect when
/// away.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::minutes(30);

/// Accepts `presented` at `now` if it is a live token that was used within `idle_timeout`, and
/// records the use (see [`touch_interval`]); returns its user as the proved [`Actor`].
pub fn authenticate(
    store: &Store,
    presented: Option<&str>,
    now: DateTime<Utc>,
    idle_timeout: Duration,
) -> Result<Actor, AuthError> {
    let secret = presented.ok_or(AuthError::Missing)?;
    let well_formed = secret
        .strip_prefix(PREFIX)
        .is_some_and(|rest| rest.len() == 64 && rest.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
    if !well_formed {
        return Err(AuthError::Malformed);
    }
    let wrap = store.err();
    let found = store
        .conn()
        .query_opt(&format!("SELECT {INFO_COLUMNS} FROM tokens WHERE hash = ?1"), crate::params![hash(secret)], info)
        .map_err(&wrap)?;
    let Some(TokenInfo { id, user, created_at, expires_at, last_used_at, revoked_at }) = found else {
        return Err(AuthError::Unknown);
    };
    let parse = |text: &str| DateTime::parse_from_rfc3339(text).map(|t| t.with_timezone(&Utc));
    let corrupt = |e: chrono::ParseError| AuthError::Store(store.corrupt(format!("token {id}"), e));
    if revoked_at.is_some() {
        return Err(AuthError::Revoked(id));
    }
    if now > parse(&expires_at).map_err(corrupt)? {
        return Err(AuthError::Expired(id));
    }
    let last_seen = parse(last_used_at.as_deref().unwrap_or(&created_at)).map_err(corrupt)?;
    if now - last_seen > idle_timeout {
        return Err(AuthError::Idle(id));
    }
    if now - last_seen > touch_interval(idle_timeout) {
        let tx = store.bookkeeping(Bookkeeping::TokenUse)?;
        tx.execute("UPDATE tokens SET last_used_at = ?2 WHERE id = ?1", crate::params![id, timestamp(now)])
            .map_err(&wrap)?;
        tx.commit()?;
    }
    Ok(Actor { user, operator: None })
}

/// Parses a lifetime such as `30d`, `12h` or `90m`.
pub fn parse_lifetime(text: &str) -> Result<Duration, String> {
    let (number, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len()));
    let n: i64 = number.parse().map_err(|_| format!("{text:?} is not a lifetime; write e.g. 30d, 12h or 90m"))?;
    let lifetime = match unit {
        "d" => Duration::try_days(n),
        "h" => Duration::try_hours(n),
        "m" => Duration::try_minutes(n),
        _ => None,
    };
    lifetime
        .filter(|d| *d > Duration::zero())
        .ok_or_else(|| format!("{text:?} is not a lifetime; write e.g. 30d, 12h or 90m"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn last_used(store: &Store) -> Option<String> {
        list(store, Some("alice")).expect("list")[0].last_used_at.clone()
    }

    #[test]
    fn a_burst_of_uses_is_one_write_and_idleness_counts_from_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("store");
        let token = issue(&store, "alice", Duration::days(1), "test").expect("issue");
        let idle = Duration::minutes(10);
        let start = Utc::now();
        let use_at = |at| authenticate(&store, Some(&token.secret), at, idle);

        assert_eq!(use_at(start + Duration::seconds(5)).expect("fresh token").user(), "alice");
        assert_eq!(last_used(&store), None, "a use within the touch interval of issuing is not written");
        let touched = start + Duration::seconds(40);
        use_at(touched).expect("used");
        assert_eq!(last_used(&store), Some(timestamp(touched)));
        use_at(touched + Duration::seconds(20)).expect("used again");
        assert_eq!(last_used(&store), Some(timestamp(touched)), "the burst cost one write");
        let late = touched + idle + Duration::seconds(1);
        assert!(matches!(use_at(late), Err(AuthError::Idle(_))), "idle since the recorded use");
    }
}
