//! Harness for the server: `tether serve` as a real process, OpenSSH clients with generated keys,
//! and plain HTTP requests.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

use crate::harness::TETHER;

/// A `tether serve` process on ports the system chose, with its data dir.
pub struct TetherServer {
    pub data_dir: PathBuf,
    pub ssh_port: u16,
    pub http_url: String,
    pub fingerprint: String,
    /// The setup link it printed, when it started without a GitHub App.
    pub setup_link: Option<String>,
    github_url: String,
    /// The extra flags it was started with, kept for a restart.
    extra: Vec<String>,
    /// What its process was started with beyond flags, kept for a restart.
    process: ProcessSetup,
    /// Its log (stderr), when [`ProcessSetup::keep_log`] asked for it.
    log: Option<std::sync::Arc<std::sync::Mutex<Vec<u8>>>>,
    /// What it printed on stdout after the lines that said where it listens, read to the end.
    rest_of_stdout: tokio::task::JoinHandle<String>,
    child: tokio::process::Child,
    /// Set once the test has stopped it on purpose.
    stopped: bool,
}

impl TetherServer {
    pub async fn start(data_dir: &Path, github_url: &str) -> TetherServer {
        TetherServer::start_with(data_dir, github_url, &[]).await
    }

    /// Starts it with extra flags (the GitHub App's, say).
    pub async fn start_with(data_dir: &Path, github_url: &str, extra: &[&str]) -> TetherServer {
        TetherServer::start_on(data_dir, github_url, "127.0.0.1:0", extra).await
    }

    /// Starts it with SSH on `ssh_listen` (to come back on the same port after a restart).
    pub async fn start_on(
        data_dir: &Path,
        github_url: &str,
        ssh_listen: &str,
        extra: &[&str],
    ) -> TetherServer {
        let process = ProcessSetup::default();
        TetherServer::start_process(data_dir, github_url, ssh_listen, extra, process).await
    }

    /// Starts it with extra flags in a process set up as `process` says.
    pub async fn start_process(
        data_dir: &Path,
        github_url: &str,
        ssh_listen: &str,
        extra: &[&str],
        process: ProcessSetup,
    ) -> TetherServer {
        let mut command = tokio::process::Command::new(TETHER);
        command
            .arg("serve")
            .arg("--data-dir")
            .arg(data_dir)
            .args(extra)
            .args(["--ssh-listen", ssh_listen, "--http-listen", "127.0.0.1:0"])
            .args(["--github-api-url", github_url])
            // `TETHER_SERVE_LOG=debug` shows the server's own log, to see where time goes.
            .env("TETHER_LOG", std::env::var("TETHER_SERVE_LOG").unwrap_or_else(|_| "warn".into()))
            .stdout(Stdio::piped())
            .kill_on_drop(true);
        process.apply(&mut command);
        let mut child = command.spawn().expect("starting tether serve");
        let log = process.keep_log.then(|| keep_log(child.stderr.take().unwrap()));
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let (mut ssh_port, mut http_url, mut fingerprint) = (None, None, None);
        let mut setup_link = None;
        while ssh_port.is_none() || http_url.is_none() || fingerprint.is_none() {
            let line =
                lines.next_line().await.unwrap().expect("tether serve exited before it listened");
            if let Some(rest) = line.strip_prefix("tether: ssh listening on ") {
                ssh_port = rest.rsplit(':').next().and_then(|p| p.parse().ok());
            } else if let Some(rest) = line.strip_prefix("tether: http listening on ") {
                http_url = rest.split_whitespace().next().map(String::from);
            } else if let Some(rest) = line.strip_prefix("tether: ssh host key ") {
                fingerprint = Some(rest.to_string());
            } else if let Some(rest) = line.split_once(" set one up at ") {
                setup_link = Some(rest.1.to_string());
            }
        }
        // Keep reading so that the server never blocks on a full stdout pipe.
        let rest_of_stdout = tokio::spawn(async move {
            let mut rest = String::new();
            while let Ok(Some(line)) = lines.next_line().await {
                rest.push_str(&line);
                rest.push('\n');
            }
            rest
        });
        TetherServer {
            data_dir: data_dir.to_path_buf(),
            ssh_port: ssh_port.unwrap(),
            http_url: http_url.unwrap(),
            fingerprint: fingerprint.unwrap(),
            setup_link,
            github_url: github_url.to_string(),
            extra: extra.iter().map(|s| s.to_string()).collect(),
            process,
            log,
            rest_of_stdout,
            child,
            stopped: false,
        }
    }

