//! Live logs: the rendered lines of each running run, kept in a bounded ring and broadcast to
//! readers (the run page's Server-Sent Events) as they come.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures::Stream;
use tokio::sync::{broadcast, watch};

/// The most lines of a run kept for readers that join late or fall behind.
pub const LIVE_LINES_MAX: usize = 10_000;
/// The most bytes of markup of a run kept for them; the last line stays, however big.
pub const LIVE_RING_MAX_BYTES: usize = 4 << 20;
/// How many lines a reader may fall behind the broadcast before it catches up from the ring.
const BROADCAST_LINES: usize = 1_024;
/// How long a finished run stays, so that readers can see its end.
pub const FINISHED_KEEP: Duration = Duration::from_secs(30);
/// The most raw bytes of a run kept for readers of its raw log (`ssh … logs RUN`); older
/// bytes are only in the blob once the run ends.
pub const LIVE_RAW_MAX_BYTES: usize = 1 << 20;

/// A rendered line: its number and its markup (`line_markup` without the newline).
pub type LiveLine = (u64, Arc<str>);

/// What a reader gets, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LiveItem {
    Line(u64, Arc<str>),
    /// The run ended: every line was sent.
    End,
    /// The reader fell behind further than the ring goes back: it should start over.
    Reload,
}

/// What the broadcast carries: line numbers only, so that the markup is held once, in the ring
/// (bounded in bytes), and readers copy it from there.
#[derive(Clone)]
enum Broadcast {
    Line(u64),
    End,
}

/// The registry of running runs' logs, shared by the engine (which publishes) and HTTP (which
/// reads).
#[derive(Clone, Default)]
pub struct LiveLogs {
    runs: Arc<Mutex<HashMap<i64, Arc<LiveRun>>>>,
}

struct LiveRun {
    /// Lines are pushed and broadcast under this lock, so that a reader that subscribes and
    /// copies the ring under it misses nothing.
    state: Mutex<RunState>,
    sender: broadcast::Sender<Broadcast>,
    /// Raw readers' wake-up: the count of raw bytes published, changed after each chunk and at
    /// the end. A watch, so that a reader never lags: it copies from the ring what it lacks.
    raw_sent: watch::Sender<u64>,
}

#[derive(Default)]
struct RunState {
    lines: VecDeque<LiveLine>,
    /// The bytes of markup in `lines`.
    bytes: usize,
    finished: bool,
    raw: RawRing,
}

/// The last raw bytes of a run, at most [`LIVE_RAW_MAX_BYTES`], as the chunks they came in.
#[derive(Default)]
struct RawRing {
    chunks: VecDeque<Bytes>,
    /// The offset in the whole raw log of the first byte kept.
    start: u64,
    /// The bytes kept.
    bytes: usize,
}

impl RawRing {
    fn push(&mut self, data: &[u8]) {
        self.chunks.push_back(Bytes::copy_from_slice(data));
        self.bytes += data.len();
        while self.bytes > LIVE_RAW_MAX_BYTES {
            let Some(old) = self.chunks.pop_front() else { break };
            self.bytes -= old.len();
            self.start += old.len() as u64;
        }
    }

    fn end(&self) -> u64 {
        self.start + self.bytes as u64
    }

    /// What a reader at offset `from` gets now: the bytes it lacks that are gone from the ring
    /// (skipped), and the kept bytes after `from`.
    fn since(&self, from: u64) -> (u64, Vec<Bytes>) {
        let skipped = self.start.saturating_sub(from);
        let mut at = self.start;
        let mut out = Vec::new();
        for chunk in &self.chunks {
            let end = at + chunk.len() as u64;
            if end > from {
                let cut = from.saturating_sub(at) as usize;
                out.push(chunk.slice(cut..));
            }
            at = end;
        }
        (skipped, out)
    }
}

/// What a reader of a running run's raw log gets, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RawItem {
    Bytes(Bytes),
    /// This many bytes are gone from the ring before the reader got them.
    Skipped(u64),
    /// The run ended: every byte was sent.
    End,
}

