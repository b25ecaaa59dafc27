//! CSRF: a form that changes something carries the session's token in a hidden field, compared
//! in constant time, and a browser's cross-site `Origin` or `Sec-Fetch-Site` is refused first.
//! Used by `/logout` now, and by cancel and re-run.

use axum::http::{HeaderMap, header};

use super::{AppState, HttpError};
use crate::access::Visitor;
use crate::core::auth::{cross_site, origin_of, same_secret};

/// Refuses the request unless it comes from a page of this server, in a signed-in session, with
/// that session's token.
pub fn check(
    state: &AppState,
    visitor: &Visitor,
    headers: &HeaderMap,
    token: &str,
) -> Result<(), HttpError> {
    let text = |name: header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
    let origin = text(header::ORIGIN);
    let site = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok());
    if cross_site(origin, site, &origin_of(state.sign_in.external_url())) {
        return Err(HttpError::Forbidden("cross-site request refused"));
    }
    let expected = match visitor {
        Visitor::Person(person) => person.csrf.as_deref(),
        Visitor::Anonymous => None,
    };
    match expected {
        Some(expected) if same_secret(expected, token) => Ok(()),
        _ => Err(HttpError::Forbidden("missing or wrong CSRF token; reload the page")),
    }
}
