//! What a run reports while it goes and how it ends, in tether's own terms (the runner protocol
//! converts these to and from protobuf at its border).

use std::time::{Duration, SystemTime};

use bytes::Bytes;

/// Which stream a chunk of output came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OutputStream {
    Stdout,
    Stderr,
    /// A line written by the runner itself: checkout progress, notices, errors.
    Runner,
}

/// One event of a run.
#[derive(Debug, Clone, PartialEq)]
pub enum RunEvent {
    Started {
        checkout_started: SystemTime,
        started: SystemTime,
        commit: String,
    },
    Output {
        stream: OutputStream,
        data: Bytes,
        at: SystemTime,
        seq: u64,
    },
    /// A step began or ended; the last event for an index holds.
    Step(super::steps::Step),
    Finished(Finished),
}

/// The last event of a run.
#[derive(Debug, Clone, PartialEq)]
pub struct Finished {
    pub outcome: Outcome,
    /// The run hit its timeout (the outcome is then the signal that ended it).
    pub timed_out: bool,
    pub duration: Duration,
    /// How many `Output` events were sent, so a reader can tell that none was lost.
    pub output_chunks: u64,
}

/// How the process ended, or why it never ran.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Exited(i32),
    Signalled(i32),
    /// The run could not start or could not finish: a failed checkout, a missing container
    /// engine, a runner that went away. The text is for people.
    Error(String),
}

/// What a runner says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunnerInfo {
    pub name: String,
    pub os: String,
    /// Docker's spelling: `amd64`, `arm64`.
    pub arch: String,
    pub labels: Vec<String>,
    pub capacity: u32,
    pub runs_in_flight: u32,
    pub version: String,
    pub protocol_version: u32,
}

/// The verdict of a finished run, as the rest of tether reports it; stored and sent by the
/// names GitHub gives check run conclusions (`timed_out`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Conclusion {
    Success,
    Failure,
    TimedOut,
    Cancelled,
}

impl Conclusion {
    pub const ALL: [Conclusion; 4] =
        [Conclusion::Success, Conclusion::Failure, Conclusion::TimedOut, Conclusion::Cancelled];

    /// The name GitHub gives it, which is also the stored one.
    pub fn as_str(self) -> &'static str {
        match self {
            Conclusion::Success => "success",
            Conclusion::Failure => "failure",
            Conclusion::TimedOut => "timed_out",
            Conclusion::Cancelled => "cancelled",
        }
    }
}

/// How a run of the server ended: its command's result, or why there was none.
#[derive(Debug, Clone, PartialEq)]
pub enum RunEnd {
    /// The command ran and ended.
    Finished(Finished),
    /// The runner went away (or the server restarted) while the run was going.
    RunnerLost(String),
    /// The runner would not take the run: it answered with an error.
    RunnerError(String),
    /// The runner said it was busy every time the run was offered.
    RunnerBusy,
    /// GitHub gave no token to check the commit out with, and will not.
    NoCheckoutToken(String),
    /// No runner of `sender` connected before the run's queue deadline.
    QueueTimedOut { sender: String },
    /// A newer head of the pull request made the run moot; `by` is the new commit.
    Superseded { by: String },
    /// A person cancelled it (on the run page, over SSH, or with its check run's button); `by`
    /// is their login.
    Cancelled { by: String },
}

impl RunEnd {
    /// The end of a run the server restarted under.
    pub fn server_restarted() -> RunEnd {
        RunEnd::RunnerLost("the server restarted while the run was going".into())
    }

    /// A run superseded by commit `sha`, named by its first 12 characters.
    pub fn superseded_by(sha: &str) -> RunEnd {
        RunEnd::Superseded { by: sha[..sha.len().min(12)].to_string() }
    }

    pub fn conclusion(&self) -> Conclusion {
        match self {
            RunEnd::Finished(finished) => finished.conclusion(false),
            RunEnd::QueueTimedOut { .. } => Conclusion::TimedOut,
            RunEnd::Superseded { .. } | RunEnd::Cancelled { .. } => Conclusion::Cancelled,
            RunEnd::RunnerLost(_)
            | RunEnd::RunnerError(_)
            | RunEnd::RunnerBusy
            | RunEnd::NoCheckoutToken(_) => Conclusion::Failure,
        }
    }

    /// The run's exit text, as stored and shown: `exit 1`, `runner lost: …`.
    pub fn exit(&self) -> String {
        match self {
            RunEnd::Finished(finished) => finished.outcome.describe(),
            RunEnd::RunnerLost(why) => format!("runner lost: {why}"),
            RunEnd::RunnerError(why) => format!("runner error: {why}"),
            RunEnd::RunnerBusy => "the runner stayed busy".to_string(),
            RunEnd::NoCheckoutToken(why) => format!("no checkout token: {why}"),
            RunEnd::QueueTimedOut { sender } => {
                format!("no runner of @{sender} connected within the queue time")
            }
            RunEnd::Superseded { by } => format!("superseded by {by}"),
            RunEnd::Cancelled { by } => format!("cancelled by @{by}"),
        }
    }
}

