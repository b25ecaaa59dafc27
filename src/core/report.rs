//! What a check run says on GitHub: its title, summary and text, always within GitHub's limits.

use std::time::Duration;

use super::duration;
use super::run::{Conclusion, RunEnd};
use super::steps::{Step, StepKind, StepStatus};

/// GitHub's limit on a check run's `output.summary` and `output.text`, in characters.
pub const GITHUB_OUTPUT_MAX_CHARS: usize = 65_535;
/// How many of the log's last lines a finished check run shows.
pub const LOG_TAIL_LINES: usize = 50;
/// The most bytes of one line kept for the check run's text.
pub const TAIL_LINE_MAX_BYTES: usize = 1024;
/// The most characters of a summary's steps table, well within [`GITHUB_OUTPUT_MAX_CHARS`]
/// with the rest of the summary; the steps past it are counted, not listed.
pub const STEPS_TABLE_MAX_CHARS: usize = 50_000;

/// The "Cancel" button a check run carries while its run is queued or in progress (GitHub's
/// limits: label at most 20 characters, description 40, identifier 20).
pub const CANCEL_ACTION: CheckAction = CheckAction {
    label: "Cancel",
    description: "Stop this run on its runner",
    identifier: "cancel",
};

/// A check run's action button, as tether offers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckAction {
    pub label: &'static str,
    pub description: &'static str,
    /// What `check_run.requested_action` sends back.
    pub identifier: &'static str,
}

/// A check run's `output`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckOutput {
    pub title: String,
    pub summary: String,
    pub text: Option<String>,
}

/// The output of a run that waits for a runner of `login`.
pub fn queued(login: &str, connect_command: &str) -> CheckOutput {
    CheckOutput {
        title: format!("Waiting for a runner of @{login}"),
        summary: limit(
            &format!(
                "This check runs on a machine of @{login}, who caused it, and none is connected.\n\n\
                 Connect one with:\n\n```\n{connect_command}\n```"
            ),
            "",
        ),
        text: None,
    }
}

/// The output of a fork's pull request that its author did not push: nothing runs until a
/// person with write access asks with `/run`, on their own runner.
pub fn fork_waiting(sender: &str) -> CheckOutput {
    CheckOutput {
        title: "Waiting for `/run` from a person with write access".to_string(),
        summary: limit(
            &format!(
                "This pull request comes from a fork, and @{sender}, who caused this event, is \
                 not its author, so its code does not run on @{sender}'s machine.\n\n\
                 A person with write access to this repository can run it on their own runner \
                 by commenting `/run` on the pull request."
            ),
            "",
        ),
        text: None,
    }
}

/// What a finished run reports.
pub struct Finished<'a> {
    pub conclusion: Conclusion,
    pub duration: Duration,
    /// `login/name`.
    pub runner: &'a str,
    /// `exit 1`, `signal 9 (SIGKILL)`, `error: …`.
    pub exit: &'a str,
    pub run_url: &'a str,
    /// The log's last lines, as plain text.
    pub log_tail: &'a str,
    /// The run's steps, in the order they began.
    pub steps: &'a [Step],
}

pub fn finished(f: &Finished<'_>) -> CheckOutput {
    let title = match (f.conclusion, failing_step(f.steps)) {
        (Conclusion::Success, _) => format!("Passed in {}", duration::format(f.duration)),
        (Conclusion::Failure, Some(step)) => format!("Failed in {} ({})", step.name, f.exit),
        (Conclusion::Failure, None) => format!("Failed ({})", f.exit),
        (Conclusion::TimedOut, _) => {
            format!("Timed out after {}", duration::format(f.duration))
        }
        (Conclusion::Cancelled, _) => "Cancelled".to_string(),
    };
    let summary = format!(
        "| | |\n| --- | --- |\n| duration | {} |\n| runner | `{}` |\n| exit status | `{}` |\n\n{}[The whole log]({})",
        duration::format(f.duration),
        f.runner,
        f.exit,
        steps_table(f.steps, f.run_url),
        f.run_url
    );
    let tail = format!("```\n{}\n```", f.log_tail.trim_end().replace("```", "`\u{200b}``"));
    CheckOutput { title, summary: limit(&summary, f.run_url), text: Some(limit(&tail, f.run_url)) }
}

/// The step a failure is named by: the last failed section, else the last failed step.
fn failing_step(steps: &[Step]) -> Option<&Step> {
    let failed = |s: &&Step| s.status == StepStatus::Failure;
    let section = |s: &&Step| s.kind == StepKind::Section && failed(s);
    steps.iter().rev().find(section).or_else(|| steps.iter().rev().find(failed))
}

