//! GitHub webhook payloads into tether's events: the only place that knows their shape.

use serde::Deserialize;
use serde::de::{DeserializeOwned, Deserializer, IgnoredAny};
use serde_json::Value;

use crate::core::event::{
    CheckRun, CheckRunAction, CheckSuite, Event, Installation, IssueComment, PullRequest,
    PullRequestAction, Push, Repo, SuiteAction, User,
};

/// Why a payload could not be understood; the message names the missing or bad field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed {event} payload: {message}")]
pub struct MalformedPayload {
    pub event: String,
    pub message: String,
}

/// The events and actions tether acts on; every other one is answered and dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Handled {
    Push,
    PullRequest(PullRequestAction),
    CheckSuite(SuiteAction),
    CheckRunRerequested,
    CheckRunRequestedAction,
    IssueCommentCreated,
    Installation,
    InstallationRepositories,
    Ping,
}

/// The one list of GitHub's event names and actions tether acts on.
fn handled(event: &str, action: Option<&str>) -> Option<Handled> {
    Some(match (event, action) {
        ("push", _) => Handled::Push,
        ("pull_request", Some(action)) => Handled::PullRequest(pull_request_action(action)?),
        ("check_suite", Some("requested")) => Handled::CheckSuite(SuiteAction::Requested),
        ("check_suite", Some("rerequested")) => Handled::CheckSuite(SuiteAction::Rerequested),
        ("check_run", Some("rerequested")) => Handled::CheckRunRerequested,
        ("check_run", Some("requested_action")) => Handled::CheckRunRequestedAction,
        ("issue_comment", Some("created")) => Handled::IssueCommentCreated,
        ("installation", _) => Handled::Installation,
        ("installation_repositories", _) => Handled::InstallationRepositories,
        ("ping", _) => Handled::Ping,
        _ => return None,
    })
}

/// What the webhook endpoint does with a delivery it verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Triage {
    /// GitHub's `ping`: answered, not stored.
    Ping,
    /// An event or action tether does not act on: answered, not stored.
    Ignore,
    /// Stored, to be parsed by [`parse`] and acted on; `action` is the payload's.
    Store { action: Option<String> },
}

/// Only the payload's `action`; serde checks the rest is JSON without building it.
#[derive(Deserialize)]
struct Head {
    #[serde(default)]
    action: Option<Value>,
}

/// Whether to store a delivery, given its `X-GitHub-Event` header and raw body; an error when
/// the body is not a JSON object.
pub fn triage(event: &str, body: &[u8]) -> Result<Triage, MalformedPayload> {
    let head: Head = serde_json::from_slice(body)
        .map_err(|e| MalformedPayload { event: event.to_string(), message: e.to_string() })?;
    let action = head.action.as_ref().and_then(Value::as_str);
    Ok(match handled(event, action) {
        Some(Handled::Ping) => Triage::Ping,
        Some(_) => Triage::Store { action: action.map(String::from) },
        None => Triage::Ignore,
    })
}

/// The meaning of one delivery, given its `X-GitHub-Event` header and raw JSON body.
pub fn parse(event: &str, body: &[u8]) -> Result<Event, MalformedPayload> {
    let malformed = |message: String| MalformedPayload { event: event.to_string(), message };
    let value: Value = serde_json::from_slice(body).map_err(|e| malformed(e.to_string()))?;
    if !value.is_object() {
        return Err(malformed("not a JSON object".to_string()));
    }
    // The action decides whether the rest is read at all: an action tether ignores is ignored
    // whatever else its payload holds.
    let action = value.get("action").and_then(Value::as_str);
    let read = Reader { event, value: &value };
    let Some(handled) = handled(event, action) else {
        return Ok(Event::Ignored { event: event.to_string(), action: action.map(String::from) });
    };
    Ok(match handled {
        Handled::Push => push(read.body()?),
        Handled::PullRequest(action) => pull_request(action, read.body()?),
        Handled::CheckSuite(action) => check_suite(action, read.body()?),
        Handled::CheckRunRerequested => check_run(read.body()?, false).map_err(malformed)?,
        Handled::CheckRunRequestedAction => check_run(read.body()?, true).map_err(malformed)?,
        Handled::IssueCommentCreated => issue_comment(read.body()?),
        Handled::Installation => installation(read.body()?),
        Handled::InstallationRepositories => installation_repositories(read.body()?),
        Handled::Ping => Event::Ping,
    })
}

/// Reads one event's body out of the parsed JSON, naming the path of whatever is wrong.
struct Reader<'a> {
    event: &'a str,
    value: &'a Value,
}

