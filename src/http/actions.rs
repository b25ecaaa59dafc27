//! `POST /runs/{id}/cancel` and `POST /runs/{id}/rerun`: the run page's forms, CSRF-checked,
//! and permission-checked by the engine's `Actions`.

use axum::Form;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};

use super::auth::CsrfForm;
use super::{AppState, HttpError};
use crate::access::Visitor;
use crate::engine::{ActionError, Actions};

/// `POST /runs/{id}/cancel`: back to the run page, which then shows it cancelled.
pub async fn cancel(
    State(state): State<AppState>,
    visitor: Visitor,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Form(form): Form<CsrfForm>,
) -> Result<Response, HttpError> {
    let (actions, login) = checked(&state, &visitor, &headers, &form)?;
    match actions.cancel(id, &login).await {
        // A run that ended meanwhile: its page says how.
        Ok(()) | Err(ActionError::Finished) => {
            Ok(Redirect::to(&format!("/runs/{id}")).into_response())
        }
        Err(refused) => Err(refusal(refused)),
    }
}

/// `POST /runs/{id}/rerun`: to the new run's page.
pub async fn rerun(
    State(state): State<AppState>,
    visitor: Visitor,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Form(form): Form<CsrfForm>,
) -> Result<Response, HttpError> {
    let (actions, login) = checked(&state, &visitor, &headers, &form)?;
    match actions.rerun(id, &login).await {
        Ok(new) => Ok(Redirect::to(&format!("/runs/{new}")).into_response()),
        Err(refused) => Err(refusal(refused)),
    }
}

/// The engine's actions and the person asking, once the request is same-site with the
/// session's CSRF token.
fn checked(
    state: &AppState,
    visitor: &Visitor,
    headers: &HeaderMap,
    form: &CsrfForm,
) -> Result<(Actions, String), HttpError> {
    super::csrf::check(state, visitor, headers, form.token())?;
    let login = visitor.login().ok_or(HttpError::NotFound)?.to_string();
    let actions = state.actions().ok_or(HttpError::Unavailable("no GitHub App is set up yet"))?;
    Ok((actions, login))
}

fn refusal(error: ActionError) -> HttpError {
    match error {
        ActionError::NotFound => HttpError::NotFound,
        ActionError::NotPermitted => HttpError::Forbidden(
            "you need write access to the repository, or to be the run's sender",
        ),
        ActionError::Finished => HttpError::Conflict("the run has already finished"),
        ActionError::NotFinished => HttpError::Conflict("the run has not finished yet"),
        ActionError::Failed(e) => HttpError::Internal(e),
    }
}
