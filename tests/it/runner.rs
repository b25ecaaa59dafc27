//! `tether runner --listen` as a real process, driven by the gRPC client over its socket.

use std::time::Duration;

use tether::core::{Command, Outcome, OutputStream, RunEvent};
use tether::runner::RunnerError;

use crate::harness::*;

#[tokio::test]
async fn info_reports_name_platform_labels_and_capacity() {
    let runner =
        Runner::start(&["--name", "laptop", "--labels", "gpu,big", "--max-runs", "3"]).await;
    let info = runner.client().await.info().await.unwrap();
    assert_eq!(info.name, "laptop");
    assert_eq!(info.os, std::env::consts::OS);
    assert_eq!(
        info.arch,
        if cfg!(target_arch = "x86_64") { "amd64" } else { std::env::consts::ARCH }
    );
    assert_eq!(info.labels, ["gpu", "big"]);
    assert_eq!((info.capacity, info.runs_in_flight, info.protocol_version), (3, 0, 1));
}

#[tokio::test]
async fn output_streams_in_order_with_sequence_numbers_and_exit_code() {
    let repo = Repo::new();
    let commit = repo.commit(&[("README", b"hi")], "one");
    let runner = Runner::start(&[]).await;
    let text = "for i in 1 2 3 4 5; do echo out $i; echo err $i >&2; done; exit 7";
    let run = run_to_end(&runner, &spec(&repo.file_url(), &commit, script(text))).await.unwrap();
    let first_output = run.events.iter().position(|e| matches!(e, RunEvent::Output { .. }));
    let started = run
        .events
        .iter()
        .position(|e| matches!(e, RunEvent::Started { commit: c, .. } if c == &commit));
    assert!(started < first_output && started.is_some(), "{run:?}");
    // One pipe: stderr is in the one stream, where it was written.
    let lines: String = (1..=5).map(|i| format!("out {i}\nerr {i}\n")).collect();
    assert_eq!(run.stdout(), lines);
    assert_eq!(run.text(OutputStream::Stderr), "");
    let seqs: Vec<u64> = run
        .events
        .iter()
        .filter_map(|e| match e {
            RunEvent::Output { seq, .. } => Some(*seq),
            _ => None,
        })
        .collect();
    assert_eq!(seqs, (0..seqs.len() as u64).collect::<Vec<_>>());
    assert_eq!(run.outcome(), &Outcome::Exited(7));
    assert_eq!(run.finished().output_chunks, seqs.len() as u64);
    assert!(!run.finished().timed_out);
}

#[tokio::test]
async fn output_arrives_while_the_command_still_runs() {
    let repo = Repo::new();
    let commit = repo.commit(&[("README", b"hi")], "one");
    let runner = Runner::start(&[]).await;
    let go = runner.dir.path().join("go");
    // The command waits for a file that the test creates only after it has seen the first line.
    let text =
        format!("echo first; while [ ! -e {} ]; do sleep 0.02; done; echo second", go.display());
    let mut events =
        runner.client().await.run(&spec(&repo.file_url(), &commit, script(&text))).await.unwrap();
    read_until_output(&mut events, "first").await;
    std::fs::write(&go, "").unwrap();
    let rest = collect(events).await;
    assert_eq!(rest.stdout(), "second\n");
    assert_eq!(rest.outcome(), &Outcome::Exited(0));
}

#[tokio::test]
async fn signals_argv_env_and_dir() {
    let repo = Repo::new();
    let commit = repo.commit(&[("sub/dir/file.txt", b"inside")], "one");
    let runner = Runner::start(&[]).await;
    let killed =
        run_to_end(&runner, &spec(&repo.file_url(), &commit, script("kill -9 $$"))).await.unwrap();
    assert_eq!(killed.outcome(), &Outcome::Signalled(9));

    let argv = Command::Argv(vec![
        "sh".into(),
        "-c".into(),
        "cat file.txt; echo \" $GREETING $TETHER_COMMIT $CI\"".into(),
    ]);
    let mut spec = spec(&repo.file_url(), &commit, argv);
    spec.thunk.dir = "sub/dir".into();
    spec.thunk.env.insert("GREETING".into(), "hello world".into());
    let run = run_to_end(&runner, &spec).await.unwrap();
    assert_eq!(run.stdout(), format!("inside hello world {commit} true\n"));
}

