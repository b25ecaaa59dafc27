//! The russh handler of one connection: turns protocol callbacks into decisions of the gateway,
//! refusing everything a runner connection does not need.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use russh::keys::PublicKey;
use russh::server::{Auth, ChannelOpenHandle, Msg, PublicKeyOffer, Session, VerifiedPublicKey};
use russh::{Channel, ChannelId, ChannelOpenFailure};
use tokio::sync::OwnedSemaphorePermit;

use super::commands;
use super::forward::{self, ForwardTarget};
use super::sessions::Shell;
use super::{Gateway, MAX_CHANNELS_PER_SESSION, MAX_FORWARDS_PER_SESSION, MAX_SESSIONS_PER_USER};
use crate::core::ssh_command::{self, Command};

pub struct ConnectionHandler {
    gateway: Gateway,
    session_id: String,
    peer: SocketAddr,
    login: Option<String>,
    authenticated: Arc<AtomicBool>,
    /// The connection's place among those not logged in yet, given back at login.
    unauthenticated: Option<OwnedSemaphorePermit>,
    /// The forwards this session registered and has not cancelled: what the cap counts.
    forwards: HashSet<ForwardTarget>,
    /// Port numbers handed out for `tcpip-forward` with port 0; nothing is ever bound.
    next_port: u32,
    /// The client asked for a terminal (plain `ssh` from one does).
    pty: bool,
    /// The shell channel of `ssh -R …` without `-N`, which stays open.
    shell: Option<ChannelId>,
    /// Session channels opened and not yet given a command: kept so that the command's task
    /// writes with the channel's flow control.
    channels: HashMap<ChannelId, Channel<Msg>>,
}

impl ConnectionHandler {
    pub fn new(
        gateway: Gateway,
        session_id: String,
        peer: SocketAddr,
        unauthenticated: OwnedSemaphorePermit,
    ) -> ConnectionHandler {
        ConnectionHandler {
            gateway,
            session_id,
            peer,
            login: None,
            authenticated: Arc::default(),
            unauthenticated: Some(unauthenticated),
            forwards: HashSet::new(),
            next_port: FIRST_ASSIGNED_PORT,
            pty: false,
            shell: None,
            channels: HashMap::new(),
        }
    }

    /// The login for the log: `-` before there is one.
    fn login_text(&self) -> &str {
        self.login.as_deref().unwrap_or("-")
    }

    pub fn authenticated_flag(&self) -> Arc<AtomicBool> {
        self.authenticated.clone()
    }

    /// Whether `key` is one of `user`'s keys on GitHub; a refusal is logged with the login,
    /// the key's fingerprint and the reason.
    async fn key_allowed(&self, user: &str, key: &PublicKey) -> bool {
        let refusal = if crate::github::valid_login(user).is_none() {
            "not a GitHub login".to_string()
        } else {
            match self.gateway.keyring().keys(user).await {
                Ok(keys) if keys.iter().any(|k| k.key_data() == key.key_data()) => return true,
                Ok(keys) if keys.is_empty() => "the GitHub account has no SSH keys".to_string(),
                Ok(_) => "the key is not one of the account's SSH keys on GitHub".to_string(),
                Err(why) => why.to_string(),
            }
        };
        let fingerprint = key.fingerprint(russh::keys::HashAlg::Sha256);
        // The login is the client's text, not checked yet: escaped, so it cannot forge lines.
        tracing::info!(
            peer = %self.peer,
            login = %user.escape_debug(),
            key = %fingerprint,
            reason = %refusal,
            "refused a login"
        );
        false
    }

    /// Registers `target` in a forward slot and returns the login, or says why not.
    fn take_forward_slot(&mut self, target: &ForwardTarget) -> Option<String> {
        let login = self.login.clone()?;
        if self.forwards.len() >= MAX_FORWARDS_PER_SESSION {
            tracing::info!(%login, session = %self.session_id, "refused a forward: {MAX_FORWARDS_PER_SESSION} per session");
            return None;
        }
        if !self.forwards.insert(target.clone()) {
            tracing::info!(%login, session = %self.session_id, %target, "refused a forward registered already");
            return None;
        }
        Some(login)
    }
}

/// The first port number given out for `-R NAME:0:…`; any number would do, as none is bound.
const FIRST_ASSIGNED_PORT: u32 = 40_000;

impl russh::server::Handler for ConnectionHandler {
    type Error = russh::Error;

