//! Running a thunk inside a container image with docker or podman.

use std::ffi::OsString;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::process::{ProcessEnv, ProcessSpec};
use crate::core::Command;
use crate::core::fields::is_env_name;

/// Run inside the container before a check's script: stderr onto stdout, then the script with
/// `sh -e` as `$1`, so the log keeps the order the check wrote in, as on the host.
const ONE_PIPE_SCRIPT: &str = "exec 2>&1; exec sh -ec \"$1\"";

/// How long `docker info` may take before the engine counts as not working.
const ENGINE_PROBE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Where the checkout is mounted inside the container.
pub const CONTAINER_WORKSPACE: &str = "/workspace";
/// How often a starting container's id file is looked at, to remove the env file once the
/// container exists.
const CONTAINER_CREATED_POLL_INTERVAL: Duration = Duration::from_millis(20);

/// A container engine found on this machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Engine {
    /// `docker` or `podman`.
    pub kind: EngineKind,
    pub program: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EngineKind {
    Docker,
    Podman,
}

impl Engine {
    /// The argv that runs `command` in `image` with the checkout mounted at
    /// [`CONTAINER_WORKSPACE`], in `dir` below it. Variables come from the env file, so that
    /// their values, secrets among them, are neither in a process list nor in the environment
    /// the engine itself runs with; the engine writes the container's id to the id file.
    pub fn run_argv(&self, spec: &ContainerSpec<'_>) -> Vec<OsString> {
        let mut argv: Vec<OsString> = vec![self.program.clone().into(), "run".into()];
        for arg in ["--rm", "--init", "--interactive=false", "--name", spec.name] {
            argv.push(arg.into());
        }
        if spec.tty {
            argv.push("--tty".into());
        }
        argv.push("--cidfile".into());
        argv.push(spec.files.cid_file.clone().into());
        argv.push("--env-file".into());
        argv.push(spec.files.env_file.clone().into());
        if let (EngineKind::Docker, Some((uid, gid))) = (self.kind, spec.user) {
            // Files the check creates in the mounted checkout stay removable by the runner.
            argv.push("--user".into());
            argv.push(format!("{uid}:{gid}").into());
        }
        let mut volume = OsString::from(spec.checkout.as_os_str());
        volume.push(format!(":{CONTAINER_WORKSPACE}"));
        argv.extend(["--volume".into(), volume, "--workdir".into()]);
        argv.push(container_dir(spec.dir).into());
        argv.push("--".into());
        argv.push(spec.image.into());
        match spec.command {
            // Without a terminal the engine relays the container's stdout and stderr as two
            // streams and loses their order, so the script's shell joins them first.
            Command::Script(script) => {
                argv.extend([
                    "sh".into(),
                    "-c".into(),
                    ONE_PIPE_SCRIPT.into(),
                    "sh".into(),
                    script.into(),
                ]);
            }
            Command::Argv(args) => argv.extend(args.iter().map(OsString::from)),
        }
        argv
    }

    /// Checks that the engine answers: a docker client without a daemon is no engine. Returns
    /// why, when it does not.
    pub async fn probe(&self) -> Result<(), String> {
        let info = tokio::process::Command::new(&self.program)
            .arg("info")
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true)
            .output();
        let failure = match tokio::time::timeout(ENGINE_PROBE_TIMEOUT, info).await {
            Ok(Ok(output)) if output.status.success() => return Ok(()),
            Ok(Ok(output)) => {
                let stderr = String::from_utf8_lossy(&output.stderr);
                stderr
                    .lines()
                    .rfind(|l| !l.trim().is_empty())
                    .unwrap_or("no error output")
                    .trim()
                    .to_string()
            }
            Ok(Err(e)) => e.to_string(),
            Err(_) => format!("no answer within {}s", ENGINE_PROBE_TIMEOUT.as_secs()),
        };
        Err(format!("`{} info` failed: {failure}", self.program.display()))
    }

    /// Whether `image` is already there, so that no pull is needed.
    pub async fn has_image(&self, image: &str) -> bool {
        let inspect = tokio::process::Command::new(&self.program)
            .args(["image", "inspect", "--", image])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .status();
        matches!(tokio::time::timeout(ENGINE_PROBE_TIMEOUT, inspect).await, Ok(Ok(s)) if s.success())
    }

    /// The process that pulls `image`, its output going to the run's log.
    pub fn pull_spec(&self, image: &str, cwd: PathBuf) -> ProcessSpec {
        ProcessSpec {
            program: self.program.clone().into(),
            args: vec!["pull".into(), "--".into(), image.into()],
            cwd,
            env: ProcessEnv::Runner,
            tty: false,
            tty_stdin: false,
        }
    }

    /// The argv that removes the container by force, for a run that was cancelled: killing the
    /// engine's client does not always stop the container.
    pub fn remove_argv(&self, name: &str) -> Vec<OsString> {
        vec![self.program.clone().into(), "rm".into(), "--force".into(), name.into()]
    }
}

