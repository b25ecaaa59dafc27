//! Running thunks on this machine: checkout, secrets, a process group or a container, and the
//! stream of events a run produces. Used by the gRPC runner and by `tether run` alike.

pub mod checkout;
pub mod container;
mod emit;
pub mod env;
pub mod mask;
mod prepare;
pub mod process;
pub mod secrets;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, watch};

use self::checkout::GitCache;
use self::container::{Engine, Engines};
use self::emit::Emitter;
use self::prepare::{environment, process_spec, remove_container};
use self::process::Stop;
use self::secrets::Secrets;
use crate::core::run::Finished;
use crate::core::thunk::is_full_commit;
use crate::core::{EventContext, Outcome, RunEvent, StepKind, StepStatus, Thunk};

/// `TERM` of a check under a terminal (`tty = true`); its own `env` may say otherwise.
pub const TTY_TERM: &str = "xterm-256color";
/// Events buffered between a run and its reader.
const RUN_EVENT_QUEUE: usize = 64;

/// How a runner runs thunks.
#[derive(Debug, Clone)]
pub struct ExecConfig {
    /// Holds `cache/` (git caches, kept) and `runs/` (one checkout per run, removed after it).
    pub work_dir: PathBuf,
    /// Runs at once; more are refused.
    pub max_runs: usize,
    pub secrets: Secrets,
    /// The container engines for thunks with an image: the first that works is used.
    pub engines: Engines,
    /// The runner's variables a check gets besides those of [`env::PASSED_VARIABLES`] and
    /// `LC_*` (`--pass-env`); in a container, only these.
    pub pass_env: Vec<String>,
}

/// One run to start.
#[derive(Debug, Clone)]
pub struct RunSpec {
    pub thunk: Thunk,
    /// For the HTTPS fetch only; never part of the thunk.
    pub clone_token: Option<String>,
    pub run_id: String,
    pub event: EventContext,
}

/// A run was refused because every slot is taken.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("this runner is busy: all {capacity} run slots are in use")]
pub struct Busy {
    pub capacity: usize,
}

/// Why a run was not started.
#[derive(Debug, Clone, Copy, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Busy(#[from] Busy),
    /// [`Executor::close`] was called: the runner is shutting down.
    #[error("this runner is shutting down and takes no new runs")]
    Closed,
}

/// Starts runs and knows how many are going.
#[derive(Clone)]
pub struct Executor {
    inner: Arc<Inner>,
}

struct Inner {
    config: ExecConfig,
    slots: Arc<Semaphore>,
    cache: GitCache,
    runs_dir: PathBuf,
    closed: AtomicBool,
    /// Becomes true once, when every run must stop.
    cancel: watch::Sender<bool>,
}

impl Executor {
    pub fn new(config: ExecConfig) -> anyhow::Result<Executor> {
        let cache_dir = config.work_dir.join("cache");
        let runs_dir = config.work_dir.join("runs");
        for dir in [&cache_dir, &runs_dir] {
            std::fs::create_dir_all(dir)
                .map_err(|e| anyhow::anyhow!("cannot create work dir {}: {e}", dir.display()))?;
        }
        let slots = Arc::new(Semaphore::new(config.max_runs));
        let cache = GitCache::new(cache_dir);
        Ok(Executor {
            inner: Arc::new(Inner {
                config,
                slots,
                cache,
                runs_dir,
                closed: AtomicBool::new(false),
                cancel: watch::Sender::new(false),
            }),
        })
    }

    pub fn capacity(&self) -> usize {
        self.inner.config.max_runs
    }

    pub fn in_flight(&self) -> usize {
        self.capacity() - self.inner.slots.available_permits()
    }

    /// Resolves when no run is in flight: after a cancel, every process group is gone.
    pub async fn wait_idle(&self) {
        let all = self.capacity() as u32;
        let _ = self.inner.slots.acquire_many(all).await;
    }

    /// Waits at most `limit` for [`Executor::wait_idle`]; returns whether it got idle.
    pub async fn wait_idle_for(&self, limit: Duration) -> bool {
        tokio::time::timeout(limit, self.wait_idle()).await.is_ok()
    }

