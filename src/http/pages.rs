//! HTML pages, rendered with askama templates from `templates/`.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{Html, IntoResponse};

use super::auth::Header;
use super::{AppState, HttpError};
use crate::access::Visitor;
use crate::store::{RunRecord, RunnerRecord};

#[derive(Template)]
#[template(path = "index.html")]
struct IndexPage {
    header: Header,
    runners: Vec<RunnerRow>,
    runs: Vec<RunRow>,
}

#[derive(Template)]
#[template(path = "repo.html")]
struct RepoPage {
    header: Header,
    repo: String,
    runs: Vec<RunRow>,
    /// The id to page from, when there may be older runs.
    older: Option<i64>,
}

/// Runs shown per page.
const RUNS_PER_PAGE: usize = 50;

/// A run in a list.
struct RunRow {
    id: i64,
    repo: String,
    check: String,
    sender: String,
    status: String,
    short_sha: String,
    duration: String,
}

impl From<&RunRecord> for RunRow {
    fn from(r: &RunRecord) -> RunRow {
        let duration = match (r.started_at, r.finished_at) {
            (Some(start), Some(end)) => {
                crate::core::duration::format(end.duration_since(start).unwrap_or_default())
            }
            (Some(_), None) => "running".into(),
            _ => "-".into(),
        };
        RunRow {
            id: r.id,
            repo: r.repo.clone(),
            check: r.check.clone(),
            sender: r.sender.clone(),
            status: r.conclusion.map_or(r.status.as_str(), |c| c.as_str()).to_string(),
            short_sha: r.sha.chars().take(10).collect(),
            duration,
        }
    }
}

#[derive(serde::Deserialize)]
pub struct Page {
    before: Option<i64>,
}

pub async fn repo(
    State(state): State<AppState>,
    visitor: Visitor,
    Path((owner, name)): Path<(String, String)>,
    Query(page): Query<Page>,
) -> Result<Html<String>, HttpError> {
    let repo = format!("{owner}/{name}");
    if !super::runs::may_read_repo(&state, &visitor, &repo).await? {
        return Err(HttpError::NotFound);
    }
    let records = state.store.recent_runs(Some(&repo), RUNS_PER_PAGE, page.before).await?;
    let older = (records.len() == RUNS_PER_PAGE).then(|| records.last().map(|r| r.id)).flatten();
    let runs = records.iter().map(RunRow::from).collect();
    let header = Header::of(&visitor);
    Ok(Html(RepoPage { header, repo, runs, older }.render().map_err(anyhow::Error::from)?))
}

struct RunnerRow {
    owner: String,
    name: String,
    platform: String,
    labels: String,
    capacity: u32,
    connected_at: String,
}

impl From<RunnerRecord> for RunnerRow {
    fn from(r: RunnerRecord) -> RunnerRow {
        RunnerRow {
            platform: format!("{}/{}", r.os, r.arch),
            labels: r.labels.join(", "),
            connected_at: humantime::format_rfc3339_seconds(r.connected_at).to_string(),
            owner: r.owner,
            name: r.name,
            capacity: r.capacity,
        }
    }
}

pub async fn index(
    State(state): State<AppState>,
    visitor: Visitor,
) -> Result<Html<String>, HttpError> {
    let runners = state.store.runners().await?.into_iter().map(RunnerRow::from).collect();
    let readable = state.access.readable_private_repos(&visitor).await?;
    let records = state.store.visible_recent_runs(&readable, RUNS_PER_PAGE, None).await?;
    let runs = records.iter().map(RunRow::from).collect();
    let page = IndexPage { header: Header::of(&visitor), runners, runs };
    Ok(Html(page.render().map_err(anyhow::Error::from)?))
}

pub async fn stylesheet() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], include_str!("../../static/tether.css"))
}

pub async fn lines_script() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        include_str!("../../static/lines.js"),
    )
}

pub async fn live_script() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        include_str!("../../static/live.js"),
    )
}
