//! The gRPC service a runner serves: `Info` and `Run`, on top of the executor.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use futures::Stream;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use super::convert;
use super::proto::runner_server::{Runner, RunnerServer};
use super::proto::{InfoRequest, InfoResponse, RunEvent, RunRequest};
use crate::core::RunnerInfo;
use crate::core::fields::normalise_arch;
use crate::core::notice::{Ending, RunTitle, run_link};
use crate::core::run::RunEvent as CoreEvent;
use crate::exec::{Executor, StartError};

/// What the service tells its owner (the `tether runner` command prints it).
#[derive(Debug, Clone, PartialEq)]
pub enum Notice {
    /// The server called for the first time: the connection through `ssh -R` works.
    FirstCall,
    RunStarted(RunTitle),
    RunEnded(RunTitle, Ending),
}

/// Where notices go.
pub type Feedback = Arc<dyn Fn(Notice) + Send + Sync>;

/// What a runner says about itself, besides its executor's numbers.
#[derive(Debug, Clone)]
pub struct RunnerIdentity {
    pub name: String,
    pub labels: Vec<String>,
}

/// The runner's gRPC service.
#[derive(Clone)]
pub struct RunnerService {
    identity: RunnerIdentity,
    executor: Executor,
    feedback: Option<Feedback>,
    /// Set by the first call from the server.
    called: Arc<AtomicBool>,
}

/// Why the service refused a call; the one place these become gRPC statuses.
#[derive(Debug, thiserror::Error)]
enum ServiceError {
    #[error(transparent)]
    Start(#[from] StartError),
    #[error("invalid run request: {0}")]
    InvalidRequest(String),
}

impl From<ServiceError> for Status {
    fn from(error: ServiceError) -> Status {
        match error {
            ServiceError::Start(StartError::Busy(_)) => {
                Status::resource_exhausted(error.to_string())
            }
            // A runner that is shutting down: the server should try another, or later.
            ServiceError::Start(StartError::Closed) => Status::unavailable(error.to_string()),
            ServiceError::InvalidRequest(_) => Status::invalid_argument(error.to_string()),
        }
    }
}

impl RunnerService {
    pub fn new(identity: RunnerIdentity, executor: Executor) -> RunnerService {
        RunnerService { identity, executor, feedback: None, called: Arc::default() }
    }

    /// Tells `feedback` of the first call and of each run's start and end.
    pub fn with_feedback(mut self, feedback: Feedback) -> RunnerService {
        self.feedback = Some(feedback);
        self
    }

    fn note_call(&self) {
        let Some(feedback) = &self.feedback else { return };
        if !self.called.swap(true, Ordering::SeqCst) {
            feedback(Notice::FirstCall);
        }
    }

    pub fn info(&self) -> RunnerInfo {
        RunnerInfo {
            name: self.identity.name.clone(),
            os: std::env::consts::OS.to_string(),
            arch: normalise_arch(std::env::consts::ARCH),
            labels: self.identity.labels.clone(),
            capacity: self.executor.capacity() as u32,
            runs_in_flight: self.executor.in_flight() as u32,
            version: env!("CARGO_PKG_VERSION").to_string(),
            protocol_version: super::PROTOCOL_VERSION,
        }
    }

    /// The tonic service, ready to add to a server.
    pub fn into_server(self) -> RunnerServer<RunnerService> {
        RunnerServer::new(self)
    }
}

type EventStream = Pin<Box<dyn Stream<Item = Result<RunEvent, Status>> + Send>>;

#[tonic::async_trait]
impl Runner for RunnerService {
    async fn info(&self, _: Request<InfoRequest>) -> Result<Response<InfoResponse>, Status> {
        self.note_call();
        Ok(Response::new(convert::info_to_proto(RunnerService::info(self))))
    }

    type RunStream = EventStream;

    async fn run(&self, request: Request<RunRequest>) -> Result<Response<EventStream>, Status> {
        self.note_call();
        let request = request.into_inner();
        let link = run_link(&request.run_url);
        let spec = convert::run_spec(request).map_err(ServiceError::InvalidRequest)?;
        tracing::info!(run_id = %spec.run_id, check = %spec.thunk.check, commit = %spec.thunk.commit, "run starts");
        let title = RunTitle {
            run_id: spec.run_id.clone(),
            check: spec.thunk.check.clone(),
            repo: spec.event.repo.clone(),
            link,
        };
        let events = self.executor.start(spec).map_err(ServiceError::from)?;
        let mut watch = self.feedback.clone().map(|feedback| RunWatch::start(feedback, title));
        // Dropping this stream (the caller went away) drops the receiver, which cancels the run.
        let stream = ReceiverStream::new(events).map(move |event| {
            if let Some(watch) = &mut watch {
                watch.see(&event);
            }
            Ok(convert::event_to_proto(event))
        });
        Ok(Response::new(Box::pin(stream)))
    }
}

/// One run's notices: its start now, its end when `Finished` passes or, when the stream is
/// dropped first, as stopped by the server.
struct RunWatch {
    feedback: Feedback,
    title: RunTitle,
    since: Instant,
    ended: bool,
}

impl RunWatch {
    fn start(feedback: Feedback, title: RunTitle) -> RunWatch {
        feedback(Notice::RunStarted(title.clone()));
        RunWatch { feedback, title, since: Instant::now(), ended: false }
    }

    fn see(&mut self, event: &CoreEvent) {
        if let CoreEvent::Finished(finished) = event {
            self.ended = true;
            (self.feedback)(Notice::RunEnded(
                self.title.clone(),
                Ending::Finished(finished.clone()),
            ));
        }
    }
}

impl Drop for RunWatch {
    fn drop(&mut self) {
        if !self.ended {
            let ending = Ending::Dropped { after: self.since.elapsed() };
            (self.feedback)(Notice::RunEnded(self.title.clone(), ending));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::{Config, EventContext, Thunk};
    use crate::exec::{ExecConfig, RunSpec};

    fn request() -> RunRequest {
        let config = Config::parse("[checks.t]\nrun = \"true\"\n").unwrap();
        let thunk = Thunk::new(&config.checks["t"], &"a".repeat(40), "file:///nowhere");
        convert::run_request(
            &RunSpec {
                thunk,
                clone_token: None,
                run_id: "1".into(),
                event: EventContext { kind: "push".into(), repo: "o/r".into() },
            },
            String::new(),
        )
    }

    #[tokio::test]
    async fn a_closed_executor_refuses_runs_as_unavailable() {
        let dir = tempfile::tempdir().unwrap();
        let executor = Executor::new(ExecConfig {
            work_dir: dir.path().to_path_buf(),
            max_runs: 1,
            secrets: Default::default(),
            engine: None,
            pass_env: vec![],
        })
        .unwrap();
        executor.close();
        let identity = RunnerIdentity { name: "t".into(), labels: vec![] };
        let service = RunnerService::new(identity, executor);
        let status = Runner::run(&service, Request::new(request()))
            .await
            .err()
            .expect("a closed runner refuses the run");
        assert_eq!(status.code(), tonic::Code::Unavailable);
        assert!(status.message().contains("shutting down"), "{status:?}");
    }
}
