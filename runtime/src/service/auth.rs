//! Who is calling: the `Authorization: Bearer <token>` header, checked against the token store.
//! Every refusal is audited with the reason and the peer address; the caller only learns `401`.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::header;
use axum::http::request::Parts;
use chrono::Utc;

use super::{ApiError, AppState};
use crate::audit::{self, Action, Event};
use crate::policy::Role;
use crate::tokens::{self, AuthError};

/// An authenticated caller.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    /// The token's user.
    pub user: String,
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Caller, ApiError> {
        let presented = match parts.headers.get(header::AUTHORIZATION).map(|v| v.to_str()) {
            None => None,
            Some(Ok(value)) => Some(value.strip_prefix("Bearer ").unwrap_or("").trim().to_string()),
            Some(Err(_)) => Some(String::new()),
        };
        let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip().to_string()).unwrap_or_default();
        let idle = state.inner.config.idle_timeout;
        state
            .with_queue(move |queue, _| {
                let store = queue.store();
                match tokens::authenticate(store, presented.as_deref(), Utc::now(), idle) {
                    Ok(user) => Ok(Caller { user }),
                    Err(AuthError::Store(e)) => Err(ApiError::Internal(e.to_string())),
                    Err(refused) => {
                        let event = Event {
                            actor: "anonymous",
                            action: Action::AuthenticationRefused,
                            project: None,
                            subject: None,
                            detail: serde_json::json!({ "reason": refused.to_string(), "address": peer }),
                        };
                        audit::record(store, event).map_err(|e| ApiError::Internal(e.to_string()))?;
                        Err(ApiError::Unauthorized)
                    }
                }
            })
            .await
    }
}

impl Caller {
    /// The caller's roles in `project` (empty when not a member), from its registered policy.
    pub(crate) fn roles(&self, queue: &crate::queue::ExportQueue, project: &str) -> Result<Vec<Role>, ApiError> {
        let members = queue.registry().members(project).map_err(|_| ApiError::Forbidden)?;
        Ok(members.into_iter().find(|m| m.user == self.user).map(|m| m.roles).unwrap_or_default())
    }
}
