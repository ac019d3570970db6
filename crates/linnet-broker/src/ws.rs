//! MQTT over WebSocket (MQTT 5.0 section 6): the HTTP upgrade on the configured path with the
//! `mqtt` subprotocol. The frames-as-bytes adapter the connection code reads and writes is
//! `linnet_ws::WsStream` (shared with the benchmark's WebSocket clients): MQTT packets may
//! span or share binary frames [MQTT-6.0.0-2]; text frames close the connection
//! [MQTT-6.0.0-1].

use std::io;

use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::{HeaderValue, StatusCode};

/// Subprotocols accepted, in order of preference; `mqttv3.1` is what old 3.1 clients offer.
const SUBPROTOCOLS: [&str; 2] = ["mqtt", "mqttv3.1"];

/// Completes the WebSocket handshake for `path`, choosing the `mqtt` subprotocol when offered
/// [MQTT-6.0.0-4].
// The callback's error type is tungstenite's HTTP response; its size is not ours to choose.
#[allow(clippy::result_large_err)]
pub(crate) async fn accept(stream: TcpStream, path: &str) -> io::Result<WsStream> {
    let callback = |request: &Request, mut response: Response| {
        if request.uri().path() != path {
            let mut refusal = ErrorResponse::new(Some("no MQTT endpoint at this path".into()));
            *refusal.status_mut() = StatusCode::NOT_FOUND;
            return Err(refusal);
        }
        let offered: Vec<&str> = request
            .headers()
            .get_all("Sec-WebSocket-Protocol")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(',').map(str::trim))
            .collect();
        if let Some(chosen) = SUBPROTOCOLS.iter().find(|p| offered.contains(p)) {
            response
                .headers_mut()
                .insert("Sec-WebSocket-Protocol", HeaderValue::from_static(chosen));
        }
        Ok(response)
    };
    let inner = tokio_tungstenite::accept_hdr_async(stream, callback)
        .await
        .map_err(io::Error::other)?;
    Ok(WsStream::new(inner))
}

/// A WebSocket connection seen as a byte stream.
pub(crate) type WsStream = linnet_ws::WsStream<TcpStream>;
