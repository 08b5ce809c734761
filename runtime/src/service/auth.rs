//! Who is calling: the `Authorization: Bearer <token>` header, checked against the token store.
//! Every refusal is audited with the reason and the peer address; the caller only learns `401`,
//! and an address that presented too many bad tokens gets `429` for a while ([`super::throttle`]).

use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::header;
use axum::http::request::Parts;
use chrono::Utc;

use super::{ApiError, AppState};
use crate::audit::{self, Action, Event};
use crate::policy::Role;
use crate::tokens::{self, Actor, AuthError};

/// An authenticated caller.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    /// The token's user, proved.
    pub actor: Actor,
    /// Their user name.
    pub user: String,
}

impl Caller {
    /// The caller proved by `actor`.
    pub(crate) fn new(actor: Actor) -> Caller {
        Caller { user: actor.user().to_string(), actor }
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Caller, ApiError> {
        let presented = match parts.headers.get(header::AUTHORIZATION).map(|v| v.to_str()) {
            None => None,
            Some(Ok(value)) => Some(value.strip_prefix("Bearer ").unwrap_or("").trim().to_string()),
            Some(Err(_)) => Some(String::new()),
        };
        Ok(Caller::new(authenticate(state, presented, peer(parts)).await?))
    }
}

/// The address the request came from, as the connection saw it.
pub(crate) fn peer(parts: &Parts) -> Option<IpAddr> {
    parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip())
}

/// The proved user of token `presented` (sent by `peer_ip`), if it is live. Refusals are audited and
/// count towards the address's throttle; an address over the limit gets `429` at once.
pub(crate) async fn authenticate(
    state: &AppState,
    presented: Option<String>,
    peer_ip: Option<IpAddr>,
) -> Result<Actor, ApiError> {
    let now = Instant::now();
    if peer_ip.is_some_and(|ip| state.inner.throttle.is_blocked(ip, now)) {
        return Err(ApiError::TooManyAttempts);
    }
    let idle = state.inner.config.idle_timeout;
    let throttled = state.clone();
    state
        .with_queue(move |queue, _| {
            let store = queue.store();
            match tokens::authenticate(store, presented.as_deref(), Utc::now(), idle) {
                Ok(user) => Ok(user),
                Err(AuthError::Store(e)) => Err(ApiError::Internal(e.to_string())),
                Err(refused) => {
                    // Only a presented token can be a guess; calls without one do not count.
                    if let Some(ip) = peer_ip
                        && !matches!(refused, AuthError::Missing)
                    {
                        throttled.inner.throttle.fail(ip, now);
                    }
                    let address = peer_ip.map(|ip| ip.to_string()).unwrap_or_default();
                    let event = Event {
                        actor: "anonymous",
                        action: Action::AuthenticationRefused,
                        project: None,
                        subject: None,
                        detail: serde_json::json!({ "reason": refused.to_string(), "address": address }),
                    };
                    audit::record(store, event).map_err(|e| ApiError::Internal(e.to_string()))?;
                    Err(ApiError::Unauthorized)
                }
            }
        })
        .await
}

impl Caller {
    /// The caller's roles in `project` (empty when not a member), from its registered policy.
    pub(crate) fn roles(&self, queue: &crate::queue::ExportQueue, project: &str) -> Result<Vec<Role>, ApiError> {
        let members = queue.registry().members(project).map_err(|_| ApiError::Forbidden)?;
        Ok(members.into_iter().find(|m| m.user == self.user).map(|m| m.roles).unwrap_or_default())
    }
}
