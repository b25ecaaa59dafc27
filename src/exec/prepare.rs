//! What a run needs before its process starts: the check's variables, and the process itself,
//! on the host or through the container engine.

use std::path::{Path, PathBuf};

use super::container::{self, ContainerFiles, ContainerSpec, Engine};
use super::emit::Emitter;
use super::process::{ProcessEnv, ProcessSpec};
use super::{Inner, RunSpec, TTY_TERM, env, run_dir_name};
use crate::core::Command;

/// The check's own variables: tether's, the check's env, then its granted secrets (without the
/// runner's, which depend on where the check runs).
pub(super) async fn environment(
    inner: &Inner,
    spec: &RunSpec,
    emitter: &mut Emitter,
) -> Vec<(String, String)> {
    let thunk = &spec.thunk;
    let mut env: Vec<(String, String)> = [
        ("CI", "true"),
        ("TETHER", "true"),
        ("TETHER_CHECK", &thunk.check),
        ("TETHER_COMMIT", &thunk.commit),
        ("TETHER_REPO", &spec.event.repo),
        ("TETHER_EVENT", &spec.event.kind),
        ("TETHER_RUN_ID", &spec.run_id),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    if thunk.tty {
        env.push(("TERM".into(), TTY_TERM.into()));
    }
    env.extend(thunk.env.iter().map(|(k, v)| (k.clone(), v.clone())));
    let grant = inner.config.secrets.grant(&thunk.secrets, &spec.event);
    for name in &grant.withheld {
        let why = format!(
            "secret {name} is not set: this runner's secrets file does not have it or does not \
             allow it for {} events of {}",
            spec.event.kind, spec.event.repo
        );
        emitter.notice(&why).await;
    }
    env.extend(grant.env);
    env
}

/// The process that runs the check: on the host, with a clean environment (the passed runner
/// variables, then `env`); or the container engine, with the runner's own environment and
/// `env` in an env file, which must live as long as the process.
pub(super) fn process_spec(
    inner: &Inner,
    engine: Option<&Engine>,
    spec: &RunSpec,
    run_dir: &Path,
    cwd: PathBuf,
    env: Vec<(String, String)>,
) -> Result<(ProcessSpec, Option<ContainerFiles>), String> {
    let thunk = &spec.thunk;
    let pass_env = &inner.config.pass_env;
    let Some(image) = &thunk.image else {
        let (program, args) = match &thunk.command {
            Command::Script(script) => ("sh".into(), vec!["-ec".into(), script.into()]),
            Command::Argv(argv) => {
                (argv[0].clone().into(), argv[1..].iter().map(Into::into).collect())
            }
        };
        let mut variables = env::for_host(std::env::vars_os(), pass_env);
        variables.extend(env.into_iter().map(|(k, v)| (k.into(), v.into())));
        let env = ProcessEnv::Only(variables);
        let tty = thunk.tty;
        return Ok((ProcessSpec { program, args, cwd, env, tty, tty_stdin: false }, None));
    };
    let engine = engine.ok_or_else(|| container::missing_engine_message(image))?;
    // One value per name, the last one winning as it does on the host.
    let mut variables: std::collections::BTreeMap<String, String> =
        env::for_container(std::env::vars_os(), pass_env).into_iter().collect();
    variables.extend(env);
    let variables: Vec<(String, String)> = variables.into_iter().collect();
    let mut files = ContainerFiles::write(run_dir, &variables)?;
    files.remove_env_file_once_created();
    let name = container_name(&spec.run_id);
    let user = Some((nix::unistd::getuid().as_raw(), nix::unistd::getgid().as_raw()));
    let container = ContainerSpec {
        name: &name,
        image,
        checkout: run_dir,
        dir: &thunk.dir,
        files: &files,
        command: &thunk.command,
        user,
        tty: thunk.tty,
    };
    let mut argv = engine.run_argv(&container);
    let program = argv.remove(0);
    // With `tty`, the engine gives the check a terminal (`--tty`) and its client runs on ours,
    // whose size (from its stdin) it passes on.
    let cwd = run_dir.to_path_buf();
    let (tty, tty_stdin) = (thunk.tty, thunk.tty);
    let process = ProcessSpec { program, args: argv, cwd, env: ProcessEnv::Runner, tty, tty_stdin };
    Ok((process, Some(files)))
}

pub(super) async fn remove_container(engine: &Engine, spec: &RunSpec) {
    let argv = engine.remove_argv(&container_name(&spec.run_id));
    let _ = tokio::process::Command::new(&argv[0]).args(&argv[1..]).output().await;
}

fn container_name(run_id: &str) -> String {
    format!("tether-{}", run_dir_name(run_id))
}