    async fn auth_publickey_offered(
        &mut self,
        user: &str,
        offer: PublicKeyOffer<'_>,
    ) -> Result<Auth, Self::Error> {
        Ok(if self.key_allowed(user, offer.public_key).await {
            Auth::Accept
        } else {
            Auth::reject()
        })
    }

    async fn auth_publickey(
        &mut self,
        user: &str,
        key: VerifiedPublicKey<'_>,
    ) -> Result<Auth, Self::Error> {
        if !self.key_allowed(user, key.public_key).await {
            return Ok(Auth::reject());
        }
        if self.gateway.session_count(user) >= MAX_SESSIONS_PER_USER {
            tracing::info!(login = %user, "refused a login: {MAX_SESSIONS_PER_USER} sessions already");
            return Ok(Auth::reject());
        }
        if let Err(e) = self.gateway.store().record_login(user).await {
            tracing::error!(login = %user, error = %e, "recording a login failed; refusing it");
            return Ok(Auth::reject());
        }
        self.login = Some(user.to_string());
        Ok(Auth::Accept)
    }

    async fn auth_succeeded(&mut self, session: &mut Session) -> Result<(), Self::Error> {
        let login = self.login.clone().unwrap_or_default();
        self.authenticated.store(true, Ordering::SeqCst);
        self.unauthenticated = None;
        self.gateway.session_started(&self.session_id, &login, session.handle());
        tracing::info!(%login, peer = %self.peer, session = %self.session_id, "logged in");
        Ok(())
    }

    async fn channel_open_session(
        &mut self,
        channel: Channel<Msg>,
        reply: ChannelOpenHandle,
        _: &mut Session,
    ) -> Result<(), Self::Error> {
        if self.channels.len() >= MAX_CHANNELS_PER_SESSION {
            reply.reject(ChannelOpenFailure::ResourceShortage).await;
            return Ok(());
        }
        self.channels.insert(channel.id(), channel);
        reply.accept().await;
        Ok(())
    }

    async fn channel_close(
        &mut self,
        channel: ChannelId,
        _: &mut Session,
    ) -> Result<(), Self::Error> {
        self.channels.remove(&channel);
        Ok(())
    }

    async fn channel_open_direct_tcpip(
        &mut self,
        _: Channel<Msg>,
        host: &str,
        port: u32,
        _: &str,
        _: u32,
        reply: ChannelOpenHandle,
        _: &mut Session,
    ) -> Result<(), Self::Error> {
        tracing::info!(login = %self.login_text(), host = %host.escape_debug(), port, "refused a -L forward into the server's network");
        reply.reject(ChannelOpenFailure::AdministrativelyProhibited).await;
        Ok(())
    }

    async fn channel_open_direct_streamlocal(
        &mut self,
        _: Channel<Msg>,
        _: &str,
        reply: ChannelOpenHandle,
        _: &mut Session,
    ) -> Result<(), Self::Error> {
        reply.reject(ChannelOpenFailure::AdministrativelyProhibited).await;
        Ok(())
    }

