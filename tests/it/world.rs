//! One world for the end-to-end tests of webhooks: the strict fake GitHub with the app installed
//! on `octo/repo`, a real `tether serve`, a git repository standing in for GitHub's, users with
//! SSH keys, their runners behind real `ssh -R`, and webhook payloads made from the recorded ones.

use std::time::Duration;

use serde_json::Value;

use crate::fake_github::FakeGitHub;
use crate::harness::*;
use crate::serve::*;

pub const SECRET: &str = "webhook-secret";
pub const INSTALLATION: i64 = 1;
pub const REPO: &str = "octo/repo";
/// The users of the world, with their GitHub ids.
pub const USERS: [(&str, i64); 2] = [("alice", 1001), ("bob", 1002)];

pub struct World {
    pub github: FakeGitHub,
    pub server: TetherServer,
    pub repo: Repo,
    keys: Vec<SshKey>,
    pub dir: tempfile::TempDir,
}

/// A connected runner: the process and its `ssh -R`.
pub struct Connected {
    pub runner: Runner,
    pub ssh: tokio::process::Child,
}

impl World {
    pub async fn new() -> World {
        World::with_flags(&[]).await
    }

    /// The app's flags, these extra ones, and the external addresses.
    pub async fn with_flags(extra: &[&str]) -> World {
        World::with_process(extra, ProcessSetup::default()).await
    }

    /// As [`World::with_flags`], with the server's process set up as `process` says.
    pub async fn with_process(extra: &[&str], process: ProcessSetup) -> World {
        let github = FakeGitHub::start().await;
        github.add_installation(INSTALLATION, &[REPO]);
        World::with_app(github, &EXTERNAL_FLAGS, extra, process).await
    }

    /// A world whose `octo/repo` is private on GitHub, so in its webhooks too.
    pub async fn private() -> World {
        World::private_with(&EXTERNAL_FLAGS, &[]).await
    }

    /// A private world whose server has these extra flags.
    pub async fn private_with_flags(extra: &[&str]) -> World {
        World::private_with(&EXTERNAL_FLAGS, extra).await
    }

    /// A private world whose server's external URL is its own loopback address, as a browser
    /// must reach it to sign in.
    pub async fn private_local() -> World {
        World::private_with(&EXTERNAL_FLAGS[2..], &[]).await
    }

    async fn private_with(external: &[&str], extra: &[&str]) -> World {
        let github = FakeGitHub::start().await;
        github.add_installation(INSTALLATION, &[REPO]);
        github.set_private(REPO);
        World::with_app(github, external, extra, ProcessSetup::default()).await
    }

    /// The app's flags, its OAuth client's, `external`'s and `extra`.
    async fn with_app(
        github: FakeGitHub,
        external: &[&str],
        extra: &[&str],
        process: ProcessSetup,
    ) -> World {
        let dir = tempfile::tempdir().unwrap();
        let (app_id, pem) = github.app_credentials();
        let key = dir.path().join("app.pem");
        std::fs::write(&key, pem).unwrap();
        let app_id = app_id.to_string();
        let mut flags = vec![
            "--github-app-id",
            &app_id,
            "--github-app-key",
            key.to_str().unwrap(),
            "--github-webhook-secret",
            SECRET,
            "--github-client-id",
            crate::fake_github::CLIENT_ID,
            "--github-client-secret",
            crate::fake_github::CLIENT_SECRET,
        ];
        flags.extend_from_slice(external);
        flags.extend_from_slice(extra);
        World::start(github, dir, &flags, process).await
    }

    /// A world whose server has no GitHub App yet (for `/setup`).
    pub async fn without_app() -> World {
        let github = FakeGitHub::start().await;
        github.add_installation(INSTALLATION, &[REPO]);
        let dir = tempfile::tempdir().unwrap();
        World::start(github, dir, &EXTERNAL_FLAGS, ProcessSetup::default()).await
    }

    async fn start(
        github: FakeGitHub,
        dir: tempfile::TempDir,
        flags: &[&str],
        process: ProcessSetup,
    ) -> World {
        let keys: Vec<SshKey> = USERS.iter().map(|_| SshKey::generate()).collect();
        for ((login, id), key) in USERS.iter().zip(&keys) {
            github.add_user(login, *id, &[&key.public]);
        }
        let data = dir.path().join("data");
        let server =
            TetherServer::start_process(&data, &github.url, "127.0.0.1:0", flags, process).await;
        World { github, server, repo: Repo::new(), keys, dir }
    }

