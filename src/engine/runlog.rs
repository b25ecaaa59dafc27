//! A run's log as it is written: the exact bytes, the same rendered to HTML line by line, and
//! the last lines for the check run's text, all with bounded memory; each rendered line is also
//! published to live readers.

use std::sync::Arc;
use std::time::SystemTime;

use super::live::{LiveLine, LivePublisher};
use super::tail::Tail;
use crate::core::Step;
use crate::logs::{LogPages, LogStore, LogWriter};
use crate::render::{Line, LineMap, Renderer, clock, push_line_markup};

/// Lines per page of the run page: a page of a million-line log stays quick to load and render.
pub const LOG_PAGE_LINES: u64 = 10_000;
/// How much bigger than a chunk of output its HTML usually is (short lines cost the most).
const MARKUP_GROWTH: usize = 3;
/// Room kept at the end of the HTML blob for the line that says where the log was cut.
const CUT_MARKER_HTML_BYTES: u64 = 512;

pub struct RunLog {
    logs: LogStore,
    raw: LogWriter,
    html: LogWriter,
    renderer: Renderer,
    tail: Tail,
    live: LivePublisher,
    /// Bytes stored at most in each blob; beyond them the run goes on and its output is dropped.
    max_bytes: u64,
    /// The raw log reached `max_bytes`: nothing more is stored.
    cut: bool,
    /// The HTML reached `max_bytes` (less room for its marker): nothing more is rendered.
    html_cut: bool,
    /// When the line being rendered got its first byte (on the runner's clock): its timestamp.
    line_since: Option<SystemTime>,
    /// Where each page of the HTML log starts, and the number of the last line written.
    page_offsets: Vec<u64>,
    lines: u64,
    /// The last time stamped and how it reads: a chunk's lines share one.
    clock: Option<(SystemTime, String)>,
    /// The log's lines (as the runner counts them) to the page's.
    map: LineMap,
}

impl RunLog {
    /// Opens the run's blobs; its lines go to `live`.
    pub async fn open(
        logs: &LogStore,
        live: LivePublisher,
        max_bytes: u64,
    ) -> anyhow::Result<RunLog> {
        let run_id = live.run_id();
        Ok(RunLog {
            logs: logs.clone(),
            raw: logs.writer(run_id).await?,
            html: logs.html_writer(run_id).await?,
            renderer: Renderer::new(),
            tail: Tail::default(),
            live,
            max_bytes,
            cut: false,
            html_cut: false,
            line_since: None,
            page_offsets: Vec::new(),
            lines: 0,
            clock: None,
            map: LineMap::new(),
        })
    }

    /// Stores and renders a chunk the runner read at `at`. Past `max_bytes` of either blob the
    /// rest of it is dropped, once, with a marker line at the end of the HTML that says so.
    pub async fn push(&mut self, data: &[u8], at: SystemTime) -> anyhow::Result<()> {
        if self.cut {
            return Ok(());
        }
        let room = self.max_bytes.saturating_sub(self.raw.bytes());
        let kept = &data[..data.len().min(room as usize)];
        self.raw.write(kept).await?;
        self.live.raw(kept);
        self.tail.push(kept);
        if !self.html_cut {
            self.render(kept, at).await?;
        }
        if kept.len() < data.len() {
            self.cut = true;
            let marker = format!(
                "[tether: the log reached {} bytes; the rest of the output was not stored]",
                self.max_bytes
            );
            self.tail.push(format!("\n{marker}\n").as_bytes());
            if !self.html_cut {
                let last = self.renderer.finish();
                self.end_html(last, &marker, at).await?;
            }
        }
        Ok(())
    }

    /// Renders a chunk; each line it completes is stamped with the time its first byte came.
    async fn render(&mut self, data: &[u8], at: SystemTime) -> anyhow::Result<()> {
        let mut since = self.line_since.unwrap_or(at);
        // Room for the lines' markup around their text, so that it is not copied as it grows.
        let mut markup = String::with_capacity(data.len() * MARKUP_GROWTH + 256);
        let mut published = Vec::new();
        for line in self.renderer.push(data) {
            self.map.saw(&line);
            if !self.add_line(&line, since, &mut markup, &mut published) {
                self.html_cut = true;
                let marker = self.html_cut_marker();
                self.add_marker(&marker, at, &mut markup, &mut published);
                break;
            }
            since = at;
        }
        self.line_since = (!data.is_empty() && !data.ends_with(b"\n")).then_some(since);
        self.write(markup, published).await
    }

    /// Ends the HTML: `last` (the line in progress) if it fits, then the marker line.
    async fn end_html(
        &mut self,
        last: Option<Line>,
        marker: &str,
        at: SystemTime,
    ) -> anyhow::Result<()> {
        self.html_cut = true;
        let (mut markup, mut published) = (String::new(), Vec::new());
        let since = self.line_since.unwrap_or(at);
        let last_fits = last.is_none_or(|l| self.add_line(&l, since, &mut markup, &mut published));
        let html_marker;
        let marker = if last_fits {
            marker
        } else {
            html_marker = self.html_cut_marker();
            &html_marker
        };
        self.add_marker(marker, at, &mut markup, &mut published);
        self.write(markup, published).await
    }

