//! `POST /integrations/github/events`: verify, check the body is JSON, store, answer. The
//! delivery is parsed and acted on by the engine's intake, from the store, so nothing is lost if
//! the server stops right after answering.

use std::time::SystemTime;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};

use super::{AppState, HttpError};
use crate::core::signature;
use crate::github::webhook::{Triage, triage};
use crate::store::NewDelivery;

/// The largest webhook body accepted; GitHub caps payloads at 25 MiB.
pub const WEBHOOK_MAX_BODY_BYTES: usize = 25 * 1024 * 1024;

pub async fn github_events(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, &'static str), HttpError> {
    let Some(secret) = state.webhook_secret() else {
        return Err(HttpError::Unavailable(
            "no webhook secret is configured; set up the GitHub App first",
        ));
    };
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    // Verify before looking at the body at all.
    if let Err(e) = signature::verify(&secret, &body, header("x-hub-signature-256")) {
        tracing::warn!(error = %e, delivery = header("x-github-delivery"), "refused a webhook");
        return Err(HttpError::Unauthorized("bad or missing signature"));
    }
    let (Some(event), Some(delivery)) = (header("x-github-event"), header("x-github-delivery"))
    else {
        return Err(HttpError::BadRequest("missing X-GitHub-Event or X-GitHub-Delivery".into()));
    };
    // Which events are acted on is `github::webhook`'s knowledge; here only whether to store.
    let action = match triage(event, &body) {
        Ok(Triage::Store { action }) => action,
        Ok(Triage::Ping) => return Ok((StatusCode::OK, "pong\n")),
        Ok(Triage::Ignore) => return Ok((StatusCode::ACCEPTED, "ignored\n")),
        Err(e) => return Err(HttpError::BadRequest(format!("malformed JSON: {}", e.message))),
    };
    let new = NewDelivery {
        id: delivery.to_string(),
        event: event.to_string(),
        action,
        payload: body.to_vec(),
        received_at: SystemTime::now(),
    };
    if !state.store.insert_delivery(new).await? {
        return Ok((StatusCode::OK, "already received\n"));
    }
    state.deliveries.notify_one();
    Ok((StatusCode::ACCEPTED, "accepted\n"))
}
