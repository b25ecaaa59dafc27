//! The end of `tether run`: a table of the checks (coloured on a terminal), one line per error
//! under it, and "N passed, N failed" last.

use crate::core::Outcome;
use crate::core::duration;
use crate::core::run::Finished;

/// The most characters of a result in the table; a longer reason goes under it.
const RESULT_MAX_CHARS: usize = 40;
/// The most characters of one error line under the table.
const ERROR_LINE_MAX_CHARS: usize = 300;

/// How one check ended, for the summary; `finished` is `None` when its run was lost.
pub struct CheckResult {
    pub check: String,
    pub finished: Option<Finished>,
}

impl CheckResult {
    pub fn passed(&self) -> bool {
        matches!(&self.finished, Some(f) if f.outcome == Outcome::Exited(0) && !f.timed_out)
    }
}

/// Whether to colour: on a terminal, unless `NO_COLOR` is set to something (no-color.org).
pub fn use_colour(terminal: bool, no_color: Option<std::ffi::OsString>) -> bool {
    terminal && no_color.is_none_or(|value| value.is_empty())
}

/// The whole summary, ending with its tally line.
pub fn summary(results: &[CheckResult], colour: bool) -> String {
    let rows: Vec<[String; 3]> = results.iter().map(row).collect();
    let header = ["check".to_string(), "result".to_string(), "duration".to_string()];
    let widths: Vec<usize> = (0..3)
        .map(|i| rows.iter().chain([&header]).map(|row| row[i].chars().count()).max().unwrap_or(0))
        .collect();
    let mut text = String::new();
    let paint = |code: &str, cell: String| {
        if colour { format!("\x1b[{code}m{cell}\x1b[0m") } else { cell }
    };
    for (i, cells) in std::iter::once(&header).chain(&rows).enumerate() {
        let check = format!("{:w$}", cells[0], w = widths[0]);
        let result = format!("{:w$}", cells[1], w = widths[1]);
        let (check, result) = match i {
            0 => (paint("1", check), paint("1", result)),
            _ if results[i - 1].passed() => (check, paint("32", result)),
            _ => (check, paint("31", result)),
        };
        let line = format!("{check}  {result}  {}", cells[2]);
        text.push_str(line.trim_end());
        text.push('\n');
    }
    for result in results {
        if let Some(Finished { outcome: Outcome::Error(why), .. }) = &result.finished {
            text.push_str(&format!("{}: {}\n", result.check, one_line(why, ERROR_LINE_MAX_CHARS)));
        }
    }
    let passed = results.iter().filter(|r| r.passed()).count();
    let tally = format!("{passed} passed, {} failed", results.len() - passed);
    let code = if passed == results.len() { "32" } else { "31" };
    text.push_str(&paint(code, tally));
    text.push('\n');
    text
}

fn row(result: &CheckResult) -> [String; 3] {
    let (verdict, took) = match &result.finished {
        Some(f) => (verdict(f), duration::format(f.duration)),
        None => ("lost".to_string(), "-".to_string()),
    };
    [result.check.clone(), one_line(&verdict, RESULT_MAX_CHARS), took]
}

fn verdict(finished: &Finished) -> String {
    match (&finished.outcome, finished.timed_out) {
        (_, true) => "timed out".into(),
        (Outcome::Exited(0), false) => "passed".into(),
        // The reason goes under the table, where its length harms nothing.
        (Outcome::Error(_), false) => "error (below)".into(),
        (outcome, false) => format!("failed ({})", outcome.describe()),
    }
}

/// `text` on one line of at most `max` characters.
fn one_line(text: &str, max: usize) -> String {
    let joined = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if joined.chars().count() <= max {
        return joined;
    }
    let mut cut: String = joined.chars().take(max - 1).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn result(check: &str, outcome: Outcome, timed_out: bool, ms: u64) -> CheckResult {
        let duration = Duration::from_millis(ms);
        CheckResult {
            check: check.into(),
            finished: Some(Finished { outcome, timed_out, duration, output_chunks: 0 }),
        }
    }

    #[test]
    fn the_summary_is_an_aligned_table_with_the_tally_last() {
        let table = summary(
            &[
                result("build", Outcome::Exited(0), false, 1200),
                result("lint", Outcome::Exited(1), false, 300),
                result("slow-check", Outcome::Signalled(15), true, 1000),
            ],
            false,
        );
        let want = "check       result           duration\n\
                    build       passed           1.2s\n\
                    lint        failed (exit 1)  300ms\n\
                    slow-check  timed out        1.0s\n\
                    1 passed, 2 failed\n";
        assert_eq!(table, want);
    }

    #[test]
    fn an_error_stays_out_of_the_table_and_goes_under_it_on_one_line() {
        let long = format!("could not check out:\nfatal: {}\n", "x".repeat(500));
        let table = summary(&[result("c", Outcome::Error(long), false, 0)], false);
        let lines: Vec<&str> = table.lines().collect();
        assert!(lines[..2].iter().all(|l| l.chars().count() < 40), "{table}");
        assert!(lines[2].starts_with("c: could not check out: fatal: xxx"), "{table}");
        assert_eq!(lines[2].chars().count(), "c: ".len() + ERROR_LINE_MAX_CHARS);
        assert_eq!(lines[3], "0 passed, 1 failed");
    }

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        assert!(use_colour(true, None));
        assert!(use_colour(true, Some("".into())));
        assert!(!use_colour(true, Some("1".into())));
        assert!(!use_colour(false, None));
        let table = summary(&[result("a", Outcome::Exited(0), false, 5)], true);
        assert!(table.contains("a      \x1b[32mpassed\x1b[0m  5ms"), "{table:?}");
        assert!(table.ends_with("\x1b[32m1 passed, 0 failed\x1b[0m\n"), "{table:?}");
    }
}
