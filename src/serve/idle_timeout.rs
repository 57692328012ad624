//! A connection's socket with an idle limit. When neither a read nor a write has made progress
//! for the limit, the next read fails with `TimedOut` and hyper closes the connection. This is
//! what frees a connection that was opened and then never used (HTTP/1.1's header timeout only
//! starts with the first byte of a head, and HTTP/2 has no such timeout at all).
//!
//! With [`Activity`] (what the server passes), a connection is also idle when no request has been
//! in flight for the limit, whatever bytes it sends: an HTTP/2 connection that only sends PING
//! frames is closed like a silent one.
//!
//! With [`Idle::with_header_timeout`], an HTTP/1 request head must also arrive whole within its
//! limit from its first byte (a slowloris client sending a byte a second is cut): the one timer
//! of the connection serves both limits, instead of a timer made for every request.
//!
//! Progress reads no clock: a read or a write only counts, and so does a request's start and end.
//! The one timer of the connection looks at the counts when it fires: when they moved, the
//! connection was busy within the last quarter of the limit, and the timer looks again a quarter
//! later; when they did not, it waits for the rest of the limit. So a connection is closed
//! between the limit and 1.25 times it after its last progress, and a busy connection costs no
//! clock read and no timer work per request. A head's deadline is exact: when a read finds no
//! more bytes while a head is still incomplete, the clock is read once and the timer set to it;
//! a head that arrives whole (most do, in one read) costs neither. Nor is the timer polled again
//! on every read that waits: only when it fired, was reset, or the task polling it changed.

use std::future::Future as _;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

pub(crate) struct Idle<S> {
    io: S,
    limit: Duration,
    /// When progress was last seen (by the timer, or at the start).
    last: Instant,
    /// Reads and writes done, and as many when the timer last looked.
    progress: u64,
    seen: u64,
    /// When a request last started or ended, as the timer saw it, and the count of those events.
    last_event: Instant,
    seen_events: u64,
    timer: Pin<Box<Sleep>>,
    /// The waker the timer last registered (`None`: poll it at the next wait).
    polled: Option<std::task::Waker>,
    activity: Option<std::sync::Arc<Activity>>,
    head: Option<Head>,
}

/// The deadline of the HTTP/1 request head being read.
struct Head {
    limit: Duration,
    state: HeadState,
    /// Nothing read yet: an HTTP/2 connection (its preface) has no heads to time.
    first: bool,
}

/// Where the connection is between heads. `seen`: the requests started when a head began (one
/// more means it was read whole).
#[derive(Clone, Copy)]
enum HeadState {
    /// No head being read.
    Between,
    /// A head's first bytes were read; its clock starts if a read waits before it is whole.
    Began { seen: u64 },
    /// A head is being read since `from`.
    Timed { from: Instant, seen: u64 },
}

/// The requests of one connection, as its service sees them: one atomic add when a request
/// starts, one when it ends (in flight: the difference).
#[derive(Debug, Default)]
pub(crate) struct Activity {
    /// Requests started so far.
    started: std::sync::atomic::AtomicU64,
    /// Requests ended so far.
    ended: std::sync::atomic::AtomicU64,
}

