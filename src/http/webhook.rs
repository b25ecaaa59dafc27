//! `POST /integrations/github/events`: verify, parse just enough, store, answer. The delivery is
//! acted on by the engine's worker, from the store, so nothing is lost if the server stops right
//! after answering.

use std::time::SystemTime;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};

use super::{AppState, HttpError};
use crate::core::event::is_handled;
use crate::core::signature;
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
    let json: serde_json::Value = serde_json::from_slice(&body)
        .map_err(|e| HttpError::BadRequest(format!("malformed JSON: {e}")))?;
    let action = json.get("action").and_then(|a| a.as_str());
    if event == "ping" {
        return Ok((StatusCode::OK, "pong\n"));
    }
    if !is_handled(event, action) {
        return Ok((StatusCode::ACCEPTED, "ignored\n"));
    }
    let new = NewDelivery {
        id: delivery.to_string(),
        event: event.to_string(),
        action: action.map(String::from),
        payload: body.to_vec(),
        received_at: SystemTime::now(),
    };
    if !state.store.insert_delivery(new).await? {
        return Ok((StatusCode::OK, "already received\n"));
    }
    state.deliveries.notify_one();
    Ok((StatusCode::ACCEPTED, "accepted\n"))
}
