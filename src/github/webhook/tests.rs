//! The parser against octokit's real payloads, and against edits of them.

use super::*;
use crate::core::event::is_null_commit;

/// One of the payloads under `tests/fixtures/github-webhooks/`.
macro_rules! fixture {
    ($path:literal) => {
        include_bytes!(concat!("../../../tests/fixtures/github-webhooks/", $path)).as_slice()
    };
}

/// One fixture: its path (whose directory is the event name), body and expected variant.
macro_rules! entry {
    ($path:literal, $variant:literal) => {
        ($path, fixture!($path), $variant)
    };
}

/// Every fixture and the variant it must parse into.
const FIXTURES: &[(&str, &[u8], &str)] = &[
    entry!("check_run/completed.payload.json", "Ignored"),
    entry!("check_run/requested_action.payload.json", "CheckRun"),
    entry!("check_run/rerequested.payload.json", "CheckRun"),
    entry!("check_suite/requested.payload.json", "CheckSuite"),
    entry!("check_suite/rerequested.payload.json", "CheckSuite"),
    entry!("deployment_status/with-installation.payload.json", "Ignored"),
    entry!("installation/created.payload.json", "Installation"),
    entry!("installation/deleted.payload.json", "Installation"),
    entry!("installation_repositories/added.payload.json", "Installation"),
    entry!("issue_comment/created.payload.json", "IssueComment"),
    entry!("issue_comment/edited.payload.json", "Ignored"),
    entry!("ping/with-app_id.payload.json", "Ping"),
    entry!("pull_request/closed.payload.json", "Ignored"),
    entry!("pull_request/labeled.payload.json", "Ignored"),
    entry!("pull_request/opened.payload.json", "PullRequest"),
    entry!("pull_request/reopened.payload.json", "PullRequest"),
    entry!("pull_request/synchronize.payload.json", "PullRequest"),
    entry!("push/payload.json", "Push"),
    entry!("push/with-installation.payload.json", "Push"),
    entry!("push/with-new-branch.payload.json", "Push"),
];

fn variant(event: &Event) -> &'static str {
    match event {
        Event::Push(_) => "Push",
        Event::PullRequest(_) => "PullRequest",
        Event::CheckSuite(_) => "CheckSuite",
        Event::CheckRun(_) => "CheckRun",
        Event::IssueComment(_) => "IssueComment",
        Event::Installation(_) => "Installation",
        Event::Ping => "Ping",
        Event::Ignored { .. } => "Ignored",
    }
}

/// `body` with `edit` applied to its JSON: payloads stay GitHub's, changed only where it matters.
fn edited(body: &[u8], edit: impl FnOnce(&mut Value)) -> Vec<u8> {
    let mut value: Value = serde_json::from_slice(body).unwrap();
    edit(&mut value);
    serde_json::to_vec(&value).unwrap()
}

fn ignored(event: &str, action: &str) -> Event {
    Event::Ignored { event: event.to_string(), action: Some(action.to_string()) }
}

fn hello_world() -> Repo {
    Repo {
        id: 186853002,
        full_name: "Codertocat/Hello-World".into(),
        clone_url: "https://github.com/Codertocat/Hello-World.git".into(),
        default_branch: "master".into(),
    }
}

fn codertocat() -> User {
    User { id: 21031067, login: "Codertocat".into() }
}

#[test]
fn every_fixture_parses_into_its_variant() {
    for (path, body, expected) in FIXTURES {
        let event = path.split('/').next().unwrap();
        let parsed = parse(event, body).unwrap_or_else(|e| panic!("{path}: {e}"));
        assert_eq!(variant(&parsed), *expected, "{path}: {parsed:?}");
    }
}

/// A fixture added to the directory must be added to `FIXTURES` too.
#[test]
fn every_fixture_file_is_listed() {
    let root =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/github-webhooks");
    let mut on_disk = Vec::new();
    for dir in std::fs::read_dir(&root).unwrap().map(|entry| entry.unwrap().path()) {
        for file in std::fs::read_dir(&dir).into_iter().flatten() {
            on_disk.push(file.unwrap().path().strip_prefix(&root).unwrap().display().to_string());
        }
    }
    on_disk.sort();
    let listed: Vec<_> = FIXTURES.iter().map(|(path, _, _)| path.to_string()).collect();
    assert_eq!(on_disk, listed);
}

