//! Running a thunk inside a container image with docker or podman.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use crate::core::Command;

/// How long `docker info` may take before the engine counts as not working.
const ENGINE_PROBE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Where the checkout is mounted inside the container.
pub const CONTAINER_WORKSPACE: &str = "/workspace";

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
    /// The first of `docker` and `podman` on `path` (a `PATH`-style list).
    pub fn find(path: Option<&OsString>) -> Option<Engine> {
        let dirs: Vec<PathBuf> = path.map(std::env::split_paths).into_iter().flatten().collect();
        [(EngineKind::Docker, "docker"), (EngineKind::Podman, "podman")].into_iter().find_map(
            |(kind, name)| {
                dirs.iter()
                    .map(|dir| dir.join(name))
                    .find(|candidate| is_executable(candidate))
                    .map(|program| Engine { kind, program })
            },
        )
    }

    /// The argv that runs `command` in `image` with the checkout mounted at
    /// [`CONTAINER_WORKSPACE`], in `dir` below it. Variables are passed by name only (`--env
    /// NAME`), so that their values, secrets among them, never appear in a process list: the
    /// engine reads them from its own environment, which the runner sets.
    pub fn run_argv(&self, spec: &ContainerSpec<'_>) -> Vec<OsString> {
        let mut argv: Vec<OsString> = vec![self.program.clone().into(), "run".into()];
        for arg in ["--rm", "--init", "--interactive=false", "--name", spec.name] {
            argv.push(arg.into());
        }
        if let (EngineKind::Docker, Some((uid, gid))) = (self.kind, spec.user) {
            // Files the check creates in the mounted checkout stay removable by the runner.
            argv.push("--user".into());
            argv.push(format!("{uid}:{gid}").into());
        }
        let mut volume = OsString::from(spec.checkout.as_os_str());
        volume.push(format!(":{CONTAINER_WORKSPACE}"));
        argv.extend(["--volume".into(), volume, "--workdir".into()]);
        argv.push(container_dir(spec.dir).into());
        for name in spec.env_names {
            argv.push("--env".into());
            argv.push(name.into());
        }
        argv.push("--".into());
        argv.push(spec.image.into());
        match spec.command {
            Command::Script(script) => argv.extend(["sh".into(), "-ec".into(), script.into()]),
            Command::Argv(args) => argv.extend(args.iter().map(OsString::from)),
        }
        argv
    }

    /// Checks that the engine answers: a docker client without a daemon is no engine. Returns
    /// the message for the run's log when it does not.
    pub async fn probe(&self, image: &str) -> Result<(), String> {
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
        Err(format!(
            "this check runs in the container image `{image}`, so this runner needs a working \
             docker or podman; `{} info` failed: {failure}",
            self.program.display()
        ))
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
    pub env_names: &'a [String],
    pub command: &'a Command,
    /// The runner's uid and gid, for docker.
    pub user: Option<(u32, u32)>,
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
        let env = ["CI".to_string(), "TOKEN".to_string()];
        let spec = ContainerSpec {
            name: "tether-run-1",
            image: "rust:1.82",
            checkout: Path::new("/w/runs/1"),
            dir,
            env_names: &env,
            command: &command,
            user: Some((1000, 1000)),
        };
        engine.run_argv(&spec).into_iter().map(|a| a.into_string().unwrap()).collect()
    }

    #[test]
    fn docker_command_mounts_the_checkout_and_passes_env_by_name() {
        let got = argv(EngineKind::Docker, Command::Script("make test".into()), "crates/x");
        let mut want: Vec<String> = "/usr/bin/docker run --rm --init --interactive=false \
            --name tether-run-1 --user 1000:1000 --volume /w/runs/1:/workspace \
            --workdir /workspace/crates/x --env CI --env TOKEN -- rust:1.82 sh -ec"
            .split_whitespace()
            .map(String::from)
            .collect();
        want.push("make test".into());
        assert_eq!(got, want);
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
        assert_eq!(Engine::find(Some(&path)), None);
        let podman = dir.path().join("podman");
        std::fs::write(&podman, "#!/bin/sh\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&podman, std::fs::Permissions::from_mode(0o755)).unwrap();
        let found = Engine::find(Some(&path)).unwrap();
        assert_eq!((found.kind, found.program), (EngineKind::Podman, podman));
    }

    #[test]
    fn the_missing_engine_message_says_what_to_do() {
        let message = missing_engine_message("rust:1.82");
        assert!(message.contains("needs docker or podman") && message.contains("rust:1.82"));
    }
}