impl Reader<'_> {
    fn body<T: DeserializeOwned>(&self) -> Result<T, MalformedPayload> {
        serde_path_to_error::deserialize(self.value)
            .map_err(|e| MalformedPayload { event: self.event.to_string(), message: describe(&e) })
    }
}

/// `repository.clone_url: missing field` rather than serde's `repository: missing field
/// `clone_url``: the path then names the field itself.
fn describe(error: &serde_path_to_error::Error<serde_json::Error>) -> String {
    let path = error.path().to_string();
    let inner = error.inner().to_string();
    let missing = inner.strip_prefix("missing field `").and_then(|rest| rest.strip_suffix('`'));
    match (path.as_str(), missing) {
        (".", Some(field)) => format!("{field}: missing field"),
        (path, Some(field)) => format!("{path}.{field}: missing field"),
        (".", None) => inner,
        (path, None) => format!("{path}: {inner}"),
    }
}

fn pull_request_action(action: &str) -> Option<PullRequestAction> {
    match action {
        "opened" => Some(PullRequestAction::Opened),
        "synchronize" => Some(PullRequestAction::Synchronize),
        "reopened" => Some(PullRequestAction::Reopened),
        _ => None,
    }
}

// Only the fields tether reads. Unknown fields are allowed: GitHub adds them without notice.

#[derive(Deserialize)]
struct RepoBody {
    id: i64,
    full_name: String,
    clone_url: String,
    // Push payloads also carry `master_branch`, the same value under an older name.
    default_branch: String,
}

impl From<RepoBody> for Repo {
    fn from(repo: RepoBody) -> Repo {
        let RepoBody { id, full_name, clone_url, default_branch } = repo;
        Repo { id, full_name, clone_url, default_branch }
    }
}

#[derive(Deserialize)]
struct UserBody {
    id: i64,
    login: String,
}

impl From<UserBody> for User {
    fn from(user: UserBody) -> User {
        User { id: user.id, login: user.login }
    }
}

/// `installation` as a repository event carries it: present only for a GitHub App's hooks.
#[derive(Deserialize)]
struct InstallationId {
    id: i64,
}

#[derive(Deserialize)]
struct PushBody {
    #[serde(rename = "ref")]
    git_ref: String,
    after: String,
    deleted: bool,
    repository: RepoBody,
    sender: UserBody,
    installation: Option<InstallationId>,
}

fn push(body: PushBody) -> Event {
    Event::Push(Push {
        repo: body.repository.into(),
        sender: body.sender.into(),
        installation: body.installation.map(|i| i.id),
        git_ref: body.git_ref,
        after: body.after,
        deleted: body.deleted,
    })
}

#[derive(Deserialize)]
struct PullRequestBody {
    pull_request: PullRequestFields,
    repository: RepoBody,
    sender: UserBody,
    installation: Option<InstallationId>,
}

#[derive(Deserialize)]
struct PullRequestFields {
    number: u64,
    user: UserBody,
    head: HeadBody,
    base: BaseBody,
}

#[derive(Deserialize)]
struct HeadBody {
    sha: String,
    #[serde(rename = "ref")]
    git_ref: String,
    /// Null when the fork the pull request came from was deleted.
    repo: Option<HeadRepo>,
}

#[derive(Deserialize)]
struct HeadRepo {
    id: i64,
    clone_url: String,
}

#[derive(Deserialize)]
struct BaseBody {
    #[serde(rename = "ref")]
    git_ref: String,
}

fn pull_request(action: PullRequestAction, body: PullRequestBody) -> Event {
    let PullRequestFields { number, user, head, base } = body.pull_request;
    let repo: Repo = body.repository.into();
    // A deleted fork is still a fork: its head is not the base repository's.
    let from_fork = head.repo.as_ref().is_none_or(|r| r.id != repo.id);
    // A deleted fork's commits stay reachable from the base repository (`refs/pull/N/head`).
    let head_clone_url = head.repo.map_or_else(|| repo.clone_url.clone(), |r| r.clone_url);
    Event::PullRequest(PullRequest {
        action,
        repo,
        sender: body.sender.into(),
        installation: body.installation.map(|i| i.id),
        number,
        head_sha: head.sha,
        head_clone_url,
        head_ref: head.git_ref,
        base_ref: base.git_ref,
        author: user.login,
        from_fork,
    })
}

#[derive(Deserialize)]
struct CheckSuiteBody {
    check_suite: SuiteFields,
    repository: RepoBody,
    sender: UserBody,
    installation: Option<InstallationId>,
}

#[derive(Deserialize)]
struct SuiteFields {
    id: i64,
    head_sha: String,
    /// Null when the suite is not on a branch (a tag, or a branch since deleted).
    head_branch: Option<String>,
}