#[test]
fn push_of_a_tag_deletion() {
    let Event::Push(push) = parse("push", fixture!("push/payload.json")).unwrap() else { panic!() };
    assert_eq!(push.repo, hello_world());
    assert_eq!(push.sender, codertocat());
    assert_eq!(push.installation, None);
    assert_eq!(push.git_ref, "refs/tags/simple-tag");
    assert!(push.deleted);
    // GitHub sends forty zeros for a deleted ref, not null.
    assert!(is_null_commit(&push.after), "{}", push.after);
    assert_eq!(push.branch(), None);
}

#[test]
fn push_with_an_installation() {
    let body = fixture!("push/with-installation.payload.json");
    let Event::Push(push) = parse("push", body).unwrap() else { panic!() };
    assert_eq!(push.installation, Some(1));
    assert!(push.deleted);
}

#[test]
fn push_of_a_new_branch() {
    let body = fixture!("push/with-new-branch.payload.json");
    let Event::Push(push) = parse("push", body).unwrap() else { panic!() };
    let expected = Push {
        repo: hello_world(),
        sender: codertocat(),
        installation: Some(1),
        git_ref: "refs/heads/master".into(),
        after: "6113728f27ae82c7b1a177c8d03f9e96e0adf246".into(),
        deleted: false,
    };
    assert_eq!(push, expected);
    assert_eq!(push.branch(), Some("master"));
}

#[test]
fn pull_requests_that_run_checks() {
    let cases = [
        (fixture!("pull_request/opened.payload.json"), PullRequestAction::Opened),
        (fixture!("pull_request/synchronize.payload.json"), PullRequestAction::Synchronize),
        (fixture!("pull_request/reopened.payload.json"), PullRequestAction::Reopened),
    ];
    for (body, action) in cases {
        let expected = PullRequest {
            action,
            repo: hello_world(),
            sender: codertocat(),
            installation: Some(1),
            number: 2,
            head_sha: "ec26c3e57ca3a959ca5aad62de7213c562f8c821".into(),
            head_clone_url: "https://github.com/Codertocat/Hello-World.git".into(),
            head_ref: "changes".into(),
            base_ref: "master".into(),
            author: "Codertocat".into(),
            from_fork: false,
        };
        assert_eq!(parse("pull_request", body).unwrap(), Event::PullRequest(expected));
    }
}

#[test]
fn pull_request_from_a_fork_clones_the_fork_or_the_base_once_it_is_deleted() {
    let opened = fixture!("pull_request/opened.payload.json");
    let fork = "https://github.com/forker/Hello-World.git";
    let from_fork = edited(opened, |v| {
        v["pull_request"]["head"]["repo"]["clone_url"] = fork.into();
        v["pull_request"]["head"]["repo"]["id"] = 99.into();
    });
    let Event::PullRequest(pr) = parse("pull_request", &from_fork).unwrap() else { panic!() };
    assert_eq!(pr.head_clone_url, fork);
    assert!(pr.from_fork && pr.runs_on_sender(), "its author's own push runs");
    let maintainer = edited(&from_fork, |v| v["sender"]["login"] = "maintainer".into());
    let Event::PullRequest(pr) = parse("pull_request", &maintainer).unwrap() else { panic!() };
    assert!(!pr.runs_on_sender(), "a maintainer's reopening does not run on their runner");

    let deleted = edited(opened, |v| v["pull_request"]["head"]["repo"] = Value::Null);
    let Event::PullRequest(pr) = parse("pull_request", &deleted).unwrap() else { panic!() };
    assert_eq!(pr.head_clone_url, hello_world().clone_url);
    assert!(pr.from_fork, "a deleted fork is still a fork");
}

#[test]
fn other_pull_request_actions_are_ignored_unread() {
    let closed = fixture!("pull_request/closed.payload.json");
    assert_eq!(parse("pull_request", closed).unwrap(), ignored("pull_request", "closed"));
    let labeled = fixture!("pull_request/labeled.payload.json");
    assert_eq!(parse("pull_request", labeled).unwrap(), ignored("pull_request", "labeled"));
    let bare = edited(closed, |v| v.as_object_mut().unwrap().retain(|key, _| key == "action"));
    assert_eq!(parse("pull_request", &bare).unwrap(), ignored("pull_request", "closed"));
}