impl RunState {
    /// The lines after `after`, or `None` if some of them already left the ring.
    fn since(&self, after: u64) -> Option<Vec<LiveLine>> {
        match self.lines.front() {
            Some((first, _)) if *first > after + 1 => None,
            _ => {
                let start = self.lines.partition_point(|(n, _)| *n <= after);
                Some(self.lines.range(start..).cloned().collect())
            }
        }
    }

    /// Adds a line, dropping the oldest beyond `LIVE_LINES_MAX` lines or `LIVE_RING_MAX_BYTES`.
    fn push(&mut self, line: LiveLine) {
        self.bytes += line.1.len();
        self.lines.push_back(line);
        while self.lines.len() > LIVE_LINES_MAX
            || (self.bytes > LIVE_RING_MAX_BYTES && self.lines.len() > 1)
        {
            let Some((_, html)) = self.lines.pop_front() else { break };
            self.bytes -= html.len();
        }
    }
}

/// A running run's lines so far.
pub struct Snapshot {
    pub lines: Vec<LiveLine>,
    pub finished: bool,
}

impl LiveLogs {
    /// Registers a run that starts; its lines go through the publisher, which marks the run
    /// finished when dropped.
    pub fn start(&self, run_id: i64) -> LivePublisher {
        let (sender, _) = broadcast::channel(BROADCAST_LINES);
        let (raw_sent, _) = watch::channel(0);
        let run = Arc::new(LiveRun { state: Mutex::default(), sender, raw_sent });
        self.lock().insert(run_id, run.clone());
        LivePublisher { logs: self.clone(), run_id, run }
    }

    /// The lines so far of a run that is live (or just finished).
    pub fn snapshot(&self, run_id: i64) -> Option<Snapshot> {
        let run = self.lock().get(&run_id).cloned()?;
        let state = run.state.lock().expect("live run lock poisoned");
        Some(Snapshot { lines: state.lines.iter().cloned().collect(), finished: state.finished })
    }

    /// The lines after `after`, then the live ones, then the end; `None` if the run is not live.
    pub fn follow(&self, run_id: i64, after: u64) -> Option<impl Stream<Item = LiveItem> + use<>> {
        let run = self.lock().get(&run_id).cloned()?;
        let (receiver, backlog, finished) = {
            let state = run.state.lock().expect("live run lock poisoned");
            (run.sender.subscribe(), state.since(after), state.finished)
        };
        Some(items(run, receiver, backlog, finished, after))
    }

    /// The raw bytes from offset `from` (those still in the ring), then the live ones, then the
    /// end; `None` if the run is not live. Bytes gone from the ring come as `Skipped`.
    pub fn follow_raw(
        &self,
        run_id: i64,
        from: u64,
    ) -> Option<impl Stream<Item = RawItem> + use<>> {
        let run = self.lock().get(&run_id).cloned()?;
        Some(raw_items(run, from))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<i64, Arc<LiveRun>>> {
        self.runs.lock().expect("live logs lock poisoned")
    }
}

/// The backlog (or `Reload` if it is gone), then what the broadcast brings, skipping lines
/// already sent; a reader that lagged catches up from the ring.
fn items(
    run: Arc<LiveRun>,
    mut receiver: broadcast::Receiver<Broadcast>,
    backlog: Option<Vec<LiveLine>>,
    finished: bool,
    after: u64,
) -> impl Stream<Item = LiveItem> {
    async_stream::stream! {
        let mut last = after;
        let Some(backlog) = backlog else {
            yield LiveItem::Reload;
            return;
        };
        for (n, html) in backlog {
            last = n;
            yield LiveItem::Line(n, html);
        }
        if finished {
            yield LiveItem::End;
            return;
        }
        loop {
            match receiver.recv().await {
                Ok(Broadcast::Line(n)) if n <= last => {}
                Ok(Broadcast::End) | Err(broadcast::error::RecvError::Closed) => {
                    yield LiveItem::End;
                    return;
                }
                // A new line, or lines missed: whatever the ring has after the last one sent.
                Ok(Broadcast::Line(_)) | Err(broadcast::error::RecvError::Lagged(_)) => {
                    let caught_up = run.state.lock().expect("live run lock poisoned").since(last);
                    let Some(lines) = caught_up else {
                        yield LiveItem::Reload;
                        return;
                    };
                    for (n, html) in lines {
                        last = n;
                        yield LiveItem::Line(n, html);
                    }
                }
            }
        }
    }
}

/// What the ring holds after `from`, then what comes, until the run is finished and all of it
/// was read.
fn raw_items(run: Arc<LiveRun>, mut from: u64) -> impl Stream<Item = RawItem> {
    async_stream::stream! {
        let mut changed = run.raw_sent.subscribe();
        loop {
            // Marked seen before the copy: a chunk pushed after it wakes the reader again.
            changed.borrow_and_update();
            let (skipped, chunks, end, finished) = {
                let state = run.state.lock().expect("live run lock poisoned");
                let (skipped, chunks) = state.raw.since(from);
                (skipped, chunks, state.raw.end(), state.finished)
            };
            if skipped > 0 {
                yield RawItem::Skipped(skipped);
            }
            for chunk in chunks {
                yield RawItem::Bytes(chunk);
            }
            from = end;
            if finished {
                yield RawItem::End;
                return;
            }
            if changed.changed().await.is_err() {
                yield RawItem::End;
                return;
            }
        }
    }
}

/// Publishes one run's lines; dropping it marks the run finished and removes it a little later.
pub struct LivePublisher {
    logs: LiveLogs,
    run_id: i64,
    run: Arc<LiveRun>,
}

impl LivePublisher {
    pub fn run_id(&self) -> i64 {
        self.run_id
    }

