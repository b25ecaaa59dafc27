//! GitHub's REST API through octocrab: the only module that may use it; its types stop here.

mod app;
mod checks;
mod deployments;
mod error;
mod login;
mod lookup;
mod oauth;
mod repos;
mod route;
mod user;
pub mod webhook;

use std::future::Future;

use crate::metrics;
use std::sync::Arc;
use std::time::Duration;

use octocrab::Octocrab;
use octocrab::service::middleware::retry::RetryConfig;
use serde::Serialize;
use serde::de::DeserializeOwned;

pub use app::{AppCredentials, NewApp};
pub use checks::{CheckConclusion, CheckOutputWrite, CheckRunWrite, CheckStatus};
pub use deployments::DeploymentState;
pub use error::GitHubError;
pub use login::valid as valid_login;
pub use lookup::UserLookups;
pub use oauth::{GitHubWeb, OAuthClient};
pub use repos::{Permission, PullHead, Reaction};
pub use user::ReadableRepo;

/// How long one call may take, connecting included, before GitHub counts as unavailable.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// GitHub's largest page. A user's keys are read in one request, so only this many count.
const KEYS_PER_PAGE_MAX: u32 = 100;

/// A client of GitHub's REST API (github.com or GitHub Enterprise). Cheap to clone.
#[derive(Clone)]
pub struct GitHub {
    /// Without credentials: public reads, and the manifest conversion.
    api: Octocrab,
    /// As the GitHub App, when there is one: its JWT client and the installation tokens.
    app: Option<Arc<app::App>>,
    request_timeout: Duration,
}

/// A GitHub account. `id` is what to store: a login can be renamed, and then given to someone
/// else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitHubUser {
    pub id: i64,
    pub login: String,
}

/// One entry of `GET /users/{login}/keys`.
#[derive(serde::Deserialize)]
struct KeyBody {
    key: String,
}

/// The fields of `GET /users/{login}` that we use (octocrab's model demands many more).
#[derive(serde::Deserialize)]
struct UserBody {
    id: i64,
    login: String,
}

#[derive(Serialize)]
struct PageQuery {
    per_page: u32,
}

impl GitHub {
    /// A client for the API at `api_url` (`https://api.github.com`, GitHub Enterprise's
    /// `https://HOST/api/v3`, or a test fake), without credentials: public reads and the
    /// manifest conversion only ([`GitHub::with_app`] for the rest). Must be called inside a
    /// tokio runtime: octocrab starts its request queue on it.
    pub fn new(api_url: &str) -> Result<GitHub, GitHubError> {
        GitHub::with_timeout(api_url, REQUEST_TIMEOUT)
    }

    fn with_timeout(api_url: &str, request_timeout: Duration) -> Result<GitHub, GitHubError> {
        GitHub::build(api_url, None, request_timeout)
    }

    /// The client, and the app's own when there are credentials: both share `api_url`'s checks
    /// and the one-request-per-call rule.
    fn build(
        api_url: &str,
        credentials: Option<AppCredentials>,
        request_timeout: Duration,
    ) -> Result<GitHub, GitHubError> {
        let base = api_base(api_url)?;
        // Without a runtime octocrab would panic rather than fail.
        tokio::runtime::Handle::try_current()
            .map_err(|_| GitHubError::Other("a GitHub client needs a tokio runtime".into()))?;
        let api = client(&base, None)?;
        let app = match credentials {
            Some(credentials) => {
                let (app_id, key) = app::signing_key(&credentials)?;
                Some(Arc::new(app::App::new(client(&base, Some((app_id, key)))?)))
            }
            None => None,
        };
        Ok(GitHub { api, app, request_timeout })
    }

    /// `GET /users/{login}/keys`: the user's public keys, as OpenSSH lines ("ssh-ed25519 AAAA…"),
    /// in GitHub's order. Only the first 100: one request per call, and nobody has more.
    pub async fn user_keys(&self, login: &str) -> Result<Vec<String>, GitHubError> {
        let login = login::valid(login).ok_or(GitHubError::NotFound)?;
        let page = PageQuery { per_page: KEYS_PER_PAGE_MAX };
        let keys: Vec<KeyBody> = self.get(&format!("/users/{login}/keys"), Some(&page)).await?;
        Ok(keys.into_iter().map(|key| key.key).collect())
    }

