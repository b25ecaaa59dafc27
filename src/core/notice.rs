//! The lines a runner prints for its owner as each run starts and ends: check, repository,
//! outcome, duration and the run's page (or its id when the server sent no link).

use std::time::Duration;

use super::duration;
use super::run::{Finished, Outcome};

/// The longest run page URL a runner shows; a longer one is replaced by the run id.
pub const RUN_URL_MAX_BYTES: usize = 2048;

/// Which run a line is about, as the server described it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunTitle {
    pub run_id: String,
    pub check: String,
    /// `owner/name`.
    pub repo: String,
    /// The run's page, already checked by [`run_link`].
    pub link: Option<String>,
}

/// How a run ended, as its owner reads it.
#[derive(Debug, Clone, PartialEq)]
pub enum Ending {
    Finished(Finished),
    /// The server hung up before the run ended: it cancelled the run, or went away.
    Dropped {
        after: Duration,
    },
}

/// `url` when it is a plain `http(s)` URL fit for a terminal: no spaces, no control characters
/// (an escape sequence in it would be written to the owner's terminal), bounded.
pub fn run_link(url: &str) -> Option<String> {
    let plain = url.len() <= RUN_URL_MAX_BYTES && url.bytes().all(|b| b.is_ascii_graphic());
    let http = url.starts_with("https://") || url.starts_with("http://");
    (plain && http).then(|| url.to_string())
}

/// `text` with control characters escaped, so a check name cannot drive the terminal.
fn printable(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { c.escape_default().to_string() } else { c.to_string() })
        .collect()
}

impl RunTitle {
    fn subject(&self) -> String {
        format!("{} on {}", printable(&self.check), printable(&self.repo))
    }

    fn where_to_look(&self) -> String {
        match &self.link {
            Some(link) => link.clone(),
            None => format!("run {}", printable(&self.run_id)),
        }
    }

    /// The line printed as the run starts.
    pub fn started_line(&self) -> String {
        format!("run started: {}  {}", self.subject(), self.where_to_look())
    }

    /// The line printed as the run ends.
    pub fn ended_line(&self, ending: &Ending) -> String {
        let (outcome, took) = match ending {
            Ending::Finished(finished) => (outcome_words(finished), finished.duration),
            Ending::Dropped { after } => {
                ("stopped by the server (cancelled, or it went away)".to_string(), *after)
            }
        };
        let took = duration::format(took);
        format!("run {outcome}: {} in {took}  {}", self.subject(), self.where_to_look())
    }
}

fn outcome_words(finished: &Finished) -> String {
    if finished.timed_out {
        return "timed out".to_string();
    }
    match &finished.outcome {
        Outcome::Exited(0) => "passed".to_string(),
        Outcome::Exited(code) => format!("failed (exit {code})"),
        Outcome::Signalled(signal) => format!("failed (killed by signal {signal})"),
        Outcome::Error(why) => format!("errored ({})", printable(why)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn title(link: Option<&str>) -> RunTitle {
        RunTitle {
            run_id: "42".into(),
            check: "test".into(),
            repo: "alice/app".into(),
            link: link.map(String::from),
        }
    }

    fn finished(outcome: Outcome, timed_out: bool) -> Ending {
        let duration = Duration::from_millis(1500);
        Ending::Finished(Finished { outcome, timed_out, duration, output_chunks: 3 })
    }

    #[test]
    fn lines_name_the_check_repository_outcome_duration_and_link() {
        let t = title(Some("https://ci.example.com/runs/42"));
        assert_eq!(
            t.started_line(),
            "run started: test on alice/app  https://ci.example.com/runs/42"
        );
        assert_eq!(
            t.ended_line(&finished(Outcome::Exited(0), false)),
            "run passed: test on alice/app in 1.5s  https://ci.example.com/runs/42"
        );
        let failed = t.ended_line(&finished(Outcome::Exited(2), false));
        assert!(failed.starts_with("run failed (exit 2): test on alice/app in 1.5s"), "{failed}");
        let timed_out = t.ended_line(&finished(Outcome::Signalled(15), true));
        assert!(timed_out.starts_with("run timed out: "), "{timed_out}");
        let dropped = t.ended_line(&Ending::Dropped { after: Duration::from_secs(3) });
        assert!(dropped.starts_with("run stopped by the server"), "{dropped}");
    }

    #[test]
    fn without_a_link_the_run_id_is_named() {
        assert_eq!(title(None).started_line(), "run started: test on alice/app  run 42");
    }

    #[test]
    fn only_plain_bounded_http_links_are_shown_and_control_characters_are_escaped() {
        assert_eq!(run_link("https://x/runs/1").as_deref(), Some("https://x/runs/1"));
        assert_eq!(
            run_link("http://127.0.0.1:8080/runs/1").as_deref(),
            Some("http://127.0.0.1:8080/runs/1")
        );
        assert_eq!(run_link("javascript:alert(1)"), None);
        assert_eq!(run_link("https://x/\x1b]0;pwned\x07"), None);
        assert_eq!(run_link("https://x/a b"), None);
        assert_eq!(run_link(""), None);
        assert_eq!(run_link(&format!("https://x/{}", "a".repeat(RUN_URL_MAX_BYTES))), None);
        let mut t = title(None);
        t.check = "evil\x1b[2J".into();
        assert_eq!(t.started_line(), "run started: evil\\u{1b}[2J on alice/app  run 42");
    }
}