/// What a container run needs besides the engine.
pub struct ContainerSpec<'a> {
    /// A unique container name, so a cancelled run's container can be removed.
    pub name: &'a str,
    pub image: &'a str,
    pub checkout: &'a Path,
    pub dir: &'a str,
    pub files: &'a ContainerFiles,
    pub command: &'a Command,
    /// The runner's uid and gid, for docker.
    pub user: Option<(u32, u32)>,
    /// Give the check a terminal (`--tty`).
    pub tty: bool,
}

/// The container engines on this machine, in order of preference (docker, then podman), and
/// the first that worked, once one has: a docker client without a daemon is passed over.
#[derive(Debug, Clone, Default)]
pub struct Engines {
    candidates: Vec<Engine>,
    working: std::sync::Arc<tokio::sync::Mutex<Option<Engine>>>,
}

impl Engines {
    /// Docker and podman, those of them that are on `path` (a `PATH`-style list).
    pub fn find(path: Option<&OsString>) -> Engines {
        let dirs: Vec<PathBuf> = path.map(std::env::split_paths).into_iter().flatten().collect();
        let candidates = [(EngineKind::Docker, "docker"), (EngineKind::Podman, "podman")]
            .into_iter()
            .filter_map(|(kind, name)| {
                dirs.iter()
                    .map(|dir| dir.join(name))
                    .find(|candidate| is_executable(candidate))
                    .map(|program| Engine { kind, program })
            })
            .collect();
        Engines { candidates, working: Default::default() }
    }

    /// Exactly these engines, in this order.
    pub fn of(candidates: Vec<Engine>) -> Engines {
        Engines { candidates, working: Default::default() }
    }

    pub fn is_empty(&self) -> bool {
        self.candidates.is_empty()
    }

    /// The first engine that answers, probed once and then remembered (one probe at a time);
    /// or the message for the log of a check in `image` that cannot run here.
    pub async fn working(&self, image: &str) -> Result<Engine, String> {
        let mut working = self.working.lock().await;
        if let Some(engine) = &*working {
            return Ok(engine.clone());
        }
        if self.candidates.is_empty() {
            return Err(missing_engine_message(image));
        }
        let mut failures = Vec::new();
        for engine in &self.candidates {
            match engine.probe().await {
                Ok(()) => {
                    *working = Some(engine.clone());
                    return Ok(engine.clone());
                }
                Err(why) => failures.push(why),
            }
        }
        Err(format!(
            "this check runs in the container image `{image}`, so this runner needs a working \
             docker or podman; {}",
            failures.join("; ")
        ))
    }
}

/// A container run's env file (`NAME=value` lines, mode 0600, outside the mounted checkout) and
/// the file the engine writes the container's id to. The env file is removed as soon as the
/// container exists (the engine reads it before it creates the container), both at the latest
/// when this is dropped.
pub struct ContainerFiles {
    pub env_file: PathBuf,
    pub cid_file: PathBuf,
    watcher: Option<tokio::task::JoinHandle<()>>,
}

impl ContainerFiles {
    /// Writes `variables` to `STEM.env`; the id file is `STEM.cid`. A name or a value that the
    /// env file cannot carry is refused, with its name (never its value).
    pub fn write(stem: &Path, variables: &[(String, String)]) -> Result<ContainerFiles, String> {
        let mut text = String::new();
        for (name, value) in variables {
            if !is_env_name(name) {
                return Err(format!("`{name}` cannot name a variable in a container"));
            }
            if value.contains(['\n', '\r', '\0']) {
                return Err(format!(
                    "the value of {name} holds a line break or a NUL, which cannot be passed \
                     into a container"
                ));
            }
            text.push_str(&format!("{name}={value}\n"));
        }
        let files = ContainerFiles {
            env_file: stem.with_extension("env"),
            cid_file: stem.with_extension("cid"),
            watcher: None,
        };
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&files.env_file)
            .and_then(|mut file| file.write_all(text.as_bytes()))
            .map_err(|e| format!("cannot write {}: {e}", files.env_file.display()))?;
        Ok(files)
    }

    /// Removes the env file once the id file holds the container's id, in the background.
    pub fn remove_env_file_once_created(&mut self) {
        let (env_file, cid_file) = (self.env_file.clone(), self.cid_file.clone());
        self.watcher = Some(tokio::spawn(async move {
            while std::fs::metadata(&cid_file).map_or(true, |m| m.len() == 0) {
                tokio::time::sleep(CONTAINER_CREATED_POLL_INTERVAL).await;
            }
            let _ = std::fs::remove_file(&env_file);
        }));
    }
}

