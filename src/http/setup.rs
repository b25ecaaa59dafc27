//! `/setup`: creates tether's GitHub App through GitHub's App Manifest flow. The page posts a
//! manifest to GitHub; GitHub sends the person back to `/setup/callback` with a code that is
//! exchanged for the app's id, key, webhook secret and OAuth client, which are saved and used
//! at once. Nobody who merely reaches the server first can claim it: the form is offered only
//! with the code `tether serve` printed, its `state` is bound to that browser by a cookie and
//! lasts an hour, and once an App is configured the callback refuses whatever it is sent.

use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;
use tokio::sync::mpsc;

use super::auth::{Header, cookie, message};
use super::{AppState, HttpError};
use crate::access::Visitor;
use crate::core::auth::{PendingStates, SETUP_STATE_TTL, same_secret};
use crate::core::reach::external_url_warnings;
use crate::github::GitHub;
use crate::setup::{SavedApp, manifest};

/// The manifest flow's `state`, bound to the browser that was shown the form.
const SETUP_STATE_COOKIE: &str = "tether_setup_state";

/// What the setup pages need; present only while no app is configured at start.
pub struct Setup {
    pub github: GitHub,
    pub data_dir: PathBuf,
    pub external_url: String,
    /// Where a created app goes so that the server starts using it.
    pub activate: mpsc::UnboundedSender<SavedApp>,
    /// The code `tether serve` printed: without it, `/setup` offers nothing.
    code: String,
    /// `state` values handed out, so that a callback can only follow our own page, for an hour.
    states: Mutex<PendingStates>,
    /// Held while an app is created, so that two callbacks cannot both create one.
    creating: tokio::sync::Mutex<()>,
    /// Set once an app is created: from then on nothing here changes anything.
    done: AtomicBool,
}

impl Setup {
    pub fn new(
        github: GitHub,
        data_dir: PathBuf,
        external_url: String,
        code: String,
        activate: mpsc::UnboundedSender<SavedApp>,
    ) -> Setup {
        Setup {
            github,
            data_dir,
            external_url,
            activate,
            code,
            states: Mutex::new(PendingStates::new(SETUP_STATE_TTL)),
            creating: tokio::sync::Mutex::new(()),
            done: AtomicBool::new(false),
        }
    }

    pub(super) fn done(&self) -> bool {
        self.done.load(Ordering::SeqCst)
    }
}

#[derive(Template)]
#[template(path = "setup.html")]
struct SetupPage {
    header: Header,
    configured: bool,
    /// The configured App's slug and install link, when known.
    slug: Option<String>,
    install_url: String,
    action: String,
    manifest: String,
    state: String,
    /// Why GitHub may not reach the external URL the App's webhook would point at.
    warnings: Vec<String>,
}

/// The setup page's policy: the site's, with GitHub's web origin allowed as a form target.
fn setup_policy(github_web: &str) -> String {
    super::CONTENT_SECURITY_POLICY
        .replace("form-action 'self'", &format!("form-action 'self' {github_web}"))
}

#[derive(Deserialize)]
pub struct SetupQuery {
    code: Option<String>,
}

