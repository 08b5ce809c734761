//! The first thing every request meets: is it from an allowed country (rule 7)? Refusals are
//! `403` and audited with the address and why.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::Response;

use super::jurisdiction::Refusal;
use super::{ApiError, AppState};
use crate::audit::{self, Action, Event};

/// Serves the request only when its client address is in an allowed country.
pub(crate) async fn guard(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let forwarded = request.headers().get("x-forwarded-for").and_then(|v| v.to_str().ok());
    let refusal = match state.inner.config.jurisdiction.check(peer.ip(), forwarded) {
        Ok(_) => return Ok(next.run(request).await),
        Err(refusal) => refusal,
    };
    let detail = match &refusal {
        Refusal::UnknownAddress(ip) => serde_json::json!({ "address": ip.to_string(), "reason": "unknown address" }),
        Refusal::Country(ip, country) => {
            serde_json::json!({ "address": ip.to_string(), "country": country, "reason": "country not allowed" })
        }
    };
    state
        .with_queue(move |queue, _| {
            let event =
                Event { actor: "anonymous", action: Action::AccessRefused, project: None, subject: None, detail };
            audit::record(queue.store(), event).map_err(|e| ApiError::Internal(e.to_string()))?;
            Ok(())
        })
        .await?;
    Err(ApiError::Forbidden)
}
