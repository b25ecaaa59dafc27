//! Live logs end to end: a running run's lines as Server-Sent Events from the real server, read
//! by a raw HTTP client and by headless Chromium on the run page.

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::net::TcpStream;

use crate::browser::Browser;
use crate::serve::*;
use crate::world::*;

/// How long any one step may take.
const STEP_LIMIT: Duration = Duration::from_secs(30);

/// A check that prints `line 1`…`line 5`, waits for `release-1`, prints up to `line 10`, waits
/// for `release-2`, and prints `line 11`.
fn paused_check(dir: &Path) -> String {
    let dir = dir.display();
    format!(
        "[checks.slow]\nrun = \"\"\"\nfor i in 1 2 3 4 5; do echo line $i; done\n\
         while [ ! -e {dir}/release-1 ]; do sleep 0.05; done\n\
         for i in 6 7 8 9 10; do echo line $i; done\n\
         while [ ! -e {dir}/release-2 ]; do sleep 0.05; done\n\
         echo line 11\n\"\"\"\n"
    )
}

fn release(dir: &Path, n: u32) {
    std::fs::write(dir.join(format!("release-{n}")), "").unwrap();
}

/// Starts the paused check on alice's runner and returns its run id once it is in progress.
async fn start_paused_run(world: &World) -> String {
    let sha = world.commit_config(&paused_check(world.dir.path()));
    world.deliver("push", "delivery-live", &world.push_payload(&sha)).await;
    let runs = world
        .wait_for_check_runs(STEP_LIMIT, |rs| rs.len() == 1 && rs[0]["status"] == "in_progress")
        .await;
    assert_eq!(runs[0]["status"], "in_progress", "{runs:#?}");
    runs[0]["external_id"].as_str().unwrap().to_string()
}

/// One Server-Sent Event.
#[derive(Debug, Default)]
pub(crate) struct SseEvent {
    pub(crate) id: Option<String>,
    pub(crate) event: Option<String>,
    pub(crate) data: String,
}

/// A raw HTTP/1.0 client reading an event stream as it comes.
pub(crate) struct SseReader {
    lines: Lines<BufReader<TcpStream>>,
}

impl SseReader {
    pub(crate) async fn open(
        server: &TetherServer,
        path: &str,
        last_event_id: Option<&str>,
    ) -> SseReader {
        let host = server.http_url.trim_start_matches("http://");
        let mut stream = TcpStream::connect(host).await.unwrap();
        let resume = last_event_id.map(|id| format!("Last-Event-ID: {id}\r\n")).unwrap_or_default();
        let request = format!(
            "GET {path} HTTP/1.0\r\nHost: {host}\r\nAccept: text/event-stream\r\n{resume}\r\n"
        );
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut lines = BufReader::new(stream).lines();
        let status = lines.next_line().await.unwrap().unwrap();
        assert!(status.contains(" 200 "), "{status}");
        let mut content_type = String::new();
        while let Some(line) = lines.next_line().await.unwrap() {
            if line.is_empty() {
                break;
            }
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-type:") {
                content_type = v.trim().to_string();
            }
        }
        assert_eq!(content_type, "text/event-stream");
        SseReader { lines }
    }

    /// The next event (keep-alive comments skipped), or `None` when the server closed.
    pub(crate) async fn next(&mut self) -> Option<SseEvent> {
        let mut event = SseEvent::default();
        let mut any = false;
        loop {
            let line = tokio::time::timeout(STEP_LIMIT, self.lines.next_line())
                .await
                .expect("no event in time")
                .unwrap()?;
            match line.split_once(':') {
                _ if line.is_empty() && any => return Some(event),
                _ if line.is_empty() || line.starts_with(':') => {}
                Some(("id", v)) => event.id = Some(v.trim_start().to_string()),
                Some(("event", v)) => event.event = Some(v.trim_start().to_string()),
                Some(("data", v)) => event.data.push_str(v.strip_prefix(' ').unwrap_or(v)),
                _ => panic!("not an event stream line: {line:?}"),
            }
            any |= !line.is_empty() && !line.starts_with(':');
        }
    }

    /// The next event, which is line `n`.
    async fn expect_line(&mut self, n: u64) {
        let event = self.next().await.expect("the stream ended early");
        assert_eq!(event.id.as_deref(), Some(n.to_string().as_str()), "{event:?}");
        assert!(event.event.is_none(), "{event:?}");
        assert!(event.data.starts_with(&format!("<div class=\"line\" id=\"L{n}\">")), "{event:?}");
        assert!(event.data.contains(&format!(">line {n}</span>")), "{event:?}");
    }

    async fn expect_end(&mut self) {
        let event = self.next().await.expect("the stream ended without `end`");
        assert_eq!(event.event.as_deref(), Some("end"), "{event:?}");
        assert!(self.next().await.is_none(), "the stream goes on after `end`");
    }
}