    /// Takes no new runs from now on: [`Executor::start`] fails with [`StartError::Closed`].
    /// Runs in flight go on.
    pub fn close(&self) {
        self.inner.closed.store(true, Ordering::SeqCst);
    }

    pub fn is_closed(&self) -> bool {
        self.inner.closed.load(Ordering::SeqCst)
    }

    /// Closes, and stops every run in flight as if its reader had gone away: each process
    /// group gets SIGTERM, then SIGKILL, and the run still reports how it ended.
    pub fn cancel_all(&self) {
        self.close();
        self.inner.cancel.send_replace(true);
    }

    /// Starts a run. Dropping the returned receiver cancels it.
    pub fn start(&self, spec: RunSpec) -> Result<mpsc::Receiver<RunEvent>, StartError> {
        if self.is_closed() {
            return Err(StartError::Closed);
        }
        let permit = self
            .inner
            .slots
            .clone()
            .try_acquire_owned()
            .map_err(|_| Busy { capacity: self.capacity() })?;
        let (tx, rx) = mpsc::channel(RUN_EVENT_QUEUE);
        tokio::spawn(run_one(self.inner.clone(), spec, tx, permit));
        Ok(rx)
    }
}

async fn run_one(
    inner: Arc<Inner>,
    spec: RunSpec,
    tx: mpsc::Sender<RunEvent>,
    _slot: OwnedSemaphorePermit,
) {
    let token = spec.clone_token.clone().unwrap_or_default();
    let masked: Vec<&str> = inner.config.secrets.values().chain([token.as_str()]).collect();
    let mut emitter = Emitter::new(tx, &masked).with_cancel(inner.cancel.subscribe());
    let run_dir = inner.runs_dir.join(run_dir_name(&spec.run_id));
    let (outcome, stop, process_started) = run_in(&inner, &spec, &run_dir, &mut emitter).await;
    // Zero when the process never started, as the protocol says.
    let duration = process_started.map(|started| started.elapsed()).unwrap_or_default();
    if let Err(e) = remove_dir(&run_dir).await {
        emitter.notice(&format!("could not remove the work dir {}: {e}", run_dir.display())).await;
    }
    let timed_out = stop == Some(Stop::TimedOut);
    emitter.finish(Finished { outcome, timed_out, duration, output_chunks: 0 }).await;
}

/// What ended a run before its command could start.
type Failed = (Outcome, Option<Stop>, Option<Instant>);

/// Checks out, prepares and runs, each a step; returns the outcome, why it was stopped, and
/// when the process started (if it did).
async fn run_in(
    inner: &Inner,
    spec: &RunSpec,
    run_dir: &Path,
    emitter: &mut Emitter,
) -> (Outcome, Option<Stop>, Option<Instant>) {
    let thunk = &spec.thunk;
    if !is_full_commit(&thunk.commit) {
        return (Outcome::Error(format!("`{}` is not a full commit id", thunk.commit)), None, None);
    }
    let checkout_started = SystemTime::now();
    let step = emitter.begin_step(StepKind::Checkout, "checkout").await;
    let cwd = match checkout(inner, spec, run_dir, emitter).await {
        Ok(cwd) => cwd,
        Err(message) => return failed_step(emitter, step, message).await,
    };
    emitter.end_step(step, StepStatus::Success).await;
    let engine = match prepare_image(inner, thunk, emitter).await {
        Ok(engine) => engine,
        Err(failed) => return failed,
    };
    if *inner.cancel.borrow() {
        emitter.skip_step(StepKind::Run, "run").await;
        let why = "the runner is shutting down; the run was cancelled before it started";
        return (Outcome::Error(why.into()), None, None);
    }
    let env = environment(inner, spec, emitter).await;
    let (process, container_files) =
        match process_spec(inner, engine.as_ref(), spec, run_dir, cwd, env) {
            Ok(prepared) => prepared,
            Err(message) => {
                emitter.notice(&message).await;
                emitter.skip_step(StepKind::Run, "run").await;
                return (Outcome::Error(message), None, None);
            }
        };
    emitter.started(checkout_started, &thunk.commit).await;
    let step = emitter.begin_step(StepKind::Run, "run").await;
    let started = Instant::now();
    let (outcome, stop) = process::run(process, emitter, thunk.timeout).await;
    drop(container_files);
    if let (Some(engine), Some(_)) = (&engine, stop) {
        remove_container(engine, spec).await;
    }
    emitter.flush_output().await;
    emitter.end_step(step, run_status(&outcome, stop)).await;
    (outcome, stop, Some(started))
}

