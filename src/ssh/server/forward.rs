//! What a reverse forward means: a runner. Its registration calls `Info` through a forwarded
//! channel, in a task of its own, and records the runner or closes the session saying why.

use std::time::Duration;

use russh::server::Handle;

use super::Gateway;
use super::sessions::LiveRunner;
use crate::core::RunnerInfo;
use crate::runner::{RunnerClient, RunnerError};

/// How long a new runner has to answer `Info`.
pub const RUNNER_INFO_TIMEOUT: Duration = Duration::from_secs(10);

/// Where a runner's forward points, as the client registered it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ForwardTarget {
    /// `-R /laptop:/local.sock`: the runner is named by the last path segment.
    Streamlocal { path: String },
    /// `-R laptop:0:localhost:PORT`: named by the bind address, unless that is OpenSSH's
    /// default (`localhost` or empty), when the runner's own name is used.
    Tcp { address: String, port: u32 },
}

impl ForwardTarget {
    /// The name the forward gives the runner, if it gives one.
    pub fn name_hint(&self) -> Option<String> {
        let name = match self {
            ForwardTarget::Streamlocal { path } => path.rsplit('/').next().unwrap_or(""),
            ForwardTarget::Tcp { address, .. } if address.is_empty() || address == "localhost" => {
                ""
            }
            ForwardTarget::Tcp { address, .. } => address,
        };
        is_runner_name(name).then(|| name.to_string())
    }

    async fn open(
        &self,
        handle: &Handle,
    ) -> std::io::Result<russh::ChannelStream<russh::server::Msg>> {
        let channel = match self {
            ForwardTarget::Streamlocal { path } => {
                handle.channel_open_forwarded_streamlocal(path.clone()).await
            }
            ForwardTarget::Tcp { address, port } => {
                handle.channel_open_forwarded_tcpip(address.clone(), *port, "127.0.0.1", 0).await
            }
        };
        channel
            .map(|c| c.into_stream())
            .map_err(|e| std::io::Error::other(format!("opening a forwarded channel: {e}")))
    }
}

/// `/laptop` or `laptop:40000`, as the client asked for it (escaped: it is the client's text).
impl std::fmt::Display for ForwardTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ForwardTarget::Streamlocal { path } => write!(f, "{}", path.escape_debug()),
            // OpenSSH's default bind address, sent as nothing.
            ForwardTarget::Tcp { address, port } if address.is_empty() => {
                write!(f, "localhost:{port}")
            }
            ForwardTarget::Tcp { address, port } => write!(f, "{}:{port}", address.escape_debug()),
        }
    }
}

/// Why a forward did not become a runner; said to its owner as the session closes.
#[derive(Debug, thiserror::Error)]
enum Refused {
    #[error(
        "runner refused: nothing answered behind the forward {target}: start `tether runner \
         --listen SOCKET` first, forward that socket, and connect again"
    )]
    NoRunner { target: String, detail: String },
    #[error("runner refused: the runner behind {target} did not answer within {}s", RUNNER_INFO_TIMEOUT.as_secs())]
    Silent { target: String },
    #[error("runner refused: the runner behind {target} described itself wrongly: {detail}")]
    BadInfo { target: String, detail: String },
    #[error(
        "runner refused: its name {0:?} is not a valid runner name: name the forward, as in \
         -R /NAME:SOCKET"
    )]
    BadName(String),
    #[error("runner refused: recording the runner failed; try again later")]
    Store(#[source] anyhow::Error),
}

impl Refused {
    fn from_runner(target: &ForwardTarget, error: RunnerError) -> Refused {
        let target = target.to_string();
        match error {
            RunnerError::Unavailable(detail) => Refused::NoRunner { target, detail },
            RunnerError::Protocol(detail) => Refused::BadInfo { target, detail },
            other => Refused::BadInfo { target, detail: other.to_string() },
        }
    }

    /// More than the owner is told, for the server's log.
    fn detail(&self) -> String {
        match self {
            Refused::NoRunner { detail, .. } => detail.clone(),
            Refused::Store(e) => format!("{e:#}"),
            _ => String::new(),
        }
    }
}

