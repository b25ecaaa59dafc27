//! Sign in with GitHub: the GitHub App's user authorization (the OAuth web flow) on GitHub's
//! web host: where to send the person, and the exchange of the code they come back with.

use std::fmt;
use std::time::Duration;

use http_body_util::{BodyExt, Limited};
use octocrab::Octocrab;
use serde::{Deserialize, Serialize};

use super::{GitHubError, REQUEST_TIMEOUT, api_base, client, error};

/// The App's OAuth client: its id, and the secret that exchanges codes. The secret never
/// appears in `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct OAuthClient {
    pub client_id: String,
    pub client_secret: String,
}

impl fmt::Debug for OAuthClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OAuthClient").field("client_id", &self.client_id).finish_non_exhaustive()
    }
}

/// The most bytes of an answer from the token endpoint that are read.
const TOKEN_ANSWER_MAX_BYTES: usize = 64 * 1024;
/// Longer than any code GitHub hands out.
const CODE_MAX_CHARS: usize = 100;

/// GitHub's web host (`https://github.com`, a GitHub Enterprise host, or a test fake), where
/// people authorize and codes are exchanged.
#[derive(Clone)]
pub struct GitHubWeb {
    url: String,
    web: Octocrab,
    request_timeout: Duration,
}

#[derive(Serialize)]
struct ExchangeBody<'a> {
    client_id: &'a str,
    client_secret: &'a str,
    code: &'a str,
    redirect_uri: &'a str,
}

/// The token endpoint answers 200 either way: a token, or an error and why.
#[derive(Deserialize)]
struct ExchangeAnswer {
    access_token: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

impl GitHubWeb {
    /// A client of the web host at `web_url`. Must be called inside a tokio runtime.
    pub fn new(web_url: &str) -> Result<GitHubWeb, GitHubError> {
        let url = api_base(web_url)?;
        tokio::runtime::Handle::try_current()
            .map_err(|_| GitHubError::Other("a GitHub client needs a tokio runtime".into()))?;
        let web = client(&url, None)?;
        Ok(GitHubWeb { url, web, request_timeout: REQUEST_TIMEOUT })
    }

    /// The web host, without a trailing slash.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Where to send a person to sign in: `{web}/login/oauth/authorize` with the App's client
    /// id, where to come back, and `state`.
    pub fn authorize_url(&self, oauth: &OAuthClient, redirect_uri: &str, state: &str) -> String {
        let mut url = url::Url::parse(&format!("{}/login/oauth/authorize", self.url))
            .expect("the web URL was checked");
        url.query_pairs_mut()
            .append_pair("client_id", &oauth.client_id)
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("state", state);
        url.into()
    }

    /// `POST {web}/login/oauth/access_token` (`Accept: application/json`): the person's user
    /// token for `code`. A code GitHub refuses (used, expired, not ours) is `Unauthorized`.
    pub async fn exchange_code(
        &self,
        oauth: &OAuthClient,
        code: &str,
        redirect_uri: &str,
    ) -> Result<String, GitHubError> {
        let code_ok = !code.is_empty()
            && code.len() <= CODE_MAX_CHARS
            && code.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'));
        if !code_ok {
            return Err(GitHubError::Unauthorized("not a code GitHub hands out".into()));
        }
        let body = ExchangeBody {
            client_id: &oauth.client_id,
            client_secret: &oauth.client_secret,
            code,
            redirect_uri,
        };
        let answer = tokio::time::timeout(self.request_timeout, self.post_token(&body))
            .await
            .map_err(|_| {
                GitHubError::Unavailable(format!("no answer within {:?}", self.request_timeout))
            })??;
        match answer {
            ExchangeAnswer { access_token: Some(token), error: None, .. } => Ok(token),
            ExchangeAnswer { error, error_description, .. } => {
                let why = error_description.or(error).unwrap_or_else(|| "no token".into());
                Err(GitHubError::Unauthorized(why))
            }
        }
    }

    async fn post_token(&self, body: &ExchangeBody<'_>) -> Result<ExchangeAnswer, GitHubError> {
        let request = http::Request::builder()
            .method(http::Method::POST)
            .uri(format!("{}/login/oauth/access_token", self.url))
            .header(http::header::ACCEPT, "application/json");
        let request = self.web.build_request(request, Some(body)).map_err(error::from_octocrab)?;
        let response = self.web.execute(request).await.map_err(error::from_octocrab)?;
        let status = response.status().as_u16();
        let limited = Limited::new(response.into_body(), TOKEN_ANSWER_MAX_BYTES);
        let bytes = match limited.collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(e) => return Err(GitHubError::Unavailable(format!("reading the answer: {e}"))),
        };
        if status != 200 {
            return Err(error::from_status(status, false, &String::from_utf8_lossy(&bytes)));
        }
        serde_json::from_slice(&bytes)
            .map_err(|e| GitHubError::Other(format!("unexpected token answer: {e}")))
    }
}
