//! Gateway capacity: SSH handshakes per second, and idle runner sessions held with the server's
//! memory per session; figures are medians of several rounds.
//!
//! The server runs in this process with a stand-in for GitHub's key API; idle sessions are held
//! by a child process (this program, re-run as `client`), so the memory measured is the server's.
//! `BENCH_GATEWAY_SESSIONS=500,2000` replaces the default counts of sessions.

use std::io::{BufRead, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use russh::keys::{Algorithm, PrivateKey, PrivateKeyWithHashAlg};
use tether::ssh::host_key::HostKey;
use tether::ssh::server::{Gateway, KeyLookupError, KeySource, Keyring};
use tether::store::Store;

use crate::{Row, median, proc_status_bytes};

/// Handshake rounds, each this long, with this many connections at once.
const HANDSHAKE_ROUNDS: usize = 3;
const HANDSHAKE_ROUND: Duration = Duration::from_secs(3);
const HANDSHAKE_CONCURRENCY: usize = 8;

struct StaticKeys(Vec<String>);

impl KeySource for StaticKeys {
    fn keys<'a>(&'a self, _: &'a str) -> BoxFuture<'a, Result<Vec<String>, KeyLookupError>> {
        Box::pin(async move { Ok(self.0.clone()) })
    }
}

struct Client;

impl russh::client::Handler for Client {
    type Error = russh::Error;
    async fn check_server_key(
        &mut self,
        _: &russh::keys::PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        Ok(true)
    }
}

/// The idle sessions held, one count after the other: design.md's 2,000, then 10,000.
const SESSIONS_DEFAULT: [usize; 2] = [2000, 10_000];
const SESSIONS_GOAL: &str = "2,000, then 10,000";

pub async fn run() -> anyhow::Result<Vec<Row>> {
    raise_fd_limit();
    let dir = tempfile::tempdir()?;
    let client_key = PrivateKey::random(&mut rand::rng(), Algorithm::Ed25519)?;
    let key_file = dir.path().join("client_key");
    std::fs::write(
        &key_file,
        client_key.to_openssh(russh::keys::ssh_key::LineEnding::LF)?.as_bytes(),
    )?;
    let store = Store::open(&dir.path().join("bench.db")).await?;
    let keyring = Keyring::new(Arc::new(StaticKeys(vec![client_key.public_key().to_openssh()?])));
    let gateway = Gateway::new(store, keyring, None, None);
    let host_key = HostKey::load_or_create(&dir.path().join("host_key"))?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?.to_string();
    let limits = tether::ssh::server::SshLimits::default();
    let serve =
        tether::ssh::server::serve(listener, host_key, gateway, limits, std::future::pending());
    tokio::spawn(serve);

    let rates = handshake_rates(&addr, Arc::new(client_key)).await;
    let mut rows = vec![Row::new(
        format!(
            "SSH handshakes per second ({HANDSHAKE_CONCURRENCY} at once, median of {HANDSHAKE_ROUNDS})"
        ),
        format!("{:.0}", median(rates)),
        "none set",
    )];
    for count in session_counts()? {
        let measure = format!("idle runner sessions held (of {count}) / server RSS per session");
        rows.push(match idle_sessions(&addr, &key_file, count).await {
            Ok((held, per_session)) => Row::new(
                measure,
                format!("{held} / {:.1} KiB", per_session / 1024.0),
                SESSIONS_GOAL,
            ),
            Err(e) => Row::new(measure, format!("failed: {e:#}"), SESSIONS_GOAL),
        });
    }
    Ok(rows)
}

fn session_counts() -> anyhow::Result<Vec<usize>> {
    match std::env::var("BENCH_GATEWAY_SESSIONS") {
        Ok(list) => Ok(list.split(',').map(|c| c.trim().parse()).collect::<Result<_, _>>()?),
        Err(_) => Ok(SESSIONS_DEFAULT.to_vec()),
    }
}

async fn handshake_rates(addr: &str, key: Arc<PrivateKey>) -> Vec<f64> {
    let mut rates = Vec::new();
    for _ in 0..HANDSHAKE_ROUNDS {
        let started = Instant::now();
        let workers = (0..HANDSHAKE_CONCURRENCY).map(|_| {
            let (addr, key) = (addr.to_string(), key.clone());
            tokio::spawn(async move {
                let mut done = 0usize;
                while started.elapsed() < HANDSHAKE_ROUND {
                    if login(&addr, key.clone(), "bench".into()).await.is_ok() {
                        done += 1;
                    }
                }
                done
            })
        });
        let total: usize =
            futures::future::join_all(workers).await.into_iter().map(|r| r.unwrap_or(0)).sum();
        rates.push(total as f64 / started.elapsed().as_secs_f64());
    }
    rates
}

/// Connects and authenticates as `user`; returns the open session. Each idle session gets its
/// own user, as the server holds at most 16 sessions per user.
async fn login(
    addr: &str,
    key: Arc<PrivateKey>,
    user: String,
) -> anyhow::Result<russh::client::Handle<Client>> {
    let config = Arc::new(russh::client::Config::default());
    let mut session = russh::client::connect(config, addr, Client).await?;
    let result =
        session.authenticate_publickey(user, PrivateKeyWithHashAlg::new(key, None)).await?;
    anyhow::ensure!(result.success(), "authentication refused");
    Ok(session)
}

/// Starts a child holding `count` sessions; returns how many it held and the server's RSS
/// growth per session.
async fn idle_sessions(
    addr: &str,
    key_file: &std::path::Path,
    count: usize,
) -> anyhow::Result<(usize, f64)> {
    let before = rss_bytes();
    let mut child = std::process::Command::new(std::env::current_exe()?)
        .args(["client", addr, &key_file.to_string_lossy(), &count.to_string()])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()?;
    let mut line = String::new();
    let stdout = child.stdout.take().unwrap();
    let line = tokio::task::spawn_blocking(move || {
        std::io::BufReader::new(stdout).read_line(&mut line).map(|_| line)
    })
    .await??;
    let held: usize = line.trim().strip_prefix("held ").unwrap_or("0").parse()?;
    // Let the server finish the sessions' bookkeeping before measuring.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = rss_bytes();
    let _ = child.stdin.take().map(|mut s| s.write_all(b"\n"));
    let _ = child.kill();
    let _ = child.wait();
    Ok((held, after.saturating_sub(before) as f64 / held.max(1) as f64))
}

/// The child, `client ADDR KEY_FILE COUNT`: opens `COUNT` sessions, says how many it holds, and
/// waits for its stdin to close.
pub async fn hold_sessions(args: &[String]) -> anyhow::Result<()> {
    let [addr, key_file, count] = args else {
        anyhow::bail!("usage: client ADDR KEY_FILE COUNT");
    };
    let count: usize = count.parse()?;
    raise_fd_limit();
    let key = Arc::new(PrivateKey::from_openssh(std::fs::read_to_string(key_file)?)?);
    let mut sessions = Vec::with_capacity(count);
    let mut failures = 0;
    for chunk in (0..count).collect::<Vec<_>>().chunks(64) {
        let logins = chunk.iter().map(|i| login(addr, key.clone(), format!("bench{i}")));
        for session in futures::future::join_all(logins).await {
            match session {
                Ok(session) => sessions.push(session),
                Err(e) if failures == 0 => {
                    failures += 1;
                    eprintln!("a session failed (only the first failure is shown): {e:#}");
                }
                Err(_) => failures += 1,
            }
        }
    }
    println!("held {}", sessions.len());
    std::io::stdout().flush()?;
    let _ = tokio::task::spawn_blocking(|| std::io::stdin().read_line(&mut String::new())).await;
    Ok(())
}

fn rss_bytes() -> u64 {
    proc_status_bytes("self", "VmRSS")
}

fn raise_fd_limit() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    if let Ok((_, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
    }
}
