//! Sign in with GitHub: `/login`, `/auth/callback`, `POST /logout`, the session cookie, and the
//! [`Visitor`] every handler that shows runs asks for (a session's person, a bearer token's,
//! or anonymous).

use std::sync::RwLock;
use std::time::{Duration, SystemTime};

use askama::Template;
use axum::Form;
use axum::extract::{FromRequestParts, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::{AppState, HttpError};
use crate::access::{BearerError, Person, Visitor};
use crate::core::auth::{
    LOGIN_STATE_TTL, SESSION_TTL, StateSeal, csrf_token, same_secret, secret_hash,
};
use crate::github::{GitHubError, GitHubWeb, OAuthClient};

/// The session cookie: a random 256-bit secret, hex.
pub const SESSION_COOKIE: &str = "tether_session";
/// The sign-in's `state`, bound to the browser that started it.
const LOGIN_STATE_COOKIE: &str = "tether_login_state";
/// The longest cookie value read; ours are 64 hex digits.
const COOKIE_VALUE_MAX_BYTES: usize = 128;
/// The longest bearer token taken; GitHub's are far shorter.
const BEARER_TOKEN_MAX_BYTES: usize = 512;

/// What sign-in needs: GitHub's web host, the App's OAuth client (from flags or `/setup`, so
/// set later too), the external URL and the states handed out.
pub struct SignIn {
    pub web: GitHubWeb,
    oauth: RwLock<Option<OAuthClient>>,
    external_url: String,
    secure: bool,
    /// Seals sign-in states under a key of this process.
    seal: StateSeal,
}

impl SignIn {
    pub fn new(web: GitHubWeb, oauth: Option<OAuthClient>, external_url: &str) -> SignIn {
        SignIn {
            web,
            oauth: RwLock::new(oauth),
            external_url: external_url.trim_end_matches('/').to_string(),
            secure: crate::core::auth::secure_cookies(external_url),
            seal: StateSeal::new(rand::random()),
        }
    }

    /// From now on, sign-in uses this client (the App `/setup` created).
    pub fn set_oauth(&self, oauth: OAuthClient) {
        *self.oauth.write().expect("sign-in lock poisoned") = Some(oauth);
    }

    fn oauth(&self) -> Option<OAuthClient> {
        self.oauth.read().expect("sign-in lock poisoned").clone()
    }

    fn redirect_uri(&self) -> String {
        format!("{}/auth/callback", self.external_url)
    }

    pub fn external_url(&self) -> &str {
        &self.external_url
    }

    /// A `Set-Cookie` value: `HttpOnly`, `SameSite=Lax`, `Secure` behind https.
    pub fn cookie(&self, name: &str, value: &str, path: &str, max_age: Duration) -> HeaderValue {
        let secure = if self.secure { "; Secure" } else { "" };
        let text = format!(
            "{name}={value}; Path={path}; Max-Age={}; HttpOnly; SameSite=Lax{secure}",
            max_age.as_secs()
        );
        HeaderValue::from_str(&text).expect("cookie values are hex")
    }
}

/// The value of cookie `name` in the request, if it is short enough to be ours.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    let pairs = headers.get_all(header::COOKIE).into_iter().filter_map(|v| v.to_str().ok());
    pairs
        .flat_map(|line| line.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.to_string())
        .filter(|value| value.len() <= COOKIE_VALUE_MAX_BYTES)
}

/// Seconds since the Unix epoch.
fn unix_secs(time: SystemTime) -> u64 {
    time.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// A random 256-bit secret, hex.
fn random_secret() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

impl FromRequestParts<AppState> for Visitor {
    type Rejection = HttpError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Visitor, HttpError> {
        if let Some(token) = bearer(&parts.headers)? {
            return match state.access.bearer(token).await {
                Ok(person) => Ok(Visitor::Person(person)),
                Err(BearerError::Refused) => {
                    Err(HttpError::Unauthorized("GitHub refused the token"))
                }
                Err(BearerError::Unavailable(why)) => {
                    tracing::warn!("checking a bearer token: {why}");
                    Err(HttpError::Unavailable("GitHub is unavailable; try again later"))
                }
            };
        }
        let Some(secret) = cookie(&parts.headers, SESSION_COOKIE) else {
            return Ok(Visitor::Anonymous);
        };
        let hash = secret_hash(&secret);
        let Some(session) = state.store.session(hash).await? else {
            return Ok(Visitor::Anonymous);
        };
        // A session lasts while GitHub still takes the person's token (asked at most every 5
        // minutes): revoking tether's authorization on GitHub, or the token expiring, ends it.
        // GitHub being down does not.
        match state.access.bearer(&session.github_token).await {
            Err(BearerError::Refused) => {
                tracing::info!(login = session.login, "GitHub refused a session's token: ended");
                state.store.delete_session(hash).await?;
                return Ok(Visitor::Anonymous);
            }
            Err(BearerError::Unavailable(why)) => {
                tracing::warn!(login = session.login, "checking a session's token: {why}");
            }
            Ok(_) => {}
        }
        let csrf = Some(csrf_token(&secret));
        Ok(Visitor::Person(Person::new(session.login, session.github_token, csrf)))
    }
}

/// The token of `Authorization: Bearer TOKEN` (or GitHub's `token TOKEN`), if there is one.
fn bearer(headers: &HeaderMap) -> Result<Option<&str>, HttpError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else { return Ok(None) };
    let refused = HttpError::Unauthorized("Authorization must be `Bearer TOKEN`");
    let (scheme, token) = value
        .to_str()
        .map_err(|_| refused)?
        .split_once(' ')
        .ok_or(HttpError::Unauthorized("Authorization must be `Bearer TOKEN`"))?;
    let known = scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("token");
    let token = token.trim();
    if !known || token.is_empty() || token.len() > BEARER_TOKEN_MAX_BYTES {
        return Err(HttpError::Unauthorized("Authorization must be `Bearer TOKEN`"));
    }
    Ok(Some(token))
}

