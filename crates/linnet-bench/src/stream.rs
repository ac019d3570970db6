//! The byte stream under a benchmark connection: TCP, or MQTT over WebSocket (`--ws`), with
//! borrowed read and write halves so a connection's loop can read and write at once (TCP
//! splits for free; the WebSocket halves share the stream through tokio's split lock).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use linnet_ws::WsStream;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf, ReadHalf, WriteHalf};
use tokio::net::{tcp, TcpStream};

/// A connection's stream.
#[derive(Debug)]
pub(crate) enum Stream {
    Tcp(TcpStream),
    Ws(Box<WsStream<TcpStream>>),
}

/// The read half of a [`Stream`].
#[derive(Debug)]
pub(crate) enum Reader<'a> {
    Tcp(tcp::ReadHalf<'a>),
    Ws(ReadHalf<&'a mut WsStream<TcpStream>>),
}

/// The write half of a [`Stream`].
#[derive(Debug)]
pub(crate) enum Writer<'a> {
    Tcp(tcp::WriteHalf<'a>),
    Ws(WriteHalf<&'a mut WsStream<TcpStream>>),
}

impl Stream {
    pub(crate) fn split(&mut self) -> (Reader<'_>, Writer<'_>) {
        match self {
            Self::Tcp(stream) => {
                let (read, write) = stream.split();
                (Reader::Tcp(read), Writer::Tcp(write))
            }
            Self::Ws(stream) => {
                let (read, write) = tokio::io::split(&mut **stream);
                (Reader::Ws(read), Writer::Ws(write))
            }
        }
    }
}

/// Forwards `AsyncRead` to whichever variant is inside.
macro_rules! read_variants {
    ($ty:ty) => {
        impl AsyncRead for $ty {
            fn poll_read(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &mut ReadBuf<'_>,
            ) -> Poll<io::Result<()>> {
                match self.get_mut() {
                    Self::Tcp(inner) => Pin::new(inner).poll_read(cx, buf),
                    Self::Ws(inner) => Pin::new(inner).poll_read(cx, buf),
                }
            }
        }
    };
}

/// Forwards `AsyncWrite` to whichever variant is inside.
macro_rules! write_variants {
    ($ty:ty) => {
        impl AsyncWrite for $ty {
            fn poll_write(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &[u8],
            ) -> Poll<io::Result<usize>> {
                match self.get_mut() {
                    Self::Tcp(inner) => Pin::new(inner).poll_write(cx, buf),
                    Self::Ws(inner) => Pin::new(inner).poll_write(cx, buf),
                }
            }

            fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                match self.get_mut() {
                    Self::Tcp(inner) => Pin::new(inner).poll_flush(cx),
                    Self::Ws(inner) => Pin::new(inner).poll_flush(cx),
                }
            }

            fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                match self.get_mut() {
                    Self::Tcp(inner) => Pin::new(inner).poll_shutdown(cx),
                    Self::Ws(inner) => Pin::new(inner).poll_shutdown(cx),
                }
            }
        }
    };
}

read_variants!(Stream);
read_variants!(Reader<'_>);
write_variants!(Stream);
write_variants!(Writer<'_>);
