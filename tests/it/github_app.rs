//! `tether::github` as the GitHub App against the fake: JWTs, installation tokens and their
//! cache, check runs, and the refusals the fake must make like GitHub.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use tether::github::{
    AppCredentials, CheckConclusion, CheckOutputWrite, CheckRunWrite, CheckStatus, GitHub,
    GitHubError,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::fake_github::{FOREIGN_KEY_PEM, FakeGitHub};

pub const INSTALLATION: i64 = 77;
pub const REPO: &str = "octo/hello";
pub const OTHER_REPO: &str = "octo/other";
pub const SHA: &str = "0123456789abcdef0123456789abcdef01234567";
const TOKENS: &str = "POST /app/installations/77/access_tokens";
const CHECK_RUNS: &str = "POST /repos/octo/hello/check-runs";
const AGENT: &str = "User-Agent: tether-test";

/// A fake with the app installed on two repositories, and a client as that app.
pub async fn app_setup() -> (FakeGitHub, GitHub) {
    let fake = FakeGitHub::start().await;
    fake.add_installation(INSTALLATION, &[REPO, OTHER_REPO]);
    let (app_id, private_key_pem) = fake.app_credentials();
    let github = GitHub::with_app(&fake.url, AppCredentials { app_id, private_key_pem }).unwrap();
    (fake, github)
}

fn queued() -> CheckRunWrite {
    CheckRunWrite {
        name: "test".into(),
        head_sha: SHA.into(),
        external_id: "run-1".into(),
        details_url: "https://ci.example/runs/1".into(),
        status: CheckStatus::Queued,
        started_at: None,
        conclusion: None,
        completed_at: None,
        output: None,
        actions: None,
    }
}

fn completed(summary: String) -> CheckRunWrite {
    let started = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    CheckRunWrite {
        status: CheckStatus::Completed,
        started_at: Some(started),
        conclusion: Some(CheckConclusion::Failure),
        completed_at: Some(started + Duration::from_secs(90)),
        output: Some(CheckOutputWrite { title: "1 failed".into(), summary, text: None }),
        ..queued()
    }
}

#[tokio::test]
async fn a_check_run_is_created_then_completed_with_one_token() {
    let (fake, github) = app_setup().await;
    let id = github.create_check_run(INSTALLATION, REPO, &queued()).await.unwrap();
    let done = completed("it broke".into());
    github.update_check_run(INSTALLATION, REPO, id, &done).await.unwrap();
    let runs = fake.check_runs(REPO);
    assert_eq!(runs.len(), 1);
    let run = &runs[0];
    assert_eq!(
        (run["id"].as_i64(), &run["name"], &run["head_sha"]),
        (Some(id), &json!("test"), &json!(SHA))
    );
    assert_eq!((&run["status"], &run["conclusion"]), (&json!("completed"), &json!("failure")));
    assert_eq!(run["started_at"], "2023-11-14T22:13:20Z");
    assert_eq!(run["completed_at"], "2023-11-14T22:14:50Z");
    assert_eq!(run["output"], json!({"title": "1 failed", "summary": "it broke"}));
    assert_eq!(fake.calls(TOKENS), 1);
    assert_eq!(fake.calls(&format!("PATCH /repos/octo/hello/check-runs/{id}")), 1);
}

#[tokio::test]
async fn the_installation_token_is_cached() {
    let (fake, github) = app_setup().await;
    let first = github.installation_token(INSTALLATION).await.unwrap();
    let second = github.installation_token(INSTALLATION).await.unwrap();
    assert!(first.starts_with("ghs_"), "{first}");
    assert_eq!(first, second);
    assert_eq!(fake.calls(TOKENS), 1);
}

/// A token with less than the renewal margin (5 minutes) left is not handed out again.
#[tokio::test]
async fn a_token_close_to_expiry_is_renewed() {
    let (fake, github) = app_setup().await;
    fake.set_token_lifetime(Duration::from_secs(4 * 60));
    let first = github.installation_token(INSTALLATION).await.unwrap();
    let second = github.installation_token(INSTALLATION).await.unwrap();
    assert_ne!(first, second);
    assert_eq!(fake.calls(TOKENS), 2);
}

/// octocrab's own installation auth would resend after a 401; ours makes one request.
#[tokio::test]
async fn a_refused_token_costs_one_request_not_a_resend() {
    let (fake, github) = app_setup().await;
    fake.set_token_lifetime(Duration::ZERO);
    let refused = github.create_check_run(INSTALLATION, REPO, &queued()).await;
    assert!(
        matches!(&refused, Err(GitHubError::Unauthorized(m)) if m == "Bad credentials"),
        "{refused:?}"
    );
    assert_eq!((fake.calls(TOKENS), fake.calls(CHECK_RUNS)), (1, 1));
}