/// The top of every page: who is signed in, and the CSRF token for its forms.
#[derive(Default)]
pub struct Header {
    pub login: Option<String>,
    pub csrf: String,
}

impl Header {
    pub fn of(visitor: &Visitor) -> Header {
        match visitor {
            Visitor::Anonymous => Header::default(),
            Visitor::Person(person) => Header {
                login: Some(person.login.clone()),
                csrf: person.csrf.clone().unwrap_or_default(),
            },
        }
    }
}

/// A page that says one thing: why sign-in (or setup) stopped, or a 404.
#[derive(Template)]
#[template(path = "message.html")]
pub struct MessagePage {
    pub header: Header,
    pub title: &'static str,
    pub message: String,
    /// Offer "Sign in with GitHub" under the message.
    pub offer_sign_in: bool,
}

/// A message page with `status`.
pub fn message(status: StatusCode, title: &'static str, message: String, offer: bool) -> Response {
    let page = MessagePage { header: Header::default(), title, message, offer_sign_in: offer };
    match page.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => HttpError::Internal(e.into()).into_response(),
    }
}

/// Marks the one 404 page, for [`not_found_page`].
#[derive(Clone, Copy)]
pub struct NotFoundPage;

/// The 404 page for a signed-in person: their header, and no offer to sign in. The same for a
/// missing run and a hidden one, as the anonymous page is.
pub async fn not_found_page(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let secret = cookie(request.headers(), SESSION_COOKIE);
    let response = next.run(request).await;
    let (Some(secret), Some(_)) = (secret, response.extensions().get::<NotFoundPage>()) else {
        return response;
    };
    let session = match state.store.session(secret_hash(&secret)).await {
        Ok(Some(session)) => session,
        Ok(None) => return response,
        Err(e) => return HttpError::from(e).into_response(),
    };
    let header = Header { login: Some(session.login), csrf: csrf_token(&secret) };
    let text = "There is nothing here, or nothing you may see.".to_string();
    let page = MessagePage { header, title: "Not found", message: text, offer_sign_in: false };
    match page.render() {
        Ok(html) => (StatusCode::NOT_FOUND, Html(html)).into_response(),
        Err(e) => HttpError::Internal(e.into()).into_response(),
    }
}

/// `GET /login`: to GitHub, with a fresh `state` bound to this browser by a cookie.
pub async fn login(State(state): State<AppState>) -> Response {
    let sign_in = &state.sign_in;
    let Some(oauth) = sign_in.oauth() else {
        let why = "Sign-in is not set up on this server: it needs the GitHub App's client id and \
                   secret (from /setup, or --github-client-id and --github-client-secret).";
        return message(StatusCode::SERVICE_UNAVAILABLE, "Sign-in unavailable", why.into(), false);
    };
    let expires = unix_secs(SystemTime::now() + LOGIN_STATE_TTL);
    let login_state = sign_in.seal.seal(&hex::encode(rand::random::<[u8; 16]>()), expires);
    let target = sign_in.web.authorize_url(&oauth, &sign_in.redirect_uri(), &login_state);
    let cookie = sign_in.cookie(LOGIN_STATE_COOKIE, &login_state, "/auth", LOGIN_STATE_TTL);
    ([(header::SET_COOKIE, cookie)], Redirect::to(&target)).into_response()
}

#[derive(Deserialize)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

/// `GET /auth/callback`: checks `state` against this browser's cookie and the states handed
/// out, exchanges the code, learns the login, and starts a session. Anything wrong gives a
/// page that says so, and no session.
pub async fn callback(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<CallbackQuery>,
) -> Response {
    let sign_in = &state.sign_in;
    let clear_state = sign_in.cookie(LOGIN_STATE_COOKIE, "", "/auth", Duration::ZERO);
    let answer = match start_session(&state, &headers, q).await {
        Ok(secret) => {
            let cookie = sign_in.cookie(SESSION_COOKIE, &secret, "/", SESSION_TTL);
            let mut response = Redirect::to("/").into_response();
            response.headers_mut().append(header::SET_COOKIE, cookie);
            response
        }
        Err(refusal) => refusal,
    };
    let mut answer = answer;
    answer.headers_mut().append(header::SET_COOKIE, clear_state);
    answer
}

