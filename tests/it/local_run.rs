//! `tether run` end to end, on a temporary repository.

use crate::harness::*;

fn tether_run(repo: &Repo, args: &[&str]) -> (i32, String, String) {
    let work = repo.path().join(".git/tether-work");
    let output = std::process::Command::new(TETHER)
        .arg("run")
        .args(args)
        .arg("--work-dir")
        .arg(&work)
        .current_dir(repo.path())
        .output()
        .unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (output.status.code().unwrap_or(-1), text(&output.stdout), text(&output.stderr))
}

const CHECKS: &str = r#"
[checks.pass]
run = "echo all good; echo to stderr >&2"

[checks.fail]
run = ["sh", "-c", "echo broken; exit 3"]

[checks.slow]
run = "echo waiting; sleep 16180339"
timeout = "1s"
"#;

#[tokio::test]
async fn runs_every_check_with_prefixed_output_and_a_summary() {
    let repo = Repo::new();
    repo.commit(&[("tether.toml", CHECKS.as_bytes())], "checks");
    let (code, stdout, _) = tether_run(&repo, &[]);
    assert_eq!(code, 1, "{stdout}");
    for line in ["pass | all good", "pass | to stderr", "fail | broken", "slow | waiting"] {
        assert!(stdout.lines().any(|l| l == line), "missing {line:?} in\n{stdout}");
    }
    let summary: Vec<Vec<&str>> = stdout
        .lines()
        .skip_while(|l| !l.starts_with("check "))
        .map(|l| l.split("  ").map(str::trim).filter(|c| !c.is_empty()).collect())
        .collect();
    assert_eq!(summary[0], ["check", "result", "duration"]);
    assert_eq!(&summary[1][..2], ["fail", "failed (exit 3)"]);
    assert_eq!(&summary[2][..2], ["pass", "passed"]);
    assert_eq!(&summary[3][..2], ["slow", "timed out"]);
    assert!(processes_with("16180339").is_empty());
}

#[tokio::test]
async fn named_checks_only_and_exit_zero_when_they_pass() {
    let repo = Repo::new();
    repo.commit(&[("tether.toml", CHECKS.as_bytes())], "checks");
    let (code, stdout, _) = tether_run(&repo, &["pass"]);
    assert_eq!(code, 0, "{stdout}");
    assert!(!stdout.contains("broken"));
}

#[tokio::test]
async fn runs_the_committed_tree_and_says_so() {
    let repo = Repo::new();
    repo.commit(
        &[("tether.toml", b"[checks.c]\nrun = \"cat file\"\n"), ("file", b"committed\n")],
        "one",
    );
    std::fs::write(repo.path().join("file"), "edited\n").unwrap();
    let (code, stdout, stderr) = tether_run(&repo, &[]);
    assert_eq!(code, 0);
    assert!(stdout.contains("c | committed"), "{stdout}");
    assert!(stderr.contains("uncommitted changes are not included"), "{stderr}");
}

#[tokio::test]
async fn a_bad_tether_toml_or_unknown_check_exits_2_naming_it() {
    let repo = Repo::new();
    repo.commit(&[("tether.toml", b"[checks.c]\nrun = \"true\"\ntimeout = \"soon\"\n")], "bad");
    let (code, _, stderr) = tether_run(&repo, &[]);
    assert_eq!(code, 2);
    assert!(stderr.contains("tether.toml:3:11: `checks.c.timeout`"), "{stderr}");

    repo.commit(&[("tether.toml", CHECKS.as_bytes())], "good");
    let (code, _, stderr) = tether_run(&repo, &["pass", "nope"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("no check named `nope`"), "{stderr}");
}

#[tokio::test]
async fn short_secrets_are_refused_by_name() {
    let repo = Repo::new();
    repo.commit(&[("tether.toml", b"[checks.c]\nrun = \"true\"\nsecrets = [\"PIN\"]\n")], "one");
    let secrets = repo.path().join(".git/secrets.toml");
    std::fs::write(&secrets, "PIN = \"123\"\nLONG = \"long enough\"\n").unwrap();
    let (code, stdout, stderr) = tether_run(&repo, &["--secrets", secrets.to_str().unwrap()]);
    assert_eq!(code, 2, "{stdout}");
    assert!(stderr.contains("PIN shorter than 4 bytes"), "{stderr}");
    assert!(!stderr.contains("123") && !stderr.contains("LONG"), "{stderr}");
}

#[tokio::test]
async fn checks_get_a_clean_environment_and_what_pass_env_adds() {
    let repo = Repo::new();
    let toml = b"[checks.c]\nrun = \"echo [$SSH_AUTH_SOCK] [$MY_PROXY] [$TERM]\"\n";
    repo.commit(&[("tether.toml", toml)], "one");
    let output = std::process::Command::new(TETHER)
        .args(["run", "--pass-env", "MY_PROXY", "--work-dir"])
        .arg(repo.path().join(".git/tether-work"))
        .current_dir(repo.path())
        .env("SSH_AUTH_SOCK", "/tmp/agent.sock")
        .env("MY_PROXY", "http://proxy:3128")
        .env("TERM", "xterm")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("c | [] [http://proxy:3128] []"), "{stdout}");
}
