//! The sending end of a run's event stream: numbers the output chunks, stamps them with the
//! runner's clock and masks secrets in them before they leave.

use std::time::SystemTime;

use bytes::Bytes;
use tokio::sync::mpsc;

use super::mask::Masker;
use crate::core::run::Finished;
use crate::core::{OutputStream, RunEvent};

pub struct Emitter {
    tx: mpsc::Sender<RunEvent>,
    seq: u64,
    maskers: [Masker; 3],
}

impl Emitter {
    /// An emitter that masks every value in `secrets`.
    pub fn new(tx: mpsc::Sender<RunEvent>, secrets: &[&str]) -> Emitter {
        let maskers = [Masker::new(secrets), Masker::new(secrets), Masker::new(secrets)];
        Emitter { tx, seq: 0, maskers }
    }

    /// A handle whose `closed()` resolves when the reader has gone away: the run is cancelled.
    pub fn closed_signal(&self) -> mpsc::Sender<RunEvent> {
        self.tx.clone()
    }

    /// Sends a chunk of output, masked. A reader that has gone away is not an error here: the
    /// run notices through [`Emitter::closed_signal`].
    pub async fn output(&mut self, stream: OutputStream, data: &[u8]) {
        let masked = self.maskers[index(stream)].push(data);
        self.send_output(stream, masked).await;
    }

    /// A line from the runner itself.
    pub async fn notice(&mut self, line: &str) {
        let text = format!("tether: {line}\n");
        self.output(OutputStream::Runner, text.as_bytes()).await;
        let rest = self.maskers[index(OutputStream::Runner)].finish();
        self.send_output(OutputStream::Runner, rest).await;
    }

    pub async fn started(&mut self, checkout_started: SystemTime, commit: &str) {
        let event = RunEvent::Started {
            checkout_started,
            started: SystemTime::now(),
            commit: commit.to_string(),
        };
        let _ = self.tx.send(event).await;
    }

    /// Sends what the maskers still hold, then the final event.
    pub async fn finish(mut self, mut finished: Finished) {
        for stream in [OutputStream::Stdout, OutputStream::Stderr, OutputStream::Runner] {
            let rest = self.maskers[index(stream)].finish();
            self.send_output(stream, rest).await;
        }
        finished.output_chunks = self.seq;
        let _ = self.tx.send(RunEvent::Finished(finished)).await;
    }

    async fn send_output(&mut self, stream: OutputStream, data: Bytes) {
        if data.is_empty() {
            return;
        }
        let event = RunEvent::Output { stream, data, at: SystemTime::now(), seq: self.seq };
        self.seq += 1;
        let _ = self.tx.send(event).await;
    }
}

fn index(stream: OutputStream) -> usize {
    match stream {
        OutputStream::Stdout => 0,
        OutputStream::Stderr => 1,
        OutputStream::Runner => 2,
    }
}
