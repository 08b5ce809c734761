//! The first thing every request meets: is it from an allowed country (rule 7)? Refusals are
//! `403` and audited with the address and why, aggregated per address and minute so that a
//! flood of refused requests cannot flood the audit log.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::Response;

use super::jurisdiction::{Forwarded, Refusal};
use super::{ApiError, AppState};
use crate::audit::{self, Action, Event};

/// Serves the request only when its client address is in an allowed country.
pub(crate) async fn guard(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let checked = {
        let lines = |name: &str| -> Vec<&str> {
            request.headers().get_all(name).iter().map(|v| v.to_str().unwrap_or("\u{fffd}")).collect()
        };
        let forwarded = Forwarded { x_forwarded_for: lines("x-forwarded-for"), forwarded: lines("forwarded") };
        state.inner.config.jurisdiction.check(peer.ip(), &forwarded)
    };
    let refusal = match checked {
        Ok(_) => return Ok(next.run(request).await),
        Err(refusal) => refusal,
    };
    let detail = match &refusal {
        Refusal::UnknownAddress(ip) => serde_json::json!({ "address": ip.to_string(), "reason": "unknown address" }),
        Refusal::Country(ip, country) => {
            serde_json::json!({ "address": ip.to_string(), "country": country, "reason": "country not allowed" })
        }
        Refusal::Forwarded(hop) => serde_json::json!({
            "address": peer.ip().to_string(), "hop": hop, "reason": "a forwarded hop is not an address"
        }),
    };
    // Aggregated: one entry for an address's first refusal in a minute, then one at its 10th,
    // 100th, … refusal in that minute, each with the count so far.
    let address = match &refusal {
        Refusal::UnknownAddress(ip) | Refusal::Country(ip, _) => *ip,
        Refusal::Forwarded(_) => peer.ip(),
    };
    let count = state.inner.refused_origins.fail(address, std::time::Instant::now());
    if !is_power_of_ten(count) {
        return Err(ApiError::Forbidden);
    }
    let mut detail = detail;
    if let Some(fields) = detail.as_object_mut() {
        fields.insert("refusals_this_minute".into(), count.into());
    }
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

/// 1, 10, 100, …
fn is_power_of_ten(mut n: u32) -> bool {
    while n >= 10 && n.is_multiple_of(10) {
        n /= 10;
    }
    n == 1
}

#[cfg(test)]
mod tests {
    #[test]
    fn refusals_are_audited_at_the_first_and_every_tenfold() {
        let audited: Vec<u32> = (1..=1000).filter(|&n| super::is_power_of_ten(n)).collect();
        assert_eq!(audited, [1, 10, 100, 1000]);
    }
}
