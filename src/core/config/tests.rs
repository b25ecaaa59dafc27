//! `tether.toml` parsed: every key, its defaults, and the errors that name what is wrong.

use super::*;
use crate::core::fields::Platform;

fn error(text: &str) -> ConfigError {
    Config::parse(text).unwrap_err()
}

#[test]
fn the_design_example_parses_into_every_field() {
    let text = r#"
[checks.test]
run = "cargo test --locked"      # a script for `sh -ec`
env = { RUST_BACKTRACE = "1" }
dir = "."
timeout = "30m"
on = ["push", "pull_request"]
branches = ["main", "release/*"]
platform = "linux/amd64"
labels = ["gpu"]
image = "rust:1.82"
secrets = ["CRATES_TOKEN"]
deployment = "production"
"#;
    let config = Config::parse(text).unwrap();
    let check = &config.checks["test"];
    assert_eq!(check.name, "test");
    assert_eq!(check.command, Command::Script("cargo test --locked".into()));
    assert_eq!(check.env["RUST_BACKTRACE"], "1");
    assert_eq!(check.dir, ".");
    assert_eq!(check.timeout, Duration::from_secs(1800));
    assert_eq!(check.on, [EventKind::Push, EventKind::PullRequest]);
    let globs: Vec<&str> = check.branches.iter().map(|b| b.source.as_str()).collect();
    assert_eq!(globs, ["main", "release/*"]);
    assert_eq!(check.platform, Some(Platform { os: "linux".into(), arch: "amd64".into() }));
    assert_eq!(check.labels, ["gpu"]);
    assert_eq!(check.image.as_deref(), Some("rust:1.82"));
    assert_eq!(check.secrets, ["CRATES_TOKEN"]);
    assert_eq!(check.deployment.as_deref(), Some("production"));
}

#[test]
fn defaults() {
    let config = Config::parse("[checks.a]\nrun = [\"cargo\", \"test\"]\n").unwrap();
    let check = &config.checks["a"];
    assert_eq!(check.command, Command::Argv(vec!["cargo".into(), "test".into()]));
    assert_eq!(check.dir, ".");
    assert_eq!(check.timeout, DEFAULT_CHECK_TIMEOUT);
    assert_eq!(check.on, [EventKind::Push, EventKind::PullRequest]);
    assert!(check.branches.is_empty() && check.labels.is_empty() && check.secrets.is_empty());
    assert!(check.platform.is_none() && check.image.is_none() && check.deployment.is_none());
}

#[test]
fn an_empty_file_has_no_checks() {
    assert!(Config::parse("").unwrap().checks.is_empty());
}

#[test]
fn dirs_are_normalised_and_kept_inside_the_checkout() {
    let check = |dir: &str| Config::parse(&format!("[checks.a]\nrun = \"x\"\ndir = {dir:?}\n"));
    assert_eq!(check("./crates//core/").unwrap().checks["a"].dir, "crates/core");
    assert_eq!(check("./").unwrap().checks["a"].dir, ".");
    assert!(check("../elsewhere").unwrap_err().message.contains("inside the checkout"));
    assert!(check("/etc").unwrap_err().message.contains("relative"));
}

#[test]
fn unknown_keys_name_the_key_with_line_and_column() {
    let e = error("[checks.test]\nrun = \"true\"\ntimout = \"5m\"\n");
    assert_eq!(e.key.as_deref(), Some("checks.test.timout"));
    assert_eq!((e.line, e.column), (Some(3), Some(1)));
    assert!(e.message.contains("unknown field `timout`"), "{e}");
    assert!(
        e.to_string().starts_with("tether.toml:3:1: `checks.test.timout`: unknown field"),
        "{e}"
    );
}

#[test]
fn unknown_top_level_tables_are_errors() {
    let e = error("[check.test]\nrun = \"true\"\n");
    assert!(e.message.contains("unknown field `check`"), "{e}");
    assert_eq!(e.line, Some(1));
}

#[test]
fn bad_durations_point_at_the_value() {
    let e = error("[checks.test]\nrun = \"true\"\ntimeout = \"90\"\n");
    assert_eq!(e.key.as_deref(), Some("checks.test.timeout"));
    assert_eq!((e.line, e.column), (Some(3), Some(11)));
    assert!(e.message.contains("missing unit"), "{e}");
    let e = error("[checks.test]\nrun = \"true\"\ntimeout = \"0s\"\n");
    assert!(e.message.contains("more than 0"), "{e}");
}

#[test]
fn bad_values_of_each_kind_are_errors_at_their_key() {
    let cases = [
        ("on = [\"pull-request\"]", "checks.t.on[0]", "unknown variant"),
        ("on = []", "checks.t.on", "at least one"),
        ("branches = [\"[oops\"]", "checks.t.branches[0]", "invalid branch pattern"),
        ("platform = \"linux\"", "checks.t.platform", "os/arch"),
        ("labels = [\"a b\"]", "checks.t.labels[0]", "invalid name"),
        ("image = \"\"", "checks.t.image", "invalid value"),
        ("secrets = [\"1X\"]", "checks.t.secrets[0]", "invalid variable name"),
        ("env = { \"A-B\" = \"1\" }", "checks.t.env.A-B", "invalid variable name"),
        ("env = { A = 1 }", "checks.t.env.A", "invalid type"),
        ("deployment = \"two words\"", "checks.t.deployment", "invalid value"),
    ];
    for (line, key, message) in cases {
        let e = error(&format!("[checks.t]\nrun = \"true\"\n{line}\n"));
        assert_eq!(e.key.as_deref(), Some(key), "{line}: {e}");
        assert_eq!(e.line, Some(3), "{line}: {e}");
        assert!(e.message.contains(message), "{line}: {e}");
    }
}

#[test]
fn run_must_be_a_script_or_a_program() {
    assert!(error("[checks.t]\nrun = \"  \"\n").message.contains("empty"));
    assert!(error("[checks.t]\nrun = []\n").message.contains("program"));
    assert!(error("[checks.t]\nrun = 3\n").message.contains("a script string or an array"));
    let e = error("[checks.t]\nenv = {}\n");
    assert!(e.message.contains("missing field `run`"), "{e}");
}

#[test]
fn check_names_are_what_a_comment_can_type() {
    let e = error("[checks.\"my check\"]\nrun = \"true\"\n");
    assert!(e.message.contains("invalid name"), "{e}");
    assert_eq!(e.line, Some(1));
}

#[test]
fn syntax_errors_have_a_position() {
    let e = error("[checks.t]\nrun = \"unterminated\n");
    assert_eq!(e.line, Some(2));
    assert!(e.column.is_some());
}

#[test]
fn select_names_the_unknown_check() {
    let config = Config::parse("[checks.a]\nrun = \"x\"\n[checks.b]\nrun = \"y\"\n").unwrap();
    let picked = config.select(&["b".into(), "a".into()]).unwrap();
    assert_eq!(picked.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(), ["b", "a"]);
    assert_eq!(config.select(&["c".into()]).unwrap_err(), UnknownCheck("c".into()));
}

#[test]
fn tty_is_a_boolean_and_off_by_default() {
    let on = Config::parse("[checks.t]\nrun = \"true\"\ntty = true\n").unwrap();
    assert!(on.checks["t"].tty);
    let off = Config::parse("[checks.t]\nrun = \"true\"\n").unwrap();
    assert!(!off.checks["t"].tty);
    let bad = error("[checks.t]\nrun = \"true\"\ntty = \"yes\"\n");
    assert_eq!(bad.key.as_deref(), Some("checks.t.tty"));
}
