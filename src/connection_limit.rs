//! Limits on connections: how many are open, how long one may go without a byte moving, and
//! how one closes while its client is still sending.
//!
//! The acceptor takes a permit before it accepts, and the connection holds it until it closes;
//! at the cap, new connections wait in the kernel's backlog instead of exhausting file
//! descriptors and memory. A connection on which nothing is read or written for the idle
//! timeout is closed, which also ends a client that stalls halfway through a request (poem's
//! own idle timeout only covers the time between requests).
//!
//! A request refused before its body was read (a 413 at the first byte over the limit) leaves
//! the client still sending. Closing the socket with unread bytes makes the kernel answer with
//! a reset, and a client that reads only after sending can lose the answer to it. So a close
//! first sends FIN after the response (a half-close), then reads and discards what the client
//! still sends, at most `LINGER_BYTES` or `LINGER` (nginx's lingering close), before closing.

use std::{
    future::Future,
    io,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use poem::{
    http::uri::Scheme,
    listener::Acceptor,
    web::{LocalAddr, RemoteAddr},
};
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    sync::{OwnedSemaphorePermit, Semaphore},
    time::{Instant, Sleep},
};

/// How long, and how much, a closing connection keeps reading what its client still sends.
const LINGER: Duration = Duration::from_secs(2);
const LINGER_BYTES: u64 = 64 * 1024 * 1024;

pub struct Limited<A> {
    inner: A,
    permits: Arc<Semaphore>,
    idle: Duration,
}

impl<A> Limited<A> {
    pub fn new(inner: A, max_connections: usize, idle: Duration) -> Self {
        Self {
            inner,
            permits: Arc::new(Semaphore::new(max_connections)),
            idle,
        }
    }
}

/// A connection, its permit (returned when the connection is dropped) and its idle deadline.
pub struct Permitted<Io> {
    io: Io,
    _permit: OwnedSemaphorePermit,
    idle: Duration,
    deadline: Pin<Box<Sleep>>,
    closing: Closing,
}

enum Closing {
    Open,
    /// FIN sent; discarding what the client still sends, within a budget.
    Draining {
        until: Pin<Box<Sleep>>,
        left: u64,
    },
}

impl<Io> Permitted<Io> {
    /// Bytes moved: the connection is alive for another `idle`.
    fn touch(&mut self) {
        let next = Instant::now() + self.idle;
        self.deadline.as_mut().reset(next);
    }
}

impl<A: Acceptor> Acceptor for Limited<A> {
    type Io = Permitted<A::Io>;

    fn local_addr(&self) -> Vec<LocalAddr> {
        self.inner.local_addr()
    }

    async fn accept(&mut self) -> io::Result<(Self::Io, LocalAddr, RemoteAddr, Scheme)> {
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| io::Error::other("connection limiter closed"))?;
        let (io, local, remote, scheme) = self.inner.accept().await?;
        Ok((
            Permitted {
                io,
                _permit: permit,
                idle: self.idle,
                deadline: Box::pin(tokio::time::sleep(self.idle)),
                closing: Closing::Open,
            },
            local,
            remote,
            scheme,
        ))
    }
}

impl<Io: AsyncRead + Unpin> AsyncRead for Permitted<Io> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match Pin::new(&mut self.io).poll_read(cx, buf) {
            Poll::Ready(result) => {
                self.touch();
                Poll::Ready(result)
            }
            Poll::Pending => match self.deadline.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "connection idle past its timeout",
                ))),
                Poll::Pending => Poll::Pending,
            },
        }
    }
}

impl<Io: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Permitted<Io> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let written = Pin::new(&mut self.io).poll_write(cx, buf);
        if written.is_ready() {
            self.touch();
        }
        written
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        loop {
            match &mut this.closing {
                Closing::Open => {
                    std::task::ready!(Pin::new(&mut this.io).poll_shutdown(cx))?;
                    this.closing = Closing::Draining {
                        until: Box::pin(tokio::time::sleep(LINGER)),
                        left: LINGER_BYTES,
                    };
                }
                Closing::Draining { until, left } => {
                    let mut scratch = [0u8; 16 * 1024];
                    let mut buf = ReadBuf::new(&mut scratch);
                    match Pin::new(&mut this.io).poll_read(cx, &mut buf) {
                        // The client closed too, or the socket failed: nothing left to protect.
                        Poll::Ready(Ok(())) if buf.filled().is_empty() => {
                            return Poll::Ready(Ok(()))
                        }
                        Poll::Ready(Err(_)) => return Poll::Ready(Ok(())),
                        Poll::Ready(Ok(())) => {
                            *left = left.saturating_sub(buf.filled().len() as u64);
                            if *left == 0 {
                                return Poll::Ready(Ok(()));
                            }
                        }
                        // Clients close once they see the FIN; one that does not is given
                        // `LINGER` at most.
                        Poll::Pending => return until.as_mut().poll(cx).map(Ok),
                    }
                }
            }
        }
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let written = Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        if written.is_ready() {
            self.touch();
        }
        written
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}
