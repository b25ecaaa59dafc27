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
    /// The repository's page (`repository.html_url`), whose host is GitHub's or an
    /// Enterprise server's: commit links are made from it.
    pub html_url: Option<String>,
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
    /// The message of the commit pushed (`head_commit`, when it is `after`).
    pub head_message: Option<String>,
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
    pub title: String,
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

/// `check_run.rerequested` (the only check_run action tether acts on).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckRun {
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
    fn null_commits() {
        assert!(is_null_commit(&"0".repeat(40)));
        assert!(!is_null_commit("0123"));
        assert!(!is_null_commit(""));
    }
}
