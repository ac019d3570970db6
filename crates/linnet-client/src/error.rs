//! Errors of the client ([`ClientError`]) and the words for reason / return codes
//! ([`reason_text`]), the one place that turns a code into text for users.

use linnet_proto::{ConnectReturnCode, ProtocolVersion, ReasonCode};

/// Everything a client call can fail with. Variants that come from a packet carry its code.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The transport could not be opened (DNS, TCP or WebSocket handshake).
    #[error("cannot connect to {addr}: {source}")]
    Io {
        addr: String,
        source: std::io::Error,
    },
    /// CONNACK refused the connection: a v3 return code or a v5 reason code.
    #[error("connection refused: {text} ({code:#04x})")]
    Refused { code: u8, text: String },
    /// An operation did not finish in time (CONNACK, one-shot receive).
    #[error("timed out: {0}")]
    Timeout(&'static str),
    /// PUBACK / PUBREC / SUBACK / UNSUBACK carried a failure code, or the client refused to
    /// send something the server said it does not accept (QoS, retain, packet size).
    #[error("rejected by the server: {text} ({code:#04x})")]
    Rejected { code: u8, text: String },
    /// The server sent DISCONNECT.
    #[error("disconnected by the server: {text} ({code:#04x})")]
    Disconnected { code: u8, text: String },
    /// The connection broke and no reconnect is configured.
    #[error("connection lost")]
    ConnectionLost,
    /// The client was disconnected by the application (or its task ended).
    #[error("the client is closed")]
    Closed,
    /// A publish issued while disconnected found the offline queue full.
    #[error("offline queue is full")]
    QueueFull,
    /// A bad argument: topic, filter, URL...
    #[error("invalid {what}: {detail}")]
    Invalid { what: &'static str, detail: String },
    /// The peer broke the protocol.
    #[error("protocol error: {0}")]
    Protocol(String),
}

impl ClientError {
    /// The reason / return code this error carries, if any.
    pub fn reason_code(&self) -> Option<u8> {
        match self {
            Self::Refused { code, .. }
            | Self::Rejected { code, .. }
            | Self::Disconnected { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// A [`ClientError::Rejected`] for a v5 reason code.
    pub(crate) fn rejected(code: ReasonCode) -> Self {
        Self::Rejected {
            code: code.0,
            text: code.name().to_owned(),
        }
    }

    /// A [`ClientError::Disconnected`] for a v5 reason code.
    pub(crate) fn disconnected(code: ReasonCode) -> Self {
        Self::Disconnected {
            code: code.0,
            text: code.name().to_owned(),
        }
    }

    pub(crate) fn invalid(what: &'static str, detail: impl std::fmt::Display) -> Self {
        Self::Invalid {
            what,
            detail: detail.to_string(),
        }
    }
}

/// The words for a code: a CONNACK return code for MQTT 3.x, a reason code for 5.0
/// ("not authorized", "bad user name or password", "server unavailable", ...).
pub fn reason_text(version: ProtocolVersion, code: u8) -> &'static str {
    if version.is_v5() {
        return ReasonCode(code).name();
    }
    match ConnectReturnCode::from_u8(code) {
        Some(ConnectReturnCode::Accepted) => "accepted",
        Some(ConnectReturnCode::UnacceptableProtocolVersion) => "unacceptable protocol version",
        Some(ConnectReturnCode::IdentifierRejected) => "identifier rejected",
        Some(ConnectReturnCode::ServerUnavailable) => "server unavailable",
        Some(ConnectReturnCode::BadUserNameOrPassword) => "bad user name or password",
        Some(ConnectReturnCode::NotAuthorized) => "not authorized",
        // SUBACK 0x80 and other v3 codes outside CONNACK.
        None if code == 0x80 => "failure",
        None => "unknown return code",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_for_both_versions() {
        assert_eq!(reason_text(ProtocolVersion::V5, 0x87), "not authorized");
        assert_eq!(reason_text(ProtocolVersion::V3_1_1, 5), "not authorized");
        assert_eq!(
            reason_text(ProtocolVersion::V3_1_1, 4),
            "bad user name or password"
        );
        let err = ClientError::Refused {
            code: 0x87,
            text: "not authorized".into(),
        };
        assert_eq!(err.to_string(), "connection refused: not authorized (0x87)");
        assert_eq!(err.reason_code(), Some(0x87));
    }
}
