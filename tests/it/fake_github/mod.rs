//! A fake GitHub API as strict as the real one, so that tether's mistakes fail its tests.
//!
//! Each endpoint is a small handler over [`State`], routed in [`router`]; [`gate`] does what
//! GitHub does before any endpoint: count the request, fail in an outage, refuse requests
//! without a `User-Agent` or with an unknown token. The app's side is in `auth` (JWTs,
//! installation tokens and what each may do), `schema` (GitHub's 422s), and one module per
//! group of endpoints.

// A refusal is the response itself, so that checks return it with `?`; its size is no cost in
// a test server.
#![allow(clippy::result_large_err)]

mod auth;
mod checks;
mod deployments;
mod oauth;
mod repos;
mod schema;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, Query, Request, State as Extract};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::{get, patch, post};
use serde_json::{Value, json};

pub use auth::FOREIGN_KEY_PEM;
pub use oauth::{CLIENT_ID, CLIENT_SECRET};

/// GitHub's page size when a request names none, and the most it allows.
const PER_PAGE_DEFAULT: usize = 30;
const PER_PAGE_MAX: usize = 100;
/// Key ids start far from user ids, so that mixing them up fails a test.
const FIRST_KEY_ID: i64 = 1_000_000;
/// Ids of check runs, deployments, comments and reactions start elsewhere again.
const FIRST_OBJECT_ID: i64 = 5_000_000;
/// GitHub's installation tokens live an hour.
const TOKEN_LIFETIME_DEFAULT: Duration = Duration::from_secs(60 * 60);
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
    /// The same, by "METHOD /path" and the credential each request carried.
    calls_by_credential: BTreeMap<(String, Credential), usize>,
    /// When each request came, by "METHOD /path".
    call_times: BTreeMap<String, Vec<std::time::Instant>>,
    /// Requests to carry out and then answer with a 502 as if the answer were lost, by
    /// "METHOD /path": how many more times.
    losing: BTreeMap<String, usize>,
    /// Requests still to refuse, by "METHOD /path": with what status, how many more times.
    failing: BTreeMap<String, (StatusCode, usize)>,
    /// Requests still to refuse as over a rate limit, by "METHOD /path": how, how many more times.
    rate_limited: BTreeMap<String, (RateLimit, usize)>,
    next_key_id: i64,
    next_id: i64,
    app: auth::AppState,
    repos: repos::RepoState,
    oauth: oauth::OAuthState,
    /// Check runs by repository, in creation order.
    check_runs: BTreeMap<String, Vec<Value>>,
    /// Deployments by repository, in creation order: id, the body sent, and the bodies of their
    /// statuses.
    deployments: BTreeMap<String, Vec<(i64, Value, Vec<Value>)>>,
}

impl State {
    fn next_id(&mut self) -> i64 {
        self.next_id += 1;
        self.next_id
    }
}

/// How GitHub says a request is over a rate limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateLimit {
    /// A 429 with `retry-after: SECS` (a secondary rate limit).
    RetryAfter(u64),
    /// A 403 with `x-ratelimit-remaining: 0` and `x-ratelimit-reset` this many seconds from now
    /// (the primary rate limit spent).
    Exhausted { reset_in: u64 },
}

impl RateLimit {
    /// GitHub's answer, with its headers.
    fn response(self) -> Response {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
        let mut response = match self {
            RateLimit::RetryAfter(_) => message(
                StatusCode::TOO_MANY_REQUESTS,
                "You have exceeded a secondary rate limit. Please wait a few minutes.",
            ),
            RateLimit::Exhausted { .. } => {
                message(StatusCode::FORBIDDEN, "API rate limit exceeded for installation ID 1.")
            }
        };
        let headers = response.headers_mut();
        let mut set = |name: &'static str, value: u64| {
            headers.insert(name, HeaderValue::from_str(&value.to_string()).unwrap());
        };
        match self {
            RateLimit::RetryAfter(secs) => set("retry-after", secs),
            RateLimit::Exhausted { reset_in } => {
                set("x-ratelimit-limit", 5000);
                set("x-ratelimit-remaining", 0);
                set("x-ratelimit-reset", now.as_secs() + reset_in);
            }
        }
        response
    }
}

