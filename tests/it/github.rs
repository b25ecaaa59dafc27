//! `tether::github` against the fake GitHub, and the fake's own strictness over raw HTTP.

use serde_json::Value;
use tether::github::{GitHub, GitHubError, GitHubUser};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::fake_github::FakeGitHub;

/// GitHub answers keys without their comments.
const ALICE_KEYS: [&str; 3] = [
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl",
    "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC7bWxR",
    "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTY",
];

async fn fake_with_alice() -> (FakeGitHub, GitHub) {
    let fake = FakeGitHub::start().await;
    fake.add_user("alice", 1001, &ALICE_KEYS);
    let github = GitHub::new(&fake.url).unwrap();
    (fake, github)
}

#[tokio::test]
async fn keys_come_back_in_order_from_one_request() {
    let (fake, github) = fake_with_alice().await;
    assert_eq!(github.user_keys("alice").await.unwrap(), ALICE_KEYS);
    assert_eq!(fake.calls("GET /users/alice/keys"), 1);
}

/// GitHub pages 30 keys by default; asking for a full page gets them all.
#[tokio::test]
async fn more_keys_than_a_default_page() {
    let fake = FakeGitHub::start().await;
    let keys: Vec<String> = (0..35).map(|n| format!("ssh-ed25519 AAAAkey{n}")).collect();
    fake.add_user("many", 7, &keys.iter().map(String::as_str).collect::<Vec<_>>());
    let github = GitHub::new(&fake.url).unwrap();
    assert_eq!(github.user_keys("many").await.unwrap(), keys);
    assert_eq!(fake.total_calls(), 1);
}

#[tokio::test]
async fn user_has_its_id_and_githubs_spelling() {
    let fake = FakeGitHub::start().await;
    fake.add_user("Alice-B", 583231, &[]);
    let github = GitHub::new(&fake.url).unwrap();
    let expected = GitHubUser { id: 583231, login: "Alice-B".into() };
    assert_eq!(github.user("aLiCe-b").await.unwrap(), expected);
    assert_eq!(fake.calls("GET /users/aLiCe-b"), 1);
    assert_eq!(github.user_keys("ALICE-B").await.unwrap(), Vec::<String>::new());
}

#[tokio::test]
async fn unknown_login_is_not_found() {
    let (fake, github) = fake_with_alice().await;
    assert_eq!(github.user("bob").await, Err(GitHubError::NotFound));
    assert_eq!(github.user_keys("bob").await, Err(GitHubError::NotFound));
    assert_eq!(fake.calls("GET /users/bob"), 1);
    assert_eq!(fake.calls("GET /users/bob/keys"), 1);
}

#[tokio::test]
async fn invalid_login_is_not_found_without_a_request() {
    let (fake, github) = fake_with_alice().await;
    let too_long = "a".repeat(40);
    for login in ["", "alice/keys", "../alice", "alice?x", "al%69ce", "-alice", "al--ice"] {
        assert_eq!(github.user(login).await, Err(GitHubError::NotFound), "{login:?}");
        assert_eq!(github.user_keys(login).await, Err(GitHubError::NotFound));
    }
    assert_eq!(github.user(&too_long).await, Err(GitHubError::NotFound));
    assert_eq!(fake.total_calls(), 0);
}

/// No retries: a login during an outage must not multiply requests to a failing GitHub.
#[tokio::test]
async fn outage_is_unavailable_after_exactly_one_request() {
    let (fake, github) = fake_with_alice().await;
    fake.set_down(true);
    let keys = github.user_keys("alice").await;
    assert!(matches!(keys, Err(GitHubError::Unavailable(_))), "{keys:?}");
    let user = github.user("alice").await;
    assert!(matches!(user, Err(GitHubError::Unavailable(_))), "{user:?}");
    assert_eq!(fake.calls("GET /users/alice/keys"), 1);
    assert_eq!(fake.calls("GET /users/alice"), 1);
    fake.set_down(false);
    assert_eq!(github.user_keys("alice").await.unwrap(), ALICE_KEYS);
}

#[tokio::test]
async fn unreachable_github_is_unavailable() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let github = GitHub::new(&url).unwrap();
    let user = github.user("alice").await;
    assert!(matches!(user, Err(GitHubError::Unavailable(_))), "{user:?}");
}

/// GitHub Enterprise serves the API under `/api/v3`; the path must be kept.
#[tokio::test]
async fn enterprise_api_path_is_kept() {
    let (fake, _) = fake_with_alice().await;
    let github = GitHub::new(&format!("{}/api/v3", fake.url)).unwrap();
    assert_eq!(github.user("alice").await, Err(GitHubError::NotFound));
    assert_eq!(fake.calls("GET /api/v3/users/alice"), 1);
    assert_eq!(fake.calls("GET /users/alice"), 0);
}

#[tokio::test]
async fn fake_refuses_an_unknown_token_like_github() {
    let (fake, _) = fake_with_alice().await;
    fake.add_token("ghs_good");
    let agent = "User-Agent: tether-test";
    let (status, body) =
        raw_get(&fake.url, "/users/alice", &[agent, "Authorization: Bearer ghs_bad"]).await;
    assert_eq!(status, 401);
    assert_eq!(json(&body)["message"], "Bad credentials");
    for good in ["Authorization: Bearer ghs_good", "Authorization: token ghs_good"] {
        let (status, body) = raw_get(&fake.url, "/users/alice", &[agent, good]).await;
        assert_eq!(status, 200, "{good}");
        assert_eq!(json(&body)["login"], "alice");
    }
    assert_eq!(fake.calls("GET /users/alice"), 3);
}

#[tokio::test]
async fn fake_forbids_a_request_without_user_agent_like_github() {
    let (fake, _) = fake_with_alice().await;
    let (status, body) = raw_get(&fake.url, "/users/alice", &[]).await;
    assert_eq!(status, 403);
    assert!(body.contains("User-Agent header"), "{body}");
    let (status, _) = raw_get(&fake.url, "/users/alice", &["User-Agent: tether-test"]).await;
    assert_eq!(status, 200);
    assert_eq!(fake.calls("GET /users/alice"), 2);
}

#[tokio::test]
async fn fake_pages_keys_like_github() {
    let fake = FakeGitHub::start().await;
    let keys: Vec<String> = (0..35).map(|n| format!("ssh-ed25519 AAAAkey{n}")).collect();
    fake.add_user("many", 7, &keys.iter().map(String::as_str).collect::<Vec<_>>());
    let agent = ["User-Agent: tether-test"];
    let (status, body) = raw_get(&fake.url, "/users/many/keys", &agent).await;
    assert_eq!(status, 200);
    let page = json(&body);
    assert_eq!(page.as_array().unwrap().len(), 30);
    assert_eq!(page[0]["key"], "ssh-ed25519 AAAAkey0");
    assert!(page[0]["id"].is_i64());
    let (_, body) = raw_get(&fake.url, "/users/many/keys?page=2", &agent).await;
    assert_eq!(json(&body)[0]["key"], "ssh-ed25519 AAAAkey30");
}

/// One hand-written HTTP/1.1 GET, for what our client would never send; returns status and body.
async fn raw_get(url: &str, path: &str, headers: &[&str]) -> (u16, String) {
    let addr = url.strip_prefix("http://").unwrap();
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for line in headers {
        request.push_str(line);
        request.push_str("\r\n");
    }
    request.push_str("\r\n");
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
