//! The JSON API under `/api/v1`.

use axum::Json;
use axum::extract::State;
use serde::Serialize;

use super::{AppState, HttpError};

/// A connected runner, as `GET /api/v1/runners` shows it.
#[derive(Serialize)]
pub struct RunnerJson {
    /// The owner's GitHub login.
    pub login: String,
    pub name: String,
    pub os: String,
    pub arch: String,
    pub labels: Vec<String>,
    pub capacity: u32,
    /// RFC 3339, UTC.
    pub connected_at: String,
}

pub async fn runners(State(state): State<AppState>) -> Result<Json<Vec<RunnerJson>>, HttpError> {
    let runners = state.store.runners().await?;
    let json = runners
        .into_iter()
        .map(|r| RunnerJson {
            login: r.owner,
            name: r.name,
            os: r.os,
            arch: r.arch,
            labels: r.labels,
            capacity: r.capacity,
            connected_at: humantime::format_rfc3339_seconds(r.connected_at).to_string(),
        })
        .collect();
    Ok(Json(json))
}
