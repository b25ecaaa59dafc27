//! `GET /metrics`: Prometheus text exposition.

use std::fmt::Write;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use super::{AppState, HttpError};
use crate::metrics::{GITHUB_CALLS_FAILED, GITHUB_CALLS_OK, LOG_BYTES_STORED, get};

pub async fn metrics(State(state): State<AppState>) -> Result<impl IntoResponse, HttpError> {
    let runners = state.store.runners().await?.len();
    let runs = state.store.run_status_counts().await?;
    let deliveries = state.store.delivery_outcome_counts().await?;
    let retrying = state.store.deliveries_retrying().await?;
    let outbox = state.store.outbox_counts().await?;
    let mut text = String::new();
    metric(&mut text, "tether_runners_connected", "gauge", "Runners connected now.");
    let _ = writeln!(text, "tether_runners_connected {runners}");
    metric(&mut text, "tether_runs", "gauge", "Runs by status.");
    for (status, n) in &runs {
        let _ = writeln!(text, "tether_runs{{status=\"{}\"}} {n}", label(status));
    }
    metric(
        &mut text,
        "tether_webhook_deliveries",
        "gauge",
        "Stored webhook deliveries by outcome.",
    );
    // One label value per outcome word (the detail is not a label), so the series stay few.
    for (outcome, n) in &deliveries {
        let outcome = outcome.map_or("pending", |outcome| outcome.as_str());
        let _ = writeln!(text, "tether_webhook_deliveries{{outcome=\"{outcome}\"}} {n}");
    }
    metric(
        &mut text,
        "tether_webhook_deliveries_retrying",
        "gauge",
        "Pending webhook deliveries that failed for a passing reason and wait for a retry.",
    );
    let _ = writeln!(text, "tether_webhook_deliveries_retrying {retrying}");
    metric(
        &mut text,
        "tether_outbox_items",
        "gauge",
        "GitHub writes waiting (pending, retrying) or given up (failed).",
    );
    for (state, n) in
        [("pending", outbox.pending), ("retrying", outbox.retrying), ("failed", outbox.failed)]
    {
        let _ = writeln!(text, "tether_outbox_items{{state=\"{state}\"}} {n}");
    }
    metric(
        &mut text,
        "tether_log_bytes_stored_total",
        "counter",
        "Bytes of run output written to the blobstore.",
    );
    let _ = writeln!(text, "tether_log_bytes_stored_total {}", get(&LOG_BYTES_STORED));
    metric(&mut text, "tether_github_api_calls_total", "counter", "GitHub API calls by outcome.");
    let _ =
        writeln!(text, "tether_github_api_calls_total{{outcome=\"ok\"}} {}", get(&GITHUB_CALLS_OK));
    let _ = writeln!(
        text,
        "tether_github_api_calls_total{{outcome=\"error\"}} {}",
        get(&GITHUB_CALLS_FAILED)
    );
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], text))
}

fn metric(text: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(text, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// A label value as Prometheus wants it: backslash, quote and newline escaped.
fn label(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}
