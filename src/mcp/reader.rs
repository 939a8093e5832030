//! A reader that fails as soon as one line (one JSON-RPC message) grows past
//! a cap, so a server that floods its stdout costs a bounded amount of memory
//! and is stopped at once instead of being read forever.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, ReadBuf};

/// Wraps a server's stdout; `tripped` is set when a line exceeded `cap`.
pub(super) struct CapReader<R> {
    inner: R,
    cap: usize,
    since_newline: usize,
    tripped: Arc<AtomicBool>,
}

impl<R> CapReader<R> {
    pub(super) fn new(inner: R, cap: usize, tripped: Arc<AtomicBool>) -> Self {
        Self {
            inner,
            cap,
            since_newline: 0,
            tripped,
        }
    }

    /// Accounts for `new` bytes; false when a line went over the cap.
    fn account(&mut self, new: &[u8]) -> bool {
        let mut start = 0;
        for i in memchr::memchr_iter(b'\n', new) {
            self.since_newline += i - start;
            if self.since_newline > self.cap {
                return false;
            }
            self.since_newline = 0;
            start = i + 1;
        }
        self.since_newline += new.len() - start;
        self.since_newline <= self.cap
    }
}

fn too_large(cap: usize) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        format!("the server sent a message larger than {cap} bytes"),
    )
}

impl<R: AsyncRead + Unpin> AsyncRead for CapReader<R> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        if this.tripped.load(Ordering::SeqCst) {
            return Poll::Ready(Err(too_large(this.cap)));
        }
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                let filled = buf.filled()[before..].to_vec();
                if this.account(&filled) {
                    Poll::Ready(Ok(()))
                } else {
                    this.tripped.store(true, Ordering::SeqCst);
                    buf.set_filled(before);
                    Poll::Ready(Err(too_large(this.cap)))
                }
            }
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    #[tokio::test]
    async fn lines_under_the_cap_pass_and_a_long_one_trips() {
        let ok = b"12345\n1234\n".to_vec();
        let flag = Arc::new(AtomicBool::new(false));
        let mut r = CapReader::new(&ok[..], 5, flag.clone());
        let mut out = vec![];
        r.read_to_end(&mut out).await.unwrap();
        assert_eq!(out, ok);
        assert!(!flag.load(Ordering::SeqCst));

        // A long line in the middle of one chunk trips too.
        let bad = b"12\n1234567\n1\n".to_vec();
        let flag = Arc::new(AtomicBool::new(false));
        let mut r = CapReader::new(&bad[..], 5, flag.clone());
        let mut out = vec![];
        assert!(r.read_to_end(&mut out).await.is_err());
        assert!(flag.load(Ordering::SeqCst));
    }
}