impl Activity {
    /// A request starts (while one is in flight the connection is not idle: no clock read needed).
    pub(crate) fn start(&self) {
        self.started.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    fn started(&self) -> u64 {
        self.started.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// A request's answer is ready.
    pub(crate) fn end(&self) {
        self.ended.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// Requests started and ended so far.
    fn events(&self) -> u64 {
        self.started().wrapping_add(self.ended.load(std::sync::atomic::Ordering::Relaxed))
    }

    fn in_flight(&self) -> bool {
        // `ended` first: read the other way, a request ending between the two reads would look
        // like more ended than started.
        let ended = self.ended.load(std::sync::atomic::Ordering::Relaxed);
        self.started() != ended
    }
}

impl<S> Idle<S> {
    pub(crate) fn new(io: S, limit: Duration) -> Self {
        let now = Instant::now();
        let timer = Box::pin(tokio::time::sleep_until(now + limit));
        Idle {
            io,
            limit,
            last: now,
            progress: 0,
            seen: 0,
            last_event: now,
            seen_events: 0,
            timer,
            polled: None,
            activity: None,
            head: None,
        }
    }

    /// An HTTP/1 request head must also arrive within `limit` of its first byte (needs the
    /// connection's [`Activity`], which tells when a head was read whole).
    pub(crate) fn with_header_timeout(self, limit: Duration) -> Self {
        let head = self.activity.as_ref().map(|_| Head { limit, state: HeadState::Between, first: true });
        Idle { head, ..self }
    }

    /// Bytes arrived: a new head may begin (between requests), or the one being read is done.
    fn arrived(&mut self, bytes: &[u8]) {
        let (Some(head), Some(activity)) = (&mut self.head, &self.activity) else { return };
        if head.first {
            head.first = false;
            if bytes.starts_with(b"PRI * HTTP/2.0") {
                self.head = None;
                return;
            }
        }
        let started = activity.started();
        if let HeadState::Began { seen } | HeadState::Timed { seen, .. } = head.state {
            if seen != started {
                head.state = HeadState::Between;
            }
        }
        if matches!(head.state, HeadState::Between) && !activity.in_flight() {
            head.state = HeadState::Began { seen: started };
        }
    }

    /// A read waits: a head begun and still incomplete starts its clock now.
    fn time_head(&mut self) {
        let (Some(head), Some(activity)) = (&mut self.head, &self.activity) else { return };
        let HeadState::Began { seen } = head.state else { return };
        if activity.started() != seen {
            head.state = HeadState::Between;
            return;
        }
        let now = Instant::now();
        head.state = HeadState::Timed { from: now, seen };
        let deadline = now + head.limit;
        if self.timer.deadline() > deadline {
            self.timer.as_mut().reset(deadline);
            self.polled = None;
        }
    }

    /// When the head being read must be whole, if one is being read.
    fn head_deadline(&self) -> Option<Instant> {
        let (head, activity) = (self.head.as_ref()?, self.activity.as_ref()?);
        let HeadState::Timed { from, seen } = head.state else { return None };
        (activity.started() == seen).then_some(from + head.limit)
    }

    /// Also idle when no request has been in flight for the limit, whatever bytes arrive.
    pub(crate) fn with_activity(io: S, limit: Duration, activity: std::sync::Arc<Activity>) -> Self {
        Idle { activity: Some(activity), ..Idle::new(io, limit) }
    }

    /// `true` once the connection has been idle for the limit (or a head took too long).
    fn expired(&mut self, cx: &mut Context<'_>) -> bool {
        self.time_head();
        // The timer has this task's waker and has not fired: nothing to look at.
        if !self.timer.is_elapsed() && self.polled.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            return false;
        }
        self.polled = Some(cx.waker().clone());
        while self.timer.as_mut().poll(cx).is_ready() {
            let now = Instant::now();
            let mut busy = false;
            if self.progress != self.seen {
                (self.seen, self.last, busy) = (self.progress, now, true);
            }
            let mut since = self.last;
            if let Some(activity) = &self.activity {
                let events = activity.events();
                if events != self.seen_events {
                    (self.seen_events, self.last_event, busy) = (events, now, true);
                }
                if !activity.in_flight() {
                    since = since.min(self.last_event);
                }
            }
            let mut deadline = since + self.limit;
            if let Some(head) = self.head_deadline() {
                deadline = deadline.min(head);
            }
            if deadline <= now {
                return true;
            }
            // Busy: look again a quarter of the limit later; else when the limit is reached.
            let next = if busy { deadline.min(now + self.limit / 4) } else { deadline };
            self.timer.as_mut().reset(next);
        }
        false
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Idle<S> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.io).poll_read(cx, buf) {
            Poll::Ready(r) => {
                this.progress = this.progress.wrapping_add(1);
                if this.head.is_some() {
                    if let Some(read) = buf.filled().get(before..).filter(|b| !b.is_empty()) {
                        this.arrived(read);
                    }
                }
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
            this.progress = this.progress.wrapping_add(1);
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
            this.progress = this.progress.wrapping_add(1);
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
    async fn a_head_must_arrive_within_the_header_timeout_of_its_first_byte() {
        let (a, mut b) = tokio::io::duplex(64);
        let activity = std::sync::Arc::new(Activity::default());
        let mut idle = Idle::with_activity(a, Duration::from_secs(60), activity.clone())
            .with_header_timeout(Duration::from_secs(3));
        let mut buf = [0u8; 8];
        // A byte a second: the idle limit never passes, the head's does.
        let started = Instant::now();
        let err = loop {
            b.write_all(b"x").await.expect("write");
            assert_eq!(idle.read(&mut buf).await.expect("read"), 1);
            if let Ok(Err(e)) = tokio::time::timeout(Duration::from_secs(1), idle.read(&mut buf)).await {
                break e;
            }
            assert!(started.elapsed() < Duration::from_secs(10), "never cut");
        };
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert!(started.elapsed() <= Duration::from_secs(4), "{:?}", started.elapsed());

        // A head read whole (its request started) is not cut; the next one has its own limit.
        let (a, mut b) = tokio::io::duplex(64);
        let activity = std::sync::Arc::new(Activity::default());
        let mut idle = Idle::with_activity(a, Duration::from_secs(60), activity.clone())
            .with_header_timeout(Duration::from_secs(3));
        b.write_all(b"GET /").await.expect("write");
        assert_eq!(idle.read(&mut buf).await.expect("read"), 5);
        activity.start();
        tokio::time::sleep(Duration::from_secs(5)).await;
        b.write_all(b"body").await.expect("write");
        assert_eq!(idle.read(&mut buf).await.expect("read"), 4, "a request in flight is not a head");
        activity.end();
        tokio::time::sleep(Duration::from_secs(20)).await;
        b.write_all(b"GET /").await.expect("write");
        assert_eq!(idle.read(&mut buf).await.expect("read"), 5);
        let next = Instant::now();
        let err = idle.read(&mut buf).await.expect_err("the second head is cut too");
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert_eq!(next.elapsed(), Duration::from_secs(3));

        // HTTP/2 has no heads to time: only the idle limit applies.
        let (a, mut b) = tokio::io::duplex(64);
        let activity = std::sync::Arc::new(Activity::default());
        let mut idle = Idle::with_activity(a, Duration::from_secs(60), activity)
            .with_header_timeout(Duration::from_secs(3));
        let mut preface = [0u8; 24];
        b.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").await.expect("write");
        assert_eq!(idle.read(&mut preface).await.expect("read"), 24);
        assert!(
            tokio::time::timeout(Duration::from_secs(10), idle.read(&mut buf)).await.is_err(),
            "not cut at 3 s"
        );
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
