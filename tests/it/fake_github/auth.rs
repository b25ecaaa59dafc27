//! The fake app: JWTs checked with its public key, installation tokens and what each may do.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::{Path, State as Extract};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Json, Response};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Value, json};

use super::schema::{self, Object, Reply};
use super::{Shared, State, message, token};

pub const APP_ID: u64 = 424_242;
/// Test-only keys, made once with `openssl genrsa -traditional 2048` (PKCS#1, as GitHub hands
/// them out): generating RSA keys at every start is slow in an unoptimized build.
pub const APP_KEY_PEM: &str = include_str!("../fixtures/app.pem");
const APP_PUBLIC_KEY_PEM: &str = include_str!("../fixtures/app.pub.pem");
/// Another app's key: a JWT it signs must be refused.
pub const FOREIGN_KEY_PEM: &str = include_str!("../fixtures/foreign.pem");
/// GitHub refuses a JWT that expires further ahead than this.
const JWT_LIFETIME_MAX: Duration = Duration::from_secs(10 * 60);
const TOKEN_FIELDS: [&str; 3] = ["repositories", "repository_ids", "permissions"];
const NOT_DECODED: &str = "A JSON web token could not be decoded";
const NOT_ACCESSIBLE: &str = "Resource not accessible by integration";

/// The installations and the tokens issued for them.
pub struct AppState {
    /// Repositories ("owner/name") by installation id.
    pub installations: BTreeMap<i64, BTreeSet<String>>,
    pub token_lifetime: Duration,
    pub manifest_codes: BTreeSet<String>,
    tokens: BTreeMap<String, Token>,
}

impl Default for AppState {
    fn default() -> AppState {
        AppState::new(Duration::ZERO)
    }
}

pub struct Token {
    installation: i64,
    expires_at: SystemTime,
    /// Repository names it is limited to, if any.
    repositories: Option<Vec<String>>,
    /// Permissions it is limited to (name → read/write), if any.
    permissions: Option<BTreeMap<String, String>>,
}

/// What an endpoint needs of a token: one of GitHub's app permissions, to read or to write.
pub struct Need {
    permission: &'static str,
    write: bool,
}

impl Need {
    pub const fn read(permission: &'static str) -> Need {
        Need { permission, write: false }
    }

    pub const fn write(permission: &'static str) -> Need {
        Need { permission, write: true }
    }
}

impl AppState {
    pub fn new(token_lifetime: Duration) -> AppState {
        AppState {
            installations: BTreeMap::new(),
            token_lifetime,
            manifest_codes: BTreeSet::new(),
            tokens: BTreeMap::new(),
        }
    }

    /// The token, if it was issued and has not expired.
    pub fn live(&self, token: &str) -> Option<&Token> {
        self.tokens.get(token).filter(|t| t.expires_at > SystemTime::now())
    }
}

/// Lets a request on `repo` through if its token is live, of an installation on `repo`, and
/// allowed `need` (a limited token only what it was limited to).
pub fn authorize(
    state: &State,
    headers: &HeaderMap,
    repo: &str,
    need: Need,
) -> Result<(), Response> {
    let Some(authorization) = headers.get(header::AUTHORIZATION) else {
        return Err(message(StatusCode::UNAUTHORIZED, "Requires authentication"));
    };
    let live = token(authorization).and_then(|t| state.app.live(t));
    let token = live.ok_or_else(|| message(StatusCode::UNAUTHORIZED, "Bad credentials"))?;
    let repos = state.app.installations.get(&token.installation);
    if !repos.is_some_and(|repos| repos.contains(repo)) {
        return Err(message(StatusCode::NOT_FOUND, "Not Found"));
    }
    let name = repo.split_once('/').map_or(repo, |(_, name)| name);
    let repo_ok = token.repositories.as_ref().is_none_or(|names| names.iter().any(|n| n == name));
    let granted = token.permissions.as_ref().is_none_or(|permissions| {
        let level = permissions.get(need.permission).map(String::as_str);
        level == Some("write") || (level == Some("read") && !need.write)
    });
    if !(repo_ok && granted) {
        return Err(message(StatusCode::FORBIDDEN, NOT_ACCESSIBLE));
    }
    Ok(())
}

/// Whether `route` ("METHOD /path") is one of the app's own, which take its JWT and nothing
/// else.
pub fn takes_jwt(route: &str) -> bool {
    route == "GET /app" || route == "GET /app/installations" || route.ends_with("/access_tokens")
}

/// `GET /app`, as the app: the app itself.
pub async fn app(headers: HeaderMap) -> Reply {
    verify_jwt(&headers)?;
    let app = json!({"id": APP_ID, "slug": "tether-fake", "name": "tether fake", "client_id": "Iv1.fake"});
    Ok(Json(app).into_response())
}

/// `GET /app/installations`, as the app: its installations, oldest first, as GitHub lists them
/// (one page: the fake never has more than a page).
pub async fn installations(Extract(state): Extract<Shared>, headers: HeaderMap) -> Reply {
    verify_jwt(&headers)?;
    let state = state.lock().unwrap();
    let installations = state.app.installations.iter().map(|(id, repos)| {
        let owner = repos.iter().next().and_then(|r| r.split_once('/')).map_or("octo", |(o, _)| o);
        json!({
            "id": id,
            "client_id": "Iv1.fake",
            "account": { "login": owner, "id": 9000 + id, "type": "Organization" },
            "repository_selection": "selected",
            "access_tokens_url": format!("{}/app/installations/{id}/access_tokens", state.url),
            "repositories_url": format!("{}/installation/repositories", state.url),
            "html_url": format!("https://github.com/organizations/{owner}/settings/installations/{id}"),
            "app_id": APP_ID,
            "app_slug": "tether-fake",
            "target_id": 9000 + id,
            "target_type": "Organization",
            "permissions": { "checks": "write", "contents": "read", "metadata": "read" },
            "events": ["push", "pull_request"],
            "created_at": "2024-01-01T00:00:00Z",
            "updated_at": "2024-01-01T00:00:00Z",
            "single_file_name": null,
            "has_multiple_single_files": false,
            "single_file_paths": [],
            "suspended_by": null,
            "suspended_at": null,
        })
    });
    Ok(Json(installations.collect::<Vec<_>>()).into_response())
}

