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
    assert_eq!(stdout.lines().last(), Some("1 passed, 2 failed"));
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
    assert!(
        stderr.contains("no check named `nope` in tether.toml; its checks are: fail, pass, slow"),
        "{stderr}"
    );
}

#[tokio::test]
async fn a_check_named_twice_runs_once_and_prefixes_are_aligned() {
    let repo = Repo::new();
    let toml = "[checks.a]\nrun = \"echo from a\"\n\n[checks.longer]\nrun = \"echo from longer\"\n";
    repo.commit(&[("tether.toml", toml.as_bytes())], "checks");
    let (code, stdout, _) = tether_run(&repo, &["a", "longer", "a"]);
    assert_eq!(code, 0, "{stdout}");
    assert_eq!(stdout.matches("from a").count(), 1, "{stdout}");
    assert!(stdout.lines().any(|l| l == "a      | from a"), "{stdout}");
    assert!(stdout.lines().any(|l| l == "longer | from longer"), "{stdout}");
    assert_eq!(stdout.lines().last(), Some("2 passed, 0 failed"));
}

#[tokio::test]
async fn a_secret_missing_from_the_local_file_fails_that_check_with_the_reason() {
    let repo = Repo::new();
    let marker = repo.path().join(".git/ran");
    let toml = format!(
        "[checks.deploy]\nrun = \"touch {}\"\nsecrets = [\"DEPLOY_TOKEN\"]\n\n[checks.ok]\nrun = \"true\"\n",
        marker.display()
    );
    repo.commit(&[("tether.toml", toml.as_bytes())], "checks");
    let (code, stdout, _) = tether_run(&repo, &[]);
    assert_eq!(code, 1, "{stdout}");
    assert!(!marker.exists(), "the check ran without its secret");
    assert!(
        stdout.contains(
            "deploy: it needs secret DEPLOY_TOKEN: pass --secrets FILE with a value for it"
        ),
        "{stdout}"
    );
    let secrets = repo.path().join(".git/secrets.toml");
    std::fs::write(&secrets, "OTHER = \"long enough\"\n").unwrap();
    let (code, stdout, _) = tether_run(&repo, &["--secrets", secrets.to_str().unwrap()]);
    assert_eq!(code, 1);
    let reason =
        format!("deploy: secret DEPLOY_TOKEN is not in the secrets file {}", secrets.display());
    assert!(stdout.contains(&reason), "{stdout}");
    assert_eq!(stdout.lines().last(), Some("1 passed, 1 failed"));
    std::fs::write(&secrets, "DEPLOY_TOKEN = \"long enough\"\n").unwrap();
    let (code, stdout, _) = tether_run(&repo, &["--secrets", secrets.to_str().unwrap()]);
    assert_eq!(code, 0, "{stdout}");
    assert!(marker.exists());
}

#[tokio::test]
async fn an_edited_tether_toml_alone_is_no_uncommitted_change() {
    let repo = Repo::new();
    repo.commit(&[("tether.toml", b"[checks.c]\nrun = \"true\"\n")], "one");
    std::fs::write(repo.path().join("tether.toml"), "[checks.c]\nrun = \"echo edited\"\n").unwrap();
    let (code, stdout, stderr) = tether_run(&repo, &[]);
    assert_eq!(code, 0, "{stdout}");
    assert!(stdout.contains("c | edited"), "{stdout}");
    assert!(!stderr.contains("uncommitted"), "{stderr}");
}

#[tokio::test]
async fn outside_a_repository_git_says_why_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let output =
        std::process::Command::new(TETHER).arg("run").current_dir(dir.path()).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with(
            "tether: tether run works inside a git repository: git: not a git repository"
        ),
        "{stderr}"
    );
}

/// `tether run` under a pseudo-terminal (util-linux `script`), with `env`; its output.
fn tether_run_on_a_terminal(repo: &Repo, env: &[(&str, &str)]) -> Option<String> {
    let script = std::path::Path::new("/usr/bin/script");
    if !script.exists() {
        return None;
    }
    let work = repo.path().join(".git/tether-work");
    let command = format!("{TETHER} run --work-dir {}", work.display());
    let output = std::process::Command::new(script)
        .args(["-qec", &command, "/dev/null"])
        .current_dir(repo.path())
        .env_remove("NO_COLOR")
        .envs(env.iter().copied())
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    Some(String::from_utf8_lossy(&output.stdout).into_owned())
}

#[tokio::test]
async fn the_table_is_coloured_on_a_terminal_unless_no_color() {
    let repo = Repo::new();
    repo.commit(&[("tether.toml", b"[checks.c]\nrun = \"true\"\n")], "one");
    let Some(coloured) = tether_run_on_a_terminal(&repo, &[]) else { return };
    assert!(coloured.contains("\x1b[32m1 passed, 0 failed\x1b[0m"), "{coloured:?}");
    let plain = tether_run_on_a_terminal(&repo, &[("NO_COLOR", "1")]).unwrap();
    assert!(plain.contains("1 passed, 0 failed"), "{plain:?}");
    assert!(!plain.contains('\x1b'), "{plain:?}");
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