    /// What the server has logged so far (empty unless [`ProcessSetup::keep_log`]).
    pub fn log(&self) -> String {
        let log = self.log.as_ref().map(|log| log.lock().unwrap().clone()).unwrap_or_default();
        String::from_utf8_lossy(&log).into_owned()
    }

    /// The server's process id, for `/proc/{pid}/status`.
    pub fn pid(&self) -> u32 {
        self.child.id().expect("tether serve is running")
    }

    /// Stops the server with SIGTERM and waits for it to exit; returns its exit code.
    pub async fn stop(mut self) -> Option<i32> {
        let pid = nix::unistd::Pid::from_raw(self.child.id().unwrap() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
        let status = tokio::time::timeout(Duration::from_secs(10), self.child.wait())
            .await
            .unwrap()
            .unwrap();
        self.stopped = true;
        status.code()
    }

    /// Stops the server with SIGTERM; returns its exit code and what it printed on stdout after
    /// starting.
    pub async fn stop_and_read(mut self) -> (Option<i32>, String) {
        let pid = nix::unistd::Pid::from_raw(self.child.id().unwrap() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
        let status = tokio::time::timeout(Duration::from_secs(10), self.child.wait())
            .await
            .unwrap()
            .unwrap();
        self.stopped = true;
        let rest = (&mut self.rest_of_stdout).await.unwrap_or_default();
        (status.code(), rest)
    }

    /// Kills the server with SIGKILL, as a crash or the OOM killer would, and waits until it is
    /// gone; it is stopped on purpose then.
    pub async fn kill_hard(&mut self) {
        self.stopped = true;
        self.child.start_kill().expect("sending SIGKILL to tether serve");
        tokio::time::timeout(Duration::from_secs(10), self.child.wait())
            .await
            .expect("tether serve outlived SIGKILL")
            .unwrap();
    }

    /// Stops it and starts it again on the same data dir with the same flags (on new ports).
    pub async fn restart(self) -> TetherServer {
        let again = self.start_again();
        assert_eq!(self.stop().await, Some(0), "tether serve did not exit cleanly on SIGTERM");
        again.await
    }

    /// Starts another server on the same data dir with the same flags (on new ports); the
    /// future owns what it needs, so this one can be stopped or killed first.
    pub fn start_again(&self) -> impl std::future::Future<Output = TetherServer> + use<> {
        let (dir, github, extra) =
            (self.data_dir.clone(), self.github_url.clone(), self.extra.clone());
        let process = self.process.clone();
        async move {
            let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
            TetherServer::start_process(&dir, &github, "127.0.0.1:0", &extra, process).await
        }
    }

    /// The server's host key as a known_hosts line for 127.0.0.1 on its port.
    pub fn known_hosts_line(&self) -> String {
        let key = self.data_dir.join("ssh_host_ed25519_key");
        let public =
            std::process::Command::new("ssh-keygen").arg("-y").arg("-f").arg(key).output().unwrap();
        assert!(public.status.success());
        format!("[127.0.0.1]:{} {}", self.ssh_port, String::from_utf8_lossy(&public.stdout).trim())
    }

    /// `GET path` on the HTTP server: status and body.
    pub async fn get(&self, path: &str) -> (u16, String) {
        http_get(&self.http_url, path).await
    }

    /// The JSON of `GET /api/v1/runners`.
    pub async fn runners(&self) -> Vec<serde_json::Value> {
        let (status, body) = self.get("/api/v1/runners").await;
        assert_eq!(status, 200, "{body}");
        serde_json::from_str(&body).unwrap()
    }

    /// Waits until the runner list satisfies `condition`, polling; returns whether it did.
    pub async fn wait_for_runners(
        &self,
        limit: Duration,
        condition: impl Fn(&[serde_json::Value]) -> bool,
    ) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            if condition(&self.runners().await) {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

impl Drop for TetherServer {
    fn drop(&mut self) {
        let status = self.child.try_wait().expect("checking tether serve");
        if let Some(status) = status.filter(|_| !std::thread::panicking() && !self.stopped) {
            panic!("tether serve died during the test: {status}");
        }
    }
}

/// How a test's server process starts beyond its flags.
#[derive(Debug, Clone, Default)]
pub struct ProcessSetup {
    /// Its open files limit, soft and hard (so that the server cannot raise it).
    pub file_limit: Option<u64>,
    /// Its soft open files limit alone, below the hard one it keeps.
    pub soft_file_limit: Option<u64>,
    /// Its umask, which it inherits as a shell would give it.
    pub umask: Option<u32>,
    /// Keep its stderr for [`TetherServer::log`] (at `TETHER_LOG`'s level) instead of passing
    /// it through.
    pub keep_log: bool,
    /// Its `TETHER_LOG` (default: `TETHER_SERVE_LOG`, else `warn`).
    pub log_level: Option<&'static str>,
}

impl ProcessSetup {
    fn apply(&self, command: &mut tokio::process::Command) {
        if let Some(level) = self.log_level {
            command.env("TETHER_LOG", level);
        }
        if self.keep_log {
            command.stderr(Stdio::piped());
        }
        let (file_limit, soft_file_limit, umask) =
            (self.file_limit, self.soft_file_limit, self.umask);
        if file_limit.is_none() && soft_file_limit.is_none() && umask.is_none() {
            return;
        }
        // SAFETY: between fork and exec only async-signal-safe calls: get/setrlimit and umask.
        unsafe {
            command.pre_exec(move || {
                use nix::sys::resource::{Resource, getrlimit, setrlimit};
                if let Some(limit) = file_limit {
                    setrlimit(Resource::RLIMIT_NOFILE, limit, limit)?;
                }
                if let Some(soft) = soft_file_limit {
                    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE)?;
                    setrlimit(Resource::RLIMIT_NOFILE, soft.min(hard), hard)?;
                }
                if let Some(mask) = umask {
                    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(mask));
                }
                Ok(())
            });
        }
    }
}

/// Reads a child's stderr into a buffer, in the background, so that it never blocks on it.
fn keep_log(mut stderr: tokio::process::ChildStderr) -> std::sync::Arc<std::sync::Mutex<Vec<u8>>> {
    let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let kept = log.clone();
    tokio::spawn(async move {
        let mut chunk = vec![0; 64 * 1024];
        while let Ok(n @ 1..) = stderr.read(&mut chunk).await {
            kept.lock().unwrap().extend_from_slice(&chunk[..n]);
        }
    });
    log
}

/// A minimal HTTP/1.1 GET, so the tests need no HTTP client crate.
pub async fn http_get(base: &str, path: &str) -> (u16, String) {
    let host = base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(host).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    let split =
        response.windows(4).position(|w| w == b"\r\n\r\n").map_or(response.len(), |i| i + 4);
    let (head, body) = response.split_at(split);
    let head = String::from_utf8_lossy(head).to_ascii_lowercase();
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body =
        if head.contains("\r\ntransfer-encoding: chunked") { dechunk(body) } else { body.to_vec() };
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// The body of a `Transfer-Encoding: chunked` response (streamed pages come so).
fn dechunk(mut body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let end = body.windows(2).position(|w| w == b"\r\n").expect("a chunk size line");
        let size = std::str::from_utf8(&body[..end]).unwrap().split(';').next().unwrap();
        let size = usize::from_str_radix(size.trim(), 16).expect("a hex chunk size");
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&body[end + 2..end + 2 + size]);
        body = &body[end + 2 + size + 2..];
    }
}

/// A generated ed25519 key pair for the OpenSSH client.
pub struct SshKey {
    _dir: tempfile::TempDir,
    pub path: PathBuf,
    pub public: String,
}

impl SshKey {
    pub fn generate() -> SshKey {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("id_ed25519");
        let status = std::process::Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", "test", "-f"])
            .arg(&path)
            .status()
            .unwrap();
        assert!(status.success());
        let public =
            std::fs::read_to_string(path.with_extension("pub")).unwrap().trim().to_string();
        SshKey { _dir: dir, path, public }
    }
}

/// An OpenSSH client command for `login@127.0.0.1` on the server, checking its host key, with
/// `options` before the destination; a remote command can be added after.
pub fn ssh(
    server: &TetherServer,
    key: &SshKey,
    login: &str,
    known_hosts: &Path,
    options: &[&str],
) -> tokio::process::Command {
    std::fs::write(known_hosts, format!("{}\n", server.known_hosts_line())).unwrap();
    let mut command = tokio::process::Command::new("ssh");
    command
        .args([
            "-F",
            "/dev/null",
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            "IdentitiesOnly=yes",
        ])
        .arg("-o")
        .arg(format!("UserKnownHostsFile={}", known_hosts.display()))
        .arg("-i")
        .arg(&key.path)
        .args([
            "-p",
            &server.ssh_port.to_string(),
            "-o",
            "ExitOnForwardFailure=yes",
            "-o",
            "LogLevel=ERROR",
        ])
        .args(options)
        .arg(format!("{login}@127.0.0.1"))
        .stdin(Stdio::null())
        .kill_on_drop(true);
    command
}

/// A minimal HTTP/1.1 POST with extra headers: status and body.
pub async fn http_post(
    base: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, String) {
    let host = base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(host).await.unwrap();
    let mut request = format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    // A server may refuse before reading the whole body (413); that is an answer too.
    let _ = stream.write_all(body).await;
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response).await;
    let text = String::from_utf8_lossy(&response).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, body.to_string())
}

