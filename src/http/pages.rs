//! HTML pages, rendered with askama templates from `templates/`.

use std::time::SystemTime;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{Html, IntoResponse};

use super::auth::Header;
use super::view::{CommitGroup, group_by_commit};
use super::{AppState, HttpError};
use crate::access::Visitor;
use crate::store::RunnerRecord;

#[derive(Template)]
#[template(path = "index.html")]
struct IndexPage {
    header: Header,
    runners: Vec<RunnerRow>,
    groups: Vec<CommitGroup>,
    /// The runs list names each commit's repository.
    show_repo: bool,
    /// The command that connects a runner, with this server's host and port.
    connect: String,
    /// No GitHub App yet: the page points to `/setup`.
    needs_app: bool,
}

#[derive(Template)]
#[template(path = "repo.html")]
struct RepoPage {
    header: Header,
    repo: String,
    groups: Vec<CommitGroup>,
    show_repo: bool,
    /// The id to page from, when there may be older runs.
    older: Option<i64>,
}

/// Runs shown per page.
const RUNS_PER_PAGE: usize = 50;

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
    let groups = group_by_commit(&records, SystemTime::now());
    let header = Header::of(&visitor);
    Ok(Html(
        RepoPage { header, repo, groups, show_repo: false, older }
            .render()
            .map_err(anyhow::Error::from)?,
    ))
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
    let groups = group_by_commit(&records, SystemTime::now());
    let header = Header::of(&visitor);
    let login = header.login.clone().unwrap_or_else(|| "LOGIN".into());
    let connect = format!("tether runner --connect {login}@{}", state.ssh_public_addr);
    let needs_app = state.needs_app();
    let page = IndexPage { header, runners, groups, show_repo: true, connect, needs_app };
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
