//! A run's log as it is written: the exact bytes, the same rendered to HTML line by line, and
//! the last lines for the check run's text, all with bounded memory; each rendered line is also
//! published to live readers.

use super::live::LivePublisher;
use super::tail::Tail;
use crate::logs::{LogStore, LogWriter};
use crate::render::{Renderer, line_markup};

pub struct RunLog {
    raw: LogWriter,
    html: LogWriter,
    renderer: Renderer,
    tail: Tail,
    live: LivePublisher,
    /// Bytes stored at most; beyond them the run goes on and its output is dropped.
    max_bytes: u64,
    cut: bool,
}

impl RunLog {
    /// Opens the run's blobs; its lines go to `live`.
    pub async fn open(
        logs: &LogStore,
        live: LivePublisher,
        max_bytes: u64,
    ) -> anyhow::Result<RunLog> {
        let run_id = live.run_id();
        let raw = logs.writer(run_id).await?;
        let html = logs.html_writer(run_id).await?;
        let renderer = Renderer::new();
        Ok(RunLog { raw, html, renderer, tail: Tail::default(), live, max_bytes, cut: false })
    }

    /// Stores and renders a chunk; past `max_bytes` the rest of the log is dropped, once, with a
    /// marker line that says so.
    pub async fn push(&mut self, data: &[u8]) -> anyhow::Result<()> {
        if self.cut {
            return Ok(());
        }
        let room = self.max_bytes.saturating_sub(self.raw.bytes());
        let kept = &data[..data.len().min(room as usize)];
        self.store(kept).await?;
        if kept.len() < data.len() {
            self.cut = true;
            let marker = format!(
                "\n[tether: the log reached {} bytes; the rest of the output was not stored]\n",
                self.max_bytes
            );
            self.render(marker.as_bytes()).await?;
            self.tail.push(marker.as_bytes());
        }
        Ok(())
    }

    async fn store(&mut self, data: &[u8]) -> anyhow::Result<()> {
        self.raw.write(data).await?;
        self.tail.push(data);
        self.render(data).await
    }

    async fn render(&mut self, data: &[u8]) -> anyhow::Result<()> {
        let mut markup = String::new();
        for line in self.renderer.push(data) {
            let line_html = line_markup(&line);
            self.live.line(line.number, &line_html);
            markup.push_str(&line_html);
        }
        if !markup.is_empty() {
            self.html.write(markup.as_bytes()).await?;
        }
        Ok(())
    }

    /// Completes both blobs; returns the tail, and the publisher, which ends the live log when
    /// dropped (once the run's end is recorded, so that a reader told of it finds it done).
    pub async fn finish(mut self) -> anyhow::Result<(Tail, LivePublisher)> {
        if let Some(line) = self.renderer.finish() {
            let line_html = line_markup(&line);
            self.live.line(line.number, &line_html);
            self.html.write(line_html.as_bytes()).await?;
        }
        self.raw.finish().await?;
        self.html.finish().await?;
        Ok((self.tail, self.live))
    }
}
