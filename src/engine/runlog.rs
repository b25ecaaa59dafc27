//! A run's log as it is written: the exact bytes, the same rendered to HTML line by line, and
//! the last lines for the check run's text, all with bounded memory.

use super::tail::Tail;
use crate::logs::{LogStore, LogWriter};
use crate::render::{Renderer, line_markup};

pub struct RunLog {
    raw: LogWriter,
    html: LogWriter,
    renderer: Renderer,
    tail: Tail,
}

impl RunLog {
    pub async fn open(logs: &LogStore, run_id: i64) -> anyhow::Result<RunLog> {
        let raw = logs.writer(run_id).await?;
        let html = logs.html_writer(run_id).await?;
        Ok(RunLog { raw, html, renderer: Renderer::new(), tail: Tail::default() })
    }

    pub async fn push(&mut self, data: &[u8]) -> anyhow::Result<()> {
        self.raw.write(data).await?;
        self.tail.push(data);
        let mut markup = String::new();
        for line in self.renderer.push(data) {
            markup.push_str(&line_markup(&line));
        }
        if !markup.is_empty() {
            self.html.write(markup.as_bytes()).await?;
        }
        Ok(())
    }

    /// Completes both blobs; returns the tail.
    pub async fn finish(mut self) -> anyhow::Result<Tail> {
        if let Some(line) = self.renderer.finish() {
            self.html.write(line_markup(&line).as_bytes()).await?;
        }
        self.raw.finish().await?;
        self.html.finish().await?;
        Ok(self.tail)
    }
}