/// Runner names: what a person would type, and what fits in a path segment.
pub fn is_runner_name(name: &str) -> bool {
    crate::core::runner_info::is_runner_name(name)
}

/// Registers the runner behind a new forward, in the background.
pub fn spawn_registration(
    gateway: Gateway,
    handle: Handle,
    session: String,
    login: String,
    target: ForwardTarget,
) {
    tokio::spawn(async move {
        if let Err(why) = register(&gateway, &handle, &session, &login, &target).await {
            let detail = why.detail();
            tracing::warn!(%login, %session, %target, %why, %detail, "refused a runner");
            let message = format!("tether: {why}");
            let _ =
                handle.disconnect(russh::Disconnect::ByApplication, message, String::new()).await;
        }
    });
}

async fn register(
    gateway: &Gateway,
    handle: &Handle,
    session: &str,
    login: &str,
    target: &ForwardTarget,
) -> Result<(), Refused> {
    let (client, info) = ask_info(gateway, handle, target).await?;
    let name = match target.name_hint() {
        Some(name) => name,
        None if is_runner_name(&info.name) => info.name.clone(),
        None => return Err(Refused::BadName(info.name.clone())),
    };
    tracing::info!(
        %login,
        %name,
        os = %info.os,
        arch = %info.arch,
        capacity = info.capacity,
        "runner connected"
    );
    let runner = LiveRunner {
        owner: login.to_string(),
        name: name.clone(),
        info,
        client,
        session: session.to_string(),
    };
    gateway.add_runner(runner).await.map_err(Refused::Store)?;
    if let Some((handle, shell)) = gateway.announce_runner(session, &name) {
        let _ = handle.data(shell.channel, shell.line(&registered_line(&name))).await;
    }
    Ok(())
}

/// A client for the runner behind `target`, and what it says about itself.
async fn ask_info(
    gateway: &Gateway,
    handle: &Handle,
    target: &ForwardTarget,
) -> Result<(RunnerClient, RunnerInfo), Refused> {
    let connect = {
        let (handle, target) = (handle.clone(), target.clone());
        move || {
            let (handle, target) = (handle.clone(), target.clone());
            async move { target.open(&handle).await }
        }
    };
    let mut client =
        RunnerClient::over(connect).await.map_err(|e| Refused::from_runner(target, e))?;
    if let Some(url) = gateway.external_url() {
        client = client.with_run_links(url);
    }
    let info = tokio::time::timeout(RUNNER_INFO_TIMEOUT, client.info())
        .await
        .map_err(|_| Refused::Silent { target: target.to_string() })?
        .map_err(|e| Refused::from_runner(target, e))?;
    Ok((client, info))
}

/// What the open session of `ssh -R …` (without `-N`) says once runner `name` is registered.
pub fn registered_line(name: &str) -> String {
    format!(
        "tether: runner {name} is registered; this session stays open to keep it connected \
         (Ctrl-C ends it)"
    )
}

/// Removes the runner of a cancelled forward.
pub async fn cancel(gateway: &Gateway, login: &str, session: &str, target: &ForwardTarget) {
    let names: Vec<String> = match target.name_hint() {
        Some(name) => vec![name],
        // Named by `Info`: find it among this session's runners.
        None => gateway
            .runners_of(login)
            .into_iter()
            .filter(|r| r.session == session)
            .map(|r| r.name)
            .collect(),
    };
    for name in names {
        gateway.remove_runner(login, &name, session).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwards_name_their_runner() {
        let local = |p: &str| ForwardTarget::Streamlocal { path: p.into() }.name_hint();
        let tcp = |a: &str| ForwardTarget::Tcp { address: a.into(), port: 0 }.name_hint();
        assert_eq!(local("/laptop").as_deref(), Some("laptop"));
        assert_eq!(local("/runners/big-box").as_deref(), Some("big-box"));
        assert_eq!(local("/"), None);
        assert_eq!(local("/bad name"), None);
        assert_eq!(tcp("laptop").as_deref(), Some("laptop"));
        assert_eq!(tcp("localhost"), None);
        assert_eq!(tcp(""), None);
    }
}