#[test]
fn check_suites() {
    let body = fixture!("check_suite/requested.payload.json");
    let expected = CheckSuite {
        action: SuiteAction::Requested,
        repo: hello_world(),
        sender: codertocat(),
        installation: Some(957387),
        suite_id: 118578174,
        head_sha: "f95f852bd8fca8fcc58a9a2d6c842781e32a215e".into(),
        head_branch: Some("master".into()),
    };
    assert_eq!(parse("check_suite", body).unwrap(), Event::CheckSuite(expected));

    let body = fixture!("check_suite/rerequested.payload.json");
    let Event::CheckSuite(suite) = parse("check_suite", body).unwrap() else { panic!() };
    assert_eq!(suite.action, SuiteAction::Rerequested);
    assert_eq!(suite.suite_id, 118578147);
    assert_eq!(suite.head_sha, "ec26c3e57ca3a959ca5aad62de7213c562f8c821");
    assert_eq!(suite.head_branch.as_deref(), Some("changes"));
    assert_eq!(suite.sender, User { id: 49795351, login: "octocoders-linter[bot]".into() });
}

#[test]
fn check_run_rerequested() {
    let body = fixture!("check_run/rerequested.payload.json");
    let expected = CheckRun {
        action: CheckRunAction::Rerequested,
        repo: Repo {
            id: 526,
            full_name: "github/hello-world".into(),
            // This fixture's clone URL is http, not https: taken as GitHub sends it.
            clone_url: "http://github.com/github/hello-world.git".into(),
            default_branch: "master".into(),
        },
        sender: User { id: 5346, login: "octocat".into() },
        installation: Some(1),
        check_run_id: 4,
        external_id: String::new(),
        name: "randscape".into(),
        head_sha: "d6fde92930d4715a2b49857d24b940956b26d2d3".into(),
    };
    assert_eq!(parse("check_run", body).unwrap(), Event::CheckRun(expected));

    for (external_id, expected) in [(Value::Null, ""), ("run-42".into(), "run-42")] {
        let body = edited(body, |v| v["check_run"]["external_id"] = external_id);
        let Event::CheckRun(run) = parse("check_run", &body).unwrap() else { panic!() };
        assert_eq!(run.external_id, expected);
    }
}

#[test]
fn check_run_requested_action_carries_its_identifier() {
    let requested = fixture!("check_run/requested_action.payload.json");
    let Event::CheckRun(run) = parse("check_run", requested).unwrap() else { panic!() };
    let identifier = "lgtm|26764".to_string();
    assert_eq!(run.action, CheckRunAction::RequestedAction { identifier });
    let body = edited(requested, |v| {
        v.as_object_mut().unwrap().remove("requested_action");
    });
    let error = parse("check_run", &body).unwrap_err();
    assert!(error.message.contains("requested_action"), "{error}");
}

#[test]
fn other_check_run_actions_are_ignored() {
    let completed = fixture!("check_run/completed.payload.json");
    assert_eq!(parse("check_run", completed).unwrap(), ignored("check_run", "completed"));
}

#[test]
fn issue_comments() {
    let created = fixture!("issue_comment/created.payload.json");
    let expected = IssueComment {
        repo: hello_world(),
        sender: codertocat(),
        installation: None,
        issue_number: 1,
        on_pull_request: false,
        comment_id: 492700400,
        body: "You are totally right! I'll get this fixed right away.".into(),
    };
    assert_eq!(parse("issue_comment", created).unwrap(), Event::IssueComment(expected));

    let edited_body = fixture!("issue_comment/edited.payload.json");
    assert_eq!(parse("issue_comment", edited_body).unwrap(), ignored("issue_comment", "edited"));
}

#[test]
fn a_comment_on_a_pull_request_says_so() {
    let created = fixture!("issue_comment/created.payload.json");
    let pull_url = "https://api.github.com/repos/Codertocat/Hello-World/pulls/1";
    let on_pr = edited(created, |v| {
        v["issue"]["pull_request"] = serde_json::json!({ "url": pull_url });
    });
    let Event::IssueComment(comment) = parse("issue_comment", &on_pr).unwrap() else { panic!() };
    assert!(comment.on_pull_request);
    assert_eq!(comment.issue_number, 1);
}

#[test]
fn installations() {
    let created = fixture!("installation/created.payload.json");
    let expected = Installation {
        action: "created".into(),
        installation_id: 957387,
        account: "Codertocat".into(),
        sender: codertocat(),
        added: vec!["Codertocat/Hello-World".into()],
        removed: vec![],
    };
    assert_eq!(parse("installation", created).unwrap(), Event::Installation(expected));

    let deleted = fixture!("installation/deleted.payload.json");
    let Event::Installation(gone) = parse("installation", deleted).unwrap() else { panic!() };
    assert_eq!((gone.action.as_str(), gone.installation_id), ("deleted", 2));
    assert_eq!((gone.account.as_str(), gone.sender.id), ("octocat", 1));
    assert_eq!((gone.added, gone.removed), (vec![], vec!["octocat/Hello-World".to_string()]));
}

