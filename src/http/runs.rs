//! Runs: the raw log and the runs API (the run page is `run_page`).

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::{AppState, HttpError};
use crate::access::Visitor;
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

/// The run `id`, if it exists and `visitor` may read it; the same 404 otherwise, whichever it
/// is.
pub(super) async fn find(
    state: &AppState,
    visitor: &Visitor,
    id: i64,
) -> Result<RunRecord, HttpError> {
    let run = state.store.run(id).await?.ok_or(HttpError::NotFound)?;
    if !state.access.may_read(visitor, &run.repo, run.installation_id).await? {
        return Err(HttpError::NotFound);
    }
    Ok(run)
}

/// Whether `visitor` may read the runs of `repo` ("owner/name"): a repository with no runs and
/// no privacy known counts as private, so an unknown one and a hidden one look alike.
pub(super) async fn may_read_repo(
    state: &AppState,
    visitor: &Visitor,
    repo: &str,
) -> Result<bool, HttpError> {
    let newest = state.store.recent_runs(Some(repo), 1, None).await?;
    let installation = newest.first().and_then(|run| run.installation_id);
    Ok(state.access.may_read(visitor, repo, installation).await?)
}

pub async fn api_run(
    State(state): State<AppState>,
    visitor: Visitor,
    Path(id): Path<i64>,
) -> Result<Json<RunJson>, HttpError> {
    Ok(Json(RunJson::from(&find(&state, &visitor, id).await?)))
}

#[derive(Deserialize)]
pub struct RunsQuery {
    repo: Option<String>,
    sha: Option<String>,
}

/// Runs the API lists at most.
const API_RUNS_MAX: usize = 100;

pub async fn api_runs(
    State(state): State<AppState>,
    visitor: Visitor,
    Query(q): Query<RunsQuery>,
) -> Result<Json<Vec<RunJson>>, HttpError> {
    let runs = match (&q.repo, &q.sha) {
        // A repository the visitor may not read lists as one with no runs.
        (Some(repo), _) if !may_read_repo(&state, &visitor, repo).await? => Vec::new(),
        (Some(repo), Some(sha)) => state.store.runs_for_commit(repo, sha).await?,
        (Some(repo), None) => state.store.recent_runs(Some(repo), API_RUNS_MAX, None).await?,
        (None, None) => {
            let readable = state.access.readable_private_repos(&visitor).await?;
            state.store.visible_recent_runs(&readable, API_RUNS_MAX, None).await?
        }
        (None, Some(_)) => return Err(HttpError::BadRequest("sha needs repo".into())),
    };
    Ok(Json(runs.iter().map(RunJson::from).collect()))
}

pub async fn raw(
    State(state): State<AppState>,
    visitor: Visitor,
    Path(id): Path<i64>,
) -> Result<Response, HttpError> {
    find(&state, &visitor, id).await?;
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