    async fn channel_open_x11(
        &mut self,
        _: Channel<Msg>,
        _: &str,
        _: u32,
        reply: ChannelOpenHandle,
        _: &mut Session,
    ) -> Result<(), Self::Error> {
        reply.reject(ChannelOpenFailure::AdministrativelyProhibited).await;
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    async fn pty_request(
        &mut self,
        channel: ChannelId,
        _: &str,
        _: u32,
        _: u32,
        _: u32,
        _: u32,
        _: &[(russh::Pty, u32)],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        // Accepted so that a plain `ssh` prints no error; it changes only how lines end.
        self.pty = true;
        session.channel_success(channel)
    }

    async fn x11_request(
        &mut self,
        channel: ChannelId,
        _: bool,
        _: &str,
        _: &str,
        _: u32,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_failure(channel)
    }

    /// Without forwards, a shell is `status`. With them (`ssh -R …` without `-N`), the
    /// channel stays open and says when each runner is registered; Ctrl-C or Ctrl-D ends it.
    async fn shell_request(
        &mut self,
        channel: ChannelId,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        if self.forwards.is_empty() {
            session.channel_success(channel)?;
            self.start_command(channel, Command::Greeting);
            return Ok(());
        }
        // Written through the session's handle from now on; nothing reads its input but `data`.
        self.channels.remove(&channel);
        session.channel_success(channel)?;
        self.shell = Some(channel);
        let shell = Shell { channel, pty: self.pty };
        for name in self.gateway.shell_opened(&self.session_id, shell) {
            session.data(channel, shell.line(&forward::registered_line(&name)))?;
        }
        Ok(())
    }

    async fn data(
        &mut self,
        channel: ChannelId,
        data: &[u8],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        // Ctrl-C or Ctrl-D typed into the open session (its terminal is raw) ends it. OpenSSH
        // exits once every channel is closed, the runners' own included: they go first.
        if self.shell == Some(channel) && data.iter().any(|b| matches!(b, 0x03 | 0x04)) {
            self.shell = None;
            self.gateway.drop_runners_of_session(&self.session_id).await;
            session.exit_status_request(channel, 0)?;
            session.eof(channel)?;
            session.close(channel)?;
        }
        Ok(())
    }

    async fn subsystem_request(
        &mut self,
        channel: ChannelId,
        name: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        refuse_command(channel, session, &format!("this server has no subsystem {name:?}"))
    }

    async fn exec_request(
        &mut self,
        channel: ChannelId,
        data: &[u8],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_success(channel)?;
        match ssh_command::parse(data) {
            Ok(command) => self.start_command(channel, command),
            Err(refused) => {
                if let Some(open) = self.channels.remove(&channel) {
                    commands::refuse(data, &refused, open, self.pty, self.login_text());
                }
            }
        }
        Ok(())
    }

    async fn tcpip_forward(
        &mut self,
        address: &str,
        port: &mut u32,
        session: &mut Session,
    ) -> Result<bool, Self::Error> {
        let assigned = if *port == 0 { self.next_port } else { *port };
        let target = ForwardTarget::Tcp { address: address.to_string(), port: assigned };
        let Some(login) = self.take_forward_slot(&target) else { return Ok(false) };
        if *port == 0 {
            *port = assigned;
            self.next_port += 1;
        }
        forward::spawn_registration(
            self.gateway.clone(),
            session.handle(),
            self.session_id.clone(),
            login,
            target,
        );
        Ok(true)
    }

    async fn streamlocal_forward(
        &mut self,
        socket_path: &str,
        session: &mut Session,
    ) -> Result<bool, Self::Error> {
        let target = ForwardTarget::Streamlocal { path: socket_path.to_string() };
        if target.name_hint().is_none() {
            tracing::info!(login = %self.login_text(), socket_path = %socket_path.escape_debug(), "refused a forward whose path names no runner");
            return Ok(false);
        }
        let Some(login) = self.take_forward_slot(&target) else { return Ok(false) };
        forward::spawn_registration(
            self.gateway.clone(),
            session.handle(),
            self.session_id.clone(),
            login,
            target,
        );
        Ok(true)
    }

    async fn cancel_tcpip_forward(
        &mut self,
        address: &str,
        port: u32,
        _: &mut Session,
    ) -> Result<bool, Self::Error> {
        let target = ForwardTarget::Tcp { address: address.to_string(), port };
        self.cancel(target).await
    }

    async fn cancel_streamlocal_forward(
        &mut self,
        socket_path: &str,
        _: &mut Session,
    ) -> Result<bool, Self::Error> {
        self.cancel(ForwardTarget::Streamlocal { path: socket_path.to_string() }).await
    }
}

impl ConnectionHandler {
    /// Answers `command` on `channel` in a task of its own.
    fn start_command(&mut self, channel: ChannelId, command: Command) {
        let Some(open) = self.channels.remove(&channel) else { return };
        let login = self.login.clone().unwrap_or_default();
        commands::spawn(self.gateway.clone(), login, command, open, self.pty);
    }

    /// Cancels a forward this session registered; any other is refused, and frees no slot.
    async fn cancel(&mut self, target: ForwardTarget) -> Result<bool, russh::Error> {
        let Some(login) = self.login.clone() else { return Ok(false) };
        if !self.forwards.remove(&target) {
            tracing::info!(%login, session = %self.session_id, %target, "refused to cancel a forward never registered");
            return Ok(false);
        }
        forward::cancel(&self.gateway, &login, &self.session_id, &target).await;
        Ok(true)
    }
}

/// Says why on stderr, fails the request and closes the channel.
fn refuse_command(
    channel: ChannelId,
    session: &mut Session,
    why: &str,
) -> Result<(), russh::Error> {
    let text =
        format!("tether: {why}; try `status`, or connect a runner with `ssh -R /NAME:SOCKET …`\n");
    session.channel_failure(channel)?;
    session.extended_data(channel, 1, text.into_bytes())?;
    session.exit_status_request(channel, 1)?;
    session.eof(channel)?;
    session.close(channel)
}