    /// Publishes lines' markup, without newlines, in order: under one lock, as a chunk of
    /// output completes many lines at once.
    pub fn lines(&self, lines: Vec<LiveLine>) {
        let mut state = self.run.state.lock().expect("live run lock poisoned");
        for (number, html) in lines {
            debug_assert!(!html.contains(['\n', '\r']), "a rendered line holds no newline");
            state.push((number, html));
            // No receiver is not an error: nobody is watching.
            let _ = self.run.sender.send(Broadcast::Line(number));
        }
    }

    /// Publishes raw bytes of the log, exactly as they are stored.
    pub fn raw(&self, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        let end = {
            let mut state = self.run.state.lock().expect("live run lock poisoned");
            state.raw.push(data);
            state.raw.end()
        };
        self.run.raw_sent.send_replace(end);
    }
}

impl Drop for LivePublisher {
    fn drop(&mut self) {
        {
            let mut state = self.run.state.lock().expect("live run lock poisoned");
            state.finished = true;
            let _ = self.run.sender.send(Broadcast::End);
        }
        self.run.raw_sent.send_modify(|_| {});
        let (logs, run_id, run) = (self.logs.clone(), self.run_id, self.run.clone());
        let remove = move || {
            let mut runs = logs.lock();
            if runs.get(&run_id).is_some_and(|r| Arc::ptr_eq(r, &run)) {
                runs.remove(&run_id);
            }
        };
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                handle.spawn(async move {
                    tokio::time::sleep(FINISHED_KEEP).await;
                    remove();
                });
            }
            Err(_) => remove(),
        }
    }
}

#[cfg(test)]
mod tests {
    use futures::StreamExt;

    use super::*;

    fn line(n: u64) -> LiveItem {
        LiveItem::Line(n, Arc::from(format!("<div>{n}</div>").as_str()))
    }

    fn publish(p: &LivePublisher, range: std::ops::RangeInclusive<u64>) {
        p.lines(range.map(|n| (n, Arc::from(format!("<div>{n}</div>").as_str()))).collect());
    }

    #[tokio::test]
    async fn a_reader_gets_the_lines_after_its_last_then_live_ones_then_the_end() {
        let logs = LiveLogs::default();
        let publisher = logs.start(7);
        publish(&publisher, 1..=3);
        let mut stream = Box::pin(logs.follow(7, 1).unwrap());
        assert_eq!(stream.next().await, Some(line(2)));
        assert_eq!(stream.next().await, Some(line(3)));
        publish(&publisher, 4..=4);
        drop(publisher);
        assert_eq!(stream.next().await, Some(line(4)));
        assert_eq!(stream.next().await, Some(LiveItem::End));
        assert_eq!(stream.next().await, None);
        assert!(logs.snapshot(7).unwrap().finished);
        assert!(logs.follow(8, 0).is_none());
    }

