//! Which checks an event runs: a pure function of the config, the event kind and the branch.

use super::config::{Check, Config, EventKind};

/// The checks that run for an event, in name order.
///
/// `branch` is the pushed branch (without `refs/heads/`), or `None` for a push of a tag or any
/// other ref. Branch filters apply to push events only: a check with `branches` runs for a push
/// only when one of its globs matches the branch. Pull requests ignore `branches`.
pub fn checks_for<'a>(
    config: &'a Config,
    event: EventKind,
    branch: Option<&str>,
) -> Vec<&'a Check> {
    config.checks.values().filter(|check| runs_for(check, event, branch)).collect()
}

/// Whether one check runs for an event.
pub fn runs_for(check: &Check, event: EventKind, branch: Option<&str>) -> bool {
    if !check.on.contains(&event) {
        return false;
    }
    match event {
        EventKind::PullRequest => true,
        EventKind::Push if check.branches.is_empty() => true,
        EventKind::Push => branch.is_some_and(|b| check.branches.iter().any(|p| p.matches(b))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> Config {
        Config::parse(text).unwrap()
    }

    fn names(checks: Vec<&Check>) -> Vec<&str> {
        checks.iter().map(|c| c.name.as_str()).collect()
    }

    #[test]
    fn checks_run_for_both_events_by_default() {
        let c = config("[checks.a]\nrun = \"true\"\n");
        assert_eq!(names(checks_for(&c, EventKind::Push, Some("main"))), ["a"]);
        assert_eq!(names(checks_for(&c, EventKind::PullRequest, None)), ["a"]);
    }

    #[test]
    fn on_limits_the_events() {
        let c = config(
            "[checks.p]\nrun = \"true\"\non = [\"push\"]\n\
             [checks.r]\nrun = \"true\"\non = [\"pull_request\"]\n",
        );
        assert_eq!(names(checks_for(&c, EventKind::Push, Some("main"))), ["p"]);
        assert_eq!(names(checks_for(&c, EventKind::PullRequest, Some("main"))), ["r"]);
    }

    #[test]
    fn branches_filter_pushes_with_globs() {
        let c = config(
            "[checks.rel]\nrun = \"true\"\nbranches = [\"main\", \"release/*\"]\n\
             [checks.all]\nrun = \"true\"\n",
        );
        assert_eq!(names(checks_for(&c, EventKind::Push, Some("main"))), ["all", "rel"]);
        assert_eq!(names(checks_for(&c, EventKind::Push, Some("release/1.0"))), ["all", "rel"]);
        // `*` does not cross a slash, so a nested branch needs its own glob.
        assert_eq!(names(checks_for(&c, EventKind::Push, Some("release/1.0/hotfix"))), ["all"]);
        assert_eq!(names(checks_for(&c, EventKind::Push, Some("feature"))), ["all"]);
        // A tag push has no branch: only unfiltered checks run.
        assert_eq!(names(checks_for(&c, EventKind::Push, None)), ["all"]);
    }

    #[test]
    fn branches_do_not_apply_to_pull_requests() {
        let c = config("[checks.rel]\nrun = \"true\"\nbranches = [\"main\"]\n");
        assert_eq!(names(checks_for(&c, EventKind::PullRequest, Some("feature"))), ["rel"]);
    }
}