    /// `GET /users/{login}`. Logins are case-insensitive; the answer has GitHub's spelling.
    pub async fn user(&self, login: &str) -> Result<GitHubUser, GitHubError> {
        let login = login::valid(login).ok_or(GitHubError::NotFound)?;
        let user: UserBody = self.get(&format!("/users/{login}"), None::<&()>).await?;
        Ok(GitHubUser { id: user.id, login: user.login })
    }

    /// One GET of a route under the API URL, without credentials.
    async fn get<R, Q>(&self, route: &str, query: Option<&Q>) -> Result<R, GitHubError>
    where
        R: DeserializeOwned,
        Q: Serialize + ?Sized,
    {
        self.bounded(self.api.get::<R, _, _>(route, query)).await
    }

    /// One request, bounded in time as a whole: octocrab's own timeouts bound each connect and
    /// each read, not a server that answers slowly.
    async fn bounded<T>(
        &self,
        call: impl Future<Output = octocrab::Result<T>>,
    ) -> Result<T, GitHubError> {
        let result = match tokio::time::timeout(self.request_timeout, call).await {
            Ok(result) => result.map_err(error::from_octocrab),
            Err(_) => Err(GitHubError::Unavailable(format!(
                "no answer within {:?}",
                self.request_timeout
            ))),
        };
        let counter =
            if result.is_ok() { &metrics::GITHUB_CALLS_OK } else { &metrics::GITHUB_CALLS_FAILED };
        metrics::add(counter, 1);
        result
    }
}

/// An octocrab client for `base`, as the app when given its key. One request per call:
/// octocrab's default retries 5xx and connection errors three times at once, which turns every
/// login during an outage into four requests.
fn client(
    base: &str,
    app: Option<(octocrab::models::AppId, octocrab::jsonwebtoken::EncodingKey)>,
) -> Result<Octocrab, GitHubError> {
    let mut builder = Octocrab::builder()
        .base_uri(base)
        .map_err(error::from_octocrab)?
        .add_retry_config(RetryConfig::None);
    if let Some((app_id, key)) = app {
        builder = builder.app(app_id, key);
    }
    builder.build().map_err(error::from_octocrab)
}

/// Checks the API URL: http(s), a host, and at most a path (GitHub Enterprise's `/api/v3`).
fn api_base(api_url: &str) -> Result<String, GitHubError> {
    let invalid =
        |why: &str| GitHubError::Other(format!("invalid GitHub API URL {api_url:?}: {why}"));
    let url = url::Url::parse(api_url).map_err(|e| invalid(&e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid("not http or https"));
    }
    if url.host().is_none() || !url.username().is_empty() || url.password().is_some() {
        return Err(invalid("needs a host and no user"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(invalid("has a query or fragment"));
    }
    Ok(url.as_str().trim_end_matches('/').to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_urls_are_checked() {
        assert_eq!(api_base("https://api.github.com").unwrap(), "https://api.github.com");
        assert_eq!(
            api_base("https://ghe.example.com/api/v3/").unwrap(),
            "https://ghe.example.com/api/v3"
        );
        for bad in [
            "api.github.com",
            "ftp://api.github.com",
            "https://user:pw@api.github.com",
            "https://api.github.com/?x=1",
            "https://api.github.com/#x",
        ] {
            assert!(matches!(api_base(bad), Err(GitHubError::Other(_))), "{bad}");
        }
    }

    #[test]
    fn new_outside_a_runtime_is_an_error_not_a_panic() {
        assert!(matches!(GitHub::new("https://api.github.com"), Err(GitHubError::Other(_))));
    }

    /// A server that accepts the connection and never answers: the call gives up in time.
    #[tokio::test]
    async fn a_silent_server_is_unavailable_after_the_timeout() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let accepted = tokio::spawn(async move { listener.accept().await.unwrap().0 });
        let github = GitHub::with_timeout(&url, Duration::from_millis(300)).unwrap();
        let started = std::time::Instant::now();
        let result = github.user("octocat").await;
        assert!(
            matches!(&result, Err(GitHubError::Unavailable(m)) if m.contains("no answer")),
            "{result:?}"
        );
        assert!(started.elapsed() < Duration::from_secs(5));
        drop(accepted.await.unwrap());
    }
}
