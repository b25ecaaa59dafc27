//! GitHub events as tether needs them, whatever GitHub's payloads look like (the `github` module
//! converts payloads into these at its border).

/// A repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repo {
    pub id: i64,
    /// `owner/name`.
    pub full_name: String,
    pub clone_url: String,
    pub default_branch: String,
}

/// A GitHub user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: i64,
    pub login: String,
}

/// One webhook delivery's meaning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Push(Push),
    PullRequest(PullRequest),
    CheckSuite(CheckSuite),
    CheckRun(CheckRun),
    IssueComment(IssueComment),
    Installation(Installation),
    Ping,
    /// An event or action tether does not act on; answered 202 and ignored.
    Ignored {
        event: String,
        action: Option<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Push {
    pub repo: Repo,
    pub sender: User,
    pub installation: Option<i64>,
    /// The full ref, `refs/heads/main` or `refs/tags/v1`.
    pub git_ref: String,
    /// The commit pushed; all zeros when the ref was deleted.
    pub after: String,
    pub deleted: bool,
}

impl Push {
    /// The branch pushed, without `refs/heads/`; `None` for tags and other refs.
    pub fn branch(&self) -> Option<&str> {
        self.git_ref.strip_prefix("refs/heads/")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullRequestAction {
    Opened,
    Synchronize,
    Reopened,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullRequest {
    pub action: PullRequestAction,
    pub repo: Repo,
    pub sender: User,
    pub installation: Option<i64>,
    pub number: u64,
    pub head_sha: String,
    /// The clone URL of the head repository (a fork's, for a pull request from a fork).
    pub head_clone_url: String,
    pub head_ref: String,
    pub base_ref: String,
    /// The pull request's author.
    pub author: String,
    /// Whether its head is in another repository than its base (a fork, or a deleted one).
    pub from_fork: bool,
}

impl PullRequest {
    /// Whether the event's code may run on its sender's runner: always for a branch of the
    /// repository itself; for a fork's, only when the sender is the pull request's author. A
    /// maintainer reopening a fork's pull request, or clicking "Update branch", becomes the
    /// sender, and must not have the fork's code run on their machine without a `/run`.
    pub fn runs_on_sender(&self) -> bool {
        !self.from_fork || self.sender.login.eq_ignore_ascii_case(&self.author)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SuiteAction {
    Requested,
    Rerequested,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckSuite {
    pub action: SuiteAction,
    pub repo: Repo,
    pub sender: User,
    pub installation: Option<i64>,
    pub suite_id: i64,
    pub head_sha: String,
    pub head_branch: Option<String>,
}

/// What was asked of a check run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckRunAction {
    /// "Re-run".
    Rerequested,
    /// One of the check run's buttons, by the identifier tether gave it.
    RequestedAction { identifier: String },
}

/// `check_run.rerequested` and `check_run.requested_action`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckRun {
    pub action: CheckRunAction,
    pub repo: Repo,
    pub sender: User,
    pub installation: Option<i64>,
    pub check_run_id: i64,
    /// tether's run id, as it set it when creating the check run; empty for other apps'.
    pub external_id: String,
    pub name: String,
    pub head_sha: String,
}

/// `issue_comment.created`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssueComment {
    pub repo: Repo,
    pub sender: User,
    pub installation: Option<i64>,
    pub issue_number: u64,
    /// Whether the issue is a pull request.
    pub on_pull_request: bool,
    pub comment_id: i64,
    pub body: String,
}

/// `installation` and `installation_repositories`: recorded, nothing runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Installation {
    pub action: String,
    pub installation_id: i64,
    pub account: String,
    pub sender: User,
    /// `owner/name` of repositories added and removed (for `installation_repositories`, or
    /// those listed on `installation.created`).
    pub added: Vec<String>,
    pub removed: Vec<String>,
}

/// Whether a commit id is the all-zeros id GitHub sends for a deleted ref.
pub fn is_null_commit(sha: &str) -> bool {
    !sha.is_empty() && sha.bytes().all(|b| b == b'0')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_forks_pull_request_runs_only_for_its_author() {
        let repo = Repo {
            id: 1,
            full_name: "o/r".into(),
            clone_url: "u".into(),
            default_branch: "main".into(),
        };
        let pr = |sender: &str, from_fork: bool| PullRequest {
            action: PullRequestAction::Reopened,
            repo: repo.clone(),
            sender: User { id: 2, login: sender.into() },
            installation: None,
            number: 1,
            head_sha: "a".into(),
            head_clone_url: "u".into(),
            head_ref: "h".into(),
            base_ref: "main".into(),
            author: "Carol".into(),
            from_fork,
        };
        assert!(pr("carol", true).runs_on_sender());
        assert!(!pr("maintainer", true).runs_on_sender());
        assert!(pr("maintainer", false).runs_on_sender());
    }

    #[test]
    fn null_commits() {
        assert!(is_null_commit(&"0".repeat(40)));
        assert!(!is_null_commit("0123"));
        assert!(!is_null_commit(""));
    }
}
