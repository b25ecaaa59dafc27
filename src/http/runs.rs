//! Runs: the raw log and the runs API (the run page is `run_page`).

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::{AppState, HttpError};
use crate::store::RunRecord;

/// A run as the API shows it.
#[derive(Serialize)]
pub struct RunJson {
    pub id: i64,
    pub repo: String,
    pub sha: String,
    pub check: String,
    pub event: String,
    pub sender: String,
    pub runner: Option<String>,
    pub status: &'static str,
    pub conclusion: Option<String>,
    pub exit: Option<String>,
    pub thunk: String,
    pub rerun_of: Option<i64>,
    pub created_at: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
}

fn time(t: std::time::SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

impl From<&RunRecord> for RunJson {
    fn from(run: &RunRecord) -> RunJson {
        RunJson {
            id: run.id,
            repo: run.repo.clone(),
            sha: run.sha.clone(),
            check: run.check.clone(),
            event: run.event.clone(),
            sender: run.sender.clone(),
            runner: run.runner.clone(),
            status: run.status.as_str(),
            conclusion: run.conclusion.map(|c| c.as_str().to_string()),
            exit: run.exit.clone(),
            thunk: run.thunk_id.clone(),
            rerun_of: run.rerun_of,
            created_at: time(run.created_at),
            started_at: run.started_at.map(time),
            finished_at: run.finished_at.map(time),
        }
    }
}

pub(super) async fn find(state: &AppState, id: i64) -> Result<RunRecord, HttpError> {
    state.store.run(id).await?.ok_or(HttpError::NotFound)
}

pub async fn api_run(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Json<RunJson>, HttpError> {
    Ok(Json(RunJson::from(&find(&state, id).await?)))
}

#[derive(Deserialize)]
pub struct RunsQuery {
    repo: Option<String>,
    sha: Option<String>,
}

pub async fn api_runs(
    State(state): State<AppState>,
    Query(q): Query<RunsQuery>,
) -> Result<Json<Vec<RunJson>>, HttpError> {
    let runs = match (&q.repo, &q.sha) {
        (Some(repo), Some(sha)) => state.store.runs_for_commit(repo, sha).await?,
        (repo, None) => state.store.recent_runs(repo.as_deref(), 100, None).await?,
        (None, Some(_)) => return Err(HttpError::BadRequest("sha needs repo".into())),
    };
    Ok(Json(runs.iter().map(RunJson::from).collect()))
}

pub async fn raw(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Response, HttpError> {
    find(&state, id).await?;
    // Streamed from the blob: a log of any size costs the server a chunk of memory.
    let bytes = match &state.logs {
        Some(logs) => logs.raw_stream(id).await?.ok_or(HttpError::NotFound)?,
        None => return Err(HttpError::NotFound),
    };
    Ok((
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (header::CONTENT_DISPOSITION, "inline"),
        ],
        axum::body::Body::from_stream(bytes),
    )
        .into_response())
}