    #[tokio::test]
    async fn a_lagging_reader_catches_up_from_the_ring_or_reloads() {
        let logs = LiveLogs::default();
        let publisher = logs.start(1);
        let mut caught_up = Box::pin(logs.follow(1, 0).unwrap());
        publish(&publisher, 1..=(BROADCAST_LINES as u64 + 10));
        for n in 1..=(BROADCAST_LINES as u64 + 10) {
            assert_eq!(caught_up.next().await, Some(line(n)));
        }
        let seen = BROADCAST_LINES as u64 + 10;
        let mut lost = Box::pin(logs.follow(1, seen).unwrap());
        publish(&publisher, (seen + 1)..=(seen + LIVE_LINES_MAX as u64 + 1));
        assert_eq!(lost.next().await, Some(LiveItem::Reload));
        assert_eq!(lost.next().await, None);
        let mut too_old = Box::pin(logs.follow(1, 2).unwrap());
        assert_eq!(too_old.next().await, Some(LiveItem::Reload));
    }

    #[tokio::test]
    async fn a_raw_reader_gets_every_byte_then_the_end_or_is_told_what_it_missed() {
        let logs = LiveLogs::default();
        let publisher = logs.start(3);
        publisher.raw(b"\x1b[31mred ");
        let mut reader = Box::pin(logs.follow_raw(3, 0).unwrap());
        assert_eq!(reader.next().await, Some(RawItem::Bytes(Bytes::from_static(b"\x1b[31mred "))));
        publisher.raw(b"more\n");
        assert_eq!(reader.next().await, Some(RawItem::Bytes(Bytes::from_static(b"more\n"))));
        let mut late = Box::pin(logs.follow_raw(3, 5).unwrap());
        assert_eq!(late.next().await, Some(RawItem::Bytes(Bytes::from_static(b"red "))));
        drop(publisher);
        assert_eq!(reader.next().await, Some(RawItem::End));
        assert_eq!(reader.next().await, None);
        let publisher = logs.start(4);
        let big = vec![b'x'; LIVE_RAW_MAX_BYTES / 2 + 1];
        for _ in 0..3 {
            publisher.raw(&big);
        }
        let mut reader = Box::pin(logs.follow_raw(4, 0).unwrap());
        assert_eq!(reader.next().await, Some(RawItem::Skipped(big.len() as u64 * 2)));
        assert_eq!(
            reader.next().await.map(|i| matches!(i, RawItem::Bytes(b) if b.len() == big.len())),
            Some(true)
        );
        drop(publisher);
        assert_eq!(reader.next().await, Some(RawItem::End));
    }

    #[tokio::test]
    async fn the_ring_is_bounded_in_bytes_and_keeps_the_last_line() {
        let logs = LiveLogs::default();
        let publisher = logs.start(1);
        let big = |n: u64| (n, Arc::from("x".repeat(1 << 20).as_str()));
        publisher.lines((1..=40).map(big).collect());
        let snapshot = logs.snapshot(1).unwrap();
        let bytes: usize = snapshot.lines.iter().map(|(_, html)| html.len()).sum();
        assert!(bytes <= LIVE_RING_MAX_BYTES, "{bytes} bytes in the ring");
        assert_eq!(snapshot.lines.last().map(|(n, _)| *n), Some(40));
        let mut late = Box::pin(logs.follow(1, 0).unwrap());
        assert_eq!(late.next().await, Some(LiveItem::Reload));
        let mut behind = Box::pin(logs.follow(1, 39).unwrap());
        assert!(matches!(behind.next().await, Some(LiveItem::Line(40, _))));
        let huge = (41, Arc::from("y".repeat(LIVE_RING_MAX_BYTES + 1).as_str()));
        publisher.lines(vec![huge]);
        assert_eq!(logs.snapshot(1).unwrap().lines.len(), 1, "the last line stays, however big");
    }
}
