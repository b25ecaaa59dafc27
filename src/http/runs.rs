//! Runs: the raw log and the runs API (the run page is `run_page`).

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::{AppState, HttpError};
use crate::access::Visitor;
use crate::core::Step;
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
    /// Its steps, in the order they began (empty until the runner reports one).
    pub steps: Vec<StepJson>,
}

/// A step of a run as the API shows it; lines are the run page's (`#L{n}`).
#[derive(Serialize)]
pub struct StepJson {
    pub name: String,
    pub kind: &'static str,
    pub status: &'static str,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub duration_ms: Option<u64>,
    pub first_line: u64,
    pub last_line: u64,
}

impl From<&Step> for StepJson {
    fn from(step: &Step) -> StepJson {
        let millis = |t: std::time::SystemTime| humantime::format_rfc3339_millis(t).to_string();
        StepJson {
            name: step.name.clone(),
            kind: step.kind.as_str(),
            status: step.status.as_str(),
            started_at: millis(step.started),
            finished_at: step.finished.map(millis),
            duration_ms: step.duration().map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
            first_line: step.first_line,
            last_line: step.last_line,
        }
    }
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
            steps: Vec::new(),
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
    let run = find(&state, &visitor, id).await?;
    let mut json = RunJson::from(&run);
    json.steps = state.store.steps(id).await?.iter().map(StepJson::from).collect();
    Ok(Json(json))
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
    let ids: Vec<i64> = runs.iter().map(|run| run.id).collect();
    let mut listed = Vec::with_capacity(runs.len());
    let mut by_run: std::collections::HashMap<i64, Vec<StepJson>> = Default::default();
    for (run_id, step) in state.store.steps_of_runs(&ids).await? {
        by_run.entry(run_id).or_default().push(StepJson::from(&step));
    }
    for run in &runs {
        let mut json = RunJson::from(run);
        json.steps = by_run.remove(&run.id).unwrap_or_default();
        listed.push(json);
    }
    Ok(Json(listed))
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
