//! The SSH side for people, as decisions: what a command line asks for (bounded, run ids
//! parsed strictly), the exit status of each answer, and the text of the answers with every
//! name escaped so that a hostile check name or title cannot drive the reader's terminal.

use std::time::{Duration, SystemTime};

use super::duration;
use super::run::Conclusion;

/// The longest command line read; a longer one is refused before it is split.
pub const COMMAND_LINE_MAX_BYTES: usize = 256;
/// The most words on a command line, the command's own included.
pub const COMMAND_WORDS_MAX: usize = 2;
/// The longest run id accepted, in digits (any more would not fit an `i64`).
const RUN_ID_MAX_DIGITS: usize = 18;
/// Exit status of a refusal: an unknown command, or a run that does not exist or may not be read.
pub const EXIT_REFUSED: u32 = 2;
/// Exit status of a command its reader interrupted with Ctrl-C, as a shell says SIGINT.
pub const EXIT_INTERRUPTED: u32 = 130;
/// Exit status when the server could not answer (its store or GitHub failed).
pub const EXIT_FAILED: u32 = 1;

/// What a command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// No command, or `status`: the greeting.
    Greeting,
    /// `runs [OWNER/REPO]`.
    Runs { repo: Option<String> },
    /// `logs RUN`.
    Logs { run: i64 },
    /// `runners`.
    Runners,
    /// `help`.
    Help,
    /// `cancel RUN`.
    Cancel { run: i64 },
    /// `rerun RUN`.
    Rerun { run: i64 },
}

/// Why a command line was refused; its `Display` is the one line said on stderr.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    #[error("tether: the command is longer than {COMMAND_LINE_MAX_BYTES} bytes; try `help`")]
    TooLong,
    #[error("tether: the command is not UTF-8; try `help`")]
    NotText,
    #[error("tether: unknown command {}; try `help`", quoted(.0))]
    Unknown(String),
    #[error("tether: `{0}` takes {1}; try `help`")]
    Usage(&'static str, &'static str),
    #[error("tether: {} is not a run id (a number, as in `logs 42`)", quoted(.0))]
    BadRunId(String),
    #[error("tether: {} is not OWNER/REPO", quoted(.0))]
    BadRepo(String),
}

impl CommandError {
    pub fn exit_status(&self) -> u32 {
        EXIT_REFUSED
    }
}

/// `text` in quotes, escaped.
fn quoted(text: &str) -> String {
    format!("\"{}\"", printable(text))
}

/// Parses what `ssh HOST …` sent as its command: at most [`COMMAND_LINE_MAX_BYTES`], split on
/// whitespace, at most [`COMMAND_WORDS_MAX`] words.
pub fn parse(line: &[u8]) -> Result<Command, CommandError> {
    if line.len() > COMMAND_LINE_MAX_BYTES {
        return Err(CommandError::TooLong);
    }
    let line = std::str::from_utf8(line).map_err(|_| CommandError::NotText)?;
    let words: Vec<&str> = line.split_ascii_whitespace().collect();
    let (name, args) = match words.split_first() {
        None => return Ok(Command::Greeting),
        Some((name, args)) => (*name, args),
    };
    let known = ["status", "runs", "logs", "runners", "help", "cancel", "rerun"];
    if !known.contains(&name) {
        return Err(CommandError::Unknown(name.to_string()));
    }
    if words.len() > COMMAND_WORDS_MAX {
        return Err(usage(name));
    }
    match (name, args) {
        ("status", []) => Ok(Command::Greeting),
        ("runners", []) => Ok(Command::Runners),
        ("help", []) => Ok(Command::Help),
        ("runs", []) => Ok(Command::Runs { repo: None }),
        ("runs", [repo]) => Ok(Command::Runs { repo: Some(parse_repo(repo)?) }),
        ("logs", [run]) => Ok(Command::Logs { run: parse_run_id(run)? }),
        ("cancel", [run]) => Ok(Command::Cancel { run: parse_run_id(run)? }),
        ("rerun", [run]) => Ok(Command::Rerun { run: parse_run_id(run)? }),
        _ => Err(usage(name)),
    }
}

