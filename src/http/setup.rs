//! `/setup`: creates tether's GitHub App through GitHub's App Manifest flow. The page posts a
//! manifest to GitHub; GitHub sends the person back to `/setup/callback` with a code that is
//! exchanged for the app's id, key and webhook secret, which are saved and used at once.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Mutex;

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;
use tokio::sync::mpsc;

use super::{AppState, HttpError};
use crate::github::GitHub;
use crate::setup::{SavedApp, manifest, web_url};

/// What the setup pages need; present only while no app is configured.
pub struct Setup {
    pub github: GitHub,
    pub api_url: String,
    pub data_dir: PathBuf,
    pub external_url: String,
    /// Where a created app goes so that the server starts using it.
    pub activate: mpsc::UnboundedSender<SavedApp>,
    /// `state` values handed out, so that a callback can only follow our own page.
    states: Mutex<HashSet<String>>,
}

impl Setup {
    pub fn new(
        github: GitHub,
        api_url: String,
        data_dir: PathBuf,
        external_url: String,
        activate: mpsc::UnboundedSender<SavedApp>,
    ) -> Setup {
        Setup { github, api_url, data_dir, external_url, activate, states: Mutex::default() }
    }
}

#[derive(Template)]
#[template(path = "setup.html")]
struct SetupPage {
    configured: bool,
    action: String,
    manifest: String,
    state: String,
}

/// The setup page's policy: the site's, with GitHub's web origin allowed as a form target.
fn setup_policy(github_web: &str) -> String {
    super::CONTENT_SECURITY_POLICY
        .replace("form-action 'self'", &format!("form-action 'self' {github_web}"))
}

pub async fn page(State(state): State<AppState>) -> Result<Response, HttpError> {
    let page = match (&state.setup, state.webhook_secret().is_some()) {
        (Some(setup), false) => {
            let token = hex::encode(rand::random::<[u8; 16]>());
            setup.states.lock().expect("setup lock poisoned").insert(token.clone());
            SetupPage {
                configured: false,
                action: format!("{}/settings/apps/new?state={token}", web_url(&setup.api_url)),
                manifest: manifest(&setup.external_url).to_string(),
                state: token,
            }
        }
        _ => SetupPage {
            configured: true,
            action: String::new(),
            manifest: String::new(),
            state: String::new(),
        },
    };
    let html = Html(page.render().map_err(anyhow::Error::from)?);
    let github_web = state.setup.as_ref().map_or_else(String::new, |s| web_url(&s.api_url));
    let policy = HeaderValue::from_str(&setup_policy(&github_web)).map_err(anyhow::Error::from)?;
    Ok(([(header::CONTENT_SECURITY_POLICY, policy)], html).into_response())
}

#[derive(Deserialize)]
pub struct Callback {
    code: String,
    state: String,
}

#[derive(Template)]
#[template(path = "setup_done.html")]
struct DonePage {
    slug: String,
    install_url: String,
}

pub async fn callback(
    State(state): State<AppState>,
    Query(q): Query<Callback>,
) -> Result<Html<String>, HttpError> {
    let setup = state.setup.as_ref().ok_or(HttpError::NotFound)?;
    if !setup.states.lock().expect("setup lock poisoned").remove(&q.state) {
        return Err(HttpError::BadRequest(
            "this setup link is unknown or was used already; start again at /setup".into(),
        ));
    }
    let app =
        setup.github.convert_manifest(&q.code).await.map_err(|e| HttpError::Internal(e.into()))?;
    let saved = SavedApp::from_new(app);
    let path = saved.save(&setup.data_dir)?;
    tracing::info!(app_id = saved.app_id, slug = saved.slug, path = %path.display(), "GitHub App created");
    let slug = saved.slug.clone();
    *state.webhook_secret.write().expect("secret lock poisoned") =
        Some(saved.webhook_secret.clone().into_bytes());
    let _ = setup.activate.send(saved);
    let install_url = format!("{}/apps/{slug}/installations/new", web_url(&setup.api_url));
    Ok(Html(DonePage { slug, install_url }.render().map_err(anyhow::Error::from)?))
}
