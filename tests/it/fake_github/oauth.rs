//! The fake's sign-in: the App's OAuth web flow (`/login/oauth/authorize`,
//! `/login/oauth/access_token`), user tokens, `GET /user` and
//! `GET /user/installations/{id}/repositories`, as strict as GitHub's.

use std::collections::{BTreeMap, BTreeSet};

use axum::body::Bytes;
use axum::extract::{Path, Query, State as Extract};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Json, Redirect, Response};
use serde_json::{Value, json};

use super::{Shared, State, message, token};

/// The App's OAuth client, as the fake's manifest conversion hands it out.
pub const CLIENT_ID: &str = "Iv1.fake";
pub const CLIENT_SECRET: &str = "fake-client-secret";

/// People signing in and the tokens they got.
#[derive(Default)]
pub struct OAuthState {
    /// Who is signed in to the fake's web pages and authorizes when sent there.
    pub signed_in: Option<String>,
    /// Whether that person clicks "Cancel" instead of "Authorize".
    pub deny: bool,
    /// Codes not yet exchanged: the login and the `redirect_uri` they were made for.
    codes: BTreeMap<String, (String, String)>,
    /// User tokens, by token: whose.
    pub user_tokens: BTreeMap<String, String>,
    /// Private repositories; every other one is public.
    pub private: BTreeSet<String>,
    next: u64,
}

/// `GET /login/oauth/authorize`: the person who is signed in authorizes at once (or denies),
/// and is sent back to `redirect_uri` with a code and the `state`, as GitHub does.
pub async fn authorize(
    Extract(state): Extract<Shared>,
    Query(query): Query<BTreeMap<String, String>>,
) -> Response {
    let mut state = state.lock().unwrap();
    if query.get("client_id").map(String::as_str) != Some(CLIENT_ID) {
        return (StatusCode::NOT_FOUND, "unknown client_id").into_response();
    }
    let Some(redirect_uri) = query.get("redirect_uri").cloned() else {
        return (StatusCode::BAD_REQUEST, "redirect_uri is required by this fake").into_response();
    };
    let Some(login) = state.oauth.signed_in.clone() else {
        return (StatusCode::OK, "Sign in to GitHub").into_response();
    };
    let mut target = url::Url::parse(&redirect_uri).expect("redirect_uri is a URL");
    {
        let mut pairs = target.query_pairs_mut();
        if state.oauth.deny {
            pairs.append_pair("error", "access_denied");
            pairs.append_pair("error_description", "The user has denied your application access.");
        } else {
            state.oauth.next += 1;
            let code = format!("code{}", state.oauth.next);
            state.oauth.codes.insert(code.clone(), (login, redirect_uri.clone()));
            pairs.append_pair("code", &code);
        }
        if let Some(given) = query.get("state") {
            pairs.append_pair("state", given);
        }
    }
    Redirect::to(target.as_str()).into_response()
}

/// `POST /login/oauth/access_token`: a code is good once, for its client and `redirect_uri`.
/// Like GitHub, failures are 200s with an `error`, and JSON only with `Accept:
/// application/json`.
pub async fn access_token(
    Extract(state): Extract<Shared>,
    headers: HeaderMap,
    Query(query): Query<BTreeMap<String, String>>,
    body: Bytes,
) -> Response {
    let mut params = query;
    if let Ok(Value::Object(object)) = serde_json::from_slice::<Value>(&body) {
        for (key, value) in object {
            params.insert(key, value.as_str().unwrap_or_default().to_string());
        }
    } else {
        for (key, value) in url::form_urlencoded::parse(&body) {
            params.insert(key.into_owned(), value.into_owned());
        }
    }
    let answer = exchange(&mut state.lock().unwrap(), &params);
    let json = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("application/json"));
    if json {
        return Json(answer).into_response();
    }
    let form: Vec<(String, String)> = answer
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
        .collect();
    let text = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(form).finish();
    ([(header::CONTENT_TYPE, "application/x-www-form-urlencoded")], text).into_response()
}

fn exchange(state: &mut State, params: &BTreeMap<String, String>) -> Value {
    let param = |name: &str| params.get(name).map(String::as_str).unwrap_or_default();
    let error =
        |code: &str, description: &str| json!({"error": code, "error_description": description});
    if param("client_id") != CLIENT_ID || param("client_secret") != CLIENT_SECRET {
        return error(
            "incorrect_client_credentials",
            "The client_id and/or client_secret passed are incorrect.",
        );
    }
    let Some((login, redirect_uri)) = state.oauth.codes.remove(param("code")) else {
        return error("bad_verification_code", "The code passed is incorrect or expired.");
    };
    if param("redirect_uri") != redirect_uri {
        return error(
            "redirect_uri_mismatch",
            "The redirect_uri MUST match the registered callback URL for this application.",
        );
    }
    state.oauth.next += 1;
    let token = format!("ghu_fake{}", state.oauth.next);
    state.oauth.user_tokens.insert(token.clone(), login);
    state.tokens.insert(token.clone());
    json!({"access_token": token, "token_type": "bearer", "scope": ""})
}

/// The login a request's user token belongs to, or GitHub's refusal: an installation token
/// may not ask who "the user" is.
fn token_login(state: &State, headers: &HeaderMap) -> Result<String, Response> {
    let token = headers.get(header::AUTHORIZATION).and_then(token);
    match token.and_then(|t| state.oauth.user_tokens.get(t)) {
        Some(login) => Ok(login.clone()),
        None if token.is_some() => {
            Err(message(StatusCode::FORBIDDEN, "Resource not accessible by integration"))
        }
        None => Err(message(StatusCode::UNAUTHORIZED, "Requires authentication")),
    }
}

/// `GET /user` with a user token.
pub async fn user(Extract(state): Extract<Shared>, headers: HeaderMap) -> Response {
    let state = state.lock().unwrap();
    let login = match token_login(&state, &headers) {
        Ok(login) => login,
        Err(refusal) => return refusal,
    };
    let id = state.users.get(&login.to_ascii_lowercase()).map_or(0, |u| u.id);
    Json(json!({"login": login, "id": id, "type": "User", "site_admin": false})).into_response()
}

/// `GET /user/installations/{id}/repositories` with a user token: the installation's
/// repositories the person may read (public ones, and private ones where they have a role),
/// paginated as GitHub does, in a `repositories` object.
pub async fn installation_repositories(
    Extract(state): Extract<Shared>,
    Path(id): Path<i64>,
    Query(query): Query<BTreeMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let state = state.lock().unwrap();
    let login = match token_login(&state, &headers) {
        Ok(login) => login.to_ascii_lowercase(),
        Err(refusal) => return refusal,
    };
    let Some(repos) = state.app.installations.get(&id) else {
        return message(StatusCode::NOT_FOUND, "Not Found");
    };
    let readable: Vec<Value> = repos
        .iter()
        .filter(|repo| {
            !state.oauth.private.contains(*repo)
                || state.repos.roles.contains_key(&((*repo).clone(), login.clone()))
        })
        .map(|repo| json!({"full_name": repo, "private": state.oauth.private.contains(repo)}))
        .collect();
    if readable.is_empty() {
        return message(StatusCode::NOT_FOUND, "Not Found");
    }
    let number = |name: &str| query.get(name).and_then(|v| v.parse::<usize>().ok());
    let per_page = number("per_page").unwrap_or(30).clamp(1, 100);
    let page = number("page").unwrap_or(1).max(1);
    let total = readable.len();
    let items: Vec<Value> =
        readable.into_iter().skip((page - 1) * per_page).take(per_page).collect();
    Json(json!({"total_count": total, "repositories": items})).into_response()
}
