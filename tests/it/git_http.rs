//! A git server over HTTP (`git http-backend` behind a small axum server) that refuses requests
//! without the expected token, and the checkout tests that use it.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use tether::core::{Outcome, OutputStream};
use tokio::io::AsyncWriteExt;

use crate::harness::*;

/// What the server saw: one entry per request.
#[derive(Default)]
struct Seen {
    /// (path, response body bytes) of authorised requests.
    served: Vec<(String, usize)>,
    refused: usize,
}

#[derive(Clone)]
struct GitServer {
    root: PathBuf,
    expected_auth: String,
    seen: Arc<Mutex<Seen>>,
}

/// Serves the repositories under `root` at `http://ADDR/NAME`; returns the base URL.
async fn serve_git(root: PathBuf, token: &str) -> (String, Arc<Mutex<Seen>>) {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let server = GitServer {
        root,
        expected_auth: tether::exec::checkout::auth_header(token),
        seen: seen.clone(),
    };
    let app = axum::Router::new().fallback(handle).with_state(server);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.expect("git http server died") });
    (format!("http://{addr}"), seen)
}

async fn handle(State(server): State<GitServer>, request: Request) -> Response {
    let auth = request.headers().get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("");
    if format!("Authorization: {auth}") != server.expected_auth {
        server.seen.lock().unwrap().refused += 1;
        return Response::builder()
            .status(StatusCode::UNAUTHORIZED)
            .header("www-authenticate", "Basic realm=\"git\"")
            .body(Body::empty())
            .unwrap();
    }
    let path = request.uri().path().to_string();
    let (status, headers, body) = cgi(&server, request).await;
    server.seen.lock().unwrap().served.push((path, body.len()));
    let mut response = Response::builder().status(status);
    for (name, value) in headers {
        response = response.header(name, value);
    }
    response.body(Body::from(body)).unwrap()
}

