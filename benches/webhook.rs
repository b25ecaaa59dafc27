//! Webhook ingestion: deliveries per second accepted and stored, and p50/p99 time to answer, from
//! a load generator at concurrency 32; figures are medians of 3 rounds.
//!
//! The server runs in this process with a webhook secret and no GitHub App, so deliveries are
//! verified and stored but not acted on: this measures the endpoint and SQLite, not GitHub.

use std::time::{Duration, Instant};

use tether::engine::{DEFAULT_LOG_MAX_BYTES, DEFAULT_QUEUE_TTL, EngineConfig};
use tether::server::{Server, ServerConfig};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::{Row, median, percentile};

const CONCURRENCY: usize = 32;
const ROUND: Duration = Duration::from_secs(5);
const ROUNDS: usize = 3;
const SECRET: &str = "bench-secret";

pub async fn run() -> anyhow::Result<Vec<Row>> {
    let dir = tempfile::tempdir()?;
    let (addr, stop, server) = start_server(&dir.path().join("data")).await?;
    let result = measure(&addr).await;
    let _ = stop.send(());
    server.await??;
    result
}

/// Starts the server on loopback; returns its HTTP address, the sender that stops it, and its
/// task.
async fn start_server(
    data_dir: &std::path::Path,
) -> anyhow::Result<(String, oneshot::Sender<()>, JoinHandle<anyhow::Result<()>>)> {
    let config = ServerConfig {
        data_dir: data_dir.to_path_buf(),
        github_api_url: "http://127.0.0.1:9".into(),
        github_web_url: "http://127.0.0.1:9".into(),
        oauth: None,
        access_cache_ttl: tether::core::auth::ACCESS_CACHE_TTL,
        github_app: None,
        webhook_secret: Some(SECRET.into()),
        blobs: None,
        engine: EngineConfig {
            external_url: "http://localhost".into(),
            ssh_public_addr: "localhost:6455".into(),
            queue_ttl: DEFAULT_QUEUE_TTL,
            log_max_bytes: DEFAULT_LOG_MAX_BYTES,
        },
        ssh_limits: Default::default(),
        http_limits: Default::default(),
    };
    let server = Server::open(&config).await?;
    let ssh = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let http = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = http.local_addr()?.to_string();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(server.run(ssh, http, async move {
        let _ = stopped.await;
    }));
    Ok((addr, stop, task))
}

/// `ROUNDS` rounds of load: deliveries per second and the p50 and p99 time to answer.
async fn measure(addr: &str) -> anyhow::Result<Vec<Row>> {
    let payload =
        include_bytes!("../tests/fixtures/github-webhooks/push/with-new-branch.payload.json");
    let signature = tether::core::signature::sign(SECRET.as_bytes(), payload);
    let (mut rates, mut p50s, mut p99s) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        let (count, mut latencies) = load(addr, payload, &signature, round).await?;
        latencies.sort_by(|a, b| a.total_cmp(b));
        rates.push(count as f64 / ROUND.as_secs_f64());
        p50s.push(percentile(&latencies, 0.50));
        p99s.push(percentile(&latencies, 0.99));
    }
    Ok(vec![
        Row::new(
            format!(
                "webhook deliveries accepted and stored per second (concurrency {CONCURRENCY})"
            ),
            format!("{:.0}", median(rates)),
            "none set",
        ),
        Row::new(
            "webhook time to answer, p50 / p99",
            format!("{:.1} ms / {:.1} ms", median(p50s), median(p99s)),
            "p99 under 100 ms",
        ),
    ])
}

/// One round: `CONCURRENCY` keep-alive connections posting unique deliveries for `ROUND`.
async fn load(
    addr: &str,
    payload: &'static [u8],
    signature: &str,
    round: usize,
) -> anyhow::Result<(usize, Vec<f64>)> {
    let started = Instant::now();
    let workers = (0..CONCURRENCY).map(|worker| {
        let (addr, signature) = (addr.to_string(), signature.to_string());
        tokio::spawn(async move {
            let mut stream = BufReader::new(tokio::net::TcpStream::connect(&addr).await?);
            let mut latencies = Vec::new();
            let mut n = 0;
            while started.elapsed() < ROUND {
                let delivery = format!("bench-{round}-{worker}-{n}");
                let t = Instant::now();
                post(&mut stream, &addr, &delivery, &signature, payload).await?;
                latencies.push(t.elapsed().as_secs_f64() * 1000.0);
                n += 1;
            }
            anyhow::Ok(latencies)
        })
    });
    let mut all = Vec::new();
    for worker in futures::future::join_all(workers).await {
        all.extend(worker??);
    }
    Ok((all.len(), all))
}

/// Posts one delivery and reads the answer, which must be 202.
async fn post(
    stream: &mut BufReader<tokio::net::TcpStream>,
    host: &str,
    delivery: &str,
    signature: &str,
    body: &[u8],
) -> anyhow::Result<()> {
    let head = format!(
        "POST /integrations/github/events HTTP/1.1\r\nHost: {host}\r\nX-GitHub-Event: push\r\nX-GitHub-Delivery: {delivery}\r\nX-Hub-Signature-256: {signature}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.get_mut().write_all(head.as_bytes()).await?;
    stream.get_mut().write_all(body).await?;
    let mut status = String::new();
    stream.read_line(&mut status).await?;
    anyhow::ensure!(status.contains(" 202 "), "answer: {status}");
    let mut length = 0;
    loop {
        let mut line = String::new();
        stream.read_line(&mut line).await?;
        if line == "\r\n" {
            break;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = v.trim().parse()?;
        }
    }
    let mut rest = vec![0; length];
    stream.read_exact(&mut rest).await?;
    Ok(())
}
