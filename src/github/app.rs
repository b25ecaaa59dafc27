//! The GitHub App: its JWT, installation tokens (cached), checkout tokens, the manifest flow.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use octocrab::Octocrab;
use octocrab::jsonwebtoken::EncodingKey;
use octocrab::models::AppId;
use serde::{Deserialize, Serialize};

use super::{GitHub, GitHubError, error, route};

/// A cached installation token is renewed this long before it expires, so that no request
/// leaves with a token that runs out on the way or in a long run of calls.
pub const TOKEN_RENEWAL_MARGIN: Duration = Duration::from_secs(5 * 60);

/// What identifies and signs for a GitHub App. The key never appears in `Debug`.
#[derive(Clone)]
pub struct AppCredentials {
    pub app_id: u64,
    /// The app's RSA private key, PEM (PKCS#1 as GitHub hands it out, or PKCS#8).
    pub private_key_pem: String,
}

impl fmt::Debug for AppCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppCredentials").field("app_id", &self.app_id).finish_non_exhaustive()
    }
}

/// A GitHub App just created through the manifest flow. Its key and secret never appear in
/// `Debug`.
#[derive(Clone, PartialEq, Eq, Deserialize)]
pub struct NewApp {
    pub id: u64,
    pub slug: String,
    pub pem: String,
    pub webhook_secret: String,
    /// The App's OAuth client, for "Sign in with GitHub".
    pub client_id: String,
    pub client_secret: String,
}

impl fmt::Debug for NewApp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = f.debug_struct("NewApp");
        out.field("id", &self.id).field("slug", &self.slug).finish_non_exhaustive()
    }
}

/// The app's side of a [`GitHub`]: a client that signs each request with a fresh JWT, and one
/// token slot per installation. A slot's async lock makes concurrent callers wait for one
/// token request instead of each making their own.
pub(super) struct App {
    jwt: Octocrab,
    tokens: Mutex<HashMap<i64, Arc<tokio::sync::Mutex<Option<Token>>>>>,
}

#[derive(Clone)]
struct Token {
    secret: String,
    expires_at: SystemTime,
}

/// The body of `POST /app/installations/{id}/access_tokens`: empty for the installation's
/// own token, limited for a checkout.
#[derive(Serialize, Default)]
struct TokenRequest<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    repositories: Option<[&'a str; 1]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    permissions: Option<ContentsPermission>,
}

#[derive(Serialize)]
struct ContentsPermission {
    contents: &'static str,
}

#[derive(Deserialize)]
struct TokenAnswer {
    token: String,
    expires_at: String,
}

impl App {
    pub(super) fn new(jwt: Octocrab) -> App {
        App { jwt, tokens: Mutex::new(HashMap::new()) }
    }

    /// The client that signs each request with the app's JWT, for the app's own endpoints.
    pub(super) fn jwt(&self) -> &Octocrab {
        &self.jwt
    }

    fn slot(&self, installation_id: i64) -> Arc<tokio::sync::Mutex<Option<Token>>> {
        let mut tokens = self.tokens.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        tokens.entry(installation_id).or_default().clone()
    }
}

/// The app id and its parsed key; a key that is not RSA PEM fails here, not at the first call.
pub(super) fn signing_key(
    credentials: &AppCredentials,
) -> Result<(AppId, EncodingKey), GitHubError> {
    let key = EncodingKey::from_rsa_pem(credentials.private_key_pem.as_bytes())
        .map_err(|e| GitHubError::Other(format!("the app's private key is not RSA PEM: {e}")))?;
    Ok((AppId(credentials.app_id), key))
}

/// Whether a token that expires at `expires_at` may still be handed out at `now`.
fn reusable(expires_at: SystemTime, now: SystemTime) -> bool {
    expires_at.duration_since(now).is_ok_and(|left| left > TOKEN_RENEWAL_MARGIN)
}

impl GitHub {
    /// A client that authenticates as the GitHub App (JWT, RS256) and its installations.
    pub fn with_app(api_url: &str, app: AppCredentials) -> Result<GitHub, GitHubError> {
        GitHub::build(api_url, Some(app), super::REQUEST_TIMEOUT)
    }

    /// An installation token, cached per installation and renewed [`TOKEN_RENEWAL_MARGIN`]
    /// before it expires. A cold cache costs one request before the caller's own.
    pub async fn installation_token(&self, installation_id: i64) -> Result<String, GitHubError> {
        let app = self.app()?;
        let slot = app.slot(installation_id);
        let mut cached = slot.lock().await;
        if let Some(token) = cached.as_ref().filter(|t| reusable(t.expires_at, SystemTime::now())) {
            return Ok(token.secret.clone());
        }
        let token = self.request_token(app, installation_id, &TokenRequest::default()).await?;
        *cached = Some(token.clone());
        Ok(token.secret)
    }