fn usage(name: &str) -> CommandError {
    match name {
        "runs" => CommandError::Usage("runs", "at most one OWNER/REPO"),
        "logs" => CommandError::Usage("logs", "one run id"),
        "cancel" => CommandError::Usage("cancel", "one run id"),
        "rerun" => CommandError::Usage("rerun", "one run id"),
        "status" => CommandError::Usage("status", "nothing"),
        "runners" => CommandError::Usage("runners", "nothing"),
        _ => CommandError::Usage("help", "nothing"),
    }
}

/// A run id: decimal digits only, no sign, no leading zero, at most 18 of them, above 0.
pub fn parse_run_id(text: &str) -> Result<i64, CommandError> {
    let bad = || CommandError::BadRunId(text.to_string());
    let digits = text.len() <= RUN_ID_MAX_DIGITS && text.bytes().all(|b| b.is_ascii_digit());
    if !digits || text.is_empty() || text.starts_with('0') {
        return Err(bad());
    }
    text.parse().map_err(|_| bad())
}

/// `OWNER/REPO` as GitHub spells them: an owner of letters, digits and `-` (at most 39), a name
/// of letters, digits, `.`, `_` and `-` (at most 100, not `.` or `..`).
pub fn parse_repo(text: &str) -> Result<String, CommandError> {
    let bad = || CommandError::BadRepo(text.to_string());
    let (owner, name) = text.split_once('/').ok_or_else(bad)?;
    let owner_ok = (1..=39).contains(&owner.len())
        && owner.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    let name_ok = (1..=100).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        && name != "."
        && name != "..";
    if owner_ok && name_ok { Ok(text.to_string()) } else { Err(bad()) }
}

/// The exit status `logs` ends with: the run's conclusion as a shell would say it.
pub fn exit_status(conclusion: Conclusion) -> u32 {
    match conclusion {
        Conclusion::Success => 0,
        Conclusion::Failure => 1,
        Conclusion::TimedOut => 124,
        Conclusion::Cancelled => 130,
    }
}

/// The one line for a run that does not exist and for one the asker may not read, alike.
pub fn no_such_run(run: i64) -> String {
    format!("tether: no run {run} that you may read; `runs` lists yours")
}

/// `text` with control and invisible formatting characters escaped: a name from a webhook or
/// a runner cannot move the cursor, set a title, or reorder what the terminal shows.
pub fn printable(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        let hidden = c.is_control()
            || matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2060}'..='\u{2069}' | '\u{feff}');
        if hidden {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// A run as a line of `runs` and of the greeting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunRow {
    pub id: i64,
    /// `None` while queued or running.
    pub conclusion: Option<Conclusion>,
    pub started: bool,
    pub repo: String,
    pub check: String,
    pub sha: String,
    pub started_at: Option<SystemTime>,
    pub finished_at: Option<SystemTime>,
    pub link: String,
}

/// What a run's state reads as in a list.
fn state_word(row: &RunRow) -> &'static str {
    match (row.conclusion, row.started) {
        (Some(Conclusion::Success), _) => "passed",
        (Some(Conclusion::Failure), _) => "failed",
        (Some(Conclusion::TimedOut), _) => "timed out",
        (Some(Conclusion::Cancelled), _) => "cancelled",
        (None, true) => "running",
        (None, false) => "queued",
    }
}

impl RunRow {
    /// `id  state  repo  check  commit  duration  link`, escaped; the duration so far at `now`.
    pub fn line(&self, now: SystemTime) -> String {
        let took = match (self.started_at, self.finished_at) {
            (Some(start), end) => {
                let end = end.unwrap_or(now);
                duration::format(end.duration_since(start).unwrap_or(Duration::ZERO))
            }
            (None, _) => "-".to_string(),
        };
        let sha: String = self.sha.chars().take(7).collect();
        format!(
            "{:>6}  {:<9}  {}  {}  {}  {took}  {}",
            self.id,
            state_word(self),
            printable(&self.repo),
            printable(&self.check),
            printable(&sha),
            printable(&self.link)
        )
    }
}

