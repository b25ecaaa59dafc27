//! The sending end of a run's event stream: numbers the output chunks, stamps them with the
//! runner's clock and masks secrets in them before they leave.

use std::time::SystemTime;

use bytes::Bytes;
use tokio::sync::{mpsc, watch};

use super::mask::Masker;
use crate::core::run::Finished;
use crate::core::steps::Steps;
use crate::core::{OutputStream, RunEvent, Step, StepKind, StepStatus};

pub struct Emitter {
    tx: mpsc::Sender<RunEvent>,
    cancel: Option<watch::Receiver<bool>>,
    seq: u64,
    /// One masker for stdout and stderr, which a reader sees as one log: a value split across
    /// them is masked too.
    output: Masker<OutputStream>,
    /// The runner's own lines, each complete when it is sent.
    notices: Masker<OutputStream>,
    /// The run's steps and its line count, fed every byte that leaves.
    steps: Steps,
}

/// Resolves when a run must stop: its reader went away, or its executor cancelled every run.
pub struct StopSignal {
    tx: mpsc::Sender<RunEvent>,
    cancel: Option<watch::Receiver<bool>>,
}

impl StopSignal {
    pub async fn stopped(&mut self) {
        let cancelled = async {
            match &mut self.cancel {
                // An executor that is gone cancels nothing more.
                Some(cancel) => {
                    if cancel.wait_for(|cancelled| *cancelled).await.is_err() {
                        std::future::pending::<()>().await;
                    }
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = self.tx.closed() => {}
            () = cancelled => {}
        }
    }
}

impl Emitter {
    /// An emitter that masks every value in `secrets`.
    pub fn new(tx: mpsc::Sender<RunEvent>, secrets: &[&str]) -> Emitter {
        let (output, notices) = (Masker::new(secrets), Masker::new(secrets));
        Emitter { tx, cancel: None, seq: 0, output, notices, steps: Steps::new() }
    }

    /// Also stops the run when `cancel` becomes true.
    pub fn with_cancel(mut self, cancel: watch::Receiver<bool>) -> Emitter {
        self.cancel = Some(cancel);
        self
    }

    /// Resolves when the reader has gone away or the run was cancelled: the run must stop.
    pub fn stop_signal(&self) -> StopSignal {
        StopSignal { tx: self.tx.clone(), cancel: self.cancel.clone() }
    }

    /// Sends a chunk of output, masked. A reader that has gone away is not an error here: the
    /// run notices through [`Emitter::stop_signal`].
    pub async fn output(&mut self, stream: OutputStream, data: &[u8]) {
        let masker = match stream {
            OutputStream::Runner => &mut self.notices,
            OutputStream::Stdout | OutputStream::Stderr => &mut self.output,
        };
        let masked = masker.push(stream, data);
        self.send_all(masked).await;
    }

    /// A line from the runner itself.
    pub async fn notice(&mut self, line: &str) {
        let text = format!("tether: {line}\n");
        self.output(OutputStream::Runner, text.as_bytes()).await;
        let rest = self.notices.finish();
        self.send_all(rest).await;
    }

    pub async fn started(&mut self, checkout_started: SystemTime, commit: &str) {
        let event = RunEvent::Started {
            checkout_started,
            started: SystemTime::now(),
            commit: commit.to_string(),
        };
        let _ = self.tx.send(event).await;
    }

    /// Sends what the output masker still holds: the command has ended, so its last bytes
    /// belong to it (and to its step).
    pub async fn flush_output(&mut self) {
        let rest = self.output.finish();
        self.send_all(rest).await;
    }

    /// Sends what the maskers still hold, then the final event.
    pub async fn finish(mut self, mut finished: Finished) {
        let rest = self.output.finish();
        self.send_all(rest).await;
        let rest = self.notices.finish();
        self.send_all(rest).await;
        finished.output_chunks = self.seq;
        let _ = self.tx.send(RunEvent::Finished(finished)).await;
    }

    async fn send_all(&mut self, masked: Vec<(OutputStream, Bytes)>) {
        for (stream, data) in masked {
            self.send_output(stream, data).await;
        }
    }

    async fn send_output(&mut self, stream: OutputStream, data: Bytes) {
        if data.is_empty() {
            return;
        }
        let at = SystemTime::now();
        let changed = self.steps.output(&data, stream != OutputStream::Runner, at);
        let event = RunEvent::Output { stream, data, at, seq: self.seq };
        self.seq += 1;
        let _ = self.tx.send(event).await;
        self.send_steps(changed).await;
    }

    async fn send_steps(&mut self, steps: Vec<Step>) {
        for step in steps {
            let _ = self.tx.send(RunEvent::Step(step)).await;
        }
    }

    /// Begins a step now; returns its index, for [`Emitter::end_step`].
    pub async fn begin_step(&mut self, kind: StepKind, name: &str) -> u32 {
        let step = self.steps.begin(kind, name, SystemTime::now());
        let index = step.index;
        self.send_steps(vec![step]).await;
        index
    }

    /// Ends a step now (with `run`, its open section too).
    pub async fn end_step(&mut self, index: u32, status: StepStatus) {
        let ended = self.steps.end(index, status, SystemTime::now());
        self.send_steps(ended).await;
    }

    /// A step that does not run because an earlier one failed.
    pub async fn skip_step(&mut self, kind: StepKind, name: &str) {
        let step = self.steps.skip(kind, name, SystemTime::now());
        self.send_steps(vec![step]).await;
    }
}
