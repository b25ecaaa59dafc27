//! HTTP (axum, askama): pages, the JSON API and health. Handlers translate; the store and the
//! gateway decide.

mod actions;
mod api;
pub mod auth;
mod conn;
mod csrf;
mod live;
mod metrics;
mod pages;
mod run_page;
mod runs;
pub mod setup;
mod webhook;

use std::future::Future;
use std::sync::{Arc, RwLock};

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio::net::TcpListener;

pub use self::conn::HttpLimits;
use crate::access::Access;
use crate::engine::live::LiveLogs;
use crate::store::Store;

/// The Content-Security-Policy of every response: nothing inline, nothing from elsewhere.
/// Inline style *attributes* are allowed for the 256-colour and truecolor values the log renderer
/// computes from numbers; no script, and no style element, comes from anywhere but this server.
pub(crate) const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
    style-src-attr 'unsafe-inline'; \
    img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    /// The GitHub App's webhook secret; set at start, or later by the App Manifest flow.
    pub webhook_secret: Arc<RwLock<Option<Vec<u8>>>>,
    /// Wakes the worker that processes stored deliveries.
    pub deliveries: Arc<tokio::sync::Notify>,
    /// Run logs.
    pub logs: Option<crate::logs::LogStore>,
    /// The lines of running runs, as the engine publishes them.
    pub live: LiveLogs,
    /// The App Manifest flow, while no app is configured.
    pub setup: Option<Arc<setup::Setup>>,
    /// Who may read what.
    pub access: Access,
    /// Sign in with GitHub.
    pub sign_in: Arc<auth::SignIn>,
    /// The configured App's slug, when known (from `/setup`'s file), for the setup page.
    pub app_slug: Arc<RwLock<Option<String>>>,
    /// The engine, once there is a GitHub App (at start, or after `/setup`): cancel, re-run.
    pub engine: Arc<std::sync::Mutex<Option<crate::engine::Engine>>>,
}

impl AppState {
    pub fn new(
        store: Store,
        webhook_secret: Option<Vec<u8>>,
        logs: Option<crate::logs::LogStore>,
        live: LiveLogs,
        access: Access,
        sign_in: Arc<auth::SignIn>,
    ) -> AppState {
        AppState {
            store,
            webhook_secret: Arc::new(RwLock::new(webhook_secret)),
            deliveries: Arc::default(),
            logs,
            live,
            setup: None,
            access,
            sign_in,
            app_slug: Arc::default(),
            engine: Arc::default(),
        }
    }

    /// Cancel and re-run, once the engine runs.
    fn actions(&self) -> Option<crate::engine::Actions> {
        self.engine.lock().expect("engine slot poisoned").as_ref().map(|e| e.actions())
    }

    fn webhook_secret(&self) -> Option<Vec<u8>> {
        self.webhook_secret.read().expect("secret lock poisoned").clone()
    }
}

/// Every route of the server.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(pages::index))
        .route("/static/tether.css", get(pages::stylesheet))
        .route("/static/live.js", get(pages::live_script))
        .route("/static/lines.js", get(pages::lines_script))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/metrics", get(metrics::metrics))
        .route("/repos/{owner}/{repo}", get(pages::repo))
        .route("/api/v1/runners", get(api::runners))
        .route("/api/v1/runs", get(runs::api_runs))
        .route("/api/v1/runs/{id}", get(runs::api_run))
        .route("/runs/{id}", get(run_page::page))
        .route("/runs/{id}/raw", get(runs::raw))
        .route("/runs/{id}/events", get(live::events))
        .route("/runs/{id}/cancel", post(actions::cancel))
        .route("/runs/{id}/rerun", post(actions::rerun))
        .route("/login", get(auth::login))
        .route("/auth/callback", get(auth::callback))
        .route("/logout", post(auth::logout))
        .route("/setup", get(setup::page))
        .route("/setup/callback", get(setup::callback))
        .route(
            "/integrations/github/events",
            post(webhook::github_events)
                .layer(DefaultBodyLimit::max(webhook::WEBHOOK_MAX_BODY_BYTES)),
        )
        .fallback(|| async { HttpError::NotFound })
        .layer(axum::middleware::from_fn_with_state(state.clone(), auth::not_found_page))
        .layer(axum::middleware::map_response(security_headers))
        .with_state(state)
}

/// Serves HTTP on `listener` until `shutdown` resolves, each connection bounded by `limits`.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    limits: HttpLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    conn::serve(listener, router(state), limits, shutdown).await
}

async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    // A handler that set its own policy (the setup page's, which lets its form post to GitHub)
    // keeps it.
    headers
        .entry(header::CONTENT_SECURITY_POLICY)
        .or_insert(HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}

/// Why a request failed; the one mapping of errors to HTTP statuses. Internals are logged, never
/// sent.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("not found")]
    NotFound,
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(&'static str),
    #[error("{0}")]
    Forbidden(&'static str),
    #[error("{0}")]
    Conflict(&'static str),
    #[error("{0}")]
    Unavailable(&'static str),
    #[error("internal error")]
    Internal(#[from] anyhow::Error),
}

impl From<crate::store::StoreError> for HttpError {
    fn from(error: crate::store::StoreError) -> HttpError {
        HttpError::Internal(error.into())
    }
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        if let HttpError::NotFound = self {
            return not_found();
        }
        let status = match &self {
            HttpError::NotFound => StatusCode::NOT_FOUND,
            HttpError::BadRequest(_) => StatusCode::BAD_REQUEST,
            HttpError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            HttpError::Forbidden(_) => StatusCode::FORBIDDEN,
            HttpError::Conflict(_) => StatusCode::CONFLICT,
            HttpError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            HttpError::Internal(e) => {
                tracing::error!(error = format!("{e:#}"), "request failed");
                StatusCode::INTERNAL_SERVER_ERROR
            }
        };
        let mut response = (status, format!("{self}\n")).into_response();
        if status == StatusCode::UNAUTHORIZED {
            let challenge = HeaderValue::from_static("Bearer realm=\"tether\"");
            response.headers_mut().insert(header::WWW_AUTHENTICATE, challenge);
        }
        response
    }
}

/// The one 404, for a run (or repository) that does not exist and for one the visitor may not
/// read alike, so that neither tells them apart. It offers sign-in: a private repository's runs
/// show once signed in. [`auth::not_found_page`] gives a signed-in person their header instead.
fn not_found() -> Response {
    let mut response =
        auth::message(StatusCode::NOT_FOUND, "Not found", NOT_FOUND_TEXT.into(), true);
    response.extensions_mut().insert(auth::NotFoundPage);
    response
}

/// What the 404 page says.
const NOT_FOUND_TEXT: &str = "There is nothing here, or nothing you may see. If this is a \
    private repository's run, sign in with a GitHub account that may read the repository.";