#[test]
fn installation_repositories_added() {
    let body = fixture!("installation_repositories/added.payload.json");
    let expected = Installation {
        action: "added".into(),
        installation_id: 957387,
        account: "Codertocat".into(),
        sender: codertocat(),
        added: vec!["Codertocat/Space".into()],
        removed: vec![],
    };
    let parsed = parse("installation_repositories", body).unwrap();
    assert_eq!(parsed, Event::Installation(expected));
}

#[test]
fn ping_and_events_tether_does_not_act_on() {
    assert_eq!(parse("ping", fixture!("ping/with-app_id.payload.json")).unwrap(), Event::Ping);
    let deployment = fixture!("deployment_status/with-installation.payload.json");
    let parsed = parse("deployment_status", deployment).unwrap();
    assert_eq!(parsed, ignored("deployment_status", "created"));
    let no_action = parse("fork", b"{}").unwrap();
    assert_eq!(no_action, Event::Ignored { event: "fork".into(), action: None });
}

#[test]
fn a_body_that_is_not_json_is_malformed() {
    let error = parse("push", b"<html>").unwrap_err();
    assert_eq!(error.to_string(), "malformed push payload: expected value at line 1 column 1");
    let error = parse("push", b"").unwrap_err();
    assert_eq!(error.message, "EOF while parsing a value at line 1 column 0");
    assert_eq!(parse("push", b"[1, 2]").unwrap_err().message, "not a JSON object");
    // Even an event tether ignores: a body GitHub could not have sent is worth reporting.
    assert_eq!(
        parse("deployment_status", b"{\"action\": ").unwrap_err().event,
        "deployment_status"
    );
}

/// The message of parsing a push whose payload was changed by `edit`.
fn push_error(edit: impl FnOnce(&mut Value)) -> String {
    let push = fixture!("push/with-new-branch.payload.json");
    parse("push", &edited(push, edit)).unwrap_err().to_string()
}

#[test]
fn a_missing_or_bad_field_is_named() {
    let error = push_error(|v| drop(v.as_object_mut().unwrap().remove("repository")));
    assert_eq!(error, "malformed push payload: repository: missing field");
    let error = push_error(|v| drop(v["repository"].as_object_mut().unwrap().remove("clone_url")));
    assert_eq!(error, "malformed push payload: repository.clone_url: missing field");
    let error = push_error(|v| v["after"] = 5.into());
    assert_eq!(
        error,
        "malformed push payload: after: invalid type: integer `5`, expected a string"
    );
    let error = push_error(|v| v["sender"]["id"] = "x".into());
    assert_eq!(
        error,
        r#"malformed push payload: sender.id: invalid type: string "x", expected i64"#
    );
}

#[test]
fn triage_stores_what_parse_acts_on_and_answers_the_rest() {
    let store = |action: Option<&str>| Triage::Store { action: action.map(String::from) };
    let with = |action: &str| format!("{{\"action\":\"{action}\",\"x\":[1,{{}}]}}");
    assert_eq!(triage("push", b"{\"ref\":\"refs/heads/main\"}"), Ok(store(None)));
    assert_eq!(
        triage("pull_request", with("synchronize").as_bytes()),
        Ok(store(Some("synchronize")))
    );
    assert_eq!(triage("pull_request", with("closed").as_bytes()), Ok(Triage::Ignore));
    assert_eq!(triage("check_run", with("rerequested").as_bytes()), Ok(store(Some("rerequested"))));
    assert_eq!(triage("check_run", with("completed").as_bytes()), Ok(Triage::Ignore));
    assert_eq!(triage("issue_comment", with("created").as_bytes()), Ok(store(Some("created"))));
    assert_eq!(triage("issue_comment", with("edited").as_bytes()), Ok(Triage::Ignore));
    assert_eq!(triage("deployment_status", with("created").as_bytes()), Ok(Triage::Ignore));
    let added = with("added");
    assert_eq!(triage("installation_repositories", added.as_bytes()), Ok(store(Some("added"))));
    assert_eq!(triage("ping", b"{\"zen\":\"x\"}"), Ok(Triage::Ping));
    // Every fixture is stored exactly when the parser makes something of it.
    for (path, body, variant) in FIXTURES {
        let event = path.split('/').next().unwrap();
        let stored = matches!(triage(event, body), Ok(Triage::Store { .. }));
        assert_eq!(stored, !matches!(*variant, "Ignored" | "Ping"), "{path}");
    }
    assert!(triage("push", b"{\"ref\": ").is_err());
    assert!(triage("push", b"[1, 2]").is_err());
}
