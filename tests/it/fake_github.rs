//! A fake GitHub API as strict as the real one, so that tether's mistakes fail its tests.
//!
//! Each endpoint is a small handler over [`State`], routed in [`router`]; [`gate`] does what
//! GitHub does before any endpoint: count the request, fail in an outage, refuse requests
//! without a `User-Agent` or with an unknown token.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use axum::extract::{Path, Query, Request, State as Extract};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::get;
use serde_json::{Value, json};

/// GitHub's page size when a request names none, and the most it allows.
const PER_PAGE_DEFAULT: usize = 30;
const PER_PAGE_MAX: usize = 100;
/// Key ids start far from user ids, so that mixing them up fails a test.
const FIRST_KEY_ID: i64 = 1_000_000;
const DOCS_URL: &str = "https://docs.github.com/rest";
/// What GitHub answers (as text, not JSON) to a request without a `User-Agent`.
const NO_USER_AGENT_MESSAGE: &str = "Request forbidden by administrative rules. Please make sure \
    your request has a User-Agent header \
    (https://docs.github.com/en/rest/overview/resources-in-the-rest-api#user-agent-required). \
    Check https://developer.github.com for other possible causes.";

/// A running fake; it serves until the test's runtime ends.
pub struct FakeGitHub {
    /// The API URL to give a client, `http://127.0.0.1:PORT`.
    pub url: String,
    state: Shared,
}

type Shared = Arc<Mutex<State>>;

/// Everything the fake knows and has seen.
#[derive(Default)]
struct State {
    url: String,
    /// By lowercased login: GitHub's logins are case-insensitive.
    users: BTreeMap<String, User>,
    tokens: BTreeSet<String>,
    down: bool,
    /// Requests received, refused ones included, by "METHOD /path".
    calls: BTreeMap<String, usize>,
    next_key_id: i64,
}

struct User {
    login: String,
    id: i64,
    keys: Vec<(i64, String)>,
}

impl FakeGitHub {
    /// Binds `127.0.0.1:0` and serves in a task that panics if the server fails.
    pub async fn start() -> FakeGitHub {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(State {
            url: url.clone(),
            next_key_id: FIRST_KEY_ID,
            ..State::default()
        }));
        let app = router(state.clone());
        tokio::spawn(async move {
            axum::serve(listener, app).await.expect("the fake GitHub server died")
        });
        FakeGitHub { url, state }
    }

    /// Adds (or replaces) a user with these OpenSSH public key lines, in this order.
    pub fn add_user(&self, login: &str, id: i64, keys: &[&str]) {
        let mut state = self.state();
        let first = state.next_key_id;
        state.next_key_id += keys.len() as i64;
        let keys = (first..).zip(keys.iter().map(|k| k.to_string())).collect();
        let user = User { login: login.to_string(), id, keys };
        state.users.insert(login.to_ascii_lowercase(), user);
    }

    /// A token that `Authorization: Bearer TOKEN` (or `token TOKEN`) may carry.
    pub fn add_token(&self, token: &str) {
        self.state().tokens.insert(token.to_string());
    }

    /// While down, every request answers 500, like a GitHub outage.
    pub fn set_down(&self, down: bool) {
        self.state().down = down;
    }

    /// Requests received for `route`, "METHOD /path" without the query, refused ones included.
    pub fn calls(&self, route: &str) -> usize {
        self.state().calls.get(route).copied().unwrap_or(0)
    }

    /// Requests received for any route.
    pub fn total_calls(&self) -> usize {
        self.state().calls.values().sum()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap()
    }
}

/// Every endpoint the fake knows; anything else is GitHub's JSON 404.
fn router(state: Shared) -> Router {
    Router::new()
        .route("/users/{login}", get(user))
        .route("/users/{login}/keys", get(user_keys))
        .fallback(not_found)
        .method_not_allowed_fallback(not_found)
        .layer(middleware::from_fn_with_state(state.clone(), gate))
        .with_state(state)
}