#[tokio::test]
async fn a_502_is_unavailable_after_one_request() {
    let (fake, github) = app_setup().await;
    fake.fail_next(CHECK_RUNS, 1);
    let failed = github.create_check_run(INSTALLATION, REPO, &queued()).await;
    assert!(matches!(failed, Err(GitHubError::Unavailable(_))), "{failed:?}");
    assert_eq!(fake.calls(CHECK_RUNS), 1);
    github.create_check_run(INSTALLATION, REPO, &queued()).await.unwrap();
    assert_eq!(fake.check_runs(REPO).len(), 1);
}

#[tokio::test]
async fn an_over_long_summary_is_refused_like_github() {
    let (fake, github) = app_setup().await;
    let refused = github.create_check_run(INSTALLATION, REPO, &completed("x".repeat(65_536))).await;
    let Err(GitHubError::Other(message)) = refused else { panic!("{refused:?}") };
    assert!(message.contains("HTTP 422") && message.contains("65535"), "{message}");
    github.create_check_run(INSTALLATION, REPO, &completed("x".repeat(65_535))).await.unwrap();
    assert_eq!(fake.check_runs(REPO).len(), 1);
}

#[tokio::test]
async fn the_fake_takes_actions_within_githubs_limits_only() {
    let (fake, github) = app_setup().await;
    let cancel = tether::core::report::CANCEL_ACTION;
    let with = CheckRunWrite { actions: Some(vec![cancel]), ..queued() };
    let id = github.create_check_run(INSTALLATION, REPO, &with).await.unwrap();
    assert_eq!(fake.check_runs(REPO)[0]["actions"][0]["identifier"], "cancel");
    let removed = CheckRunWrite { actions: Some(vec![]), ..queued() };
    github.update_check_run(INSTALLATION, REPO, id, &removed).await.unwrap();
    assert_eq!(fake.check_runs(REPO)[0]["actions"], json!([]));
    let long = tether::core::report::CheckAction { label: "a label of over twenty", ..cancel };
    let four = CheckRunWrite { actions: Some(vec![cancel; 4]), ..queued() };
    let too_long = CheckRunWrite { actions: Some(vec![long]), ..queued() };
    for refused in [four, too_long] {
        let answer = github.create_check_run(INSTALLATION, REPO, &refused).await;
        assert!(
            matches!(&answer, Err(GitHubError::Other(m)) if m.contains("HTTP 422")),
            "{answer:?}"
        );
    }
    assert_eq!(fake.check_runs(REPO).len(), 1);
}

#[tokio::test]
async fn a_completed_run_without_conclusion_is_refused() {
    let (_fake, github) = app_setup().await;
    let run = CheckRunWrite { status: CheckStatus::Completed, ..queued() };
    let refused = github.create_check_run(INSTALLATION, REPO, &run).await;
    assert!(
        matches!(&refused, Err(GitHubError::Other(m)) if m.contains("conclusion")),
        "{refused:?}"
    );
}

#[tokio::test]
async fn a_checkout_token_reads_its_repository_and_nothing_else() {
    let (fake, github) = app_setup().await;
    fake.set_file(REPO, SHA, "tether.toml", b"x");
    fake.set_file(OTHER_REPO, SHA, "tether.toml", b"x");
    let token = github.checkout_token(INSTALLATION, REPO).await.unwrap();
    assert_eq!(fake.calls(TOKENS), 1);
    let auth = format!("Authorization: token {token}");
    let contents = |repo: &str| format!("/repos/{repo}/contents/tether.toml?ref={SHA}");
    assert_eq!(raw(&fake.url, "GET", &contents(REPO), &auth, None).await.0, 200);
    let (status, body) = raw(&fake.url, "GET", &contents(OTHER_REPO), &auth, None).await;
    assert_eq!(
        (status, json(&body)["message"].clone()),
        (403, json!("Resource not accessible by integration"))
    );
    let run = json!({"name": "x", "head_sha": SHA}).to_string();
    let path = "/repos/octo/hello/check-runs";
    assert_eq!(raw(&fake.url, "POST", path, &auth, Some(&run)).await.0, 403);
    assert!(fake.check_runs(REPO).is_empty());
}

