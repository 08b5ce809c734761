//! Browser sessions for the checker pages. Logging in with a personal token opens a session:
//! the browser gets only a random session id in an `HttpOnly`, `SameSite=Strict` cookie, and
//! the token stays on the server. Every request re-checks the token, so revoking it, its
//! expiry or the idle timeout end the session too. Each session has its own CSRF token, which
//! every form carries.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::tokens::random_hex;
use axum::http::HeaderMap;
use axum::http::header;

/// The session cookie's name.
pub(crate) const COOKIE: &str = "ringfence_session";

/// Most sessions one token may have open at once (a checker's browsers and devices).
pub(crate) const MAX_SESSIONS_PER_TOKEN: usize = 4;

/// One logged-in browser.
#[derive(Clone)]
pub(crate) struct Session {
    /// The personal token it logged in with, checked again on every request.
    pub token: String,
    /// The token every form of this session must carry.
    pub csrf: String,
    last_seen: Instant,
}

/// The open sessions, by id. Kept in memory: a restart logs everyone out.
#[derive(Default)]
pub(crate) struct Sessions {
    open: Mutex<HashMap<String, Session>>,
}

impl Sessions {
    /// Opens a session for `token`; returns its id. Sessions idle longer than `idle` are
    /// dropped on the way, as their tokens would be refused anyway; a token with
    /// [`MAX_SESSIONS_PER_TOKEN`] sessions already loses its least recently used one, so
    /// logging in over and over cannot grow the service's memory.
    pub(crate) fn open(&self, token: String, idle: Duration) -> String {
        let id = random_hex();
        let now = Instant::now();
        let mut open = self.open.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        open.retain(|_, s| now.duration_since(s.last_seen) <= idle);
        let mut same: Vec<(Instant, String)> =
            open.iter().filter(|(_, s)| s.token == token).map(|(id, s)| (s.last_seen, id.clone())).collect();
        same.sort();
        let excess = (same.len() + 1).saturating_sub(MAX_SESSIONS_PER_TOKEN);
        for (_, oldest) in same.into_iter().take(excess) {
            open.remove(&oldest);
        }
        open.insert(id.clone(), Session { token, csrf: random_hex(), last_seen: now });
        id
    }

    /// The session with `id`, marked as seen now.
    pub(crate) fn get(&self, id: &str) -> Option<Session> {
        let mut open = self.open.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let session = open.get_mut(id)?;
        session.last_seen = Instant::now();
        Some(session.clone())
    }

    /// Ends session `id` (logout, or its token was refused).
    pub(crate) fn close(&self, id: &str) {
        self.open.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).remove(id);
    }
}

/// The session id the browser sent, if any.
pub(crate) fn cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.to_string())
}

/// The `Set-Cookie` value that gives the browser session `id`.
pub(crate) fn set_cookie(id: &str) -> String {
    format!("{COOKIE}={id}; Path=/checker; HttpOnly; SameSite=Strict")
}

/// The `Set-Cookie` value that makes the browser forget its session.
pub(crate) fn clear_cookie() -> String {
    format!("{COOKIE}=; Path=/checker; HttpOnly; SameSite=Strict; Max-Age=0")
}

/// Compares two secrets in time that does not depend on where they differ.
pub(crate) fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_is_found_by_its_cookie_until_closed() {
        let sessions = Sessions::default();
        let id = sessions.open("rf_token".into(), Duration::from_secs(60));
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, format!("other=1; {COOKIE}={id}").parse().expect("header"));
        let found = cookie(&headers).expect("cookie");
        assert_eq!(sessions.get(&found).expect("open").token, "rf_token");
        sessions.close(&found);
        assert!(sessions.get(&found).is_none());
    }

    #[test]
    fn a_token_keeps_at_most_its_newest_sessions() {
        let sessions = Sessions::default();
        let idle = Duration::from_secs(60);
        let ids: Vec<String> = (0..MAX_SESSIONS_PER_TOKEN + 2).map(|_| sessions.open("rf_a".into(), idle)).collect();
        let other = sessions.open("rf_b".into(), idle);
        let live: Vec<bool> = ids.iter().map(|id| sessions.get(id).is_some()).collect();
        assert_eq!(live.iter().filter(|l| **l).count(), MAX_SESSIONS_PER_TOKEN);
        assert!(!live[0] && !live[1] && live[live.len() - 1], "the oldest went: {live:?}");
        assert!(sessions.get(&other).is_some(), "per token");
    }

    #[test]
    fn secrets_compare_by_content() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("abc", "abcd"));
    }
}