#[tokio::test]
async fn a_missing_dir_or_program_is_a_clear_error() {
    let repo = Repo::new();
    let commit = repo.commit(&[("README", b"hi")], "one");
    let runner = Runner::start(&[]).await;
    let mut missing_dir = spec(&repo.file_url(), &commit, script("true"));
    missing_dir.thunk.dir = "nope".into();
    let run = run_to_end(&runner, &missing_dir).await.unwrap();
    assert!(
        matches!(run.outcome(), Outcome::Error(m) if m.contains("`nope` is not a directory")),
        "{run:?}"
    );
    let no_program =
        spec(&repo.file_url(), &commit, Command::Argv(vec!["no-such-program-xyz".into()]));
    let run = run_to_end(&runner, &no_program).await.unwrap();
    assert!(
        matches!(run.outcome(), Outcome::Error(m) if m.contains("cannot start `no-such-program-xyz`")),
        "{run:?}"
    );
}

#[tokio::test]
async fn dropping_the_stream_kills_the_whole_process_group() {
    let repo = Repo::new();
    let commit = repo.commit(&[("README", b"hi")], "one");
    let runner = Runner::start(&[]).await;
    let marker = "31415926";
    // Background children, one of which ignores SIGTERM and so needs the SIGKILL.
    let text = format!(
        "sleep {marker}1 & (trap '' TERM; sleep {marker}2) & sh -c 'sleep {marker}3' & echo started; wait"
    );
    let mut events =
        runner.client().await.run(&spec(&repo.file_url(), &commit, script(&text))).await.unwrap();
    read_until_output(&mut events, "started").await;
    assert!(eventually(Duration::from_secs(5), || processes_with(marker).len() >= 4).await);
    drop(events);
    let gone = eventually(Duration::from_secs(20), || processes_with(marker).is_empty()).await;
    assert!(gone, "survivors: {:?}", processes_with(marker));
    let mut client = runner.client().await;
    for _ in 0..250 {
        if client.info().await.unwrap().runs_in_flight == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the cancelled run still holds its slot");
}

#[tokio::test]
async fn the_timeout_ends_the_run_as_timed_out() {
    let repo = Repo::new();
    let commit = repo.commit(&[("README", b"hi")], "one");
    let runner = Runner::start(&[]).await;
    let mut spec = spec(&repo.file_url(), &commit, script("echo begin; sleep 27182818"));
    spec.thunk.timeout = Duration::from_millis(500);
    let run = run_to_end(&runner, &spec).await.unwrap();
    assert_eq!(run.stdout(), "begin\n");
    assert!(run.finished().timed_out);
    assert_eq!(run.outcome(), &Outcome::Signalled(15));
    assert!(processes_with("27182818").is_empty());
}

#[tokio::test]
async fn runs_beyond_max_runs_are_refused_as_busy() {
    let repo = Repo::new();
    let commit = repo.commit(&[("README", b"hi")], "one");
    let runner = Runner::start(&["--max-runs", "1"]).await;
    let mut client = runner.client().await;
    let mut first =
        client.run(&spec(&repo.file_url(), &commit, script("echo up; sleep 60"))).await.unwrap();
    read_until_output(&mut first, "up").await;
    let info = client.info().await.unwrap();
    assert_eq!((info.capacity, info.runs_in_flight), (1, 1));
    let second = client.run(&spec(&repo.file_url(), &commit, script("true"))).await;
    assert!(
        matches!(second, Err(RunnerError::Busy(ref m)) if m.contains("busy")),
        "{:?}",
        second.err()
    );
}

#[tokio::test]
async fn invalid_requests_are_refused_with_the_field() {
    let runner = Runner::start(&[]).await;
    let bad = spec("file:///nowhere", "not-a-commit", script("true"));
    let refused = runner.client().await.run(&bad).await;
    assert!(
        matches!(refused, Err(RunnerError::Refused(ref m)) if m.contains("thunk.commit")),
        "{:?}",
        refused.err()
    );
}

#[tokio::test]
async fn secrets_are_granted_by_event_and_masked_even_one_byte_per_write() {
    let repo = Repo::new();
    let commit = repo.commit(&[("README", b"hi")], "one");
    let dir = tempfile::tempdir().unwrap();
    let secrets = dir.path().join("secrets.toml");
    std::fs::write(&secrets, "DEPLOY_KEY = \"s3cr3t-v4lue\"\nOTHER = \"never-granted\"\n").unwrap();
    let runner = Runner::start(&["--secrets", secrets.to_str().unwrap()]).await;
    let text = "echo \"env: $DEPLOY_KEY\"; echo \"other: [$OTHER]\"; \
                for c in s 3 c r 3 t - v 4 l u e; do printf %s $c; sleep 0.01; done; echo; \
                echo literal never-granted; for c in p l a i n; do printf %s $c; sleep 0.01; done";
    let mut push = spec(&repo.file_url(), &commit, script(text));
    push.thunk.secrets = vec!["DEPLOY_KEY".into()];
    let run = run_to_end(&runner, &push).await.unwrap();
    assert_eq!(run.stdout(), "env: ***\nother: []\n***\nliteral ***\nplain");
    // The same one-byte writes of a non-secret arrive as separate chunks: the reads really were
    // split, and the masker saw the value in pieces.
    let plain_chunks = run
        .events
        .iter()
        .filter(|e| matches!(e, RunEvent::Output { data, .. } if data.len() == 1))
        .count();
    assert!(plain_chunks >= 3, "the writes were not split: {run:?}");

    let mut pull = push.clone();
    pull.event.kind = "pull_request".into();
    let run = run_to_end(&runner, &pull).await.unwrap();
    assert!(run.stdout().starts_with("env: \n"), "{}", run.stdout());
    assert!(run.text(OutputStream::Runner).contains("secret DEPLOY_KEY is not set"));
}

#[tokio::test]
async fn checkout_is_a_detached_git_checkout_and_the_cache_is_reused() {
    let repo = Repo::new();
    git(repo.path(), &["tag", "-a", "v1", "-m", "v1", &repo.commit(&[("a", b"1")], "one")]);
    let second = repo.commit(&[("a", b"2")], "two");
    let runner = Runner::start(&[]).await;
    let text =
        "git rev-parse HEAD; git symbolic-ref -q HEAD || echo detached; git describe --tags; cat a";
    let run = run_to_end(&runner, &spec(&repo.file_url(), &second, script(text))).await.unwrap();
    assert_eq!(run.stdout(), format!("{second}\ndetached\nv1-1-g{}\n2", &second[..7]), "{run:?}");
    // The run's work dir is gone; the cache stays and serves the same commit with the origin
    // repository gone.
    assert_eq!(std::fs::read_dir(runner.work_dir.join("runs")).unwrap().count(), 0);
    assert_eq!(std::fs::read_dir(runner.work_dir.join("cache")).unwrap().count(), 1);
    let url = repo.file_url();
    drop(repo);
    let again = run_to_end(&runner, &spec(&url, &second, script("cat a"))).await.unwrap();
    assert_eq!((again.stdout().as_str(), again.outcome()), ("2", &Outcome::Exited(0)));
}

#[tokio::test]
async fn a_failed_checkout_says_why() {
    let runner = Runner::start(&[]).await;
    let run = run_to_end(&runner, &spec("file:///no/such/repo", &"a".repeat(40), script("true")))
        .await
        .unwrap();
    assert!(matches!(run.outcome(), Outcome::Error(m) if m.contains("checkout")), "{run:?}");
    assert!(run.text(OutputStream::Runner).contains("checkout failed"), "{run:?}");
}

#[tokio::test]
async fn an_image_without_a_container_engine_fails_clearly() {
    let repo = Repo::new();
    let commit = repo.commit(&[("README", b"hi")], "one");
    // A PATH with git and sh only: this machine may have podman in /usr/bin.
    let bin = tempfile::tempdir().unwrap();
    link_programs(bin.path(), &["git", "sh"]);
    let runner = Runner::start_with_env(&[], &[("PATH", bin.path().to_str().unwrap())]).await;
    let mut spec = spec(&repo.file_url(), &commit, script("true"));
    spec.thunk.image = Some("rust:1.82".into());
    let run = run_to_end(&runner, &spec).await.unwrap();
    assert!(
        matches!(run.outcome(), Outcome::Error(m) if m.contains("needs docker or podman")),
        "{run:?}"
    );
}

#[tokio::test]
async fn a_container_engine_that_does_not_answer_fails_clearly() {
    let repo = Repo::new();
    let commit = repo.commit(&[("README", b"hi")], "one");
    // A docker client whose daemon is not there, as on these machines.
    let bin = tempfile::tempdir().unwrap();
    let fake =
        "echo 'Cannot connect to the Docker daemon. Is the docker daemon running?' >&2\nexit 1\n";
    fake_program(bin.path(), "docker", fake);
    // Only git and sh besides: this machine may have a podman that works in /usr/bin.
    link_programs(bin.path(), &["git", "sh"]);
    let runner = Runner::start_with_env(&[], &[("PATH", bin.path().to_str().unwrap())]).await;
    let mut spec = spec(&repo.file_url(), &commit, script("true"));
    spec.thunk.image = Some("rust:1.82".into());
    let run = run_to_end(&runner, &spec).await.unwrap();
    let Outcome::Error(message) = run.outcome() else { panic!("{run:?}") };
    assert!(message.contains("needs a working docker or podman"), "{message}");
    assert!(message.contains("Is the docker daemon running?"), "{message}");
}

/// A stand-in `docker` that records, in `$RECORD` (from the runner's own environment), its argv,
/// its environment, the env file and its mode; writes the container id; then says whether the
/// env file is gone while the "container" runs.
const RECORDING_DOCKER: &str = r#"case "$1" in info|image) exit 0;; esac
printf '%s\n' "$@" > "$RECORD/argv"
env > "$RECORD/env"
while [ $# -gt 0 ]; do
  case "$1" in --env-file) env_file=$2; shift;; --cidfile) cid_file=$2; shift;; esac
  shift