    /// Creates the App through `/setup` as its owner would: the printed link, the form's
    /// `state` and its cookie, and GitHub's redirect back with `manifest_code` (registered on
    /// the fake here). The callback's answer.
    pub async fn create_app_through_setup(&self, manifest_code: &str) -> Reply {
        let link = self.server.setup_link.clone().expect("a setup link on stdout");
        let path = &link[link.find("/setup").unwrap()..];
        let form = http_request(&self.server.http_url, "GET", path, &[], b"").await;
        assert_eq!(form.status, 200, "{form:?}");
        let (_, state) = form.body.split_once("?state=").expect("a form with a state");
        let state = &state[..state.find('"').unwrap()];
        let cookie = format!("tether_setup_state={state}");
        self.github.register_manifest_code(manifest_code);
        let callback = format!("/setup/callback?code={manifest_code}&state={state}");
        http_request(&self.server.http_url, "GET", &callback, &[("Cookie", &cookie)], b"").await
    }

    /// The SSH key of one of [`USERS`].
    pub fn key(&self, login: &str) -> &SshKey {
        &self.keys[USERS.iter().position(|(l, _)| *l == login).expect("a user of the world")]
    }

    /// Stops the server with SIGTERM and starts it again on the same data dir and flags.
    pub async fn restart(self) -> World {
        let World { github, server, repo, keys, dir } = self;
        World { github, server: server.restart().await, repo, keys, dir }
    }

    /// Kills the server with SIGKILL and starts it again on the same data dir and flags.
    pub async fn crash_and_restart(self) -> World {
        let World { github, mut server, repo, keys, dir } = self;
        server.kill_hard().await;
        let server = server.start_again().await;
        World { github, server, repo, keys, dir }
    }

    /// Commits a tether.toml (also served by the fake's contents API) and returns the commit.
    pub fn commit_config(&self, toml: &str) -> String {
        self.commit_config_bytes(toml.as_bytes())
    }

    /// Commits these bytes as tether.toml, which need not be TOML, nor even UTF-8.
    pub fn commit_config_bytes(&self, bytes: &[u8]) -> String {
        let sha = self.repo.commit(&[("tether.toml", bytes)], "checks");
        self.github.set_file(REPO, &sha, "tether.toml", bytes);
        sha
    }

    /// A recorded payload with this world's repository, installation and `sender`.
    /// `name` is `EVENT/NAME` for `EVENT/NAME.payload.json`, or a file name ending `.json`.
    pub fn fixture(&self, name: &str, sender: &str) -> Value {
        let file =
            if name.ends_with(".json") { name.to_string() } else { format!("{name}.payload.json") };
        let path = format!("{}/tests/fixtures/github-webhooks/{file}", env!("CARGO_MANIFEST_DIR"));
        let mut payload: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
        payload["repository"]["full_name"] = REPO.into();
        payload["repository"]["clone_url"] = self.repo.file_url().into();
        payload["repository"]["default_branch"] = "main".into();
        // As on GitHub, every payload says whether the repository is private; the server's
        // visibility follows it.
        payload["repository"]["private"] = self.github.is_private(REPO).into();
        let id = USERS.iter().find(|(login, _)| *login == sender).map_or(1, |(_, id)| *id);
        payload["sender"]["login"] = sender.into();
        payload["sender"]["id"] = id.into();
        payload["installation"] = serde_json::json!({ "id": INSTALLATION });
        payload
    }

    /// A push of `sha` to `branch` by alice.
    pub fn push_to(&self, branch: &str, sha: &str) -> Vec<u8> {
        let mut payload = self.fixture("push/with-new-branch", "alice");
        payload["ref"] = format!("refs/heads/{branch}").into();
        payload["after"] = sha.into();
        // The commit pushed is the head commit, as GitHub sends it.
        payload["head_commit"]["id"] = sha.into();
        serde_json::to_vec(&payload).unwrap()
    }

    pub fn push_payload(&self, sha: &str) -> Vec<u8> {
        self.push_to("main", sha)
    }

    /// Pull request `number` `opened` (or `synchronize`…) at `sha` by alice.
    pub fn pull_request_payload(&self, action: &str, number: u64, sha: &str) -> Vec<u8> {
        let mut payload = self.fixture(&format!("pull_request/{action}"), "alice");
        payload["number"] = number.into();
        payload["pull_request"]["number"] = number.into();
        payload["pull_request"]["head"]["sha"] = sha.into();
        payload["pull_request"]["head"]["repo"]["clone_url"] = self.repo.file_url().into();
        serde_json::to_vec(&payload).unwrap()
    }