/// What a request authenticated with, as the fake sees it before any endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Credential {
    /// No `Authorization` header: GitHub's 60 requests an hour per address.
    Anonymous,
    /// A live installation token of the app (`ghs_…`): 5,000 an hour or more.
    Installation,
    /// A token added with [`FakeGitHub::add_token`].
    Token,
    /// Anything else: a JWT (which only `/app` endpoints take), or an unknown or expired token.
    Other,
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
            next_id: FIRST_OBJECT_ID,
            app: auth::AppState::new(TOKEN_LIFETIME_DEFAULT),
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

    /// `login` is signed in to the fake's web pages: sent to `/login/oauth/authorize`, they
    /// authorize at once (or deny, with [`FakeGitHub::set_deny`]).
    pub fn sign_in_as(&self, login: &str) {
        self.state().oauth.signed_in = Some(login.to_string());
    }

    /// Whether the signed-in person denies the authorization.
    pub fn set_deny(&self, deny: bool) {
        self.state().oauth.deny = deny;
    }

    /// A user token of `login`, as a script would send it.
    pub fn add_user_token(&self, token: &str, login: &str) {
        let mut state = self.state();
        state.oauth.user_tokens.insert(token.to_string(), login.to_string());
        state.tokens.insert(token.to_string());
    }

    /// Revokes every user token of `login`, as when they revoke the App's authorization.
    pub fn revoke_user_tokens_of(&self, login: &str) {
        let mut state = self.state();
        let theirs: Vec<String> = state
            .oauth
            .user_tokens
            .iter()
            .filter(|(_, owner)| owner.eq_ignore_ascii_case(login))
            .map(|(token, _)| token.clone())
            .collect();
        for token in theirs {
            state.oauth.user_tokens.remove(&token);
            state.tokens.remove(&token);
        }
    }

    /// Makes `repo` private on the fake (it is public otherwise).
    pub fn set_private(&self, repo: &str) {
        self.state().oauth.private.insert(repo.to_string());
    }

    /// While down, every request answers 500, like a GitHub outage.
    pub fn set_down(&self, down: bool) {
        self.state().down = down;
    }

    /// The fake app's id and private key (PEM), for `GitHub::with_app`.
    pub fn app_credentials(&self) -> (u64, String) {
        (auth::APP_ID, auth::APP_KEY_PEM.to_string())
    }

    /// An installation of the app on these repositories ("owner/name").
    pub fn add_installation(&self, id: i64, repos: &[&str]) {
        let repos = repos.iter().map(|r| r.to_string()).collect();
        self.state().app.installations.insert(id, repos);
    }

    /// How long installation tokens issued from now on live (an hour unless set).
    pub fn set_token_lifetime(&self, lifetime: Duration) {
        self.state().app.token_lifetime = lifetime;
    }

    /// A code that `POST /app-manifests/{code}/conversions` turns into this app, once.
    pub fn register_manifest_code(&self, code: &str) {
        self.state().app.manifest_codes.insert(code.to_string());
    }

    /// A file of `repo` at commit `sha`.
    pub fn set_file(&self, repo: &str, sha: &str, path: &str, bytes: &[u8]) {
        let key = (repo.to_string(), sha.to_string(), path.to_string());
        self.state().repos.files.insert(key, bytes.to_vec());
    }

    /// `login`'s role on `repo`: admin, maintain, write, triage or read.
    pub fn set_permission(&self, repo: &str, login: &str, role: &str) {
        let key = (repo.to_string(), login.to_ascii_lowercase());
        self.state().repos.roles.insert(key, role.to_string());
    }

    /// An open pull request of `repo` whose head is `head_sha`, on a branch `pr-{number}`.
    pub fn set_pull(&self, repo: &str, number: u64, head_sha: &str) {
        self.state().repos.pulls.insert((repo.to_string(), number), head_sha.to_string());
    }

    /// Each check run of `repo` as it stands now, in creation order.
    pub fn check_runs(&self, repo: &str) -> Vec<Value> {
        self.state().check_runs.get(repo).cloned().unwrap_or_default()
    }

    /// The reactions on an issue comment, in the order they were added.
    pub fn reactions(&self, repo: &str, comment_id: i64) -> Vec<String> {
        let key = (repo.to_string(), comment_id);
        self.state().repos.reactions.get(&key).cloned().unwrap_or_default()
    }

    /// The bodies of the comments on an issue or pull request.
    pub fn comments(&self, repo: &str, issue: u64) -> Vec<String> {
        let key = (repo.to_string(), issue);
        self.state().repos.comments.get(&key).cloned().unwrap_or_default()
    }

    /// Each deployment of `repo` as its creation sent it, with its statuses' states in order.
    pub fn deployments(&self, repo: &str) -> Vec<(Value, Vec<String>)> {
        let state = self.state();
        let deployments = state.deployments.get(repo).into_iter().flatten();
        let state_of = |status: &Value| status["state"].as_str().unwrap_or_default().to_string();
        deployments
            .map(|(_, sent, statuses)| (sent.clone(), statuses.iter().map(state_of).collect()))
            .collect()
    }

    /// The bodies of each deployment's statuses as they were sent, per deployment in order.
    pub fn deployment_statuses(&self, repo: &str) -> Vec<Vec<Value>> {
        let state = self.state();
        let deployments = state.deployments.get(repo).into_iter().flatten();
        deployments.map(|(_, _, statuses)| statuses.clone()).collect()
    }

    /// The next `n` requests for `route` ("METHOD /path") answer 502, as GitHub sometimes does.
    pub fn fail_next(&self, route: &str, n: usize) {
        self.fail_next_with(route, 502, n);
    }

    /// The next `n` requests for `route` answer `status` with GitHub's error body (422 says
    /// "Validation Failed", as GitHub does when it refuses what was sent).
    pub fn fail_next_with(&self, route: &str, status: u16, n: usize) {
        let status = StatusCode::from_u16(status).unwrap();
        self.state().failing.insert(route.to_string(), (status, n));
    }

    /// The next `n` requests for `route` are refused as over a rate limit, as `limit` says.
    pub fn rate_limit_next(&self, route: &str, limit: RateLimit, n: usize) {
        self.state().rate_limited.insert(route.to_string(), (limit, n));
    }

    /// The head repository of pull request `number` is deleted: its `head.repo` is `null`.
    pub fn delete_pull_head_repo(&self, repo: &str, number: u64) {
        self.state().repos.gone_heads.insert((repo.to_string(), number));
    }

    /// Carries out the next `n` requests for `route`, then answers each with a 502, as when the
    /// answer is lost on the way back.
    pub fn lose_next_answers(&self, route: &str, n: usize) {
        self.state().losing.insert(route.to_string(), n);
    }

    /// Requests received for `route`, "METHOD /path" without the query, refused ones included.
    pub fn calls(&self, route: &str) -> usize {
        self.state().calls.get(route).copied().unwrap_or(0)
    }

    /// Requests received for `route` ("METHOD /path") that carried `credential`.
    pub fn calls_as(&self, route: &str, credential: Credential) -> usize {
        let key = (route.to_string(), credential);
        self.state().calls_by_credential.get(&key).copied().unwrap_or(0)
    }

    /// When each request for `route` came, in order.
    pub fn call_times(&self, route: &str) -> Vec<std::time::Instant> {
        self.state().call_times.get(route).cloned().unwrap_or_default()
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
    let repo = |rest: &str| format!("/repos/{{owner}}/{{repo}}{rest}");
    Router::new()
        .route("/users/{login}", get(user))
        .route("/users/{login}/keys", get(user_keys))
        .route("/user", get(oauth::user))
        .route("/user/installations/{id}/repositories", get(oauth::installation_repositories))
        .route("/login/oauth/authorize", get(oauth::authorize))
        .route("/login/oauth/access_token", post(oauth::access_token))
        .route("/app", get(auth::app))
        .route("/app/installations", get(auth::installations))
        .route("/app/installations/{id}/access_tokens", post(auth::access_tokens))
        .route("/app-manifests/{code}/conversions", post(auth::convert_manifest))
        .route(&repo("/contents/{*path}"), get(repos::contents))
        .route(&repo("/check-runs"), post(checks::create))
        .route(&repo("/check-runs/{id}"), patch(checks::update))
        .route(&repo("/commits/{sha}/check-runs"), get(checks::list))
        .route(&repo("/issues/comments/{id}/reactions"), post(repos::react))
        .route(&repo("/issues/{number}/comments"), post(repos::comment))
        .route(&repo("/collaborators/{login}/permission"), get(repos::permission))
        .route(&repo("/pulls/{number}"), get(repos::pull))
        .route(&repo("/deployments"), post(deployments::create))
        .route(&repo("/deployments/{id}/statuses"), post(deployments::status))
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
        *state.calls.entry(route.clone()).or_default() += 1;
        let credential = credential(&state, request.headers());
        *state.calls_by_credential.entry((route.clone(), credential)).or_default() += 1;
        state.call_times.entry(route.clone()).or_default().push(std::time::Instant::now());
        if let Some((limit, n)) = state.rate_limited.get_mut(&route).filter(|(_, n)| *n > 0) {
            *n -= 1;
            Some(limit.response())
        } else {
            match state.failing.get_mut(&route).filter(|(_, n)| *n > 0) {
                Some((status, n)) => {
                    *n -= 1;
                    Some(message(*status, failure_message(*status)))
                }
                None => refusal(&state, &route, request.headers()),
            }
        }
    };
    if let Some(response) = refusal {
        return response;
    }
    let response = next.run(request).await;
    let mut state = state.lock().unwrap();
    match state.losing.get_mut(&route).filter(|n| **n > 0) {
        Some(n) => {
            *n -= 1;
            message(StatusCode::BAD_GATEWAY, "Server Error")
        }
        None => response,
    }
}

