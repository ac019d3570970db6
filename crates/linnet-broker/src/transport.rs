//! The byte streams a connection runs on: TCP, and the WebSocket adapter of [`crate::ws`].
//! A TCP socket is shared (`Arc`) between its connection task and its session, so that a
//! publishing connection can write a subscriber's pending output straight to the socket at
//! the end of its read batch instead of waking the subscriber's task (see
//! [`crate::session::FlushBatch`]); every other write still goes through the connection task.

use std::future::Future;
use std::io;
use std::pin::{pin, Pin};
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use bytes::BytesMut;
use tokio::io::Interest;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// A byte stream a connection runs on.
pub(crate) trait Transport: AsyncRead + AsyncWrite + Unpin + Send {
    /// Ready when a read may make progress, so the read buffer is only allocated then. The
    /// default is always ready.
    fn poll_read_ready(&self, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    /// Reads what is available into the spare capacity of `buf`.
    fn poll_read_into(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut BytesMut,
    ) -> Poll<io::Result<usize>> {
        pin!(self.read_buf(buf)).poll(cx)
    }

    /// The socket other tasks may write to directly while this connection is not writing;
    /// `None` where frames must be built (WebSocket).
    fn shared_socket(&self) -> Option<Arc<TcpStream>> {
        None
    }
}

/// A TCP connection whose socket the session may share.
#[derive(Debug)]
pub(crate) struct Tcp(Arc<TcpStream>);

impl Tcp {
    pub(crate) fn new(stream: TcpStream) -> Self {
        Self(Arc::new(stream))
    }

    /// Runs one non-blocking `read` (`read` returns the bytes read and the room it had).
    /// A read that got less than it had room for drained the socket: its readiness is then
    /// forgotten now, rather than learnt from one more `read` that would block, as tokio's
    /// own reads do. The readiness is taken before the read, so an event that arrives after
    /// it is kept (tokio clears only the event it was given); `None`: not readable yet.
    fn read_once(
        &self,
        read: impl FnOnce() -> io::Result<(usize, usize)>,
    ) -> Option<io::Result<usize>> {
        let mut outcome = None;
        let _ = self.0.try_io(Interest::READABLE, || {
            let result = read();
            let drained = matches!(result, Ok((n, room)) if n < room);
            outcome = Some(result.map(|(n, _)| n));
            if drained {
                Err(io::ErrorKind::WouldBlock.into())
            } else {
                Ok(())
            }
        });
        match outcome {
            Some(Err(e)) if e.kind() == io::ErrorKind::WouldBlock => None,
            other => other,
        }
    }
}

impl Transport for Tcp {
    fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.0.poll_read_ready(cx)
    }

    fn poll_read_into(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut BytesMut,
    ) -> Poll<io::Result<usize>> {
        loop {
            ready!(self.0.poll_read_ready(cx))?;
            // `try_read_buf` writes into the spare capacity without zeroing it first, and
            // clears the readiness when the socket has nothing more.
            let room = buf.capacity() - buf.len();
            let socket = &self.0;
            if let Some(result) = self.read_once(|| socket.try_read_buf(buf).map(|n| (n, room))) {
                return Poll::Ready(result);
            }
        }
    }

    fn shared_socket(&self) -> Option<Arc<TcpStream>> {
        Some(Arc::clone(&self.0))
    }
}

impl AsyncRead for Tcp {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            ready!(self.0.poll_read_ready(cx))?;
            let room = buf.remaining();
            let socket = &self.0;
            let unfilled = buf.initialize_unfilled();
            if let Some(result) = self.read_once(|| socket.try_read(unfilled).map(|n| (n, room))) {
                return Poll::Ready(result.map(|n| buf.advance(n)));
            }
        }
    }
}

impl AsyncWrite for Tcp {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        loop {
            ready!(self.0.poll_write_ready(cx))?;
            match self.0.try_write(buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                other => return Poll::Ready(other),
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    /// The FIN goes out when the last owner of the socket drops it (the connection task,
    /// once it has detached the session).
    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

impl Transport for crate::ws::WsStream {}

/// Reads into `buf`, reserving `size` bytes only once the stream is readable: an idle
/// connection waits without a read buffer.
pub(crate) fn read_when_ready<'a, S: Transport>(
    stream: &'a mut S,
    buf: &'a mut BytesMut,
    size: usize,
) -> impl Future<Output = io::Result<usize>> + 'a {
    std::future::poll_fn(move |cx| {
        let reserved = buf.capacity() - buf.len() < size / 2;
        if reserved {
            ready!(stream.poll_read_ready(cx))?;
            buf.reserve(size);
        }
        match stream.poll_read_into(cx, buf) {
            // The readiness was stale (it stays set after a short read): give the buffer
            // back until data really comes.
            Poll::Pending if reserved && buf.is_empty() => {
                *buf = BytesMut::new();
                Poll::Pending
            }
            other => other,
        }
    })
}