#[tokio::test]
async fn fake_refuses_unknown_fields_like_github() {
    let (fake, github) = app_setup().await;
    let token = github.installation_token(INSTALLATION).await.unwrap();
    let auth = format!("Authorization: Bearer {token}");
    let path = "/repos/octo/hello/check-runs";
    let run = json!({"name": "x", "head_sha": SHA, "colour": "red"}).to_string();
    let (status, body) = raw(&fake.url, "POST", path, &auth, Some(&run)).await;
    assert_eq!(status, 422);
    assert_eq!(json(&body)["message"], "Invalid request.\n\n\"colour\" is not a permitted key.");
    let run = json!({"name": "x", "head_sha": SHA, "status": "waiting"}).to_string();
    assert_eq!(raw(&fake.url, "POST", path, &auth, Some(&run)).await.0, 422);
    let run = json!({"head_sha": SHA}).to_string();
    let (status, body) = raw(&fake.url, "POST", path, &auth, Some(&run)).await;
    assert_eq!(
        (status, json(&body)["message"].clone()),
        (422, json!("Invalid request.\n\n\"name\" wasn't supplied."))
    );
    let (status, _) = raw(&fake.url, "POST", path, "X-No: auth", Some(&run)).await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn an_expired_far_or_foreign_jwt_is_refused() {
    let (fake, _github) = app_setup().await;
    let (app_id, pem) = fake.app_credentials();
    let path = "/app/installations/77/access_tokens";
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
    for (key, exp, expected) in [
        (pem.as_str(), now + 540, 201),
        (pem.as_str(), now - 10, 401),
        (pem.as_str(), now + 20 * 60, 401),
        (FOREIGN_KEY_PEM, now + 540, 401),
    ] {
        let claims = json!({"iss": app_id, "iat": now - 60, "exp": exp});
        let key = EncodingKey::from_rsa_pem(key.as_bytes()).unwrap();
        let jwt = jsonwebtoken::encode(&Header::new(Algorithm::RS256), &claims, &key).unwrap();
        let auth = format!("Authorization: Bearer {jwt}");
        assert_eq!(raw(&fake.url, "POST", path, &auth, None).await.0, expected, "exp {exp}");
    }
}

#[tokio::test]
async fn another_apps_key_gets_no_token() {
    let fake = FakeGitHub::start().await;
    fake.add_installation(INSTALLATION, &[REPO]);
    let (app_id, _) = fake.app_credentials();
    let foreign = AppCredentials { app_id, private_key_pem: FOREIGN_KEY_PEM.into() };
    let github = GitHub::with_app(&fake.url, foreign).unwrap();
    let refused = github.installation_token(INSTALLATION).await;
    assert!(matches!(refused, Err(GitHubError::Unauthorized(_))), "{refused:?}");
    let (_, github) = app_setup().await;
    assert_eq!(github.installation_token(4040).await, Err(GitHubError::NotFound));
}

#[tokio::test]
async fn without_app_credentials_app_calls_fail_without_a_request() {
    let fake = FakeGitHub::start().await;
    let github = GitHub::new(&fake.url).unwrap();
    let refused = github.create_check_run(INSTALLATION, REPO, &queued()).await;
    assert!(matches!(refused, Err(GitHubError::Other(_))), "{refused:?}");
    assert_eq!(fake.total_calls(), 0);
}

#[tokio::test]
async fn a_manifest_code_becomes_the_app_once() {
    let (fake, github) = app_setup().await;
    fake.register_manifest_code("c0de");
    let app = github.convert_manifest("c0de").await.unwrap();
    assert_eq!((app.id, app.pem.clone()), fake.app_credentials());
    assert_eq!(
        (app.slug.as_str(), app.webhook_secret.as_str()),
        ("tether-fake", "fake-webhook-secret")
    );
    assert_eq!(github.convert_manifest("c0de").await.unwrap_err(), GitHubError::NotFound);
    let credentials = AppCredentials { app_id: app.id, private_key_pem: app.pem };
    let github = GitHub::with_app(&fake.url, credentials).unwrap();
    github.installation_token(INSTALLATION).await.unwrap();
}

/// One hand-written HTTP/1.1 request, for what our client would never send: status and body.
pub async fn raw(
    url: &str,
    method: &str,
    path: &str,
    header: &str,
    body: Option<&str>,
) -> (u16, String) {
    let addr = url.strip_prefix("http://").unwrap();
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let body = body.unwrap_or_default();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{AGENT}\r\n{header}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let (head, body) = response.split_once("\r\n\r\n").expect("an HTTP response");
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok());
    (status.expect("a status line"), body.to_string())
}

fn json(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
}