/// The steps as a Markdown table, each name a code span linking nowhere (a title is the check's
/// own text: no Markdown of it is read); at most [`STEPS_TABLE_MAX_CHARS`].
fn steps_table(steps: &[Step], run_url: &str) -> String {
    if steps.is_empty() {
        return String::new();
    }
    let mut table =
        String::from("| step | status | duration | lines |\n| --- | --- | --- | --- |\n");
    for (shown, step) in steps.iter().enumerate() {
        let took = step.duration().map_or("-".to_string(), duration::format);
        let name = step.name.replace('`', "'").replace('|', "\\|");
        let indent = if step.kind == StepKind::Section { "↳ " } else { "" };
        let row = format!(
            "| {indent}`{name}` | {} | {took} | [{}]({run_url}#L{}) |\n",
            step.status.as_str(),
            step.first_line,
            step.first_line
        );
        if table.chars().count() + row.chars().count() > STEPS_TABLE_MAX_CHARS {
            table.push_str(&format!("\n… and {} more steps\n", steps.len() - shown));
            break;
        }
        table.push_str(&row);
    }
    table.push('\n');
    table
}

/// Where a run ended, for its check run's output.
pub struct Ended<'a> {
    /// `login/name`, or `-` for a run that never started.
    pub runner: &'a str,
    pub run_url: &'a str,
    /// The log's last lines, as plain text (empty for a run with no log).
    pub log_tail: &'a str,
    /// The run's steps, in the order they began.
    pub steps: &'a [Step],
}

/// The output of a run that ended: its command's result, or why there was none.
pub fn ended(end: &RunEnd, at: &Ended<'_>) -> CheckOutput {
    let exit = end.exit();
    let title = match end {
        RunEnd::Finished(result) => {
            return finished(&Finished {
                conclusion: end.conclusion(),
                duration: result.duration,
                runner: at.runner,
                exit: &exit,
                run_url: at.run_url,
                log_tail: at.log_tail,
                steps: at.steps,
            });
        }
        RunEnd::Superseded { .. } | RunEnd::Cancelled { .. } => "Cancelled",
        RunEnd::QueueTimedOut { .. } => "Timed out waiting for a runner",
        RunEnd::RunnerLost(_) => "runner lost",
        RunEnd::RunnerError(_) | RunEnd::RunnerBusy | RunEnd::NoCheckoutToken(_) => "Failed",
    };
    CheckOutput {
        title: title.to_string(),
        summary: limit(&format!("{exit}\n\n[The run]({})", at.run_url), at.run_url),
        text: None,
    }
}

/// Text without ANSI escape sequences, for places that cannot show colours.
pub fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\x1b' {
            out.push(c);
            continue;
        }
        match chars.next() {
            // CSI: parameters and intermediates, then one final byte in @..~.
            Some('[') => {
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            }
            // OSC: up to BEL or ST.
            Some(']') => {
                while let Some(c) = chars.next() {
                    if c == '\x07' || (c == '\x1b' && chars.next_if_eq(&'\\').is_some()) {
                        break;
                    }
                }
            }
            _ => {}
        }
    }
    out
}

/// Cuts `text` to GitHub's limit, saying where the rest is.
pub fn limit(text: &str, link: &str) -> String {
    if text.chars().count() <= GITHUB_OUTPUT_MAX_CHARS {
        return text.to_string();
    }
    let note = format!("\n\n… cut to fit GitHub's limit; the whole log is at {link}");
    let keep = GITHUB_OUTPUT_MAX_CHARS - note.chars().count();
    let mut cut: String = text.chars().take(keep).collect();
    cut.push_str(&note);
    cut
}

