//! Look-ups of users for SSH logins (their keys, their id), made as an installation of the
//! GitHub App when there is one: GitHub gives an installation 5,000 requests an hour, and an
//! address without credentials 60, which strangers trying logins would spend for everyone.
//! Without an app they are anonymous; with one, never: a look-up that cannot get an
//! installation token fails as unavailable.

use std::sync::RwLock;

use octocrab::Octocrab;
use serde::Deserialize;

use super::{GitHub, GitHubError, GitHubUser, KeyBody, PageQuery, UserBody, login};

/// GitHub's largest page. A user's keys are read in one request, so only this many count; the
/// app's installations are listed in one request too.
const PER_PAGE_MAX: u32 = 100;

/// The look-ups, and whom they are made as. Shared by the gateway; [`UserLookups::use_app`]
/// switches to an app created while the server runs.
pub struct UserLookups {
    github: RwLock<GitHub>,
    /// The installation whose token look-ups use, once known; forgotten when its token is
    /// refused, so that another is chosen.
    installation: tokio::sync::Mutex<Option<i64>>,
}

/// The fields of `GET /app/installations` that we use.
#[derive(Deserialize)]
struct InstallationBody {
    id: i64,
    suspended_at: Option<String>,
}

impl UserLookups {
    /// Look-ups made through `github`: as its app if it has one, else anonymously.
    pub fn new(github: GitHub) -> UserLookups {
        UserLookups { github: RwLock::new(github), installation: tokio::sync::Mutex::new(None) }
    }

    /// From now on, look-ups are made as `github`'s app.
    pub fn use_app(&self, github: GitHub) {
        *self.github.write().expect("lookup client lock poisoned") = github;
    }

    /// `GET /users/{login}/keys`: the user's public keys as OpenSSH lines, in GitHub's order
    /// (the first 100). `NotFound` only when GitHub says there is no such user.
    pub async fn keys(&self, login: &str) -> Result<Vec<String>, GitHubError> {
        let login = login::valid(login).ok_or(GitHubError::NotFound)?;
        let (github, client) = self.client().await?;
        let page = PageQuery { per_page: PER_PAGE_MAX };
        let route = format!("/users/{login}/keys");
        let keys: Vec<KeyBody> = github.bounded(client.get(route, Some(&page))).await?;
        Ok(keys.into_iter().map(|key| key.key).collect())
    }

    /// `GET /users/{login}`. Logins are case-insensitive; the answer has GitHub's spelling.
    pub async fn user(&self, login: &str) -> Result<GitHubUser, GitHubError> {
        let login = login::valid(login).ok_or(GitHubError::NotFound)?;
        let (github, client) = self.client().await?;
        let route = format!("/users/{login}");
        let user: UserBody = github.bounded(client.get(route, None::<&()>)).await?;
        Ok(GitHubUser { id: user.id, login: user.login })
    }

    /// The client to look up with: the installation's, or without credentials when there is
    /// no app. Failing to get a token is `Unavailable`, never `NotFound`, which would say the
    /// user does not exist.
    async fn client(&self) -> Result<(GitHub, Octocrab), GitHubError> {
        let github = self.github.read().expect("lookup client lock poisoned").clone();
        if github.app.is_none() {
            let anonymous = github.api.clone();
            return Ok((github, anonymous));
        }
        let id = {
            // Held while the installations are listed, so that concurrent logins list them once.
            let mut installation = self.installation.lock().await;
            match *installation {
                Some(id) => id,
                None => {
                    *installation.insert(first_installation(&github).await.map_err(unavailable)?)
                }
            }
        };
        match github.installation(id).await {
            Ok(client) => Ok((github, client)),
            Err(e) => {
                let mut installation = self.installation.lock().await;
                if *installation == Some(id) {
                    *installation = None;
                }
                Err(unavailable(e))
            }
        }
    }
}

/// The first installation of the app that is not suspended (`GET /app/installations`, as the
/// app).
async fn first_installation(github: &GitHub) -> Result<i64, GitHubError> {
    let jwt = github.app()?.jwt();
    let page = PageQuery { per_page: PER_PAGE_MAX };
    let installations: Vec<InstallationBody> =
        github.bounded(jwt.get("/app/installations", Some(&page))).await?;
    let usable = installations.into_iter().find(|i| i.suspended_at.is_none());
    usable.map(|i| i.id).ok_or_else(|| {
        GitHubError::Other("the GitHub App is not installed anywhere: install it first".into())
    })
}

fn unavailable(error: GitHubError) -> GitHubError {
    GitHubError::Unavailable(format!("no installation token to look users up with: {error}"))
}
