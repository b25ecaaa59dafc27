//! Runs: the run page (the check's "Details" link), its raw log, and the runs API.

use askama::Template;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{Html, IntoResponse, Response};
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
            conclusion: run.conclusion.clone(),
            exit: run.exit.clone(),
            thunk: run.thunk_id.clone(),
            rerun_of: run.rerun_of,
            created_at: time(run.created_at),
            started_at: run.started_at.map(time),
            finished_at: run.finished_at.map(time),
        }
    }
}

async fn find(state: &AppState, id: i64) -> Result<RunRecord, HttpError> {
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

#[derive(Template)]
#[template(path = "run.html")]
struct RunPage {
    run: RunJson,
    commit_url: String,
    /// The pre-rendered log (our own markup, every byte of the log escaped by the renderer).
    log_html: String,
    /// What to say when there is no log to show.
    log_note: &'static str,
    /// The number of the last line shown, while the run is live (the page then follows it).
    live_last: Option<u64>,
}

pub async fn page(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Html<String>, HttpError> {
    let run = find(&state, id).await?;
    let (log_html, live_last) = log_so_far(&state, &run).await?;
    let log_note = match (&log_html, run.status) {
        (Some(_), _) => "",
        (None, crate::store::RunStatus::Queued) => "Waiting for a runner.",
        (None, crate::store::RunStatus::InProgress) => {
            "Running; the log appears here when the run is done."
        }
        (None, crate::store::RunStatus::Completed) => "This run has no log.",
    };
    let commit_url = format!("https://github.com/{}/commit/{}", run.repo, run.sha);
    let page = RunPage {
        run: RunJson::from(&run),
        commit_url,
        log_html: log_html.unwrap_or_default(),
        log_note,
        live_last,
    };
    Ok(Html(page.render().map_err(anyhow::Error::from)?))
}

/// The log to show: while the run goes, its lines so far from the live registry (and the number
/// of the last); once it is done, the stored HTML.
async fn log_so_far(
    state: &AppState,
    run: &RunRecord,
) -> Result<(Option<String>, Option<u64>), HttpError> {
    if run.status == crate::store::RunStatus::InProgress {
        if let Some(live) = state.live.snapshot(run.id).filter(|s| !s.finished) {
            let last = live.lines.last().map_or(0, |(n, _)| *n);
            let mut html = String::new();
            for (_, line) in &live.lines {
                html.push_str(line);
                html.push('\n');
            }
            return Ok((Some(html), Some(last)));
        }
    }
    let stored = match &state.logs {
        Some(logs) => logs.html(run.id).await?.map(|b| String::from_utf8_lossy(&b).into_owned()),
        None => None,
    };
    Ok((stored, None))
}

pub async fn raw(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Response, HttpError> {
    find(&state, id).await?;
    let bytes = match &state.logs {
        Some(logs) => logs.raw(id).await?.ok_or(HttpError::NotFound)?,
        None => return Err(HttpError::NotFound),
    };
    Ok((
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (header::CONTENT_DISPOSITION, "inline"),
        ],
        bytes,
    )
        .into_response())
}
