//! `tether::github`'s repository calls as the installation, against the fake.

use serde_json::json;
use tether::github::{DeploymentState, GitHubError, Permission, PullHead, Reaction};

use crate::github_app::{INSTALLATION, OTHER_REPO, REPO, SHA, app_setup};

#[tokio::test]
async fn a_file_is_read_at_a_commit() {
    let (fake, github) = app_setup().await;
    let text: Vec<u8> = (0..200u8).cycle().take(5000).collect();
    fake.set_file(REPO, SHA, ".github/tether.toml", &text);
    let read = github.file_at(INSTALLATION, REPO, ".github/tether.toml", SHA).await.unwrap();
    assert_eq!(read, Some(text));
    assert_eq!(fake.calls("GET /repos/octo/hello/contents/.github/tether.toml"), 1);
}

#[tokio::test]
async fn what_is_no_file_is_none() {
    let (fake, github) = app_setup().await;
    fake.set_file(REPO, SHA, "dir/tether.toml", b"x");
    let other_sha = "f".repeat(40);
    for (path, sha) in [("tether.toml", SHA), ("dir", SHA), ("dir/tether.toml", other_sha.as_str())]
    {
        assert_eq!(github.file_at(INSTALLATION, REPO, path, sha).await, Ok(None), "{path}");
    }
    // Impossible paths and SHAs are none without a request.
    let before = fake.total_calls();
    for (path, sha) in [("../x", SHA), ("dir/tether.toml", "main")] {
        assert_eq!(github.file_at(INSTALLATION, REPO, path, sha).await, Ok(None), "{path}");
    }
    assert_eq!(fake.total_calls(), before);
}

#[tokio::test]
async fn a_file_over_one_mebibyte_is_too_large() {
    let (fake, github) = app_setup().await;
    fake.set_file(REPO, SHA, "big", &vec![b'x'; 1024 * 1024 + 1]);
    fake.set_file(REPO, SHA, "edge", &vec![b'x'; 1024 * 1024]);
    assert_eq!(github.file_at(INSTALLATION, REPO, "big", SHA).await, Err(GitHubError::TooLarge));
    let edge = github.file_at(INSTALLATION, REPO, "edge", SHA).await.unwrap();
    assert_eq!(edge.map(|bytes| bytes.len()), Some(1024 * 1024));
}

#[tokio::test]
async fn a_repository_outside_the_installation_is_not_found() {
    let (fake, github) = app_setup().await;
    fake.set_file("someone/else", SHA, "tether.toml", b"x");
    let read = github.file_at(INSTALLATION, "someone/else", "tether.toml", SHA).await;
    assert_eq!(read, Ok(None));
    let refused = github.create_comment(INSTALLATION, "someone/else", 1, "hi").await;
    assert_eq!(refused, Err(GitHubError::NotFound));
}

#[tokio::test]
async fn reactions_are_added_once_each() {
    let (fake, github) = app_setup().await;
    for reaction in [Reaction::Eyes, Reaction::Eyes, Reaction::Rocket, Reaction::PlusOne] {
        github.add_reaction(INSTALLATION, REPO, 31, reaction).await.unwrap();
    }
    github.add_reaction(INSTALLATION, REPO, 32, Reaction::Confused).await.unwrap();
    assert_eq!(fake.reactions(REPO, 31), ["eyes", "rocket", "+1"]);
    assert_eq!(fake.reactions(REPO, 32), ["confused"]);
}

#[tokio::test]
async fn comments_land_on_their_issue() {
    let (fake, github) = app_setup().await;
    github.create_comment(INSTALLATION, REPO, 12, "**tether**: 2 checks").await.unwrap();
    github.create_comment(INSTALLATION, REPO, 12, "again").await.unwrap();
    assert_eq!(fake.comments(REPO, 12), ["**tether**: 2 checks", "again"]);
    assert!(fake.comments(REPO, 13).is_empty());
}

#[tokio::test]
async fn permissions_are_exact_roles() {
    let (fake, github) = app_setup().await;
    for (login, role) in [
        ("ada", "admin"),
        ("max", "maintain"),
        ("wes", "write"),
        ("tri", "triage"),
        ("rea", "read"),
    ] {
        fake.set_permission(REPO, login, role);
    }
    let expected = [
        ("ada", Permission::Admin, true),
        ("Max", Permission::Maintain, true),
        ("wes", Permission::Write, true),
        ("tri", Permission::Triage, false),
        ("rea", Permission::Read, false),
        ("nobody", Permission::None, false),
        ("not/a/login", Permission::None, false),
    ];
    for (login, permission, can_write) in expected {
        let got = github.permission(INSTALLATION, REPO, login).await.unwrap();
        assert_eq!((got, got.can_write()), (permission, can_write), "{login}");
    }
    assert_eq!(fake.calls("GET /repos/octo/hello/collaborators/nobody/permission"), 1);
}

#[tokio::test]
async fn a_pull_requests_head_is_read() {
    let (fake, github) = app_setup().await;
    fake.set_pull(REPO, 5, SHA);
    let head = github.pull_request_head(INSTALLATION, REPO, 5).await.unwrap();
    let expected = PullHead {
        sha: SHA.into(),
        clone_url: "https://github.com/octo/hello.git".into(),
        head_ref: "pr-5".into(),
    };
    assert_eq!(head, expected);
    assert_eq!(github.pull_request_head(INSTALLATION, REPO, 6).await, Err(GitHubError::NotFound));
}

#[tokio::test]
async fn a_deployment_and_its_statuses() {
    let (fake, github) = app_setup().await;
    let id = github.create_deployment(INSTALLATION, OTHER_REPO, SHA, "production").await.unwrap();
    for state in [DeploymentState::InProgress, DeploymentState::Success] {
        let log = "https://ci.example/runs/9";
        github.create_deployment_status(INSTALLATION, OTHER_REPO, id, state, log).await.unwrap();
    }
    let sent = json!({
        "ref": SHA,
        "environment": "production",
        "auto_merge": false,
        "required_contexts": [],
    });
    let states = vec!["in_progress".to_string(), "success".to_string()];
    assert_eq!(fake.deployments(OTHER_REPO), [(sent, states)]);
    let missing = github
        .create_deployment_status(INSTALLATION, OTHER_REPO, id + 100, DeploymentState::Error, "x")
        .await;
    assert_eq!(missing, Err(GitHubError::NotFound));
}