/// Counts the request, then refuses it the way GitHub would, or passes it on.
async fn gate(Extract(state): Extract<Shared>, request: Request, next: Next) -> Response {
    let route = format!("{} {}", request.method(), request.uri().path());
    let refusal = {
        let mut state = state.lock().unwrap();
        *state.calls.entry(route).or_default() += 1;
        refusal(&state, request.headers())
    };
    match refusal {
        Some(response) => response,
        None => next.run(request).await,
    }
}

fn refusal(state: &State, headers: &HeaderMap) -> Option<Response> {
    if state.down {
        return Some(message(StatusCode::INTERNAL_SERVER_ERROR, "Server Error"));
    }
    let user_agent = headers.get(header::USER_AGENT);
    if user_agent.is_none_or(|agent| agent.is_empty()) {
        return Some((StatusCode::FORBIDDEN, NO_USER_AGENT_MESSAGE).into_response());
    }
    let authorization = headers.get(header::AUTHORIZATION)?;
    let known = token(authorization).is_some_and(|token| state.tokens.contains(token));
    (!known).then(|| message(StatusCode::UNAUTHORIZED, "Bad credentials"))
}

/// The token of `Bearer TOKEN` or `token TOKEN`; GitHub takes either scheme, in any case.
fn token(authorization: &HeaderValue) -> Option<&str> {
    let (scheme, token) = authorization.to_str().ok()?.split_once(' ')?;
    let known_scheme =
        scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("token");
    known_scheme.then_some(token)
}

async fn user(Extract(state): Extract<Shared>, Path(login): Path<String>) -> Response {
    let state = state.lock().unwrap();
    let Some(user) = state.users.get(&login.to_ascii_lowercase()) else {
        return message(StatusCode::NOT_FOUND, "Not Found");
    };
    Json(json!({
        "login": user.login,
        "id": user.id,
        "node_id": format!("U_fake{}", user.id),
        "avatar_url": format!("https://avatars.githubusercontent.com/u/{}?v=4", user.id),
        "url": format!("{}/users/{}", state.url, user.login),
        "html_url": format!("https://github.com/{}", user.login),
        "type": "User",
        "site_admin": false,
        "name": null,
    }))
    .into_response()
}

async fn user_keys(
    Extract(state): Extract<Shared>,
    Path(login): Path<String>,
    Query(query): Query<BTreeMap<String, String>>,
) -> Response {
    let state = state.lock().unwrap();
    let Some(user) = state.users.get(&login.to_ascii_lowercase()) else {
        return message(StatusCode::NOT_FOUND, "Not Found");
    };
    let keys = user.keys.iter().map(|(id, key)| json!({"id": id, "key": key}));
    let link_base = format!("{}/users/{}/keys", state.url, user.login);
    paginated(&link_base, keys.collect(), &query)
}

async fn not_found() -> Response {
    message(StatusCode::NOT_FOUND, "Not Found")
}

/// GitHub's error body.
fn message(status: StatusCode, message: &str) -> Response {
    let body = json!({
        "message": message,
        "documentation_url": DOCS_URL,
        "status": status.as_u16().to_string(),
    });
    (status, Json(body)).into_response()
}

/// One page of `items`, as GitHub pages lists: `per_page` (default 30, at most 100) and `page`
/// (from 1), with a `Link` header when there are more.
fn paginated(link_base: &str, items: Vec<Value>, query: &BTreeMap<String, String>) -> Response {
    let number = |name: &str| query.get(name).and_then(|v| v.parse::<usize>().ok());
    let per_page =
        number("per_page").filter(|&n| n > 0).unwrap_or(PER_PAGE_DEFAULT).min(PER_PAGE_MAX);
    let page = number("page").filter(|&n| n > 0).unwrap_or(1);
    let last_page = items.len().div_ceil(per_page).max(1);
    let page_items: Vec<Value> =
        items.into_iter().skip((page - 1) * per_page).take(per_page).collect();
    let mut response = Json(page_items).into_response();
    if page < last_page {
        let link = |n: usize, rel: &str| {
            format!("<{link_base}?per_page={per_page}&page={n}>; rel=\"{rel}\"")
        };
        let value = format!("{}, {}", link(page + 1, "next"), link(last_page, "last"));
        response.headers_mut().insert(header::LINK, HeaderValue::from_str(&value).unwrap());
    }
    response
}
