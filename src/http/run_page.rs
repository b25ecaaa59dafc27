//! The run page (the check's "Details" link): the run's facts and its log, which is streamed
//! from the blobstore a page at a time, so that a log of any size costs the server little memory
//! and the reader's browser one page of lines.

use std::time::SystemTime;

use askama::Template;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::stream::{self, StreamExt};
use serde::Deserialize;

use super::auth::Header;
use super::runs::{RunJson, find};
use super::{AppState, HttpError};
use crate::access::Visitor;
use crate::logs::{BlobStream, LogPages};
use crate::store::{RunRecord, RunStatus};

/// Marks where the log goes in the rendered page; the page is served around it.
const LOG_SLOT: &str = "<!--tether:log-->";

#[derive(Template)]
#[template(path = "run.html")]
struct RunPage {
    header: Header,
    run: RunJson,
    commit_url: String,
    duration: String,
    /// What to say when there is no log to show; empty when there is one.
    note: &'static str,
    /// The number of the last line shown, while the run is live (the page then follows it).
    live_last: Option<u64>,
    /// Which page of a long log this is.
    nav: Option<PageNav>,
    log_slot: &'static str,
    /// Which of the run's forms the visitor may use.
    may: May,
}

/// The actions the visitor may take on the run, each shown as a form only then.
#[derive(Default)]
struct May {
    cancel: bool,
    rerun: bool,
}

impl May {
    /// Only a signed-in session (which has a CSRF token) posts forms; the run decides which
    /// action applies, and `Access` who may.
    async fn of(state: &AppState, visitor: &Visitor, run: &RunRecord) -> Result<May, HttpError> {
        let Visitor::Person(person) = visitor else { return Ok(May::default()) };
        if person.csrf.is_none() || state.actions().is_none() {
            return Ok(May::default());
        }
        let access = &state.access;
        Ok(if run.status == RunStatus::Completed {
            May { cancel: false, rerun: access.may_rerun(&person.login, run).await? }
        } else {
            May { cancel: access.may_cancel(&person.login, run).await?, rerun: false }
        })
    }
}

/// Where a page sits in a long log, for the links between pages.
pub struct PageNav {
    /// The page shown, from 1.
    pub page: usize,
    pub pages: usize,
    pub first_line: u64,
    pub last_line: u64,
    pub lines: u64,
    pub lines_per_page: u64,
}

impl PageNav {
    fn new(pages: &LogPages, k: usize) -> PageNav {
        let first_line = k as u64 * pages.lines_per_page + 1;
        PageNav {
            page: k + 1,
            pages: pages.offsets.len(),
            first_line,
            last_line: (first_line + pages.lines_per_page - 1).min(pages.lines),
            lines: pages.lines,
            lines_per_page: pages.lines_per_page,
        }
    }
}

/// What the page shows of the log.
enum LogView {
    /// No log, and why.
    Missing(&'static str),
    /// A running run's lines so far, the number of the last; the page follows the rest live.
    Live(String, u64),
    /// The stored log, or one page of it.
    Stored(BlobStream, Option<PageNav>),
}

#[derive(Deserialize)]
pub struct PageQuery {
    /// The page of a long log, from 1; the last page by default, where a failure shows.
    page: Option<usize>,
}

pub async fn page(
    State(state): State<AppState>,
    visitor: Visitor,
    Path(id): Path<i64>,
    Query(q): Query<PageQuery>,
) -> Result<Response, HttpError> {
    let run = find(&state, &visitor, id).await?;
    let view = log_view(&state, &run, q.page).await?;
    let may = May::of(&state, &visitor, &run).await?;
    let (note, live_last, nav, log) = match view {
        LogView::Missing(note) => (note, None, None, stream::empty().boxed()),
        LogView::Live(html, last) => ("", Some(last), None, one(html.into())),
        LogView::Stored(body, nav) => ("", None, nav, body),
    };
    let page = RunPage {
        header: Header::of(&visitor),
        commit_url: format!("https://github.com/{}/commit/{}", run.repo, run.sha),
        duration: duration(&run),
        run: RunJson::from(&run),
        note,
        live_last,
        nav,
        log_slot: LOG_SLOT,
        may,
    };
    let html = page.render().map_err(anyhow::Error::from)?;
    let (head, tail) = html.split_once(LOG_SLOT).unwrap_or((&html, ""));
    let body = one(Bytes::copy_from_slice(head.as_bytes()))
        .chain(log.inspect(move |chunk| {
            if let Err(e) = chunk {
                tracing::warn!(run = id, "reading the log for the run page: {e:#}");
            }
        }))
        .chain(one(Bytes::copy_from_slice(tail.as_bytes())));
    Ok(([(header::CONTENT_TYPE, "text/html; charset=utf-8")], Body::from_stream(body))
        .into_response())
}

fn one(bytes: Bytes) -> BlobStream {
    stream::once(async move { Ok(bytes) }).boxed()
}

/// How long the run took, or has been running.
fn duration(run: &RunRecord) -> String {
    let format = crate::core::duration::format;
    match (run.started_at, run.finished_at) {
        (Some(start), Some(end)) => format(end.duration_since(start).unwrap_or_default()),
        (Some(start), None) => {
            format!(
                "{} so far",
                format(SystemTime::now().duration_since(start).unwrap_or_default())
            )
        }
        _ => "-".into(),
    }
}

/// The log to show: while the run goes, its lines so far from the live registry; once it is
/// done, the stored HTML, a page of it when it is long.
async fn log_view(
    state: &AppState,
    run: &RunRecord,
    page: Option<usize>,
) -> Result<LogView, HttpError> {
    if run.status == RunStatus::InProgress {
        if let Some(live) = state.live.snapshot(run.id).filter(|s| !s.finished) {
            let last = live.lines.last().map_or(0, |(n, _)| *n);
            let mut html = String::new();
            for (_, line) in &live.lines {
                html.push_str(line);
                html.push('\n');
            }
            return Ok(LogView::Live(html, last));
        }
    }
    let stored = match &state.logs {
        Some(logs) => stored_page(logs, run.id, page).await?,
        None => None,
    };
    Ok(stored.unwrap_or(LogView::Missing(match run.status {
        RunStatus::Queued => "Waiting for a runner.",
        RunStatus::InProgress => "Running; the log appears here when the run is done.",
        RunStatus::Completed => "This run has no log.",
    })))
}

/// A page of the stored log (the last by default); the whole log if it has no page index.
async fn stored_page(
    logs: &crate::logs::LogStore,
    id: i64,
    page: Option<usize>,
) -> Result<Option<LogView>, HttpError> {
    let paged = logs.pages(id).await?.filter(|p| p.offsets.len() > 1);
    let (pages, k) = match (paged, page) {
        (None, None | Some(1)) => {
            return Ok(logs.html_stream(id, None).await?.map(|body| LogView::Stored(body, None)));
        }
        (Some(pages), None) => {
            let last = pages.offsets.len() - 1;
            (pages, last)
        }
        (Some(pages), Some(n)) if n >= 1 => (pages, n - 1),
        _ => return Err(HttpError::NotFound),
    };
    let range = pages.range(k).ok_or(HttpError::NotFound)?;
    let nav = Some(PageNav::new(&pages, k));
    Ok(logs.html_stream(id, Some(range)).await?.map(|body| LogView::Stored(body, nav)))
}