done
cp "$env_file" "$RECORD/env-file"
stat -c %a "$env_file" > "$RECORD/env-file-mode"
echo 0123abcd > "$cid_file"
i=0; while [ -e "$env_file" ] && [ $i -lt 500 ]; do sleep 0.02; i=$((i+1)); done
[ -e "$env_file" ] && echo "env file still there" || echo "env file removed"
"#;

#[tokio::test]
async fn an_image_runs_through_the_engine_with_its_env_in_a_private_file() {
    let repo = Repo::new();
    let commit = repo.commit(&[("sub/x", b"hi")], "one");
    let bin = tempfile::tempdir().unwrap();
    fake_program(bin.path(), "docker", RECORDING_DOCKER);
    let record = bin.path().join("record");
    std::fs::create_dir(&record).unwrap();
    let path = format!("{}:/usr/bin:/bin", bin.path().display());
    let secrets = bin.path().join("secrets.toml");
    std::fs::write(&secrets, "TOKEN = \"tok-123456\"\n").unwrap();
    let runner_env = [
        ("PATH", path.as_str()),
        ("RECORD", record.to_str().unwrap()),
        ("DOCKER_HOST", "unix:///run/owner/docker.sock"),
    ];
    let runner =
        Runner::start_with_env(&["--secrets", secrets.to_str().unwrap()], &runner_env).await;
    let mut spec = spec(&repo.file_url(), &commit, script("make test"));
    spec.thunk.image = Some("rust:1.82".into());
    spec.thunk.dir = "sub".into();
    spec.thunk.secrets = vec!["TOKEN".into()];
    spec.thunk.env.insert("LD_PRELOAD".into(), "/nonexistent/evil.so".into());
    spec.thunk.env.insert("DOCKER_HOST".into(), "tcp://evil.example:2375".into());
    let run = run_to_end(&runner, &spec).await.unwrap();
    assert_eq!(run.stdout(), "env file removed\n", "{run:?}");
    let read = |name: &str| std::fs::read_to_string(record.join(name)).unwrap();

    let argv = read("argv").replace('\n', " ");
    assert!(argv.starts_with("run --rm --init"), "{argv}");
    assert!(argv.contains(":/workspace --workdir /workspace/sub"), "{argv}");
    assert!(
        argv.contains("--env-file ")
            && argv.ends_with("-- rust:1.82 sh -c exec 2>&1; exec sh -ec \"$1\" sh make test "),
        "{argv}"
    );
    assert!(!argv.contains("--env ") && !argv.contains("tok-123456"), "{argv}");
    // docker runs with the runner's own environment, and nothing of the check's.
    let docker_env = read("env");
    assert!(docker_env.contains("DOCKER_HOST=unix:///run/owner/docker.sock"), "{docker_env}");
    for leak in ["LD_PRELOAD", "evil", "tok-123456", "TOKEN=", "TETHER_CHECK"] {
        assert!(!docker_env.contains(leak), "docker's environment has {leak}: {docker_env}");
    }
    // The check's variables go into the container, through a file only the runner can read.
    let env_file = read("env-file");
    for variable in [
        "TOKEN=tok-123456",
        "LD_PRELOAD=/nonexistent/evil.so",
        "DOCKER_HOST=tcp://evil.example:2375",
        "CI=true",
        "TETHER_CHECK=test",
    ] {
        assert!(env_file.lines().any(|l| l == variable), "{variable} not in {env_file}");
    }
    assert!(!env_file.contains("PATH=") && !env_file.contains("RECORD="), "{env_file}");
    assert_eq!(read("env-file-mode").trim(), "600");
    assert_eq!(std::fs::read_dir(runner.work_dir.join("runs")).unwrap().count(), 0);
}

