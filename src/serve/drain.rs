//! Graceful shutdown of the connections being served. [`Drain::watch`] wraps a connection; once
//! [`Drain::start`] is called, every connection is told to finish the request it is answering and
//! close (hyper's `graceful_shutdown`), and [`Drain::done`] waits until they all have.
//!
//! A connection polled while nothing happens costs one relaxed atomic load: no channel, no
//! `Notify` registration per poll. Each connection's waker is kept once (again only should its
//! task's waker change), so `start` can wake them all.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

/// A connection that can be told to finish its request and close.
pub(crate) trait Graceful: Future {
    fn graceful_shutdown(self: Pin<&mut Self>);
}

impl<I, S, B> Graceful for hyper::server::conn::http1::Connection<I, S>
where
    S: hyper::service::HttpService<hyper::body::Incoming, ResBody = B>,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    I: hyper::rt::Read + hyper::rt::Write + Unpin,
    B: hyper::body::Body + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    fn graceful_shutdown(self: Pin<&mut Self>) {
        hyper::server::conn::http1::Connection::graceful_shutdown(self);
    }
}

impl<I, S, B, E> Graceful for hyper::server::conn::http2::Connection<I, S, E>
where
    S: hyper::service::HttpService<hyper::body::Incoming, ResBody = B>,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    I: hyper::rt::Read + hyper::rt::Write + Unpin,
    B: hyper::body::Body + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    E: hyper::rt::bounds::Http2ServerConnExec<S::Future, B>,
{
    fn graceful_shutdown(self: Pin<&mut Self>) {
        hyper::server::conn::http2::Connection::graceful_shutdown(self);
    }
}

#[derive(Default)]
pub(crate) struct Drain {
    draining: AtomicBool,
    /// Connections not yet finished.
    open: AtomicUsize,
    /// The waker of each connection's task, by slot (`None`: a free slot).
    wakers: Mutex<Vec<Option<Waker>>>,
    /// Woken when the last connection finishes during a drain.
    finished: tokio::sync::Notify,
}

impl Drain {
    /// A connection begins: [`Drain::done`] waits for it from now on, before hyper even has it.
    pub(crate) fn enter(self: &Arc<Self>) -> Entry {
        self.open.fetch_add(1, Ordering::AcqRel);
        Entry { drain: self.clone() }
    }

    /// Tells every connection, now and to come, to finish its request and close.
    pub(crate) fn start(&self) {
        self.draining.store(true, Ordering::Release);
        let wakers = self.wakers.lock().unwrap_or_else(|e| e.into_inner());
        for w in wakers.iter().flatten() {
            w.wake_by_ref();
        }
    }

    /// Waits until every connection has finished (call after [`Drain::start`]).
    pub(crate) async fn done(&self) {
        loop {
            let finished = self.finished.notified();
            if self.open.load(Ordering::Acquire) == 0 {
                return;
            }
            finished.await;
        }
    }

    fn keep(&self, slot: Option<usize>, waker: &Waker) -> usize {
        let mut wakers = self.wakers.lock().unwrap_or_else(|e| e.into_inner());
        match slot {
            Some(i) => {
                if let Some(w) = wakers.get_mut(i) {
                    *w = Some(waker.clone());
                }
                i
            }
            None => match wakers.iter_mut().enumerate().find(|(_, w)| w.is_none()) {
                Some((i, free)) => {
                    *free = Some(waker.clone());
                    i
                }
                None => {
                    wakers.push(Some(waker.clone()));
                    wakers.len() - 1
                }
            },
        }
    }
}

/// A connection [`Drain::done`] waits for.
pub(crate) struct Entry {
    drain: Arc<Drain>,
}

impl Entry {
    /// `conn`, told to finish and close once the drain starts.
    pub(crate) fn watch<C: Graceful>(self, conn: C) -> Watched<C> {
        Watched { conn: Box::pin(conn), entry: self, slot: None, waker: None, told: false }
    }
}

impl Drop for Entry {
    fn drop(&mut self) {
        if self.drain.open.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.drain.finished.notify_waiters();
        }
    }
}

/// A connection under a [`Drain`].
pub(crate) struct Watched<C> {
    /// Boxed once per connection, so `Watched` itself is `Unpin`.
    conn: Pin<Box<C>>,
    entry: Entry,
    /// Where its waker is kept in the drain.
    slot: Option<usize>,
    /// The waker kept, to see whether the task's waker changed.
    waker: Option<Waker>,
    told: bool,
}

impl<C: Graceful> Future for Watched<C> {
    type Output = C::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<C::Output> {
        let this = self.get_mut();
        let drain = &this.entry.drain;
        if !this.told {
            if drain.draining.load(Ordering::Acquire) {
                this.told = true;
                this.conn.as_mut().graceful_shutdown();
            } else if !this.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                this.slot = Some(drain.keep(this.slot, cx.waker()));
                this.waker = Some(cx.waker().clone());
                // A drain that started while the waker was being kept has woken the old one (or
                // none): look again.
                if drain.draining.load(Ordering::Acquire) {
                    this.told = true;
                    this.conn.as_mut().graceful_shutdown();
                }
            }
        }
        this.conn.as_mut().poll(cx)
    }
}

impl<C> Drop for Watched<C> {
    fn drop(&mut self) {
        if let Some(i) = self.slot {
            let mut wakers = self.entry.drain.wakers.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(w) = wakers.get_mut(i) {
                *w = None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    /// A connection that ends only after being told to.
    struct Conn {
        told: Arc<AtomicUsize>,
        polls: Arc<AtomicUsize>,
    }

    impl Future for Conn {
        type Output = ();
        fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
            self.polls.fetch_add(1, Ordering::Relaxed);
            if self.told.load(Ordering::Relaxed) > 0 {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        }
    }

    impl Graceful for Conn {
        fn graceful_shutdown(self: Pin<&mut Self>) {
            self.told.fetch_add(1, Ordering::Relaxed);
        }
    }

    #[tokio::test]
    async fn every_connection_is_told_once_and_done_waits_for_the_last() {
        let drain = Arc::new(Drain::default());
        let told = Arc::new(AtomicUsize::new(0));
        let polls = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..50)
            .map(|_| tokio::spawn(drain.enter().watch(Conn { told: told.clone(), polls: polls.clone() })))
            .collect();
        tokio::task::yield_now().await;
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        assert_eq!(told.load(Ordering::Relaxed), 0);
        // Not started: `done` would wait.
        assert!(tokio::time::timeout(std::time::Duration::from_millis(20), drain.done()).await.is_err());
        drain.start();
        tokio::time::timeout(std::time::Duration::from_secs(5), drain.done()).await.expect("drained");
        assert_eq!(told.load(Ordering::Relaxed), 50);
        for t in tasks {
            t.await.expect("task");
        }
        // A connection watched after the start is told at its first poll.
        let late = Arc::new(AtomicUsize::new(0));
        drain.enter().watch(Conn { told: late.clone(), polls: polls.clone() }).await;
        assert_eq!(late.load(Ordering::Relaxed), 1);
        assert!(drain.wakers.lock().expect("lock").iter().all(Option::is_none));
    }

    #[tokio::test]
    async fn done_returns_at_once_without_connections() {
        let drain = Drain::default();
        drain.start();
        tokio::time::timeout(std::time::Duration::from_secs(1), drain.done())
            .await
            .expect("nothing to wait for");
    }
}