impl Drop for ContainerFiles {
    fn drop(&mut self) {
        if let Some(watcher) = self.watcher.take() {
            watcher.abort();
        }
        for file in [&self.env_file, &self.cid_file] {
            // Already gone is the usual case for the env file.
            let _ = std::fs::remove_file(file);
        }
    }
}

fn container_dir(dir: &str) -> String {
    if dir == "." {
        CONTAINER_WORKSPACE.to_string()
    } else {
        format!("{CONTAINER_WORKSPACE}/{dir}")
    }
}

/// The message of a run that needs an engine this runner lacks.
pub fn missing_engine_message(image: &str) -> String {
    format!(
        "this check runs in the container image `{image}`, so this runner needs docker or podman, \
         and neither is on its PATH. Install one, or run the check on a runner that has one."
    )
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata().is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(kind: EngineKind, command: Command, dir: &str) -> Vec<String> {
        let engine = Engine { kind, program: "/usr/bin/docker".into() };
        let files = ContainerFiles {
            env_file: "/w/runs/1.env".into(),
            cid_file: "/w/runs/1.cid".into(),
            watcher: None,
        };
        let spec = ContainerSpec {
            name: "tether-run-1",
            image: "rust:1.82",
            checkout: Path::new("/w/runs/1"),
            dir,
            files: &files,
            command: &command,
            user: Some((1000, 1000)),
            tty: false,
        };
        engine.run_argv(&spec).into_iter().map(|a| a.into_string().unwrap()).collect()
    }

    #[test]
    fn docker_command_mounts_the_checkout_and_passes_env_in_a_file() {
        let got = argv(EngineKind::Docker, Command::Script("make test".into()), "crates/x");
        let mut want: Vec<String> = "/usr/bin/docker run --rm --init --interactive=false \
            --name tether-run-1 --cidfile /w/runs/1.cid --env-file /w/runs/1.env \
            --user 1000:1000 --volume /w/runs/1:/workspace \
            --workdir /workspace/crates/x -- rust:1.82 sh -c"
            .split_whitespace()
            .map(String::from)
            .collect();
        want.extend([ONE_PIPE_SCRIPT.into(), "sh".into(), "make test".into()]);
        assert_eq!(got, want);
    }

    #[test]
    fn the_env_file_is_private_and_refuses_what_it_cannot_carry() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let stem = dir.path().join("run-1");
        let vars = [("CI".to_string(), "true".to_string()), ("T".to_string(), "a b=c".to_string())];
        let files = ContainerFiles::write(&stem, &vars).unwrap();
        let text = std::fs::read_to_string(&files.env_file).unwrap();
        assert_eq!(text, "CI=true\nT=a b=c\n");
        let mode = std::fs::metadata(&files.env_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        drop(files);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "both files are removed");
        let bad = [("KEY".to_string(), "line\nTWO=2".to_string())];
        let error = ContainerFiles::write(&stem, &bad).err().unwrap();
        assert!(error.contains("KEY") && !error.contains("TWO"), "{error}");
        let bad = [("A=B".to_string(), "x".to_string())];
        assert!(ContainerFiles::write(&stem, &bad).is_err());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn podman_runs_argv_at_the_workspace_root_without_a_user_flag() {
        let got = argv(EngineKind::Podman, Command::Argv(vec!["cargo".into(), "t".into()]), ".");
        assert!(!got.contains(&"--user".to_string()));
        let tail: Vec<&str> = got.iter().rev().take(4).rev().map(String::as_str).collect();
        assert_eq!(tail, ["--", "rust:1.82", "cargo", "t"]);
        assert!(got.windows(2).any(|w| w == ["--workdir", "/workspace"]));
    }

    #[test]
    fn finds_the_engine_on_the_path_or_none() {
        let dir = tempfile::tempdir().unwrap();
        let path = OsString::from(dir.path());
        assert!(Engines::find(Some(&path)).is_empty());
        let podman = dir.path().join("podman");
        std::fs::write(&podman, "#!/bin/sh\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&podman, std::fs::Permissions::from_mode(0o755)).unwrap();
        let found = Engines::find(Some(&path)).candidates;
        assert_eq!(found, [Engine { kind: EngineKind::Podman, program: podman }]);
    }

    #[test]
    fn the_missing_engine_message_says_what_to_do() {
        let message = missing_engine_message("rust:1.82");
        assert!(message.contains("needs docker or podman") && message.contains("rust:1.82"));
    }
}