pub async fn page(
    State(state): State<AppState>,
    visitor: Visitor,
    Query(q): Query<SetupQuery>,
) -> Result<Response, HttpError> {
    let web = state.sign_in.web.url().to_string();
    let header = Header::of(&visitor);
    let Some(setup) = state.setup.as_ref().filter(|s| !s.done()) else {
        let slug = state.app_slug.read().expect("slug lock poisoned").clone();
        let install_url =
            slug.as_ref().map(|s| format!("{web}/apps/{s}/installations/new")).unwrap_or_default();
        let page = SetupPage {
            header,
            configured: true,
            slug,
            install_url,
            action: String::new(),
            manifest: String::new(),
            state: String::new(),
            warnings: Vec::new(),
        };
        return Ok(Html(page.render().map_err(anyhow::Error::from)?).into_response());
    };
    if !q.code.as_deref().is_some_and(|code| same_secret(code, &setup.code)) {
        let why = "This server has no GitHub App yet. Open the setup link that `tether serve` \
                   printed when it started (…/setup?code=…); only that link offers the form.";
        return Ok(message(StatusCode::FORBIDDEN, "Setup needs its link", why.into(), false));
    }
    let token = hex::encode(rand::random::<[u8; 16]>());
    setup.states.lock().expect("setup lock poisoned").issue(token.clone(), SystemTime::now());
    let page = SetupPage {
        header,
        configured: false,
        slug: None,
        install_url: String::new(),
        action: format!("{web}/settings/apps/new?state={token}"),
        manifest: manifest(&setup.external_url).to_string(),
        state: token.clone(),
        warnings: external_url_warnings(&setup.external_url)
            .iter()
            .map(|w| w.to_string())
            .collect(),
    };
    let html = Html(page.render().map_err(anyhow::Error::from)?);
    let policy = HeaderValue::from_str(&setup_policy(&web)).map_err(anyhow::Error::from)?;
    let cookie = state.sign_in.cookie(SETUP_STATE_COOKIE, &token, "/setup", SETUP_STATE_TTL);
    Ok(([(header::CONTENT_SECURITY_POLICY, policy), (header::SET_COOKIE, cookie)], html)
        .into_response())
}

#[derive(Deserialize)]
pub struct Callback {
    code: String,
    state: String,
}

#[derive(Template)]
#[template(path = "setup_done.html")]
struct DonePage {
    header: Header,
    slug: String,
    install_url: String,
}

pub async fn callback(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<Callback>,
) -> Result<Response, HttpError> {
    let configured = || {
        let why = "This server already acts as a GitHub App; setup changes nothing now.";
        Ok(message(StatusCode::FORBIDDEN, "Already set up", why.into(), false))
    };
    let Some(setup) = state.setup.as_ref() else { return configured() };
    let _creating = setup.creating.lock().await;
    if setup.done() {
        return configured();
    }
    let bound = cookie(&headers, SETUP_STATE_COOKIE).is_some_and(|c| same_secret(&c, &q.state));
    let issued =
        setup.states.lock().expect("setup lock poisoned").redeem(&q.state, SystemTime::now());
    if !bound || !issued {
        let why = "This setup link is unknown, expired, used already, or was started in another \
                   browser; start again from the link `tether serve` printed.";
        return Ok(message(StatusCode::BAD_REQUEST, "Setup failed", why.into(), false));
    }
    let app =
        setup.github.convert_manifest(&q.code).await.map_err(|e| HttpError::Internal(e.into()))?;
    let saved = SavedApp::from_new(app);
    let path = saved.save(&setup.data_dir)?;
    tracing::info!(app_id = saved.app_id, slug = saved.slug, path = %path.display(), "GitHub App created");
    setup.done.store(true, Ordering::SeqCst);
    setup.states.lock().expect("setup lock poisoned").clear();
    activate(&state, setup, saved);
    let slug = state.app_slug.read().expect("slug lock poisoned").clone().unwrap_or_default();
    let install_url = format!("{}/apps/{slug}/installations/new", state.sign_in.web.url());
    let page = DonePage { header: Header::default(), slug, install_url };
    let clear = state.sign_in.cookie(SETUP_STATE_COOKIE, "", "/setup", Duration::ZERO);
    let html = Html(page.render().map_err(anyhow::Error::from)?);
    Ok(([(header::SET_COOKIE, clear)], html).into_response())
}

/// The server acts as the new app from now on: its webhook secret, its OAuth client for
/// sign-in, its slug for this page, and the engine (started by whoever receives `activate`).
fn activate(state: &AppState, setup: &Setup, saved: SavedApp) {
    *state.webhook_secret.write().expect("secret lock poisoned") =
        Some(saved.webhook_secret.clone().into_bytes());
    *state.app_slug.write().expect("slug lock poisoned") = Some(saved.slug.clone());
    if let Some(oauth) = saved.oauth() {
        state.sign_in.set_oauth(oauth);
    }
    let _ = setup.activate.send(saved);
}