async fn run_status(world: &World, run: &str) -> String {
    let (_, json) = world.server.get(&format!("/api/v1/runs/{run}")).await;
    let json: Value = serde_json::from_str(&json).unwrap();
    json["status"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn a_running_runs_lines_stream_resume_after_the_last_event_id_and_end() {
    let world = World::new().await;
    let (_runner, _ssh) = world.connect_runner().await;
    let run = start_paused_run(&world).await;
    let events = format!("/runs/{run}/events");

    let mut first = SseReader::open(&world.server, &events, None).await;
    for n in 1..=3 {
        first.expect_line(n).await;
    }
    assert_eq!(run_status(&world, &run).await, "in_progress");
    drop(first);

    let (_, page) = world.server.get(&format!("/runs/{run}")).await;
    assert!(page.contains(&format!("data-run=\"{run}\" data-last=\"5\"")), "{page}");
    assert!(page.contains(r#"<script src="/static/live.js" defer></script>"#), "{page}");
    assert!(page.contains(">line 5</span>") && !page.contains(">line 6</span>"), "{page}");

    // Resumed after line 3: 4 and 5 from the ring, then live ones, no gap, no duplicate.
    let mut resumed = SseReader::open(&world.server, &events, Some("3")).await;
    resumed.expect_line(4).await;
    resumed.expect_line(5).await;
    release(world.dir.path(), 1);
    for n in 6..=10 {
        resumed.expect_line(n).await;
    }
    // `?after=` stands in for the header on a first connection.
    let mut after = SseReader::open(&world.server, &format!("{events}?after=9"), None).await;
    after.expect_line(10).await;
    release(world.dir.path(), 2);
    resumed.expect_line(11).await;
    resumed.expect_end().await;
    after.expect_line(11).await;
    after.expect_end().await;

    assert_finished(&world, &run).await;
}

/// The run is done: its raw log is what the command wrote, its stream just its end, and its page
/// the stored log without the script.
async fn assert_finished(world: &World, run: &str) {
    world.wait_for_check_runs(STEP_LIMIT, |rs| completed(rs, 1)).await;
    let (status, raw) = world.server.get(&format!("/runs/{run}/raw")).await;
    assert_eq!(status, 200);
    let written: String = (1..=11).map(|n| format!("line {n}\n")).collect();
    assert_eq!(Sha256::digest(raw.as_bytes()), Sha256::digest(written.as_bytes()));
    let events = format!("/runs/{run}/events");
    SseReader::open(&world.server, &events, None).await.expect_end().await;
    let (_, page) = world.server.get(&format!("/runs/{run}")).await;
    assert!(page.contains(">line 11</span>") && !page.contains("live.js"), "{page}");
}

#[tokio::test]
async fn the_live_script_is_served_and_unknown_runs_have_no_events() {
    let world = World::new().await;
    let (status, script) = world.server.get("/static/live.js").await;
    assert_eq!(status, 200);
    assert!(script.contains("EventSource"), "{script}");
    let (status, _) = world.server.get("/runs/999/events").await;
    assert_eq!(status, 404);
}

/// Polls the run page until it is served with lines up to `n`.
async fn wait_for_page_lines(world: &World, run: &str, n: u64) {
    let marker = format!("data-last=\"{n}\"");
    let deadline = tokio::time::Instant::now() + STEP_LIMIT;
    loop {
        let page = world.server.get(&format!("/runs/{run}")).await.1;
        if page.contains(&marker) {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "{page}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn the_run_page_in_a_browser_follows_the_log_and_reloads_at_the_end() {
    let Some(mut browser) = Browser::start().await else { return };
    let world = World::new().await;
    let (_runner, _ssh) = world.connect_runner().await;
    let run = start_paused_run(&world).await;
    wait_for_page_lines(&world, &run, 5).await;

    browser.navigate(&format!("{}/runs/{run}#L2", world.server.http_url)).await;
    // Served with lines 1 to 5 (and it says so), with line 2 the target.
    assert!(browser.wait_for(STEP_LIMIT, "document.getElementById('L5') !== null").await);
    let dom = browser.dom().await;
    assert!(dom.contains("data-last=\"5\"") && !dom.contains("id=\"L6\""), "{dom}");
    let target = "document.querySelector(':target')?.id === 'L2'";
    assert!(browser.wait_for(STEP_LIMIT, target).await, "{dom}");

    // Lines 6 to 10 come over the event stream, without a gap or a duplicate.
    release(world.dir.path(), 1);
    assert!(browser.wait_for(STEP_LIMIT, "document.getElementById('L10') !== null").await);
    let dom = browser.dom().await;
    assert!(dom.contains("data-last=\"5\""), "not the page that was served: {dom}");
    let numbers = browser.eval("[...document.querySelectorAll('#log .line')].map(l => l.id)").await;
    let expected: Vec<String> = (1..=10).map(|n| format!("L{n}")).collect();
    assert_eq!(numbers, json!(expected), "{dom}");
    assert!(dom.contains(">line 10</span>"), "{dom}");

    // At the end the page reloads into the finished run's stored log.
    release(world.dir.path(), 2);
    let finished = "document.querySelector('#log[data-run]') === null \
                    && document.querySelectorAll('.log .line').length === 11";
    assert!(browser.wait_for(STEP_LIMIT, finished).await, "{}", browser.dom().await);
    assert!(browser.wait_for(STEP_LIMIT, "document.querySelector(':target')?.id === 'L2'").await);

    // A range: `#L3-L5` highlights exactly those lines on the finished page.
    browser.navigate(&format!("{}/runs/{run}#L3-L5", world.server.http_url)).await;
    let range =
        "[...document.querySelectorAll('.log .line.hl')].map(l => l.id).join() === 'L3,L4,L5'";
    assert!(browser.wait_for(STEP_LIMIT, range).await, "{}", browser.dom().await);
}