#[tokio::test]
async fn a_check_gets_a_clean_environment_and_what_pass_env_adds() {
    let repo = Repo::new();
    let commit = repo.commit(&[("README", b"hi")], "one");
    let runner_env = [
        ("SSH_AUTH_SOCK", "/tmp/agent.sock"),
        ("GITHUB_TOKEN", "ghp_runnertoken"),
        ("TERM", "xterm-256color"),
        ("LD_LIBRARY_PATH", "/opt/owner/lib"),
        ("LC_ALL", "C.UTF-8"),
        ("TZ", "UTC"),
        ("HTTP_PROXY", "http://proxy.example:3128"),
    ];
    let runner = Runner::start_with_env(&["--pass-env", "HTTP_PROXY"], &runner_env).await;
    let mut spec = spec(&repo.file_url(), &commit, script("env"));
    spec.thunk.env.insert("GREETING".into(), "hello".into());
    let run = run_to_end(&runner, &spec).await.unwrap();
    assert_eq!(run.outcome(), &Outcome::Exited(0), "{run:?}");
    let env = run.stdout();
    let names: Vec<&str> = env.lines().filter_map(|l| l.split_once('=')).map(|(k, _)| k).collect();
    for leak in ["SSH_AUTH_SOCK", "GITHUB_TOKEN", "TERM", "LD_LIBRARY_PATH", "TETHER_LOG"] {
        assert!(!names.contains(&leak), "the check got {leak}: {env}");
    }
    for given in [
        "LC_ALL=C.UTF-8",
        "TZ=UTC",
        "HTTP_PROXY=http://proxy.example:3128",
        "GREETING=hello",
        "CI=true",
        "TETHER_CHECK=test",
    ] {
        assert!(env.lines().any(|l| l == given), "{given} not in {env}");
    }
    assert!(names.contains(&"PATH") && names.contains(&"HOME"), "{env}");
}