/// The last `lines` lines of `log` (a final newline does not start another line).
pub fn tail(log: &str, lines: usize) -> &str {
    let body = log.strip_suffix('\n').unwrap_or(log);
    let mut seen = 0;
    for (i, byte) in body.bytes().enumerate().rev() {
        if byte == b'\n' {
            seen += 1;
            if seen == lines {
                return &log[i + 1..];
            }
        }
    }
    log
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_output_is_cut_with_a_link() {
        let text = "é".repeat(70_000);
        let cut = limit(&text, "https://ci.example/runs/7");
        assert_eq!(cut.chars().count(), GITHUB_OUTPUT_MAX_CHARS);
        assert!(cut.ends_with("the whole log is at https://ci.example/runs/7"));
        assert_eq!(limit("short", "x"), "short");
    }

    #[test]
    fn finished_output_names_duration_runner_exit_and_link() {
        let log = (1..=80).map(|i| format!("line {i}\n")).collect::<String>();
        let output = finished(&Finished {
            conclusion: Conclusion::Failure,
            duration: Duration::from_secs(75),
            runner: "alice/laptop",
            exit: "exit 2",
            run_url: "https://ci.example/runs/7",
            log_tail: tail(&log, LOG_TAIL_LINES),
            steps: &[],
        });
        assert_eq!(output.title, "Failed (exit 2)");
        assert!(
            output.summary.contains("| duration | 1m15s |")
                && output.summary.contains("`alice/laptop`")
        );
        assert!(output.summary.contains("(https://ci.example/runs/7)"));
        let text = output.text.unwrap();
        assert!(
            text.contains("line 31\n") && text.contains("line 80\n") && !text.contains("line 30\n"),
            "{text}"
        );
    }

    fn step(index: u32, name: &str, kind: StepKind, status: StepStatus) -> Step {
        let at = std::time::UNIX_EPOCH;
        Step {
            index,
            name: name.into(),
            kind,
            status,
            started: at,
            finished: Some(at + Duration::from_secs(2)),
            first_line: 5,
            last_line: 6,
        }
    }

    #[test]
    fn a_failure_names_its_failing_step_and_the_summary_lists_the_steps() {
        let steps = [
            step(0, "run", StepKind::Run, StepStatus::Failure),
            step(1, "Build", StepKind::Section, StepStatus::Success),
            step(2, "Test | `it`", StepKind::Section, StepStatus::Failure),
        ];
        let output = finished(&Finished {
            conclusion: Conclusion::Failure,
            duration: Duration::from_secs(3),
            runner: "alice/laptop",
            exit: "exit 3",
            run_url: "https://ci.example/runs/7",
            log_tail: "",
            steps: &steps,
        });
        assert_eq!(output.title, "Failed in Test | `it` (exit 3)");
        assert!(
            output
                .summary
                .contains("| ↳ `Build` | success | 2.0s | [5](https://ci.example/runs/7#L5) |"),
            "{}",
            output.summary
        );
        // A title's `|` and backticks cannot break the table or its code span.
        assert!(output.summary.contains("| ↳ `Test \\| 'it'` | failure |"), "{}", output.summary);
        let many: Vec<Step> = (0..5000)
            .map(|i| step(i, &"x".repeat(200), StepKind::Section, StepStatus::Success))
            .collect();
        let table = steps_table(&many, "https://ci.example/runs/7");
        assert!(table.chars().count() <= STEPS_TABLE_MAX_CHARS + 40, "{}", table.len());
        assert!(table.contains("more steps"));
    }

    #[test]
    fn ends_without_a_result_say_why() {
        let at =
            Ended { runner: "-", run_url: "https://ci.example/runs/7", log_tail: "", steps: &[] };
        let lost = ended(&RunEnd::RunnerLost("the stream ended".into()), &at);
        assert_eq!(lost.title, "runner lost");
        assert!(lost.summary.starts_with("runner lost: the stream ended\n\n[The run]("));
        let superseded = ended(&RunEnd::superseded_by("0123456789abcdef"), &at);
        assert_eq!(superseded.title, "Cancelled");
        assert!(superseded.summary.contains("superseded by 0123456789ab"));
        let late = ended(&RunEnd::QueueTimedOut { sender: "alice".into() }, &at);
        assert_eq!(late.title, "Timed out waiting for a runner");
        assert_eq!(ended(&RunEnd::RunnerBusy, &at).title, "Failed");
    }

    #[test]
    fn the_cancel_button_is_within_githubs_limits_and_a_cancel_names_who() {
        assert!(CANCEL_ACTION.label.chars().count() <= 20);
        assert!(CANCEL_ACTION.description.chars().count() <= 40);
        assert!(CANCEL_ACTION.identifier.chars().count() <= 20);
        let at =
            Ended { runner: "-", run_url: "https://ci.example/runs/7", log_tail: "", steps: &[] };
        let cancelled = ended(&RunEnd::Cancelled { by: "bob".into() }, &at);
        assert_eq!(cancelled.title, "Cancelled");
        assert!(cancelled.summary.starts_with("cancelled by @bob"), "{}", cancelled.summary);
        let waiting = fork_waiting("maintainer");
        assert!(waiting.summary.contains("`/run`") && waiting.summary.contains("write access"));
    }

    #[test]
    fn queued_output_says_how_to_connect() {
        let output = queued("alice", "tether runner --connect alice@ci.example.com:6455");
        assert!(output.title.contains("@alice"));
        assert!(output.summary.contains("tether runner --connect alice@ci.example.com:6455"));
    }

    #[test]
    fn ansi_is_stripped() {
        assert_eq!(strip_ansi("\x1b[1;31merror\x1b[0m: x"), "error: x");
        assert_eq!(strip_ansi("\x1b]8;;https://e.com\x1b\\link\x1b]8;;\x1b\\ ok"), "link ok");
        assert_eq!(strip_ansi("plain"), "plain");
    }

    #[test]
    fn tails() {
        assert_eq!(tail("a\nb\nc\n", 2), "b\nc\n");
        assert_eq!(tail("a\nb\nc", 2), "b\nc");
        assert_eq!(tail("a\n", 5), "a\n");
        assert_eq!(tail("", 5), "");
    }
}