    /// A fresh token limited to one repository ("owner/name") and to reading its contents, for
    /// a runner's checkout. Not cached: each checkout gets its own.
    pub async fn checkout_token(
        &self,
        installation_id: i64,
        repo: &str,
    ) -> Result<String, GitHubError> {
        let (_, name) = route::repo(repo).ok_or(GitHubError::NotFound)?;
        let limits = TokenRequest {
            repositories: Some([name]),
            permissions: Some(ContentsPermission { contents: "read" }),
        };
        Ok(self.request_token(self.app()?, installation_id, &limits).await?.secret)
    }

    /// `GET /app`, as the app: its slug, for the setup page of a server configured by flags.
    pub async fn app_slug(&self) -> Result<String, GitHubError> {
        #[derive(Deserialize)]
        struct AppBody {
            slug: String,
        }
        let app: AppBody = self.bounded(self.app()?.jwt.get("/app", None::<&()>)).await?;
        Ok(app.slug)
    }

    /// App Manifest flow: `POST /app-manifests/{code}/conversions`, without credentials (the
    /// code is the credential). A code is good once, for an hour.
    pub async fn convert_manifest(&self, code: &str) -> Result<NewApp, GitHubError> {
        let code = route::manifest_code(code).ok_or(GitHubError::NotFound)?;
        let route = format!("/app-manifests/{code}/conversions");
        self.bounded(self.api.post::<(), NewApp>(route, None)).await
    }

    /// A client that acts as the installation. Its token is a plain bearer token on purpose:
    /// octocrab's own installation auth resends a request once after a 401, and we make one
    /// request per call.
    pub(super) async fn installation(&self, installation_id: i64) -> Result<Octocrab, GitHubError> {
        let token = self.installation_token(installation_id).await?;
        self.api.user_access_token(token).map_err(error::from_octocrab)
    }

    pub(super) fn app(&self) -> Result<&App, GitHubError> {
        self.app
            .as_deref()
            .ok_or_else(|| GitHubError::Other("no GitHub App credentials configured".into()))
    }

    async fn request_token(
        &self,
        app: &App,
        installation_id: i64,
        limits: &TokenRequest<'_>,
    ) -> Result<Token, GitHubError> {
        let route = format!("/app/installations/{installation_id}/access_tokens");
        let answer: TokenAnswer = self.bounded(app.jwt.post(route, Some(limits))).await?;
        let expires_at = humantime::parse_rfc3339_weak(&answer.expires_at).map_err(|e| {
            GitHubError::Other(format!("unexpected token expiry {:?}: {e}", answer.expires_at))
        })?;
        Ok(Token { secret: answer.token, expires_at })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_renewed_five_minutes_before_they_expire() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let minutes = |m: u64| Duration::from_secs(m * 60);
        assert!(reusable(now + minutes(60), now));
        assert!(reusable(now + minutes(5) + Duration::from_secs(1), now));
        assert!(!reusable(now + minutes(5), now));
        assert!(!reusable(now + minutes(4), now));
        assert!(!reusable(now, now));
        assert!(!reusable(now - minutes(1), now));
    }

    #[test]
    fn token_requests_send_only_their_limits() {
        let full = serde_json::to_string(&TokenRequest::default()).unwrap();
        assert_eq!(full, "{}");
        let checkout = TokenRequest {
            repositories: Some(["hello"]),
            permissions: Some(ContentsPermission { contents: "read" }),
        };
        assert_eq!(
            serde_json::to_string(&checkout).unwrap(),
            r#"{"repositories":["hello"],"permissions":{"contents":"read"}}"#
        );
    }

    #[test]
    fn debug_hides_keys_and_secrets() {
        let credentials = AppCredentials { app_id: 7, private_key_pem: "PRIVATE".into() };
        assert_eq!(format!("{credentials:?}"), "AppCredentials { app_id: 7, .. }");
        let app = NewApp {
            id: 7,
            slug: "tether".into(),
            pem: "PRIVATE".into(),
            webhook_secret: "SECRET".into(),
            client_id: "Iv1.x".into(),
            client_secret: "CLIENT-SECRET".into(),
        };
        let shown = format!("{app:?}");
        assert!(!shown.contains("PRIVATE") && !shown.contains("SECRET"), "{shown}");
        assert!(!shown.contains("CLIENT-SECRET"), "{shown}");
    }

    #[test]
    fn a_key_that_is_not_rsa_pem_is_refused() {
        let credentials = AppCredentials { app_id: 7, private_key_pem: "not a key".into() };
        assert!(matches!(signing_key(&credentials), Err(GitHubError::Other(_))));
    }
}
