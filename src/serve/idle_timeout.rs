//! A connection's socket with an idle limit. When neither a read nor a write has made progress
//! for the limit, the next read fails with `TimedOut` and hyper closes the connection. This is
//! what frees a connection that was opened and then never used (HTTP/1.1's header timeout only
//! starts with the first byte of a head, and HTTP/2 has no such timeout at all).
//!
//! With [`Activity`] (what the server passes), a connection is also idle when no request has been
//! in flight for the limit, whatever bytes it sends: an HTTP/2 connection that only sends PING
//! frames is closed like a silent one.
//!
//! Progress only stores an `Instant`; the timer is re-armed only when it fires early, so a busy
//! connection costs no timer work per read.

use std::future::Future as _;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

pub struct Idle<S> {
    io: S,
    limit: Duration,
    last: Instant,
    timer: Pin<Box<Sleep>>,
    activity: Option<std::sync::Arc<Activity>>,
}

/// The requests of one connection, as its service sees them.
#[derive(Debug)]
pub struct Activity {
    epoch: Instant,
    in_flight: std::sync::atomic::AtomicUsize,
    /// When a request last started or ended, in milliseconds since `epoch`.
    last_ms: std::sync::atomic::AtomicU64,
}

impl Default for Activity {
    fn default() -> Self {
        Activity {
            epoch: Instant::now(),
            in_flight: std::sync::atomic::AtomicUsize::new(0),
            last_ms: std::sync::atomic::AtomicU64::new(0),
        }
    }
}

impl Activity {
    fn touch(&self) {
        let ms = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(ms, std::sync::atomic::Ordering::Relaxed);
    }

    /// A request starts (while one is in flight the connection is not idle: no clock read needed).
    pub fn start(&self) {
        self.in_flight.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// A request's answer is ready.
    pub fn end(&self) {
        self.in_flight.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        self.touch();
    }

    /// When the connection last had a request, or `None` while one is in flight.
    fn quiet_since(&self) -> Option<Instant> {
        if self.in_flight.load(std::sync::atomic::Ordering::Relaxed) > 0 {
            return None;
        }
        Some(self.epoch + Duration::from_millis(self.last_ms.load(std::sync::atomic::Ordering::Relaxed)))
    }
}

impl<S> Idle<S> {
    pub fn new(io: S, limit: Duration) -> Self {
        let now = Instant::now();
        Idle { io, limit, last: now, timer: Box::pin(tokio::time::sleep_until(now + limit)), activity: None }
    }

    /// Also idle when no request has been in flight for the limit, whatever bytes arrive.
    pub fn with_activity(io: S, limit: Duration, activity: std::sync::Arc<Activity>) -> Self {
        Idle { activity: Some(activity), ..Idle::new(io, limit) }
    }

    /// `Ready` once the connection has been idle for the limit.
    fn expired(&mut self, cx: &mut Context<'_>) -> bool {
        while self.timer.as_mut().poll(cx).is_ready() {
            let quiet = self.activity.as_ref().and_then(|a| a.quiet_since());
            let since = match quiet {
                Some(q) => q.min(self.last),
                None => self.last,
            };
            let deadline = since + self.limit;
            if deadline <= Instant::now() {
                return true;
            }
            // There was progress since the timer was armed: wait for the rest of the limit.
            self.timer.as_mut().reset(deadline);
        }
        false
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Idle<S> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match Pin::new(&mut this.io).poll_read(cx, buf) {
            Poll::Ready(r) => {
                this.last = Instant::now();
                Poll::Ready(r)
            }
            Poll::Pending if this.expired(cx) => {
                Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, "connection idle")))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Idle<S> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.io).poll_write(cx, buf);
        if r.is_ready() {
            this.last = Instant::now();
        }
        r
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.io).poll_write_vectored(cx, bufs);
        if r.is_ready() {
            this.last = Instant::now();
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test(start_paused = true)]
    async fn an_unused_connection_times_out_and_a_busy_one_does_not() {
        let (a, mut b) = tokio::io::duplex(64);
        let mut idle = Idle::new(a, Duration::from_secs(10));
        let mut buf = [0u8; 8];
        // Bytes every 6 s keep it alive well past the 10 s limit.
        for _ in 0..4 {
            tokio::time::sleep(Duration::from_secs(6)).await;
            b.write_all(b"x").await.expect("write");
            assert_eq!(idle.read(&mut buf).await.expect("read"), 1);
        }
        // Then nothing: the read fails once 10 s have passed since the last byte.
        let started = Instant::now();
        let err = idle.read(&mut buf).await.expect_err("idle");
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert_eq!(started.elapsed(), Duration::from_secs(10));
    }

    #[tokio::test(start_paused = true)]
    async fn bytes_without_requests_do_not_keep_a_served_connection_open() {
        let (a, mut b) = tokio::io::duplex(64);
        let activity = std::sync::Arc::new(Activity::default());
        let mut idle = Idle::with_activity(a, Duration::from_secs(10), activity.clone());
        let mut buf = [0u8; 8];
        let started = Instant::now();
        // PING-like bytes every 3 s, no request: closed 10 s after the connection began.
        let err = loop {
            tokio::time::sleep(Duration::from_secs(3)).await;
            b.write_all(b"p").await.expect("write");
            assert_eq!(idle.read(&mut buf).await.expect("read"), 1);
            // Waiting for more, as hyper does, is when the limit is looked at.
            if let Ok(Err(e)) = tokio::time::timeout(Duration::from_millis(1), idle.read(&mut buf)).await {
                break e;
            }
            assert!(started.elapsed() < Duration::from_secs(30), "never closed");
        };
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert!(started.elapsed() <= Duration::from_secs(13), "{:?}", started.elapsed());
        // A request in flight keeps it open as long as bytes move.
        let (a, mut b) = tokio::io::duplex(64);
        let activity = std::sync::Arc::new(Activity::default());
        activity.start();
        let mut idle = Idle::with_activity(a, Duration::from_secs(10), activity);
        for _ in 0..6 {
            tokio::time::sleep(Duration::from_secs(6)).await;
            b.write_all(b"x").await.expect("write");
            assert_eq!(idle.read(&mut buf).await.expect("read"), 1);
        }
    }
}