impl RunEnd {
    /// What tether says as the log's last line when it ended the run itself (a check's
    /// `timeout`, a cancel, a lost runner); `None` when the command ended on its own.
    pub fn last_word(&self, timeout: Duration) -> Option<String> {
        match self {
            RunEnd::Finished(f) if f.timed_out => {
                let killed = f.outcome == Outcome::Signalled(9);
                let then = if killed { ", then SIGKILL" } else { "" };
                Some(format!(
                    "timed out after {}: sent SIGTERM{then}",
                    super::duration::format(timeout)
                ))
            }
            RunEnd::Finished(_) => None,
            RunEnd::Superseded { by } => Some(format!("cancelled: superseded by {by}")),
            other => Some(other.exit()),
        }
    }
}

impl Finished {
    /// What the run concludes; `cancelled` says whether somebody asked for it to stop.
    pub fn conclusion(&self, cancelled: bool) -> Conclusion {
        match (&self.outcome, self.timed_out) {
            (_, true) => Conclusion::TimedOut,
            (Outcome::Exited(0), false) => Conclusion::Success,
            _ if cancelled => Conclusion::Cancelled,
            _ => Conclusion::Failure,
        }
    }
}

impl Outcome {
    /// A short description: `exit 0`, `exit 3`, `signal 9 (SIGKILL)`, `error: …`.
    pub fn describe(&self) -> String {
        match self {
            Outcome::Exited(code) => format!("exit {code}"),
            Outcome::Signalled(signal) => match signal_name(*signal) {
                Some(name) => format!("signal {signal} ({name})"),
                None => format!("signal {signal}"),
            },
            Outcome::Error(message) => format!("error: {message}"),
        }
    }
}

fn signal_name(signal: i32) -> Option<&'static str> {
    Some(match signal {
        1 => "SIGHUP",
        2 => "SIGINT",
        3 => "SIGQUIT",
        6 => "SIGABRT",
        9 => "SIGKILL",
        11 => "SIGSEGV",
        13 => "SIGPIPE",
        15 => "SIGTERM",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finished(outcome: Outcome, timed_out: bool) -> Finished {
        Finished { outcome, timed_out, duration: Duration::ZERO, output_chunks: 0 }
    }

    #[test]
    fn conclusions() {
        assert_eq!(finished(Outcome::Exited(0), false).conclusion(false), Conclusion::Success);
        assert_eq!(finished(Outcome::Exited(1), false).conclusion(false), Conclusion::Failure);
        assert_eq!(finished(Outcome::Signalled(15), true).conclusion(false), Conclusion::TimedOut);
        assert_eq!(finished(Outcome::Signalled(15), false).conclusion(true), Conclusion::Cancelled);
        assert_eq!(
            finished(Outcome::Error("x".into()), false).conclusion(false),
            Conclusion::Failure
        );
    }

    #[test]
    fn ends_conclude_and_describe_themselves() {
        let exited = RunEnd::Finished(finished(Outcome::Exited(2), false));
        assert_eq!((exited.conclusion(), exited.exit().as_str()), (Conclusion::Failure, "exit 2"));
        let lost = RunEnd::server_restarted();
        assert_eq!(lost.conclusion(), Conclusion::Failure);
        assert!(lost.exit().starts_with("runner lost: the server restarted"));
        let superseded = RunEnd::superseded_by(&"ab".repeat(20));
        assert_eq!(superseded.conclusion(), Conclusion::Cancelled);
        assert_eq!(superseded.exit(), "superseded by abababababab");
        let late = RunEnd::QueueTimedOut { sender: "alice".into() };
        assert_eq!(late.conclusion(), Conclusion::TimedOut);
        assert_eq!(late.exit(), "no runner of @alice connected within the queue time");
        let cancelled = RunEnd::Cancelled { by: "bob".into() };
        assert_eq!(cancelled.conclusion(), Conclusion::Cancelled);
        assert_eq!(cancelled.exit(), "cancelled by @bob");
        assert_eq!(Conclusion::TimedOut.as_str(), "timed_out");
        assert_eq!(serde_json::to_string(&Conclusion::TimedOut).unwrap(), "\"timed_out\"");
    }

    #[test]
    fn tethers_last_word_says_how_it_ended_a_run() {
        let two = Duration::from_secs(2);
        let killed = RunEnd::Finished(finished(Outcome::Signalled(9), true));
        let word = killed.last_word(two).unwrap();
        assert!(
            word.starts_with("timed out after 2") && word.ends_with(": sent SIGTERM, then SIGKILL")
        );
        let termed = RunEnd::Finished(finished(Outcome::Signalled(15), true));
        assert!(termed.last_word(two).unwrap().ends_with(": sent SIGTERM"));
        assert_eq!(RunEnd::Finished(finished(Outcome::Exited(1), false)).last_word(two), None);
        let lost = RunEnd::RunnerLost("the stream ended".into()).last_word(two);
        assert_eq!(lost.as_deref(), Some("runner lost: the stream ended"));
    }

    #[test]
    fn outcomes_describe_themselves() {
        assert_eq!(Outcome::Exited(3).describe(), "exit 3");
        assert_eq!(Outcome::Signalled(9).describe(), "signal 9 (SIGKILL)");
        assert_eq!(Outcome::Signalled(64).describe(), "signal 64");
    }
}
