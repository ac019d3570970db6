//! The typed errors of a benchmark run.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use linnet_proto::{DecodeError, EncodeError};

/// Why a benchmark run could not be carried out.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// The options do not make a valid run.
    #[error("invalid options: {0}")]
    Config(String),
    /// The host name did not resolve.
    #[error("cannot resolve {host}:{port}: {source}")]
    Resolve {
        host: String,
        port: u16,
        #[source]
        source: io::Error,
    },
    /// The TCP connection could not be opened.
    #[error("client {client_id}: cannot connect to {addr}: {source}")]
    Connect {
        client_id: String,
        addr: SocketAddr,
        #[source]
        source: io::Error,
    },
    /// The broker answered CONNECT with a failure.
    #[error("client {client_id}: the broker refused the connection: {reason}")]
    Refused { client_id: String, reason: String },
    /// The broker refused a subscription.
    #[error("client {client_id}: the broker refused the subscription to {filter:?}: {reason}")]
    SubscribeRefused {
        client_id: String,
        filter: String,
        reason: String,
    },
    /// A packet the client waited for did not come in time.
    #[error("client {client_id}: no {what} from the broker within {within:?}")]
    Timeout {
        client_id: String,
        what: &'static str,
        within: Duration,
    },
    /// The broker closed the connection (or sent DISCONNECT) in the middle of the run.
    #[error("client {client_id}: the broker closed the connection{reason}")]
    Closed { client_id: String, reason: String },
    /// A socket error.
    #[error("client {client_id}: {source}")]
    Io {
        client_id: String,
        #[source]
        source: io::Error,
    },
    /// The broker sent bytes that are not a valid MQTT packet.
    #[error("client {client_id}: invalid packet from the broker: {source}")]
    Decode {
        client_id: String,
        #[source]
        source: DecodeError,
    },
    /// The broker sent a packet the client did not expect at this point.
    #[error("client {client_id}: expected {expected}, got {got}")]
    Unexpected {
        client_id: String,
        expected: &'static str,
        got: String,
    },
    /// A packet could not be encoded (a topic or payload too long, say).
    #[error("cannot encode a packet: {0}")]
    Encode(#[from] EncodeError),
    /// Some connections of the run failed; the first failure is kept.
    #[error("{failed} of {total} connections attempted failed; the first: {first}")]
    ConnectFailed {
        failed: usize,
        total: usize,
        first: Box<BenchError>,
    },
    /// A client task ended abnormally.
    #[error("a client task failed: {0}")]
    Task(String),
    /// The run went past its hard timeout.
    #[error("the run did not finish within its hard timeout of {0:?}")]
    HardTimeout(Duration),
}
