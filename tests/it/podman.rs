//! Checks in a container image with real podman (issue 15, item 7): a local busybox image, as no
//! registry is reachable; skipped when podman, runc, catatonit or a static busybox is missing.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tether::core::{Outcome, RunEvent, StepKind, StepStatus};

use crate::harness::*;

const PODMAN: &str = "/usr/bin/podman";
const BUSYBOX: &str = "/usr/bin/busybox";
/// What the image's busybox is linked as.
const APPLETS: &[&str] =
    &["sh", "echo", "ls", "cat", "sleep", "env", "test", "stty", "pwd", "true"];
/// The sandbox's settings for podman: no ulimits or pids limit it may not set, cgroups by
/// plain files, runc.
const CONTAINERS_CONF: &str = "[containers]\ndefault_ulimits = []\npids_limit = 0\n\n\
    [engine]\ncgroup_manager = \"cgroupfs\"\nruntime = \"runc\"\n";

/// A podman set up for the tests, with its own image; the image goes when this is dropped.
struct Podman {
    dir: tempfile::TempDir,
    image: String,
}

impl Podman {
    /// `None` (having said why) when this machine cannot run podman.
    fn setup() -> Option<Podman> {
        let missing: Vec<&str> = [PODMAN, BUSYBOX, "/usr/bin/catatonit"]
            .into_iter()
            .filter(|p| !Path::new(p).exists())
            .collect();
        if !missing.is_empty() {
            eprintln!(
                "skipping: needs {} (apt-get install podman runc catatonit busybox-static)",
                missing.join(", ")
            );
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("containers.conf"), CONTAINERS_CONF).unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir_all(root.join("bin")).unwrap();
        std::fs::create_dir_all(root.join("tmp")).unwrap();
        std::fs::copy(BUSYBOX, root.join("bin/busybox")).unwrap();
        for applet in APPLETS {
            std::os::unix::fs::symlink("busybox", root.join("bin").join(applet)).unwrap();
        }
        std::fs::write(root.join("IMAGE"), "the busybox image\n").unwrap();
        let tar = dir.path().join("image.tar");
        let status = std::process::Command::new("tar")
            .arg("-C")
            .arg(&root)
            .arg("-cf")
            .arg(&tar)
            .arg(".")
            .status()
            .unwrap();
        assert!(status.success());
        let image = format!("localhost/tether-busybox:{:08x}", rand::random::<u32>());
        let podman = Podman { dir, image };
        let output = podman.command(&["import", tar.to_str().unwrap(), &podman.image]).output();
        let output = output.unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        Some(podman)
    }

    fn conf(&self) -> PathBuf {
        self.dir.path().join("containers.conf")
    }

    fn command(&self, args: &[&str]) -> std::process::Command {
        let mut command = std::process::Command::new(PODMAN);
        command.args(args).env("CONTAINERS_CONF", self.conf());
        command
    }

