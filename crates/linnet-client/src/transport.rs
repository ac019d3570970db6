//! The byte pipe under a connection: opening TCP or WebSocket (subprotocol `mqtt`, binary
//! frames) and cancel-safe reads / whole writes over either. TLS and WSS plug in here.

use std::io;

use bytes::{Bytes, BytesMut};
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::WebSocketStream;

use crate::options::Transport;

/// An open connection to the server.
#[derive(Debug)]
pub(crate) enum Conn {
    Tcp(TcpStream),
    /// Boxed: the WebSocket state is large and this is one per client.
    Ws(Box<WebSocketStream<TcpStream>>),
}

/// Opens the transport to `host:port`.
pub(crate) async fn open(host: &str, port: u16, transport: &Transport) -> io::Result<Conn> {
    let stream = TcpStream::connect((host, port)).await?;
    stream.set_nodelay(true)?;
    match transport {
        Transport::Tcp => Ok(Conn::Tcp(stream)),
        Transport::WebSocket { path } => {
            let host_part = if host.contains(':') {
                format!("[{host}]")
            } else {
                host.to_owned()
            };
            let path = if path.starts_with('/') {
                path.clone()
            } else {
                format!("/{path}")
            };
            let url = format!("ws://{host_part}:{port}{path}");
            let mut request = url
                .into_client_request()
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
            // [MQTT-6.0.0-3]: offer the "mqtt" subprotocol.
            request
                .headers_mut()
                .insert("Sec-WebSocket-Protocol", HeaderValue::from_static("mqtt"));
            let (ws, _response) = tokio_tungstenite::client_async(request, stream)
                .await
                .map_err(|e| io::Error::other(e.to_string()))?;
            Ok(Conn::Ws(Box::new(ws)))
        }
    }
}

impl Conn {
    /// Appends received bytes to `buf`; `Ok(0)` means the peer closed. Cancel-safe: dropping
    /// the future loses no bytes.
    pub(crate) async fn read(&mut self, buf: &mut BytesMut) -> io::Result<usize> {
        match self {
            Self::Tcp(stream) => {
                buf.reserve(8 * 1024);
                stream.read_buf(buf).await
            }
            Self::Ws(ws) => loop {
                match ws.next().await {
                    Some(Ok(WsMessage::Binary(data))) => {
                        if data.is_empty() {
                            continue;
                        }
                        buf.extend_from_slice(&data);
                        return Ok(data.len());
                    }
                    // Ping / pong are answered by tungstenite itself.
                    Some(Ok(WsMessage::Ping(_) | WsMessage::Pong(_) | WsMessage::Frame(_))) => {}
                    Some(Ok(WsMessage::Text(_))) => {
                        return Err(io::Error::new(
                            io::ErrorKind::InvalidData,
                            "text WebSocket frame (MQTT uses binary frames)",
                        ))
                    }
                    Some(Ok(WsMessage::Close(_))) | None => return Ok(0),
                    Some(Err(e)) => return Err(io::Error::other(e.to_string())),
                }
            },
        }
    }

    /// Writes all of `data` (one WebSocket frame for WebSocket).
    pub(crate) async fn write_all(&mut self, data: Bytes) -> io::Result<()> {
        match self {
            Self::Tcp(stream) => stream.write_all(&data).await,
            Self::Ws(ws) => ws
                .send(WsMessage::Binary(data))
                .await
                .map_err(|e| io::Error::other(e.to_string())),
        }
    }

    /// Closes the write side politely (TCP FIN / WebSocket close frame), ignoring errors.
    pub(crate) async fn close(&mut self) {
        match self {
            Self::Tcp(stream) => {
                let _ = stream.shutdown().await;
            }
            Self::Ws(ws) => {
                let _ = ws.close(None).await;
            }
        }
    }
}
