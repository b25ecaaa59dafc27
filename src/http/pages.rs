//! HTML pages, rendered with askama templates from `templates/`.

use askama::Template;
use axum::extract::State;
use axum::http::header;
use axum::response::{Html, IntoResponse};

use super::{AppState, HttpError};
use crate::store::RunnerRecord;

#[derive(Template)]
#[template(path = "index.html")]
struct IndexPage {
    runners: Vec<RunnerRow>,
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

pub async fn index(State(state): State<AppState>) -> Result<Html<String>, HttpError> {
    let runners = state.store.runners().await?.into_iter().map(RunnerRow::from).collect();
    let page = IndexPage { runners };
    Ok(Html(page.render().map_err(anyhow::Error::from)?))
}

pub async fn stylesheet() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], include_str!("../../static/tether.css"))
}