/// The checkout, ready in `run_dir`; returns the check's working directory.
async fn checkout(
    inner: &Inner,
    spec: &RunSpec,
    run_dir: &Path,
    emitter: &mut Emitter,
) -> Result<PathBuf, String> {
    let thunk = &spec.thunk;
    let token = spec.clone_token.as_deref();
    if let Err(e) = inner.cache.checkout(&thunk.clone_url, &thunk.commit, token, run_dir).await {
        emitter.notice(&format!("checkout failed: {e}")).await;
        return Err(format!("checkout of {} failed", thunk.commit));
    }
    let cwd = run_dir.join(&thunk.dir);
    if !cwd.is_dir() {
        return Err(format!("the check's dir `{}` is not a directory in this commit", thunk.dir));
    }
    Ok(cwd)
}

/// Ends `step` as failed and skips the `run` step after it.
async fn failed_step(emitter: &mut Emitter, step: u32, message: String) -> Failed {
    emitter.end_step(step, StepStatus::Failure).await;
    emitter.skip_step(StepKind::Run, "run").await;
    (Outcome::Error(message), None, None)
}

/// For a thunk with an image: the engine that works, after pulling the image (the `image` step)
/// if it is not there yet. A failure is an `image` step of its own.
async fn prepare_image(
    inner: &Inner,
    thunk: &Thunk,
    emitter: &mut Emitter,
) -> Result<Option<Engine>, Failed> {
    let Some(image) = &thunk.image else { return Ok(None) };
    let engine = match inner.config.engines.working(image).await {
        Ok(engine) => engine,
        Err(message) => {
            let step = emitter.begin_step(StepKind::Image, "image").await;
            emitter.notice(&message).await;
            return Err(failed_step(emitter, step, message).await);
        }
    };
    if engine.has_image(image).await {
        return Ok(Some(engine));
    }
    let step = emitter.begin_step(StepKind::Image, "image").await;
    let pull = engine.pull_spec(image, inner.runs_dir.clone());
    let (outcome, stop) = process::run(pull, emitter, thunk.timeout).await;
    emitter.flush_output().await;
    if outcome == Outcome::Exited(0) {
        emitter.end_step(step, StepStatus::Success).await;
        return Ok(Some(engine));
    }
    let message = format!("pulling the image `{image}` failed ({})", outcome.describe());
    emitter.notice(&message).await;
    if stop == Some(Stop::Cancelled) {
        emitter.end_step(step, StepStatus::Cancelled).await;
        emitter.skip_step(StepKind::Run, "run").await;
        return Err((Outcome::Error(message), None, None));
    }
    Err(failed_step(emitter, step, message).await)
}

/// How the `run` step ended.
fn run_status(outcome: &Outcome, stop: Option<Stop>) -> StepStatus {
    match (outcome, stop) {
        (_, Some(Stop::Cancelled)) => StepStatus::Cancelled,
        (Outcome::Exited(0), None) => StepStatus::Success,
        _ => StepStatus::Failure,
    }
}

/// A file-name-safe, unique name for a run's directory.
fn run_dir_name(run_id: &str) -> String {
    let safe: String = run_id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .take(40)
        .collect();
    let unique: u32 = rand::random();
    format!("{safe}-{unique:08x}")
}

/// Removes a run's directory, also when the check left read-only files in it.
async fn remove_dir(dir: &Path) -> std::io::Result<()> {
    if !dir.exists() {
        return Ok(());
    }
    if tokio::fs::remove_dir_all(dir).await.is_ok() {
        return Ok(());
    }
    let status =
        tokio::process::Command::new("chmod").arg("-R").arg("u+w").arg(dir).status().await?;
    if !status.success() {
        tracing::warn!(dir = %dir.display(), "chmod of a run dir failed");
    }
    tokio::fs::remove_dir_all(dir).await
}