fn check_suite(action: SuiteAction, body: CheckSuiteBody) -> Event {
    Event::CheckSuite(CheckSuite {
        action,
        repo: body.repository.into(),
        sender: body.sender.into(),
        installation: body.installation.map(|i| i.id),
        suite_id: body.check_suite.id,
        head_sha: body.check_suite.head_sha,
        head_branch: body.check_suite.head_branch,
    })
}

#[derive(Deserialize)]
struct CheckRunBody {
    check_run: RunFields,
    /// Only in `requested_action`.
    requested_action: Option<RequestedAction>,
    repository: RepoBody,
    sender: UserBody,
    installation: Option<InstallationId>,
}

#[derive(Deserialize)]
struct RunFields {
    id: i64,
    /// Empty or null for check runs whose app set none.
    external_id: Option<String>,
    name: String,
    head_sha: String,
}

#[derive(Deserialize)]
struct RequestedAction {
    identifier: String,
}

fn check_run(body: CheckRunBody, requested_action: bool) -> Result<Event, String> {
    let run = body.check_run;
    let action = match (requested_action, body.requested_action) {
        (false, _) => CheckRunAction::Rerequested,
        (true, Some(RequestedAction { identifier })) => {
            CheckRunAction::RequestedAction { identifier }
        }
        (true, None) => return Err("requested_action: missing field".into()),
    };
    Ok(Event::CheckRun(CheckRun {
        action,
        repo: body.repository.into(),
        sender: body.sender.into(),
        installation: body.installation.map(|i| i.id),
        check_run_id: run.id,
        external_id: run.external_id.unwrap_or_default(),
        name: run.name,
        head_sha: run.head_sha,
    }))
}

#[derive(Deserialize)]
struct IssueCommentBody {
    issue: IssueFields,
    comment: CommentFields,
    repository: RepoBody,
    sender: UserBody,
    installation: Option<InstallationId>,
}

#[derive(Deserialize)]
struct IssueFields {
    number: u64,
    /// GitHub marks an issue that is a pull request by the presence of this key.
    #[serde(default, deserialize_with = "present")]
    pull_request: bool,
}

#[derive(Deserialize)]
struct CommentFields {
    id: i64,
    body: String,
}

/// True for any value, null included: only called when the key is there.
fn present<'de, D: Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    IgnoredAny::deserialize(deserializer).map(|_| true)
}

fn issue_comment(body: IssueCommentBody) -> Event {
    Event::IssueComment(IssueComment {
        repo: body.repository.into(),
        sender: body.sender.into(),
        installation: body.installation.map(|i| i.id),
        issue_number: body.issue.number,
        on_pull_request: body.issue.pull_request,
        comment_id: body.comment.id,
        body: body.comment.body,
    })
}

#[derive(Deserialize)]
struct InstallationBody {
    action: String,
    installation: InstallationFields,
    sender: UserBody,
    /// The repositories the installation covers; absent or null when it covers all of them.
    repositories: Option<Vec<RepoName>>,
}

#[derive(Deserialize)]
struct InstallationFields {
    id: i64,
    account: Account,
}

#[derive(Deserialize)]
struct Account {
    login: String,
}

#[derive(Deserialize)]
struct RepoName {
    full_name: String,
}

fn names(repos: Vec<RepoName>) -> Vec<String> {
    repos.into_iter().map(|r| r.full_name).collect()
}

fn installation(body: InstallationBody) -> Event {
    let listed = names(body.repositories.unwrap_or_default());
    // The list is what the installation covers: gained on `created`, lost on `deleted`; other
    // actions (suspend, new permissions) change no repository.
    let (added, removed) = match body.action.as_str() {
        "created" => (listed, Vec::new()),
        "deleted" => (Vec::new(), listed),
        _ => (Vec::new(), Vec::new()),
    };
    Event::Installation(Installation {
        action: body.action,
        installation_id: body.installation.id,
        account: body.installation.account.login,
        sender: body.sender.into(),
        added,
        removed,
    })
}

#[derive(Deserialize)]
struct InstallationRepositoriesBody {
    action: String,
    installation: InstallationFields,
    sender: UserBody,
    repositories_added: Vec<RepoName>,
    repositories_removed: Vec<RepoName>,
}

fn installation_repositories(body: InstallationRepositoriesBody) -> Event {
    Event::Installation(Installation {
        action: body.action,
        installation_id: body.installation.id,
        account: body.installation.account.login,
        sender: body.sender.into(),
        added: names(body.repositories_added),
        removed: names(body.repositories_removed),
    })
}

#[cfg(test)]
mod tests;