/// `POST /app/installations/{id}/access_tokens`, as the app.
pub async fn access_tokens(
    Extract(state): Extract<Shared>,
    Path(installation): Path<i64>,
    headers: HeaderMap,
    body: Bytes,
) -> Reply {
    verify_jwt(&headers)?;
    let limits = schema::object(&body, true)?;
    schema::permitted(&limits, &TOKEN_FIELDS)?;
    let mut state = state.lock().unwrap();
    let expires_at = SystemTime::now() + state.app.token_lifetime;
    let Some(repos) = state.app.installations.get(&installation) else {
        return Err(message(StatusCode::NOT_FOUND, "Not Found"));
    };
    let token = limited_token(installation, repos, &limits, expires_at)?;
    let secret = format!("ghs_fake{installation}x{}", state.next_id());
    let answer = json!({
        "token": secret,
        "expires_at": humantime::format_rfc3339_seconds(expires_at).to_string(),
        "permissions": token.permissions.clone().unwrap_or_default(),
        "repository_selection": if token.repositories.is_some() { "selected" } else { "all" },
    });
    state.app.tokens.insert(secret, token);
    Ok((StatusCode::CREATED, Json(answer)).into_response())
}

/// The limits a token request asks for, if the installation can grant them.
fn limited_token(
    installation: i64,
    repos: &BTreeSet<String>,
    limits: &Object,
    expires_at: SystemTime,
) -> Result<Token, Response> {
    let repositories = schema::strings(limits, "repositories")?;
    let inaccessible = repositories
        .iter()
        .flatten()
        .any(|name| !repos.iter().any(|full| full.split_once('/').is_some_and(|(_, n)| n == name)));
    if inaccessible {
        let detail = "There is at least one repository that does not exist or is not \
            accessible to the parent installation.";
        return Err(message(StatusCode::UNPROCESSABLE_ENTITY, detail));
    }
    let permissions = match limits.get("permissions") {
        None => None,
        Some(Value::Object(map)) => Some(permission_levels(map)?),
        Some(_) => return Err(schema::invalid("For 'properties/permissions', not an object.")),
    };
    Ok(Token { installation, expires_at, repositories, permissions })
}

fn permission_levels(map: &Object) -> Result<BTreeMap<String, String>, Response> {
    let mut levels = BTreeMap::new();
    for key in map.keys() {
        let level = schema::one_of(map, key, &["read", "write"])?.unwrap_or_default();
        levels.insert(key.clone(), level.to_string());
    }
    Ok(levels)
}

/// An RS256 JWT of this app, signed with its key, expiring in the future but at most ten
/// minutes ahead.
fn verify_jwt(headers: &HeaderMap) -> Result<(), Response> {
    let refuse = |why: &str| message(StatusCode::UNAUTHORIZED, why);
    let jwt =
        headers.get(header::AUTHORIZATION).and_then(token).ok_or_else(|| refuse(NOT_DECODED))?;
    let key = DecodingKey::from_rsa_pem(APP_PUBLIC_KEY_PEM.as_bytes()).unwrap();
    let mut validation = Validation::new(Algorithm::RS256);
    validation.validate_exp = false;
    validation.required_spec_claims = HashSet::new();
    let claims = jsonwebtoken::decode::<Value>(jwt, &key, &validation)
        .map_err(|_| refuse(NOT_DECODED))?
        .claims;
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    let exp = claims["exp"].as_u64().ok_or_else(|| refuse(NOT_DECODED))?;
    if exp <= now {
        return Err(refuse(
            "'Expiration time' claim ('exp') must be a numeric value representing the future \
             time at which the assertion expires",
        ));
    }
    if exp > now + JWT_LIFETIME_MAX.as_secs() {
        return Err(refuse("'Expiration time' claim ('exp') is too far in the future"));
    }
    let issuer = &claims["iss"];
    if issuer.as_u64() != Some(APP_ID) && issuer.as_str() != Some(&APP_ID.to_string()) {
        return Err(refuse("'Issuer' claim ('iss') must be an Integer"));
    }
    Ok(())
}

/// `POST /app-manifests/{code}/conversions`: a registered code, once, becomes this app.
pub async fn convert_manifest(Extract(state): Extract<Shared>, Path(code): Path<String>) -> Reply {
    if !state.lock().unwrap().app.manifest_codes.remove(&code) {
        return Err(message(StatusCode::NOT_FOUND, "Not Found"));
    }
    let app = json!({
        "id": APP_ID,
        "slug": "tether-fake",
        "name": "tether fake",
        "client_id": "Iv1.fake",
        "client_secret": "fake-client-secret",
        "webhook_secret": "fake-webhook-secret",
        "pem": APP_KEY_PEM,
    });
    Ok((StatusCode::CREATED, Json(app)).into_response())
}
