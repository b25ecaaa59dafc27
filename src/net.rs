//! What the SSH and HTTP servers share about sockets: the open files limit, accepting with a
//! backoff instead of a spin when accepting fails, a warning when a cap turns connections away,
//! and a connection that fails its I/O once a deadline has passed.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Sleep;

use crate::core::limits::AcceptBackoff;

/// How often at most a cap says that it turns connections away.
const OVER_CAP_WARNING_INTERVAL: Duration = Duration::from_secs(60);

/// Raises the soft open files limit to the hard one, as a server holding many connections
/// needs; returns the soft limit in force afterwards (the old one, with a warning, if the
/// system refuses: an unlimited hard limit, say).
pub fn raise_file_limit() -> io::Result<u64> {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).map_err(io::Error::from)?;
    if soft >= hard {
        return Ok(soft);
    }
    match setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
        Ok(()) => Ok(hard),
        Err(e) => {
            tracing::warn!(error = %e, soft, hard, "cannot raise the open files limit; keeping it");
            Ok(soft)
        }
    }
}

/// The next connection on `listener`. While accepting fails (out of files, mostly) it pauses
/// as `backoff` says, with one log line per pause, instead of trying again at once: a retry
/// loop that never waits spins a core and fills the disk with the same line.
pub async fn accept(
    listener: &TcpListener,
    backoff: &mut AcceptBackoff,
    what: &'static str,
) -> (TcpStream, SocketAddr) {
    loop {
        match listener.accept().await {
            Ok(accepted) => {
                backoff.succeeded();
                return accepted;
            }
            Err(e) => {
                let pause = backoff.failed();
                tracing::warn!(
                    error = %e,
                    pause_ms = pause.as_millis() as u64,
                    "accepting an {what} connection failed; pausing before accepting again"
                );
                tokio::time::sleep(pause).await;
            }
        }
    }
}

/// Counts the connections a cap turned away, and says so at most once a minute.
pub struct OverCap {
    what: &'static str,
    cap: usize,
    refused: AtomicU64,
    last_warning: std::sync::Mutex<Option<Instant>>,
}

impl OverCap {
    pub fn new(what: &'static str, cap: usize) -> OverCap {
        OverCap { what, cap, refused: AtomicU64::new(0), last_warning: Default::default() }
    }

    /// Records one connection turned away.
    pub fn refused(&self, peer: SocketAddr) {
        let refused = self.refused.fetch_add(1, Ordering::Relaxed) + 1;
        let mut last = self.last_warning.lock().expect("over-cap lock poisoned");
        if last.is_none_or(|at| at.elapsed() >= OVER_CAP_WARNING_INTERVAL) {
            *last = Some(Instant::now());
            let (what, cap) = (self.what, self.cap);
            tracing::warn!(%peer, refused, "{cap} {what} connections held already: closing new ones");
        }
    }
}

/// A connection whose reads and writes fail with `TimedOut` once `deadline` has passed, unless
/// it was disarmed first: the whole of a phase (an SSH login, from the first byte) is bounded,
/// whatever the protocol code above it waits for.
pub struct Deadline<S> {
    inner: S,
    /// `None` once disarmed.
    timer: Option<Pin<Box<Sleep>>>,
    disarmed: Arc<AtomicBool>,
}

impl<S> Deadline<S> {
    /// Bounds `inner` by `limit` from now; setting `disarmed` lifts the bound.
    pub fn new(inner: S, limit: Duration, disarmed: Arc<AtomicBool>) -> Deadline<S> {
        Deadline { inner, timer: Some(Box::pin(tokio::time::sleep(limit))), disarmed }
    }

    /// An error if the deadline passed while armed. Polling the timer registers the task's
    /// waker with it, so a connection that waits for a peer that never sends is woken to fail.
    fn check(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        if self.disarmed.load(Ordering::Acquire) {
            self.timer = None;
        }
        match self.timer.as_mut().map(|timer| timer.as_mut().poll(cx)) {
            Some(Poll::Ready(())) => {
                Err(io::Error::new(io::ErrorKind::TimedOut, "deadline passed"))
            }
            _ => Ok(()),
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Deadline<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.check(cx)?;
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Deadline<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.check(cx)?;
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.check(cx)?;
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// A connection whose writes fail with `TimedOut` when the peer has taken nothing for `limit`:
/// a client that stops reading a response gives its connection back instead of holding it.
pub struct WriteStall<S> {
    inner: S,
    limit: Duration,
    /// Running while a write waits for the peer.
    timer: Option<Pin<Box<Sleep>>>,
}

impl<S> WriteStall<S> {
    pub fn new(inner: S, limit: Duration) -> WriteStall<S> {
        WriteStall { inner, limit, timer: None }
    }

    /// Passes on a finished write and stops the timer; while it waits, runs the timer and
    /// fails once it has run out.
    fn bound<T>(&mut self, cx: &mut Context<'_>, poll: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        if poll.is_ready() {
            self.timer = None;
            return poll;
        }
        let limit = self.limit;
        let timer = self.timer.get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the peer stopped reading",
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for WriteStall<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for WriteStall<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.bound(cx, poll)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.bound(cx, poll)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let poll = Pin::new(&mut self.inner).poll_flush(cx);
        self.bound(cx, poll)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test(start_paused = true)]
    async fn an_armed_deadline_fails_a_read_that_waits_and_a_disarmed_one_never_does() {
        let (near, _far) = tokio::io::duplex(64);
        let disarmed = Arc::new(AtomicBool::new(false));
        let mut bounded = Deadline::new(near, Duration::from_secs(30), disarmed);
        let error = bounded.read_u8().await.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);

        let (near, mut far) = tokio::io::duplex(64);
        let disarmed = Arc::new(AtomicBool::new(false));
        let mut bounded = Deadline::new(near, Duration::from_secs(30), disarmed.clone());
        disarmed.store(true, Ordering::Release);
        tokio::time::sleep(Duration::from_secs(60)).await;
        far.write_all(b"x").await.unwrap();
        assert_eq!(bounded.read_u8().await.unwrap(), b'x');
    }

    #[tokio::test(start_paused = true)]
    async fn a_write_fails_once_the_peer_has_taken_nothing_for_the_limit() {
        let (near, mut far) = tokio::io::duplex(16);
        let mut bounded = WriteStall::new(near, Duration::from_secs(60));
        // A slow reader that keeps taking is never cut off.
        let reader = tokio::spawn(async move {
            let mut buf = [0; 16];
            for _ in 0..8 {
                tokio::time::sleep(Duration::from_secs(50)).await;
                far.read_exact(&mut buf).await.unwrap();
            }
            far
        });
        bounded.write_all(&[0; 16 * 8]).await.unwrap();
        let _far = reader.await.unwrap();
        // One that takes nothing is.
        let error = bounded.write_all(&[0; 64]).await.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
    }
}