    fn html_cut_marker(&self) -> String {
        format!(
            "[tether: the log reached {} bytes of HTML; the rest of the output is only in the raw \
             log]",
            self.max_bytes
        )
    }

    /// Appends a line's markup to `markup` (what is about to be written), noting where a page
    /// starts, and to what is about to be published; false, and nothing appended, when the HTML
    /// would pass `max_bytes` less the room kept for the marker.
    fn add_line(
        &mut self,
        line: &Line,
        at: SystemTime,
        markup: &mut String,
        published: &mut Vec<LiveLine>,
    ) -> bool {
        self.push_line(line, at, markup, published, CUT_MARKER_HTML_BYTES)
    }

    /// Appends tether's own line `text` (plain, not escaped: it holds no markup characters).
    fn add_marker(
        &mut self,
        text: &str,
        at: SystemTime,
        markup: &mut String,
        published: &mut Vec<LiveLine>,
    ) {
        debug_assert!(!text.contains(['<', '>', '"', '\'']), "{text}");
        let line = Line { number: self.lines + 1, html: text.to_string(), wrapped: false };
        let start = markup.len();
        // Room for the class added below, so that the HTML stays within `max_bytes`.
        let class = "line tether".len() - "line".len();
        if self.push_line(&line, at, markup, published, class as u64) {
            // tether's own words, styled apart from the check's output.
            markup.replace_range(start..start + 17, "<div class=\"line tether\"");
            if let Some((_, html)) = published.last_mut() {
                *html = Arc::from(markup[start..].trim_end_matches('\n'));
            }
        }
    }

    fn push_line(
        &mut self,
        line: &Line,
        at: SystemTime,
        markup: &mut String,
        published: &mut Vec<LiveLine>,
        reserve: u64,
    ) -> bool {
        if self.clock.as_ref().is_none_or(|(time, _)| *time != at) {
            self.clock = Some((at, clock(at)));
        }
        let start = markup.len();
        push_line_markup(markup, line, self.clock.as_ref().map_or("", |(_, c)| c));
        let offset = self.html.bytes() + start as u64;
        if offset + (markup.len() - start) as u64 + reserve > self.max_bytes {
            markup.truncate(start);
            return false;
        }
        if (line.number - 1) % LOG_PAGE_LINES == 0 {
            self.page_offsets.push(offset);
        }
        published.push((line.number, Arc::from(markup[start..].trim_end_matches('\n'))));
        self.lines = line.number;
        true
    }

    async fn write(&mut self, markup: String, published: Vec<LiveLine>) -> anyhow::Result<()> {
        self.live.lines(published);
        if !markup.is_empty() {
            self.html.write(markup.as_bytes()).await?;
        }
        Ok(())
    }

    /// `step` with its lines as the page numbers them (a line split for length takes several);
    /// within the lines stored once the log was cut.
    pub fn on_page(&self, mut step: Step) -> Step {
        step.first_line = self.map.first(step.first_line.max(1));
        step.last_line = self.map.last(step.last_line.max(1)).max(step.first_line);
        if self.cut || self.html_cut {
            let stored = self.lines.max(1);
            step.first_line = step.first_line.min(stored);
            step.last_line = step.last_line.min(stored);
        }
        step
    }

    /// Ends the page with tether's own last word, a line styled apart; the raw log keeps only
    /// the check's bytes. Nothing is rendered after it.
    pub async fn last_word(&mut self, text: &str, at: SystemTime) -> anyhow::Result<()> {
        if self.html_cut {
            return Ok(());
        }
        let text = format!("tether: {text}")
            .replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
            .replace('\'', "&#39;");
        let last = self.renderer.finish();
        self.end_html(last, &text, at).await
    }

    /// The page's lines so far, the one in progress included.
    pub fn page_lines(&self) -> u64 {
        self.lines + u64::from(self.line_since.is_some() && !self.html_cut)
    }