/// Runs `git http-backend` as a CGI program for one request.
async fn cgi(server: &GitServer, request: Request) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let headers: HeaderMap = request.headers().clone();
    let header =
        |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let mut child = tokio::process::Command::new("git")
        .arg("http-backend")
        .env("GIT_PROJECT_ROOT", &server.root)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("REQUEST_METHOD", request.method().as_str())
        .env("PATH_INFO", request.uri().path())
        .env("QUERY_STRING", request.uri().query().unwrap_or(""))
        .env("CONTENT_TYPE", header("content-type"))
        .env("GIT_PROTOCOL", header("git-protocol"))
        .env("HTTP_CONTENT_ENCODING", header("content-encoding"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let body = to_bytes(request.into_body(), 64 << 20).await.unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(&body).await.unwrap();
    drop(stdin);
    let output = child.wait_with_output().await.unwrap();
    let split = output.stdout.windows(4).position(|w| w == b"\r\n\r\n").map(|i| (i, 4));
    let split =
        split.or_else(|| output.stdout.windows(2).position(|w| w == b"\n\n").map(|i| (i, 2)));
    let (end, gap) = split.expect("CGI output has headers");
    let mut status = 200;
    let mut out_headers = Vec::new();
    for line in String::from_utf8_lossy(&output.stdout[..end]).lines() {
        let (name, value) = line.split_once(':').unwrap();
        if name.eq_ignore_ascii_case("status") {
            status = value.trim()[..3].parse().unwrap();
        } else {
            out_headers.push((name.to_string(), value.trim().to_string()));
        }
    }
    (status, out_headers, output.stdout[end + gap..].to_vec())
}

/// A repository with a large first commit, served over HTTP.
struct Served {
    _root: tempfile::TempDir,
    url: String,
    seen: Arc<Mutex<Seen>>,
    work: Repo,
    bare: PathBuf,
}

async fn served_repo(token: &str) -> Served {
    let root = tempfile::tempdir().unwrap();
    let work = Repo::new();
    // Incompressible, so that a fetch that sent it again would be obvious.
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let big: Vec<u8> = (0..1 << 20)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect();
    work.commit(&[("big.bin", &big), ("small.txt", b"one")], "big");
    let bare = root.path().join("repo.git");
    git(
        root.path(),
        &["clone", "--quiet", "--bare", work.path().to_str().unwrap(), bare.to_str().unwrap()],
    );
    let (base, seen) = serve_git(root.path().to_path_buf(), token).await;
    Served { url: format!("{base}/repo.git"), seen, work, _root: root, bare }
}

impl Served {
    /// Commits a small change and pushes it to the served repository.
    fn push_small_change(&self) -> String {
        let commit = self.work.commit(&[("small.txt", b"two")], "small");
        git(self.work.path(), &["push", "--quiet", self.bare.to_str().unwrap(), "HEAD:main"]);
        commit
    }

    fn upload_pack_bytes(&self) -> Vec<usize> {
        let seen = self.seen.lock().unwrap();
        seen.served
            .iter()
            .filter(|(path, _)| path.ends_with("git-upload-pack"))
            .map(|(_, n)| *n)
            .collect()
    }
}

#[tokio::test]
async fn checkout_over_http_sends_the_token_and_fetches_only_what_is_new() {
    let token = "ghs_testtoken123";
    let served = served_repo(token).await;
    let first = git(served.work.path(), &["rev-parse", "HEAD"]);
    // A `git` on the runner's PATH that records every command line it is given.
    let bin = tempfile::tempdir().unwrap();
    let argv_log = bin.path().join("argv.log");
    let wrapper = format!("echo \"$*\" >> {}\nexec /usr/bin/git \"$@\"\n", argv_log.display());
    fake_program(bin.path(), "git", &wrapper);
    let path = format!("{}:/usr/bin:/bin", bin.path().display());
    let runner = Runner::start_with_env(&[], &[("PATH", &path)]).await;

    let mut spec = spec(&served.url, &first, script("cat small.txt; git remote get-url origin"));
    spec.clone_token = Some(token.into());
    let run = run_to_end(&runner, &spec).await.unwrap();
    assert_eq!(run.stdout(), format!("one{}\n", served.url), "{run:?}");
    let first_fetch: usize = served.upload_pack_bytes().iter().sum();
    assert!(first_fetch > 1 << 20, "the first fetch moved only {first_fetch} bytes");

    let second = served.push_small_change();
    spec.thunk.commit = second;
    let run = run_to_end(&runner, &spec).await.unwrap();
    assert!(run.stdout().starts_with("two"), "{run:?}");
    let second_fetch: usize = served.upload_pack_bytes().iter().sum::<usize>() - first_fetch;
    assert!(second_fetch < 64 * 1024, "the second fetch moved {second_fetch} bytes");

    // The token was in no command line, no git config of the cache and no output.
    let argv = std::fs::read_to_string(&argv_log).unwrap();
    assert!(argv.contains("fetch") && !argv.contains(token), "{argv}");
    for entry in std::fs::read_dir(runner.work_dir.join("cache")).unwrap() {
        let config = std::fs::read_to_string(entry.unwrap().path().join("config")).unwrap();
        assert!(!config.contains(token) && !config.contains("extraheader"), "{config}");
    }
    assert!(!format!("{run:?}").contains(token));
}

#[tokio::test]
async fn checkout_over_http_without_the_token_is_refused() {
    let served = served_repo("ghs_right").await;
    let commit = git(served.work.path(), &["rev-parse", "HEAD"]);
    let runner = Runner::start(&[]).await;
    let mut spec = spec(&served.url, &commit, script("true"));
    let run = run_to_end(&runner, &spec).await.unwrap();
    assert!(matches!(run.outcome(), Outcome::Error(m) if m.contains("checkout")), "{run:?}");
    spec.clone_token = Some("ghs_wrong".into());
    let run = run_to_end(&runner, &spec).await.unwrap();
    assert!(matches!(run.outcome(), Outcome::Error(_)), "{run:?}");
    let runner_text = run.text(OutputStream::Runner);
    assert!(
        runner_text.contains("checkout failed") && !runner_text.contains("ghs_wrong"),
        "{runner_text}"
    );
    assert!(served.seen.lock().unwrap().refused >= 2);
}