/// A connected runner as a line of `runners` and of the greeting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunnerRow {
    pub name: String,
    pub os: String,
    pub arch: String,
    pub labels: Vec<String>,
    pub capacity: u32,
    pub running: usize,
}

impl RunnerRow {
    pub fn line(&self) -> String {
        let labels = if self.labels.is_empty() { "-".to_string() } else { self.labels.join(",") };
        format!(
            "{}  {}/{}  labels {}  running {} of {}",
            printable(&self.name),
            printable(&self.os),
            printable(&self.arch),
            printable(&labels),
            self.running,
            self.capacity
        )
    }
}

/// What the greeting says: who you are, your runners (or how to connect one), your last runs.
pub fn greeting(
    login: &str,
    connect: &str,
    runners: &[RunnerRow],
    runs: &[RunRow],
    now: SystemTime,
) -> String {
    let login = printable(login);
    let mut text = format!("Hi {login}! You are connected to tether with your GitHub SSH key.\n\n");
    if runners.is_empty() {
        text.push_str(&format!(
            "You have no runners connected. Connect one with `{}`.\n",
            printable(connect)
        ));
    } else {
        text.push_str("Your runners:\n");
        for runner in runners {
            text.push_str(&format!("  {}\n", runner.line()));
        }
    }
    text.push('\n');
    if runs.is_empty() {
        text.push_str("No runs of yours yet.\n");
    } else {
        text.push_str("Your last runs:\n");
        for run in runs {
            text.push_str(&format!("  {}\n", run.line(now)));
        }
    }
    text.push_str("\nMore: `runs`, `logs RUN`, `runners`, `help`.\n");
    text
}

/// What `help` prints.
pub const HELP: &str = "\
tether over SSH: ssh -p PORT LOGIN@HOST COMMAND

  (nothing), status   who you are, your runners and your last runs; with runners forwarded
                      (`ssh -R /NAME:SOCKET`), stays open and shows each of their runs
  runs [OWNER/REPO]   recent runs you may read: id, state, repository, check, commit,
                      duration, link
  logs RUN            the run's raw log, followed live until the run ends; exits 0 passed,
                      1 failed, 124 timed out, 130 cancelled
  runners             your connected runners: name, platform, labels, runs in flight
  cancel RUN          cancel a queued or running run (write access, or the run's sender)
  rerun RUN           run a finished run again on its sender's runner (write access)
  help                this text

An unknown command, or a run that does not exist or that you may not read, gets one line on
stderr and exit status 2.
";

/// The line an open `ssh -R` session prints as one of its runs starts.
pub fn session_run_started(check: &str, repo: &str, link: &str) -> String {
    format!("run started: {} on {}  {}", printable(check), printable(repo), printable(link))
}

/// The line an open `ssh -R` session prints as one of its runs ends.
pub fn session_run_ended(
    check: &str,
    repo: &str,
    conclusion: Conclusion,
    took: Duration,
    link: &str,
) -> String {
    let outcome = match conclusion {
        Conclusion::Success => "passed",
        Conclusion::Failure => "failed",
        Conclusion::TimedOut => "timed out",
        Conclusion::Cancelled => "cancelled",
    };
    format!(
        "run {outcome}: {} on {} in {}  {}",
        printable(check),
        printable(repo),
        duration::format(took),
        printable(link)
    )
}

/// `text` as a terminal in raw mode needs it (the client asked for a PTY, which makes its own
/// terminal raw): each `\n` as `\r\n`, as a real PTY's `onlcr` would.
pub fn for_terminal(text: &[u8], pty: bool) -> Vec<u8> {
    if !pty {
        return text.to_vec();
    }
    let mut out = Vec::with_capacity(text.len() + text.len() / 16);
    for &b in text {
        if b == b'\n' {
            out.push(b'\r');
        }
        out.push(b);
    }
    out
}

#[cfg(test)]
mod tests;