/// An HTTP answer with its headers (names lowercased), for tests that follow redirects and
/// keep cookies.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
    /// The first value of header `name` (lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// The `name=value` of each `Set-Cookie`.
    pub fn cookies(&self) -> Vec<(String, String)> {
        let values = self.headers.iter().filter(|(n, _)| n == "set-cookie");
        let pair = |(_, v): &(String, String)| {
            let first = v.split(';').next().unwrap_or_default();
            let (name, value) = first.split_once('=').unwrap_or((first, ""));
            (name.to_string(), value.to_string())
        };
        values.map(pair).collect()
    }
}

/// A minimal HTTP/1.1 request with extra headers and a body, answered with its headers.
pub async fn http_request(
    base: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Reply {
    let host = base.trim_start_matches("http://").trim_end_matches('/');
    let mut stream = tokio::net::TcpStream::connect(host).await.unwrap();
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: tether-tests\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    stream.write_all(body).await.unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    let split =
        response.windows(4).position(|w| w == b"\r\n\r\n").map_or(response.len(), |i| i + 4);
    let (head, body) = response.split_at(split);
    let head = String::from_utf8_lossy(head).into_owned();
    let mut lines = head.split("\r\n");
    let status =
        lines.next().and_then(|l| l.split_whitespace().nth(1)).and_then(|s| s.parse().ok());
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let chunked = headers.iter().any(|(n, v)| n == "transfer-encoding" && v.contains("chunked"));
    let body = if chunked { dechunk(body) } else { body.to_vec() };
    Reply {
        status: status.unwrap_or(0),
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}
