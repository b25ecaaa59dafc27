//! A running run's log as Server-Sent Events: one event per rendered line (`id:` its number,
//! `data:` its HTML), resuming after `Last-Event-ID` (or `?after=N`), then `event: end`.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::{Stream, StreamExt};
use serde::Deserialize;

use super::{AppState, HttpError};
use crate::access::Visitor;
use crate::engine::live::LiveItem;
use crate::store::RunStatus;

/// How often an idle stream gets a comment, so that proxies keep it open.
const KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(15);

#[derive(Deserialize)]
pub struct EventsQuery {
    /// The last line the reader has, when it sends no `Last-Event-ID` (the page's first
    /// connection).
    after: Option<u64>,
}

pub async fn events(
    State(state): State<AppState>,
    visitor: Visitor,
    Path(id): Path<i64>,
    Query(query): Query<EventsQuery>,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, HttpError> {
    let run = super::runs::find(&state, &visitor, id).await?;
    let after = match headers.get("last-event-id") {
        Some(value) => value
            .to_str()
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .ok_or_else(|| HttpError::BadRequest("Last-Event-ID is not a line number".into()))?,
        None => query.after.unwrap_or(0),
    };
    // A run that is not live (done, or not started) has nothing to stream: the page shows the
    // stored log.
    let live = match run.status {
        RunStatus::InProgress => state.live.follow(id, after),
        RunStatus::Queued | RunStatus::Completed => None,
    };
    let items = match live {
        Some(items) => items.left_stream(),
        None => futures::stream::iter([LiveItem::End]).right_stream(),
    };
    let events = items.map(|item| Ok(event(item)));
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(KEEP_ALIVE_INTERVAL)))
}

/// An event for each item; `end` and `reload` carry data, as a browser drops an event without.
fn event(item: LiveItem) -> Event {
    match item {
        // The renderer's markup holds no newline or carriage return (controls are dropped).
        LiveItem::Line(number, html) => Event::default().id(number.to_string()).data(&*html),
        LiveItem::End => Event::default().event("end").data("end"),
        LiveItem::Reload => Event::default().event("reload").data("reload"),
    }
}