/// GitHub's message for a refusal the test asked for.
fn failure_message(status: StatusCode) -> &'static str {
    match status.as_u16() {
        422 => "Validation Failed",
        500..=599 => "Server Error",
        _ => status.canonical_reason().unwrap_or("Error"),
    }
}

/// GitHub's refusals before any endpoint. The app's own endpoints take its JWT, which their
/// handlers check.
fn refusal(state: &State, route: &str, headers: &HeaderMap) -> Option<Response> {
    if state.down {
        return Some(message(StatusCode::INTERNAL_SERVER_ERROR, "Server Error"));
    }
    let user_agent = headers.get(header::USER_AGENT);
    if user_agent.is_none_or(|agent| agent.is_empty()) {
        return Some((StatusCode::FORBIDDEN, NO_USER_AGENT_MESSAGE).into_response());
    }
    let authorization = headers.get(header::AUTHORIZATION)?;
    if auth::takes_jwt(route) {
        return None;
    }
    let known = token(authorization)
        .is_some_and(|token| state.tokens.contains(token) || state.app.live(token).is_some());
    (!known).then(|| message(StatusCode::UNAUTHORIZED, "Bad credentials"))
}

/// What the request carries, by what the fake knows of each kind of credential.
fn credential(state: &State, headers: &HeaderMap) -> Credential {
    let Some(authorization) = headers.get(header::AUTHORIZATION) else {
        return Credential::Anonymous;
    };
    match token(authorization) {
        Some(token) if state.app.live(token).is_some() => Credential::Installation,
        Some(token) if state.tokens.contains(token) => Credential::Token,
        _ => Credential::Other,
    }
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
