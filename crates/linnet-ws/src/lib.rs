//! MQTT over WebSocket (MQTT 5.0 section 6) seen as a byte stream, for code written against
//! `AsyncRead` / `AsyncWrite`: the broker's WebSocket connections and the benchmark's
//! WebSocket clients. Every write goes out as one binary frame; MQTT packets may span or
//! share frames [MQTT-6.0.0-2], so reads hand out frame bytes as they come; a text frame
//! ends the stream with an error [MQTT-6.0.0-1]. The handshakes (the server's path check, the
//! client's request) stay with their callers, apart from [`connect`].

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::{Buf, Bytes};
use futures_util::{Sink, Stream};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

/// The subprotocol MQTT clients ask for [MQTT-6.0.0-3].
pub const SUBPROTOCOL: &str = "mqtt";

/// A WebSocket connection as a byte stream.
#[derive(Debug)]
pub struct WsStream<S> {
    inner: WebSocketStream<S>,
    /// The unread rest of the last binary frame.
    pending: Bytes,
    /// A frame was accepted but the socket could not take all of it yet; reads and the next
    /// write push it on, so a writer that stops writing still gets it out.
    unflushed: bool,
}

impl<S> WsStream<S> {
    /// Wraps an established WebSocket connection.
    pub fn new(inner: WebSocketStream<S>) -> Self {
        Self {
            inner,
            pending: Bytes::new(),
            unflushed: false,
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> WsStream<S> {
    fn poll_flush_frames(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(Sink::<Message>::poll_flush(Pin::new(&mut self.inner), cx))
            .map_err(io::Error::other)?;
        self.unflushed = false;
        Poll::Ready(Ok(()))
    }
}

/// Opens the client side over `stream`: `ws://{host}{path}` with the `mqtt` subprotocol.
pub async fn connect<S>(stream: S, host: &str, path: &str) -> io::Result<WsStream<S>>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut request = format!("ws://{host}{path}")
        .into_client_request()
        .map_err(io::Error::other)?;
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_static(SUBPROTOCOL),
    );
    let (inner, _response) = tokio_tungstenite::client_async(request, stream)
        .await
        .map_err(io::Error::other)?;
    Ok(WsStream::new(inner))
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for WsStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.unflushed {
            // Registers for writability too, so the frame goes out once the socket drains.
            if let Poll::Ready(Err(error)) = self.poll_flush_frames(cx) {
                return Poll::Ready(Err(error));
            }
        }
        loop {
            if !self.pending.is_empty() {
                let n = self.pending.len().min(buf.remaining());
                buf.put_slice(&self.pending[..n]);
                self.pending.advance(n);
                return Poll::Ready(Ok(()));
            }
            match ready!(Pin::new(&mut self.inner).poll_next(cx)) {
                Some(Ok(Message::Binary(data))) => self.pending = data,
                // Ping / pong are answered by tungstenite itself.
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {}
                Some(Ok(Message::Text(_))) => {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "text frame on an MQTT WebSocket [MQTT-6.0.0-1]",
                    )));
                }
                Some(Ok(Message::Close(_))) | None => return Poll::Ready(Ok(())),
                Some(Err(error)) => return Poll::Ready(Err(io::Error::other(error))),
            }
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for WsStream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.unflushed {
            ready!(self.poll_flush_frames(cx))?;
        }
        ready!(Sink::<Message>::poll_ready(Pin::new(&mut self.inner), cx))
            .map_err(io::Error::other)?;
        let frame = Message::Binary(Bytes::copy_from_slice(buf));
        Pin::new(&mut self.inner)
            .start_send(frame)
            .map_err(io::Error::other)?;
        // Send it now if the socket takes it; otherwise it is owed (see `unflushed`).
        self.unflushed = true;
        if let Poll::Ready(Err(error)) = self.poll_flush_frames(cx) {
            return Poll::Ready(Err(error));
        }
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.poll_flush_frames(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Sink::<Message>::poll_close(Pin::new(&mut self.inner), cx).map_err(io::Error::other)
    }
}
