//! A connection whose writes give up when the client stops reading ([`WriteTimeout`]).
//!
//! hyper has a timeout for reading a request's head but none for writing a response: a client
//! that asks for a 70 MB page and never reads would hold its connection, and the page, for ever.
//! A write that makes no progress for the timeout fails with `TimedOut`, which ends the
//! connection. It is a stall timeout, not a deadline for the whole response: a slow link that
//! keeps taking bytes is not cut off.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

/// `io` whose writes, flushes and shutdown fail once stalled for `timeout`.
pub(super) struct WriteTimeout<I> {
    io: I,
    timeout: Duration,
    /// Armed when a write could not proceed; disarmed by any progress.
    stalled: Option<Pin<Box<Sleep>>>,
}

impl<I> WriteTimeout<I> {
    pub(super) fn new(io: I, timeout: Duration) -> WriteTimeout<I> {
        WriteTimeout {
            io,
            timeout,
            stalled: None,
        }
    }

    /// `poll` as it is, after arming (or checking) the stall timer when it is pending.
    fn watch<T>(&mut self, cx: &mut Context<'_>, poll: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        if poll.is_ready() {
            self.stalled = None;
            return poll;
        }
        let timeout = self.timeout;
        let stalled = self
            .stalled
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        match stalled.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the client read nothing of the response within the write timeout",
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for WriteTimeout<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for WriteTimeout<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.io).poll_write(cx, buf);
        self.watch(cx, poll)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        self.watch(cx, poll)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let poll = Pin::new(&mut self.io).poll_flush(cx);
        self.watch(cx, poll)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let poll = Pin::new(&mut self.io).poll_shutdown(cx);
        self.watch(cx, poll)
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    #[tokio::test]
    async fn a_write_the_peer_does_not_read_fails_after_the_timeout_and_one_it_reads_does_not() {
        let (near, mut far) = tokio::io::duplex(1024);
        let mut near = WriteTimeout::new(near, Duration::from_millis(100));
        // The peer reads: 64 KiB through a 1 KiB pipe, no error however long it takes.
        let reader = tokio::spawn(async move {
            let mut got = vec![0u8; 64 * 1024];
            far.read_exact(&mut got).await.map(|_| far)
        });
        near.write_all(&[7u8; 64 * 1024])
            .await
            .expect("read by the peer");
        let _far = reader.await.expect("task").expect("read");
        // The peer stops reading: the pipe fills, then the write fails.
        let error = tokio::time::timeout(Duration::from_secs(10), near.write_all(&[7u8; 4096]))
            .await
            .expect("the write gave up")
            .expect_err("timed out");
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
    }
}