    /// A comment `body` by `sender` on pull request `number`; the comment's id is `comment_id`.
    pub fn comment_payload(
        &self,
        sender: &str,
        number: u64,
        comment_id: i64,
        body: &str,
    ) -> Vec<u8> {
        let mut payload = self.fixture("issue_comment/created", sender);
        payload["issue"]["number"] = number.into();
        payload["issue"]["pull_request"] = serde_json::json!({ "url": format!("https://api.github.com/repos/{REPO}/pulls/{number}") });
        payload["comment"]["id"] = comment_id.into();
        payload["comment"]["body"] = body.into();
        serde_json::to_vec(&payload).unwrap()
    }

    pub async fn deliver(&self, event: &str, delivery: &str, body: &[u8]) -> (u16, String) {
        deliver_signed(&self.server, SECRET, event, delivery, body).await
    }

    /// Connects `login`'s runner named `laptop` with `ssh -R`, and waits until the server has it.
    pub async fn connect_runner_of(&self, login: &str) -> Connected {
        self.connect_runner_with(login, &[]).await
    }

    /// Connects `login`'s runner named `laptop`, started with these extra flags.
    pub async fn connect_runner_with(&self, login: &str, extra: &[&str]) -> Connected {
        let before = self.server.runners().await.len();
        // The runner fetches GitHub's clone URLs from the local repository instead.
        let git_config = self.dir.path().join("gitconfig");
        let redirect = format!(
            "[url \"{}\"]\n\tinsteadOf = https://github.com/{REPO}.git\n",
            self.repo.file_url()
        );
        std::fs::write(&git_config, redirect).unwrap();
        let env = [("GIT_CONFIG_GLOBAL", git_config.to_str().unwrap())];
        let args = [["--name", "laptop"].as_slice(), extra].concat();
        let runner = Runner::start_with_env(&args, &env).await;
        let forward = format!("/laptop:{}", runner.socket.display());
        let index = USERS.iter().position(|(l, _)| *l == login).unwrap();
        let known_hosts = self.dir.path().join(format!("known_hosts-{login}"));
        let ssh =
            ssh(&self.server, &self.keys[index], login, &known_hosts, &["-N", "-R", &forward])
                .spawn()
                .unwrap();
        let limit = Duration::from_secs(10);
        assert!(self.server.wait_for_runners(limit, |rs| rs.len() == before + 1).await);
        Connected { runner, ssh }
    }

    pub async fn connect_runner(&self) -> (Runner, tokio::process::Child) {
        let connected = self.connect_runner_of("alice").await;
        (connected.runner, connected.ssh)
    }

    /// Polls the fake's check runs until `done` holds for them.
    pub async fn wait_for_check_runs(
        &self,
        limit: Duration,
        done: impl Fn(&[Value]) -> bool,
    ) -> Vec<Value> {
        let mut runs = Vec::new();
        eventually(limit, || {
            runs = self.github.check_runs(REPO);
            done(&runs)
        })
        .await;
        runs
    }
}

/// The external URL first: [`World::private_local`] leaves it out.
const EXTERNAL_FLAGS: [&str; 4] =
    ["--external-url", "https://ci.example.com", "--ssh-public-addr", "ci.example.com:6455"];

/// Posts a webhook signed with `secret`.
pub async fn deliver_signed(
    server: &TetherServer,
    secret: &str,
    event: &str,
    delivery: &str,
    body: &[u8],
) -> (u16, String) {
    let signature = tether::core::signature::sign(secret.as_bytes(), body);
    let headers = [
        ("X-GitHub-Event", event),
        ("X-GitHub-Delivery", delivery),
        ("X-Hub-Signature-256", signature.as_str()),
        ("Content-Type", "application/json"),
    ];
    http_post(&server.http_url, "/integrations/github/events", &headers, body).await
}

/// All `n` or more check runs are completed.
pub fn completed(runs: &[Value], n: usize) -> bool {
    runs.len() >= n && runs.iter().all(|r| r["status"] == "completed")
}

/// A text field of a check run's output.
pub fn output<'a>(run: &'a Value, field: &str) -> &'a str {
    run["output"][field].as_str().unwrap_or_default()
}