async fn start_session(
    state: &AppState,
    headers: &HeaderMap,
    q: CallbackQuery,
) -> Result<String, Response> {
    let sign_in = &state.sign_in;
    let stale = || {
        let why = "This sign-in link is not valid any more (it was used, it expired, or it \
                   was started in another browser). Sign in again.";
        message(StatusCode::BAD_REQUEST, "Sign-in failed", why.into(), true)
    };
    let given = q.state.as_deref().unwrap_or_default();
    let bound = cookie(headers, LOGIN_STATE_COOKIE).is_some_and(|c| same_secret(&c, given));
    let issued = sign_in.seal.open(given, unix_secs(SystemTime::now()));
    if !bound || !issued {
        return Err(stale());
    }
    if q.error.is_some() {
        let why = "You did not authorize the sign-in on GitHub, so you are not signed in.";
        return Err(message(StatusCode::FORBIDDEN, "Sign-in denied", why.into(), true));
    }
    let oauth = sign_in.oauth().ok_or_else(stale)?;
    let code = q.code.unwrap_or_default();
    let token = sign_in
        .web
        .exchange_code(&oauth, &code, &sign_in.redirect_uri())
        .await
        .map_err(github_failure)?;
    let user = state.access.bearer(&token).await.map_err(|e| match e {
        BearerError::Refused => github_failure(GitHubError::Unauthorized("token refused".into())),
        BearerError::Unavailable(why) => github_failure(GitHubError::Unavailable(why)),
    })?;
    let secret = random_secret();
    let stored = state.store.create_session(secret_hash(&secret), &user.login, &token, SESSION_TTL);
    stored.await.map_err(|e| HttpError::from(e).into_response())?;
    tracing::info!(login = user.login, "signed in");
    Ok(secret)
}

fn github_failure(error: GitHubError) -> Response {
    match error {
        GitHubError::Unavailable(why) => {
            tracing::warn!("sign-in: GitHub is unavailable: {why}");
            let text = "GitHub did not answer. Nothing was changed; try signing in again later.";
            message(StatusCode::SERVICE_UNAVAILABLE, "GitHub unavailable", text.into(), true)
        }
        other => {
            tracing::info!("sign-in refused by GitHub: {other}");
            let text = "GitHub refused this sign-in (the code was used or expired). Sign in again.";
            message(StatusCode::BAD_REQUEST, "Sign-in failed", text.into(), true)
        }
    }
}

/// A form whose only field is the session's CSRF token.
#[derive(Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

impl CsrfForm {
    pub fn token(&self) -> &str {
        &self.csrf
    }
}

/// `POST /logout`: ends the session (CSRF-checked), and forgets the cookie.
pub async fn logout(
    State(state): State<AppState>,
    visitor: Visitor,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> Result<Response, HttpError> {
    super::csrf::check(&state, &visitor, &headers, &form.csrf)?;
    if let Some(secret) = cookie(&headers, SESSION_COOKIE) {
        state.store.delete_session(secret_hash(&secret)).await?;
    }
    let clear = state.sign_in.cookie(SESSION_COOKIE, "", "/", Duration::ZERO);
    Ok(([(header::SET_COOKIE, clear)], Redirect::to("/")).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                header::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        map
    }

    #[test]
    fn cookies_are_found_by_exact_name_and_bounded() {
        let map =
            headers(&[("cookie", "a=1; tether_session=abc"), ("cookie", "x_tether_session=no")]);
        assert_eq!(cookie(&map, SESSION_COOKIE).as_deref(), Some("abc"));
        assert_eq!(cookie(&map, "tether"), None);
        let long = format!("tether_session={}", "a".repeat(COOKIE_VALUE_MAX_BYTES + 1));
        assert_eq!(cookie(&headers(&[("cookie", &long)]), SESSION_COOKIE), None);
    }

    #[test]
    fn bearer_tokens_are_taken_only_in_their_form() {
        let token = |value: &str| {
            bearer(&headers(&[("authorization", value)])).map(|t| t.map(String::from))
        };
        assert_eq!(token("Bearer ghu_x").unwrap().as_deref(), Some("ghu_x"));
        assert_eq!(token("token ghu_x").unwrap().as_deref(), Some("ghu_x"));
        assert!(bearer(&HeaderMap::new()).unwrap().is_none());
        for bad in
            ["Basic dXNlcjpwdw==", "Bearer", "Bearer  ", &format!("Bearer {}", "x".repeat(513))]
        {
            assert!(matches!(token(bad), Err(HttpError::Unauthorized(_))), "{bad}");
        }
    }
}
