//! Big logs: a check prints a million coloured lines; then its run page and raw log are fetched
//! over loopback (time to first and last byte, and the server's peak RSS while it serves them)
//! and the run page is loaded in headless Chromium.
//!
//! Peak RSS is the server's `VmHWM` after `clear_refs` reset it to its RSS before each fetch.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::browser::Browser;
use crate::world::World;
use crate::{Row, e2e, median, proc_status_bytes};

/// The log's lines; `BENCH_BIG_LOG_LINES` changes it, to see how a figure grows.
const LINES_DEFAULT: u64 = 1_000_000;
/// Fetches of each page; figures are their medians. Chromium loads the run page once: the load
/// of a million lines takes minutes.
const FETCHES: usize = 3;
const READ_BUFFER_BYTES: usize = 64 * 1024;
/// How long Chromium may take to load the run page once.
const BROWSER_LOAD_LIMIT: Duration = Duration::from_secs(240);
const MIB: f64 = 1024.0 * 1024.0;
const MEMORY_GOAL: &str = "bounded whatever the log's size";

pub async fn run() -> anyhow::Result<Vec<Row>> {
    let (world, connected) = e2e::start(&[]).await;
    let result = measure(&world).await;
    e2e::stop(world, connected).await?;
    result
}

async fn measure(world: &World) -> anyhow::Result<Vec<Row>> {
    let lines = std::env::var("BENCH_BIG_LOG_LINES").map_or(Ok(LINES_DEFAULT), |v| v.parse())?;
    let script = format!(
        "awk 'BEGIN {{ for (i = 1; i <= {lines}; i++) printf \"\\033[32mline %d\\033[0m\\n\", i }}'"
    );
    let sha = e2e::commit_check(world, "big", &script);
    let pushed = Instant::now();
    let (status, body) = world.deliver("push", "big-log", &world.push_payload(&sha)).await;
    anyhow::ensure!(status == 202, "the webhook was answered {status}: {body}");
    let run_id = e2e::wait_completed(world, &sha).await?;
    let mut rows = vec![Row::new(
        format!("big log: a {lines}-line coloured log, push to run completed"),
        format!("{:.1} s", pushed.elapsed().as_secs_f64()),
        "none set",
    )];
    for suffix in ["", "/raw"] {
        let path = format!("/runs/{run_id}{suffix}");
        rows.extend(serve_figures(world, &path, &format!("/runs/{{id}}{suffix}")).await?);
    }
    let url = format!("{}/runs/{run_id}", world.server.http_url);
    // A browser that chokes on the page fails this row only.
    let value = match tokio::spawn(browser_load(url)).await {
        Ok(Ok(Some(value))) => value,
        Ok(Ok(None)) => "skipped: no Chromium".into(),
        Ok(Err(e)) => format!("failed: {e:#}"),
        Err(e) => format!("failed: {e}"),
    };
    rows.push(Row::new(
        "big log: run page in headless Chromium, navigation to first contentful paint / to `load`",
        value,
        "none set",
    ));
    Ok(rows)
}

/// Fetches `path` `FETCHES` times; rows (naming it `shape`) for its times and size, and the
/// server's memory.
async fn serve_figures(world: &World, path: &str, shape: &str) -> anyhow::Result<Vec<Row>> {
    let pid = world.server.pid().to_string();
    let idle = proc_status_bytes(&pid, "VmRSS");
    let (mut firsts, mut lasts, mut peaks, mut size) = (Vec::new(), Vec::new(), Vec::new(), 0);
    for _ in 0..FETCHES {
        std::fs::write(format!("/proc/{pid}/clear_refs"), "5")?;
        let fetch = fetch(&world.server.http_url, path).await?;
        peaks.push(proc_status_bytes(&pid, "VmHWM") as f64);
        firsts.push(fetch.first_byte.as_secs_f64() * 1000.0);
        lasts.push(fetch.last_byte.as_secs_f64() * 1000.0);
        size = fetch.bytes;
    }
    Ok(vec![
        Row::new(
            format!("big log: GET {shape}, first byte / last byte / size (median of {FETCHES})"),
            format!(
                "{:.0} ms / {:.0} ms / {:.1} MiB",
                median(firsts),
                median(lasts),
                size as f64 / MIB
            ),
            "none set",
        ),
        Row::new(
            format!("big log: server peak RSS while serving GET {shape} (idle before)"),
            format!("{:.1} MiB ({:.1} MiB)", median(peaks) / MIB, idle as f64 / MIB),
            MEMORY_GOAL,
        ),
    ])
}

/// One plain HTTP/1.1 GET's timing, from before the connect.
struct Fetch {
    first_byte: Duration,
    last_byte: Duration,
    /// The response's bytes, head included.
    bytes: usize,
}

async fn fetch(base: &str, path: &str) -> anyhow::Result<Fetch> {
    let host = base.trim_start_matches("http://");
    let started = Instant::now();
    let mut stream = tokio::net::TcpStream::connect(host).await?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut buffer = vec![0; READ_BUFFER_BYTES];
    let mut bytes = stream.read(&mut buffer).await?;
    let first_byte = started.elapsed();
    let head = String::from_utf8_lossy(&buffer[..bytes.min(64)]).into_owned();
    anyhow::ensure!(head.starts_with("HTTP/1.1 200"), "GET {path}: {head}");
    loop {
        match stream.read(&mut buffer).await? {
            0 => break,
            n => bytes += n,
        }
    }
    Ok(Fetch { first_byte, last_byte: started.elapsed(), bytes })
}

/// Loads `url` once in headless Chromium: the ms from navigation start to the first contentful
/// paint and to the end of the `load` event, as the page's own timings say; `None` without
/// Chromium. A page that does not load within `BROWSER_LOAD_LIMIT` is reported as such, with the
/// lines it had then.
async fn browser_load(url: String) -> anyhow::Result<Option<String>> {
    let Some(mut browser) = Browser::start().await else {
        return Ok(None);
    };
    browser.navigate(&url).await;
    let loaded = "document.readyState === 'complete' \
                  && performance.getEntriesByType('navigation')[0].loadEventEnd > 0";
    let done = browser.wait_for(BROWSER_LOAD_LIMIT, loaded).await;
    let paint = "performance.getEntriesByName('first-contentful-paint')[0]?.startTime ?? -1";
    let paint = browser.eval(paint).await.as_f64().unwrap_or(-1.0);
    let paint = if paint < 0.0 { "none".to_string() } else { format!("{paint:.0} ms") };
    let value = if done {
        let load = "performance.getEntriesByType('navigation')[0].loadEventEnd";
        let load = browser.eval(load).await.as_f64().unwrap_or(0.0);
        format!("{paint} / {load:.0} ms")
    } else {
        let lines = browser.eval("document.getElementsByClassName('line').length").await;
        format!("{paint} / not within {BROWSER_LOAD_LIMIT:?} ({lines} lines in the DOM then)")
    };
    browser.close().await;
    Ok(Some(value))
}
