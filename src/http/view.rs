//! What the pages show of runs, in words: statuses, times relative to now, runs grouped by
//! commit. Pure: the time of "now" is an argument.

use std::time::{Duration, SystemTime};

use crate::core::run::Conclusion;
use crate::store::{RunRecord, RunStatus};

/// A run's status as a page shows it: a CSS class (the stored name) and words for people.
pub struct Status {
    pub class: &'static str,
    pub words: &'static str,
}

/// The status of a run, its conclusion once it has one, in words.
pub fn status(status: RunStatus, conclusion: Option<Conclusion>) -> Status {
    let (class, words) = match (status, conclusion) {
        (_, Some(Conclusion::Success)) => ("success", "passed"),
        (_, Some(Conclusion::Failure)) => ("failure", "failed"),
        (_, Some(Conclusion::TimedOut)) => ("timed_out", "timed out"),
        (_, Some(Conclusion::Cancelled)) => ("cancelled", "cancelled"),
        (RunStatus::Queued, None) => ("queued", "queued"),
        (RunStatus::InProgress, None) => ("in_progress", "in progress"),
        (RunStatus::Completed, None) => ("completed", "completed"),
    };
    Status { class, words }
}

/// A moment, relative to the page's now, and absolute (RFC 3339, for `title` and `datetime`).
pub struct When {
    pub relative: String,
    pub absolute: String,
}

impl When {
    pub fn new(now: SystemTime, then: SystemTime) -> When {
        When {
            relative: relative(now, then),
            absolute: humantime::format_rfc3339_seconds(then).to_string(),
        }
    }
}

/// `then` as people say it from `now`: "just now", "5 min ago", "3 h ago", "2 days ago", and
/// the date past 30 days. A time ahead of now (another clock) is "just now".
pub fn relative(now: SystemTime, then: SystemTime) -> String {
    let ago = now.duration_since(then).unwrap_or(Duration::ZERO).as_secs();
    match ago {
        0..60 => "just now".into(),
        60..3600 => format!("{} min ago", ago / 60),
        3600..86_400 => format!("{} h ago", ago / 3600),
        86_400..172_800 => "1 day ago".into(),
        172_800..2_592_000 => format!("{} days ago", ago / 86_400),
        _ => humantime::format_rfc3339_seconds(then).to_string()[..10].to_owned(),
    }
}

/// A run's duration: how long it took, "running" while it runs, "-" before.
pub fn duration(run: &RunRecord) -> String {
    match (run.started_at, run.finished_at) {
        (Some(start), Some(end)) => {
            crate::core::duration::format(end.duration_since(start).unwrap_or_default())
        }
        (Some(_), None) => "running".into(),
        _ => "-".into(),
    }
}

/// A run in a list.
pub struct RunRow {
    pub id: i64,
    pub check: String,
    pub status: Status,
    pub event: String,
    pub sender: String,
    pub duration: String,
    pub when: When,
}

/// The runs of one commit in a list, with what the list shows of the commit.
pub struct CommitGroup {
    pub repo: String,
    pub short_sha: String,
    pub branch: Option<String>,
    pub message: Option<String>,
    /// From the payload's `repository.html_url`; absent for runs stored before it was kept.
    pub commit_url: Option<String>,
    pub runs: Vec<RunRow>,
}

/// The first characters of a commit id or thunk id that name it on a page.
pub fn short(id: &str) -> String {
    id.chars().take(10).collect()
}

/// Runs (newest first) grouped by commit: groups in the order of their newest run, each
/// group's runs in the order they were queued.
pub fn group_by_commit(records: &[RunRecord], now: SystemTime) -> Vec<CommitGroup> {
    let mut groups: Vec<CommitGroup> = Vec::new();
    for r in records {
        let row = RunRow {
            id: r.id,
            check: r.check.clone(),
            status: status(r.status, r.conclusion),
            event: r.event.clone(),
            sender: r.sender.clone(),
            duration: duration(r),
            when: When::new(now, r.created_at),
        };
        let short_sha = short(&r.sha);
        match groups.iter_mut().find(|g| g.repo == r.repo && g.short_sha == short_sha) {
            Some(group) => group.runs.push(row),
            None => groups.push(CommitGroup {
                repo: r.repo.clone(),
                short_sha,
                branch: r.commit.branch.clone(),
                message: r.commit.message.clone(),
                commit_url: r.commit.url.clone(),
                runs: vec![row],
            }),
        }
    }
    for group in &mut groups {
        group.runs.reverse();
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: Duration = Duration::from_secs(1_800_000_000);

    fn ago(secs: u64) -> String {
        let now = SystemTime::UNIX_EPOCH + T0;
        relative(now, now - Duration::from_secs(secs))
    }

    #[test]
    fn times_read_relative_to_now() {
        assert_eq!(ago(0), "just now");
        assert_eq!(ago(59), "just now");
        assert_eq!(ago(60), "1 min ago");
        assert_eq!(ago(59 * 60 + 59), "59 min ago");
        assert_eq!(ago(3600), "1 h ago");
        assert_eq!(ago(86_399), "23 h ago");
        assert_eq!(ago(86_400), "1 day ago");
        assert_eq!(ago(3 * 86_400), "3 days ago");
        assert_eq!(ago(40 * 86_400), "2026-12-06");
        let now = SystemTime::UNIX_EPOCH + T0;
        assert_eq!(relative(now, now + Duration::from_secs(30)), "just now", "a clock ahead");
        assert_eq!(When::new(now, now).absolute, "2027-01-15T08:00:00Z");
    }

    #[test]
    fn statuses_read_as_words_and_keep_their_class() {
        let words = |s, c| {
            let st = status(s, c);
            (st.class, st.words)
        };
        assert_eq!(words(RunStatus::Queued, None), ("queued", "queued"));
        assert_eq!(words(RunStatus::InProgress, None), ("in_progress", "in progress"));
        let done = RunStatus::Completed;
        assert_eq!(words(done, Some(Conclusion::TimedOut)), ("timed_out", "timed out"));
        assert_eq!(words(done, Some(Conclusion::Success)), ("success", "passed"));
        assert_eq!(words(done, Some(Conclusion::Failure)), ("failure", "failed"));
        assert_eq!(words(done, Some(Conclusion::Cancelled)), ("cancelled", "cancelled"));
    }
}