    /// Completes the blobs; returns the tail, and the publisher, which ends the live log when
    /// dropped (once the run's end is recorded, so that a reader told of it finds it done).
    pub async fn finish(mut self) -> anyhow::Result<(Tail, LivePublisher)> {
        let last = if self.html_cut { None } else { self.renderer.finish() };
        if let Some(line) = last {
            let (mut markup, mut published) = (String::new(), Vec::new());
            let at = self.line_since.unwrap_or_else(SystemTime::now);
            if self.add_line(&line, at, &mut markup, &mut published) {
                self.write(markup, published).await?;
            } else {
                self.end_html(None, &self.html_cut_marker(), at).await?;
            }
        }
        let pages = LogPages {
            lines: self.lines,
            lines_per_page: LOG_PAGE_LINES,
            offsets: self.page_offsets,
            bytes: self.html.bytes(),
        };
        self.raw.finish().await?;
        self.html.finish().await?;
        self.logs.put_pages(self.live.run_id(), &pages).await?;
        Ok((self.tail, self.live))
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;
    use crate::engine::live::LiveLogs;

    fn at(ms: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(1_795_435_200_000 + ms)
    }

    async fn open(max_bytes: u64) -> (LogStore, RunLog) {
        let logs =
            LogStore::open(Some("memory:///"), std::path::Path::new("/nonexistent")).unwrap();
        let log = RunLog::open(&logs, LiveLogs::default().start(1), max_bytes).await.unwrap();
        (logs, log)
    }

    async fn html(logs: &LogStore) -> String {
        String::from_utf8(logs.html(1).await.unwrap().unwrap().to_vec()).unwrap()
    }

    #[tokio::test]
    async fn each_line_is_stamped_with_the_time_of_its_first_byte() {
        let (logs, mut log) = open(u64::MAX).await;
        log.push(b"one, ", at(1)).await.unwrap();
        log.push(b"still one\ntwo\nthree", at(2)).await.unwrap();
        log.push(b" and more\n", at(3)).await.unwrap();
        log.push(b"four", at(4)).await.unwrap();
        log.finish().await.unwrap();
        let html = html(&logs).await;
        let stamps: Vec<&str> =
            html.match_indices("<time>").map(|(i, _)| &html[i + 6..i + 18]).collect();
        let ms = |n| format!("12:00:00.00{n}");
        assert_eq!(stamps, [ms(1), ms(2), ms(2), ms(4)], "{html}");
    }

    #[tokio::test]
    async fn the_page_index_points_at_the_first_line_of_each_page() {
        let (logs, mut log) = open(u64::MAX).await;
        let lines = 2 * LOG_PAGE_LINES + 5;
        let text: String = (1..=lines).map(|n| format!("line {n}\n")).collect();
        for chunk in text.as_bytes().chunks(777) {
            log.push(chunk, at(0)).await.unwrap();
        }
        log.finish().await.unwrap();
        let pages = logs.pages(1).await.unwrap().unwrap();
        assert_eq!((pages.lines, pages.offsets.len()), (lines, 3));
        let html = html(&logs).await;
        assert_eq!(pages.bytes, html.len() as u64);
        for (k, first) in [(0, 1), (1, LOG_PAGE_LINES + 1), (2, 2 * LOG_PAGE_LINES + 1)] {
            let range = pages.range(k).unwrap();
            let page = &html[range.start as usize..range.end as usize];
            assert!(page.starts_with(&format!("<div class=\"line\" id=\"L{first}\">")), "page {k}");
            assert_eq!(
                page.matches("class=\"line\"").count() as u64,
                (lines - first + 1).min(LOG_PAGE_LINES)
            );
        }
        assert_eq!(pages.range(3), None);
    }

    #[tokio::test]
    async fn the_html_is_cut_at_max_bytes_too_and_the_raw_log_goes_on() {
        let (logs, mut log) = open(4000).await;
        // Short styled lines: their page markup is many times their bytes.
        for _ in 0..300 {
            log.push(b"\x1b[1;31mx\x1b[0m\n", at(1)).await.unwrap();
        }
        log.finish().await.unwrap();
        let html = html(&logs).await;
        assert!(html.len() <= 4000, "{} bytes of HTML", html.len());
        assert_eq!(logs.raw(1).await.unwrap().unwrap().len(), 300 * 13);
        let last = html.lines().last().unwrap();
        assert!(last.contains("the log reached 4000 bytes of HTML"), "{last}");
        let pages = logs.pages(1).await.unwrap().unwrap();
        assert_eq!(pages.bytes, html.len() as u64);
        assert_eq!(pages.lines, html.lines().count() as u64);
    }

    #[tokio::test]
    async fn a_raw_cut_ends_the_html_with_the_last_line_and_a_marker() {
        let (logs, mut log) = open(2000).await;
        // Lines of mostly escapes, so that their HTML is smaller than their bytes: the raw log
        // reaches the limit first.
        let line = [b"\x1b[0m".repeat(100), b"ab\n".to_vec()].concat();
        for _ in 0..4 {
            log.push(&line, at(1)).await.unwrap();
        }
        log.push(&[b"partial line".as_slice(), &[b'z'; 500]].concat(), at(2)).await.unwrap();
        log.push(b"never stored\n", at(3)).await.unwrap();
        log.finish().await.unwrap();
        assert_eq!(logs.raw(1).await.unwrap().unwrap().len(), 2000);
        let html = html(&logs).await;
        assert!(html.len() <= 2000, "{} bytes of HTML", html.len());
        let lines: Vec<&str> = html.lines().collect();
        assert_eq!(lines.len(), 6, "{html}");
        let partial = format!("<span>partial line{}</span>", "z".repeat(2000 - 4 * 403 - 12));
        assert!(lines[4].contains(&partial), "{}", lines[4]);
        assert!(lines[5].contains("the log reached 2000 bytes; the rest"), "{}", lines[5]);
        assert!(!html.contains("never"));
    }
}
