use std::time::{Duration, UNIX_EPOCH};

use super::*;

#[test]
fn commands_parse_with_their_arguments() {
    assert_eq!(parse(b""), Ok(Command::Greeting));
    assert_eq!(parse(b"  status \n"), Ok(Command::Greeting));
    assert_eq!(parse(b"runs"), Ok(Command::Runs { repo: None }));
    assert_eq!(parse(b"runs octo/repo"), Ok(Command::Runs { repo: Some("octo/repo".into()) }));
    assert_eq!(parse(b"logs 42"), Ok(Command::Logs { run: 42 }));
    assert_eq!(parse(b"runners"), Ok(Command::Runners));
    assert_eq!(parse(b"help"), Ok(Command::Help));
}

#[test]
fn anything_else_is_refused_with_exit_two() {
    for bad in [
        &b"rm -rf /"[..],
        b"STATUS",
        b"logs",
        b"logs 1 2",
        b"runs a/b c",
        b"help me",
        b"status now",
        b"\xff\xfe",
    ] {
        let error = parse(bad).unwrap_err();
        assert_eq!(error.exit_status(), 2, "{bad:?}");
        assert!(!error.to_string().contains('\n'), "one line: {error}");
    }
    assert_eq!(parse(&[b'x'; COMMAND_LINE_MAX_BYTES + 1]), Err(CommandError::TooLong));
    let long = format!("logs {}", "1".repeat(COMMAND_LINE_MAX_BYTES));
    assert_eq!(parse(long.as_bytes()), Err(CommandError::TooLong));
}

#[test]
fn run_ids_are_parsed_strictly() {
    assert_eq!(parse_run_id("1"), Ok(1));
    assert_eq!(parse_run_id("999999999999999999"), Ok(999_999_999_999_999_999));
    for bad in
        ["", "0", "01", "-1", "+1", "1.0", "1e3", "0x10", " 1", "1 ", "١", "9999999999999999999"]
    {
        assert!(parse_run_id(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn repositories_are_owner_slash_name() {
    assert!(parse_repo("octo-org/repo.rs_2").is_ok());
    for bad in
        ["octo", "octo/", "/repo", "a/b/c", "o o/r", "octo/..", "octo/.", "o_o/r", "o/r\u{1b}"]
    {
        assert!(parse_repo(bad).is_err(), "{bad:?}");
    }
    assert!(parse_repo(&format!("{}/r", "o".repeat(40))).is_err());
}

#[test]
fn conclusions_exit_as_a_shell_would_say_them() {
    assert_eq!(exit_status(Conclusion::Success), 0);
    assert_eq!(exit_status(Conclusion::Failure), 1);
    assert_eq!(exit_status(Conclusion::TimedOut), 124);
    assert_eq!(exit_status(Conclusion::Cancelled), 130);
}

#[test]
fn an_unknown_command_is_echoed_escaped() {
    let error = parse(b"\x1b]0;pwned\x07").unwrap_err();
    assert_eq!(error.to_string(), "tether: unknown command \"\\u{1b}]0;pwned\\u{7}\"; try `help`");
}

fn row() -> RunRow {
    let at = |s: u64| UNIX_EPOCH + Duration::from_secs(1_800_000_000 + s);
    RunRow {
        id: 42,
        conclusion: Some(Conclusion::Failure),
        started: true,
        repo: "octo/repo".into(),
        check: "test\x1b[2J\u{202e}".into(),
        sha: "0123456789abcdef".into(),
        started_at: Some(at(0)),
        finished_at: Some(at(3)),
        link: "https://ci.example.com/runs/42".into(),
    }
}

#[test]
fn a_run_line_names_everything_escaped() {
    let line = row().line(UNIX_EPOCH);
    assert_eq!(
        line,
        "    42  failed     octo/repo  test\\u{1b}[2J\\u{202e}  0123456  3.0s  https://ci.example.com/runs/42"
    );
    let mut queued = row();
    (queued.conclusion, queued.started, queued.started_at, queued.finished_at) =
        (None, false, None, None);
    assert!(queued.line(UNIX_EPOCH).contains("  queued     octo/repo"));
}

#[test]
fn the_greeting_says_hi_and_how_to_connect_a_runner() {
    let text = greeting("alice", "tether runner --connect alice@ci:6455", &[], &[], UNIX_EPOCH);
    assert!(text.starts_with("Hi alice! "), "{text}");
    assert!(text.contains("`tether runner --connect alice@ci:6455`"), "{text}");
    assert!(text.contains("No runs of yours yet."), "{text}");
    let runner = RunnerRow {
        name: "laptop".into(),
        os: "linux".into(),
        arch: "x86_64".into(),
        labels: vec![],
        capacity: 2,
        running: 1,
    };
    let text = greeting("alice", "x", &[runner], &[row()], UNIX_EPOCH);
    assert!(text.contains("  laptop  linux/x86_64  labels -  running 1 of 2\n"), "{text}");
    assert!(text.contains("Your last runs:\n      42  failed"), "{text}");
    assert!(!text.contains('\x1b'));
}

#[test]
fn session_lines_and_terminal_line_ends() {
    let link = "https://ci/runs/1";
    assert_eq!(session_run_started("t", "o/r", link), "run started: t on o/r  https://ci/runs/1");
    let ended = session_run_ended("t", "o/r", Conclusion::TimedOut, Duration::from_secs(2), link);
    assert_eq!(ended, "run timed out: t on o/r in 2.0s  https://ci/runs/1");
    assert_eq!(for_terminal(b"a\nb\r\n", true), b"a\r\nb\r\r\n");
    assert_eq!(for_terminal(b"a\nb", false), b"a\nb");
}
