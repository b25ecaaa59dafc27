//! The client side of the runner protocol: what the server (and the tests) use to talk to a
//! runner, in tether's own types.

use std::future::Future;

use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tonic::transport::{Channel, Endpoint};

use super::convert;
use super::listen::ListenAddr;
use super::proto;
use super::proto::runner_client::RunnerClient as ProtoClient;
use crate::core::{RunEvent, RunnerInfo};
use crate::exec::RunSpec;

/// Why a call to a runner failed, as callers need to branch on it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RunnerError {
    /// Every run slot is taken; try again later or elsewhere.
    #[error("runner busy: {0}")]
    Busy(String),
    /// The runner refused the request as invalid.
    #[error("runner refused the request: {0}")]
    Refused(String),
    /// The runner cannot be reached or went away.
    #[error("runner unavailable: {0}")]
    Unavailable(String),
    /// The runner answered something that makes no sense.
    #[error("runner protocol error: {0}")]
    Protocol(String),
}

impl From<tonic::Status> for RunnerError {
    fn from(status: tonic::Status) -> RunnerError {
        let message = status.message().to_string();
        match status.code() {
            tonic::Code::ResourceExhausted => RunnerError::Busy(message),
            tonic::Code::InvalidArgument => RunnerError::Refused(message),
            tonic::Code::Unavailable | tonic::Code::Cancelled | tonic::Code::Unknown => {
                RunnerError::Unavailable(message)
            }
            code => RunnerError::Protocol(format!("{code:?}: {message}")),
        }
    }
}

/// A connection to one runner.
#[derive(Clone)]
pub struct RunnerClient {
    inner: ProtoClient<Channel>,
    /// The server's external URL, to send each run's page with it; `None` sends none.
    links: Option<std::sync::Arc<str>>,
}

/// The events of one run; dropping this cancels the run.
pub struct RunEvents {
    inner: tonic::Streaming<proto::RunEvent>,
}

impl RunnerClient {
    /// Connects to a runner that listens on a socket or TCP address.
    pub async fn connect(addr: &ListenAddr) -> Result<RunnerClient, RunnerError> {
        let unavailable = |e: tonic::transport::Error| {
            RunnerError::Unavailable(format!("{addr:?}: {}", transport_error(&e)))
        };
        let channel = match addr {
            ListenAddr::Tcp(host_port) => Endpoint::from_shared(format!("http://{host_port}"))
                .map_err(unavailable)?
                .connect()
                .await
                .map_err(unavailable)?,
            ListenAddr::Unix(path) => {
                let path = path.clone();
                Endpoint::from_static("http://runner.invalid")
                    .connect_with_connector(tower::service_fn(move |_| {
                        let path = path.clone();
                        async move { tokio::net::UnixStream::connect(path).await.map(TokioIo::new) }
                    }))
                    .await
                    .map_err(unavailable)?
            }
        };
        Ok(RunnerClient::from_channel(channel))
    }

    /// A client whose connections are made by `connect`: for example an SSH forwarded channel
    /// to a runner behind `ssh -R`. It connects once now, and again after a broken connection.
    pub async fn over<F, Fut, IO>(connect: F) -> Result<RunnerClient, RunnerError>
    where
        F: Fn() -> Fut + Send + Sync + Clone + 'static,
        Fut: Future<Output = std::io::Result<IO>> + Send + 'static,
        IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let channel = Endpoint::from_static("http://runner.invalid")
            .connect_with_connector(tower::service_fn(move |_| {
                let connect = connect.clone();
                async move { connect().await.map(TokioIo::new) }
            }))
            .await
            .map_err(|e| RunnerError::Unavailable(transport_error(&e)))?;
        Ok(RunnerClient::from_channel(channel))
    }

    pub(crate) fn from_channel(channel: Channel) -> RunnerClient {
        RunnerClient { inner: ProtoClient::new(channel), links: None }
    }

    /// Sends each run's page, `EXTERNAL_URL/runs/ID`, with the run, for the runner's own lines.
    pub fn with_run_links(mut self, external_url: &str) -> RunnerClient {
        self.links = Some(external_url.trim_end_matches('/').into());
        self
    }

    pub async fn info(&mut self) -> Result<RunnerInfo, RunnerError> {
        let response = self.inner.info(proto::InfoRequest {}).await?;
        convert::info_from_proto(response.into_inner()).map_err(RunnerError::Protocol)
    }

    pub async fn run(&mut self, spec: &RunSpec) -> Result<RunEvents, RunnerError> {
        let run_url = match &self.links {
            Some(base) => format!("{base}/runs/{}", spec.run_id),
            None => String::new(),
        };
        let response = self.inner.run(convert::run_request(spec, run_url)).await?;
        Ok(RunEvents { inner: response.into_inner() })
    }
}

/// A transport error with its causes: tonic's own message alone is only "transport error".
fn transport_error(error: &tonic::transport::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}

impl RunEvents {
    /// The next event, or `None` when the runner closed the stream.
    pub async fn next(&mut self) -> Option<Result<RunEvent, RunnerError>> {
        match self.inner.message().await {
            Ok(Some(event)) => {
                Some(convert::event_from_proto(event).map_err(RunnerError::Protocol))
            }
            Ok(None) => None,
            Err(status) => Some(Err(status.into())),
        }
    }
}
