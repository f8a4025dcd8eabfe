//! The body of every response: a sequence of byte chunks sent one after another, so a page
//! made of cached parts (text segments, or one gzip member per part) goes out as it is held,
//! never joined into one more copy of the whole (at 40,000 VMs a plain-text page is ~70 MB).
//! A body can also be streamed from a task that makes its chunks as they are sent (the text of
//! a page held gzipped, decompressed chunk by chunk), with a few chunks in flight at most.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};

/// A response body of chunks with a known total length (sent as `Content-Length`).
#[derive(Debug, Default)]
pub struct Chunks {
    chunks: VecDeque<Bytes>,
    left: u64,
    /// The chunks still to come from a task, after `chunks`.
    more: Option<tokio::sync::mpsc::Receiver<Bytes>>,
}

impl Chunks {
    pub fn new(chunks: Vec<Bytes>) -> Chunks {
        let chunks: VecDeque<Bytes> = chunks.into_iter().filter(|c| !c.is_empty()).collect();
        let left = chunks.iter().map(|c| c.len() as u64).sum();
        Chunks {
            chunks,
            left,
            more: None,
        }
    }

    /// A body of the chunks `more` receives, `len` bytes in all (the sender must send exactly
    /// that many: they are announced as `Content-Length`).
    pub fn streamed(more: tokio::sync::mpsc::Receiver<Bytes>, len: u64) -> Chunks {
        Chunks {
            chunks: VecDeque::new(),
            left: len,
            more: Some(more),
        }
    }
}

impl From<Bytes> for Chunks {
    fn from(body: Bytes) -> Chunks {
        Chunks::new(vec![body])
    }
}

impl Body for Chunks {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let next = match self.chunks.pop_front() {
            Some(chunk) => Some(chunk),
            None => match self.more.as_mut().map(|more| more.poll_recv(cx)) {
                Some(Poll::Pending) => return Poll::Pending,
                Some(Poll::Ready(next)) => next,
                None => None,
            },
        };
        if let Some(chunk) = &next {
            self.left = self.left.saturating_sub(chunk.len() as u64);
        }
        Poll::Ready(next.map(|chunk| Ok(Frame::data(chunk))))
    }

    fn is_end_stream(&self) -> bool {
        self.chunks.is_empty() && (self.more.is_none() || self.left == 0)
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.left)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[tokio::test]
    async fn chunks_arrive_in_order_whole_and_with_their_length() {
        let body = Chunks::new(vec![
            Bytes::from_static(b"a 1\n"),
            Bytes::new(),
            Bytes::from_static(b"b 2\n"),
        ]);
        assert_eq!(body.size_hint().exact(), Some(8));
        assert!(!body.is_end_stream());
        let collected = body.collect().await.unwrap().to_bytes();
        assert_eq!(&collected[..], b"a 1\nb 2\n");
        assert!(Chunks::new(Vec::new()).is_end_stream());
    }

    #[tokio::test]
    async fn a_streamed_body_sends_what_its_task_makes_in_order_with_the_announced_length() {
        let (tx, rx) = tokio::sync::mpsc::channel(1);
        let body = Chunks::streamed(rx, 12);
        assert_eq!(body.size_hint().exact(), Some(12));
        assert!(!body.is_end_stream());
        let task = tokio::task::spawn_blocking(move || {
            for line in ["a 1\n", "b 2\n", "c 3\n"] {
                tx.blocking_send(Bytes::from_static(line.as_bytes()))
                    .unwrap();
            }
        });
        let collected = body.collect().await.unwrap().to_bytes();
        task.await.unwrap();
        assert_eq!(&collected[..], b"a 1\nb 2\nc 3\n");
    }
}