    /// The names of every container, running or not.
    fn containers(&self) -> String {
        let output = self.command(&["ps", "-a", "--format", "{{.Names}}"]).output().unwrap();
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// A runner whose PATH finds `first` (a directory) before the system's.
    async fn runner(&self, first: Option<&Path>, extra: &[&str]) -> Runner {
        let system = "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin";
        let path = match first {
            Some(dir) => format!("{}:{system}", dir.display()),
            None => system.to_string(),
        };
        let conf = self.conf();
        let env = [("PATH", path.as_str()), ("CONTAINERS_CONF", conf.to_str().unwrap())];
        Runner::start_with_env(extra, &env).await
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        let _ = self.command(&["rmi", "--force", &self.image]).output();
    }
}

fn image_spec(
    podman: &Podman,
    repo: &Repo,
    commit: &str,
    text: &str,
    run_id: &str,
) -> tether::exec::RunSpec {
    let mut spec = spec(&repo.file_url(), commit, script(text));
    spec.thunk.image = Some(podman.image.clone());
    spec.run_id = run_id.to_string();
    spec
}

#[tokio::test]
async fn a_check_runs_in_the_images_root_with_the_checkout_env_and_secrets() {
    let Some(podman) = Podman::setup() else { return };
    let repo = Repo::new();
    let commit = repo.commit(&[("sub/file.txt", b"from the checkout\n")], "one");
    let secrets = podman.dir.path().join("secrets.toml");
    std::fs::write(&secrets, "TOKEN = \"tok-123456\"\n").unwrap();
    let runner = podman.runner(None, &["--secrets", secrets.to_str().unwrap()]).await;
    let text = "cat /IMAGE; [ -e /usr/bin/git ] && echo host-root || echo image-root; pwd; \
                cat file.txt; echo \"$GREETING\" >&2; [ \"$TOKEN\" = tok-123456 ] && echo secret-ok; \
                echo \"$TOKEN\"; [ -t 1 ] || echo pipe";
    let mut spec = image_spec(&podman, &repo, &commit, text, "podman-env");
    spec.thunk.dir = "sub".into();
    spec.thunk.env.insert("GREETING".into(), "hello from env".into());
    spec.thunk.secrets = vec!["TOKEN".into()];
    let run = run_to_end(&runner, &spec).await.unwrap();
    assert_eq!(
        run.stdout(),
        "the busybox image\nimage-root\n/workspace/sub\nfrom the checkout\nhello from env\n\
         secret-ok\n***\npipe\n",
        "{run:?}"
    );
    assert_eq!(run.outcome(), &Outcome::Exited(0));
    // The image was there: no image step.
    let kinds: Vec<StepKind> = steps_of(&run.events).iter().map(|s| s.0).collect();
    assert_eq!(kinds, [StepKind::Checkout, StepKind::Run]);
    assert!(!podman.containers().contains("podman-env"), "{}", podman.containers());
}

/// (kind, status) of the last event of each step.
fn steps_of(events: &[RunEvent]) -> Vec<(StepKind, StepStatus)> {
    let mut steps: Vec<(u32, StepKind, StepStatus)> = Vec::new();
    for event in events {
        if let RunEvent::Step(step) = event {
            match steps.iter_mut().find(|s| s.0 == step.index) {
                Some(known) => *known = (step.index, step.kind, step.status),
                None => steps.push((step.index, step.kind, step.status)),
            }
        }
    }
    steps.into_iter().map(|(_, kind, status)| (kind, status)).collect()
}

#[tokio::test]
async fn tty_gives_the_container_a_160_by_50_terminal() {
    let Some(podman) = Podman::setup() else { return };
    let repo = Repo::new();
    let commit = repo.commit(&[("README", b"hi")], "one");
    let runner = podman.runner(None, &[]).await;
    let text = "[ -t 1 ] && echo tty || echo pipe; echo \"$TERM\"; stty size";
    let mut spec = image_spec(&podman, &repo, &commit, text, "podman-tty");
    spec.thunk.tty = true;
    let run = run_to_end(&runner, &spec).await.unwrap();
    assert_eq!(run.stdout(), "tty\r\nxterm-256color\r\n50 160\r\n", "{run:?}");
}

#[tokio::test]
async fn a_timed_out_or_cancelled_container_is_stopped_and_removed() {
    let Some(podman) = Podman::setup() else { return };
    let repo = Repo::new();
    let commit = repo.commit(&[("README", b"hi")], "one");
    let runner = podman.runner(None, &[]).await;
    let mut spec =
        image_spec(&podman, &repo, &commit, "echo started; sleep 1000", "podman-timeout");
    spec.thunk.timeout = Duration::from_secs(2);
    let run = run_to_end(&runner, &spec).await.unwrap();
    assert!(run.finished().timed_out, "{run:?}");
    assert!(!podman.containers().contains("podman-timeout"), "{}", podman.containers());

    let mut spec = image_spec(&podman, &repo, &commit, "echo started; sleep 1000", "podman-cancel");
    spec.thunk.tty = true;
    let mut events = runner.client().await.run(&spec).await.unwrap();
    read_until_output(&mut events, "started").await;
    assert!(podman.containers().contains("podman-cancel"));
    drop(events);
    let gone =
        eventually(Duration::from_secs(30), || !podman.containers().contains("podman-cancel"));
    assert!(gone.await, "left behind: {}", podman.containers());
}

#[tokio::test]
async fn a_docker_client_without_a_daemon_gives_way_to_podman() {
    let Some(podman) = Podman::setup() else { return };
    let repo = Repo::new();
    let commit = repo.commit(&[("README", b"hi")], "one");
    let bin = tempfile::tempdir().unwrap();
    let fake =
        "echo 'Cannot connect to the Docker daemon. Is the docker daemon running?' >&2\nexit 1\n";
    fake_program(bin.path(), "docker", fake);
    let runner = podman.runner(Some(bin.path()), &[]).await;
    let spec = image_spec(&podman, &repo, &commit, "cat /IMAGE", "podman-fallback");
    let run = run_to_end(&runner, &spec).await.unwrap();
    assert_eq!(
        (run.stdout().as_str(), run.outcome()),
        ("the busybox image\n", &Outcome::Exited(0))
    );
}

#[tokio::test]
async fn an_image_not_there_yet_is_pulled_in_an_image_step() {
    let Some(podman) = Podman::setup() else { return };
    let repo = Repo::new();
    let commit = repo.commit(&[("README", b"hi")], "one");
    let runner = podman.runner(None, &[]).await;
    // No registry is reachable here, so the pull fails: the step says so and the run is skipped.
    let mut spec = image_spec(&podman, &repo, &commit, "true", "podman-pull");
    spec.thunk.image = Some("localhost:1/tether-absent:none".into());
    let run = run_to_end(&runner, &spec).await.unwrap();
    assert_eq!(
        steps_of(&run.events),
        [
            (StepKind::Checkout, StepStatus::Success),
            (StepKind::Image, StepStatus::Failure),
            (StepKind::Run, StepStatus::Skipped),
        ]
    );
    let Outcome::Error(message) = run.outcome() else { panic!("{run:?}") };
    assert!(
        message.contains("pulling the image `localhost:1/tether-absent:none` failed"),
        "{message}"
    );
}
