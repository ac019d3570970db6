//! Every MQTT 5.0 reason code and MQTT 3.x return code, in one place: their values, their
//! names, which packets may carry them (MQTT 5.0 section 2.4) and how a v5 reason maps onto a
//! v3 CONNACK return code.

use std::fmt;

use crate::types::PacketType;

/// An MQTT 5.0 reason code. Several names share a value (0x00 is Success, Normal disconnection
/// and Granted QoS 0), so this is a transparent byte with named constants rather than an enum.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ReasonCode(pub u8);

/// (value, name, packets that may carry it) for every reason code of MQTT 5.0 table 2-6.
/// Packet sets are bit masks over [`PacketType`] values.
const TABLE: &[(u8, &str, u16)] = {
    const CONNACK: u16 = 1 << PacketType::ConnAck as u16;
    const PUBACK: u16 = 1 << PacketType::PubAck as u16;
    const PUBREC: u16 = 1 << PacketType::PubRec as u16;
    const PUBREL: u16 = 1 << PacketType::PubRel as u16;
    const PUBCOMP: u16 = 1 << PacketType::PubComp as u16;
    const SUBACK: u16 = 1 << PacketType::SubAck as u16;
    const UNSUBACK: u16 = 1 << PacketType::UnsubAck as u16;
    const DISCONNECT: u16 = 1 << PacketType::Disconnect as u16;
    const AUTH: u16 = 1 << PacketType::Auth as u16;
    &[
        (
            0x00,
            "success",
            CONNACK | PUBACK | PUBREC | PUBREL | PUBCOMP | UNSUBACK | AUTH | DISCONNECT | SUBACK,
        ),
        (0x01, "granted QoS 1", SUBACK),
        (0x02, "granted QoS 2", SUBACK),
        (0x04, "disconnect with will message", DISCONNECT),
        (0x10, "no matching subscribers", PUBACK | PUBREC),
        (0x11, "no subscription existed", UNSUBACK),
        (0x18, "continue authentication", AUTH),
        (0x19, "re-authenticate", AUTH),
        (
            0x80,
            "unspecified error",
            CONNACK | PUBACK | PUBREC | SUBACK | UNSUBACK | DISCONNECT,
        ),
        (0x81, "malformed packet", CONNACK | DISCONNECT),
        (0x82, "protocol error", CONNACK | DISCONNECT),
        (
            0x83,
            "implementation specific error",
            CONNACK | PUBACK | PUBREC | SUBACK | UNSUBACK | DISCONNECT,
        ),
        (0x84, "unsupported protocol version", CONNACK),
        (0x85, "client identifier not valid", CONNACK),
        (0x86, "bad user name or password", CONNACK),
        (
            0x87,
            "not authorized",
            CONNACK | PUBACK | PUBREC | SUBACK | UNSUBACK | DISCONNECT,
        ),
        (0x88, "server unavailable", CONNACK),
        (0x89, "server busy", CONNACK | DISCONNECT),
        (0x8A, "banned", CONNACK),
        (0x8B, "server shutting down", DISCONNECT),
        (0x8C, "bad authentication method", CONNACK | DISCONNECT),
        (0x8D, "keep alive timeout", DISCONNECT),
        (0x8E, "session taken over", DISCONNECT),
        (0x8F, "topic filter invalid", SUBACK | UNSUBACK | DISCONNECT),
        (
            0x90,
            "topic name invalid",
            CONNACK | PUBACK | PUBREC | DISCONNECT,
        ),
        (
            0x91,
            "packet identifier in use",
            PUBACK | PUBREC | SUBACK | UNSUBACK,
        ),
        (0x92, "packet identifier not found", PUBREL | PUBCOMP),
        (0x93, "receive maximum exceeded", DISCONNECT),
        (0x94, "topic alias invalid", DISCONNECT),
        (0x95, "packet too large", CONNACK | DISCONNECT),
        (0x96, "message rate too high", DISCONNECT),
        (
            0x97,
            "quota exceeded",
            CONNACK | PUBACK | PUBREC | SUBACK | DISCONNECT,
        ),
        (0x98, "administrative action", DISCONNECT),
        (
            0x99,
            "payload format invalid",
            CONNACK | PUBACK | PUBREC | DISCONNECT,
        ),
        (0x9A, "retain not supported", CONNACK | DISCONNECT),
        (0x9B, "QoS not supported", CONNACK | DISCONNECT),
        (0x9C, "use another server", CONNACK | DISCONNECT),
        (0x9D, "server moved", CONNACK | DISCONNECT),
        (
            0x9E,
            "shared subscriptions not supported",
            SUBACK | DISCONNECT,
        ),
        (0x9F, "connection rate exceeded", CONNACK | DISCONNECT),
        (0xA0, "maximum connect time", DISCONNECT),
        (
            0xA1,
            "subscription identifiers not supported",
            SUBACK | DISCONNECT,
        ),
        (
            0xA2,
            "wildcard subscriptions not supported",
            SUBACK | DISCONNECT,
        ),
    ]
};

impl ReasonCode {
    pub const SUCCESS: Self = Self(0x00);
    pub const NORMAL_DISCONNECTION: Self = Self(0x00);
    pub const GRANTED_QOS_0: Self = Self(0x00);
    pub const GRANTED_QOS_1: Self = Self(0x01);
    pub const GRANTED_QOS_2: Self = Self(0x02);
    pub const DISCONNECT_WITH_WILL_MESSAGE: Self = Self(0x04);
    pub const NO_MATCHING_SUBSCRIBERS: Self = Self(0x10);
    pub const NO_SUBSCRIPTION_EXISTED: Self = Self(0x11);
    pub const CONTINUE_AUTHENTICATION: Self = Self(0x18);
    pub const RE_AUTHENTICATE: Self = Self(0x19);
    pub const UNSPECIFIED_ERROR: Self = Self(0x80);
    pub const MALFORMED_PACKET: Self = Self(0x81);
    pub const PROTOCOL_ERROR: Self = Self(0x82);
    pub const IMPLEMENTATION_SPECIFIC_ERROR: Self = Self(0x83);
    pub const UNSUPPORTED_PROTOCOL_VERSION: Self = Self(0x84);
    pub const CLIENT_IDENTIFIER_NOT_VALID: Self = Self(0x85);
    pub const BAD_USER_NAME_OR_PASSWORD: Self = Self(0x86);
    pub const NOT_AUTHORIZED: Self = Self(0x87);
    pub const SERVER_UNAVAILABLE: Self = Self(0x88);
    pub const SERVER_BUSY: Self = Self(0x89);
    pub const BANNED: Self = Self(0x8A);
    pub const SERVER_SHUTTING_DOWN: Self = Self(0x8B);
    pub const BAD_AUTHENTICATION_METHOD: Self = Self(0x8C);
    pub const KEEP_ALIVE_TIMEOUT: Self = Self(0x8D);
    pub const SESSION_TAKEN_OVER: Self = Self(0x8E);
    pub const TOPIC_FILTER_INVALID: Self = Self(0x8F);
    pub const TOPIC_NAME_INVALID: Self = Self(0x90);
    pub const PACKET_IDENTIFIER_IN_USE: Self = Self(0x91);
    pub const PACKET_IDENTIFIER_NOT_FOUND: Self = Self(0x92);
    pub const RECEIVE_MAXIMUM_EXCEEDED: Self = Self(0x93);
    pub const TOPIC_ALIAS_INVALID: Self = Self(0x94);
    pub const PACKET_TOO_LARGE: Self = Self(0x95);
    pub const MESSAGE_RATE_TOO_HIGH: Self = Self(0x96);
    pub const QUOTA_EXCEEDED: Self = Self(0x97);
    pub const ADMINISTRATIVE_ACTION: Self = Self(0x98);
    pub const PAYLOAD_FORMAT_INVALID: Self = Self(0x99);
    pub const RETAIN_NOT_SUPPORTED: Self = Self(0x9A);
    pub const QOS_NOT_SUPPORTED: Self = Self(0x9B);
    pub const USE_ANOTHER_SERVER: Self = Self(0x9C);
    pub const SERVER_MOVED: Self = Self(0x9D);
    pub const SHARED_SUBSCRIPTIONS_NOT_SUPPORTED: Self = Self(0x9E);
    pub const CONNECTION_RATE_EXCEEDED: Self = Self(0x9F);
    pub const MAXIMUM_CONNECT_TIME: Self = Self(0xA0);
    pub const SUBSCRIPTION_IDENTIFIERS_NOT_SUPPORTED: Self = Self(0xA1);
    pub const WILDCARD_SUBSCRIPTIONS_NOT_SUPPORTED: Self = Self(0xA2);

    /// Values below 0x80 report success; 0x80 and above report failure [MQTT-2.4].
    pub const fn is_success(self) -> bool {
        self.0 < 0x80
    }

    /// Whether this code is one the spec lists for `packet` (MQTT 5.0 table 2-6).
    pub fn is_valid_for(self, packet: PacketType) -> bool {
        TABLE
            .iter()
            .any(|&(value, _, packets)| value == self.0 && packets & (1 << packet as u16) != 0)
    }

    /// The spec's name in lower case, e.g. "not authorized"; "unknown reason code" otherwise.
    /// 0x00 is named "success" (it is also "normal disconnection" and "granted QoS 0").
    pub fn name(self) -> &'static str {
        TABLE
            .iter()
            .find(|&&(value, _, _)| value == self.0)
            .map_or("unknown reason code", |&(_, name, _)| name)
    }

    /// The MQTT 3.x CONNACK return code that best carries this v5 CONNACK reason.
    pub const fn to_connect_return_code(self) -> ConnectReturnCode {
        match self.0 {
            0x00 => ConnectReturnCode::Accepted,
            0x84 => ConnectReturnCode::UnacceptableProtocolVersion,
            0x85 => ConnectReturnCode::IdentifierRejected,
            0x86 => ConnectReturnCode::BadUserNameOrPassword,
            0x87 | 0x8A | 0x8C => ConnectReturnCode::NotAuthorized,
            _ => ConnectReturnCode::ServerUnavailable,
        }
    }
}

impl fmt::Debug for ReasonCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ReasonCode({:#04x} {})", self.0, self.name())
    }
}

impl fmt::Display for ReasonCode {
    /// "not authorized (0x87)": the words first, then the code, as users read it in errors.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({:#04x})", self.name(), self.0)
    }
}

impl From<ConnectReturnCode> for ReasonCode {
    fn from(code: ConnectReturnCode) -> Self {
        match code {
            ConnectReturnCode::Accepted => Self::SUCCESS,
            ConnectReturnCode::UnacceptableProtocolVersion => Self::UNSUPPORTED_PROTOCOL_VERSION,
            ConnectReturnCode::IdentifierRejected => Self::CLIENT_IDENTIFIER_NOT_VALID,
            ConnectReturnCode::ServerUnavailable => Self::SERVER_UNAVAILABLE,
            ConnectReturnCode::BadUserNameOrPassword => Self::BAD_USER_NAME_OR_PASSWORD,
            ConnectReturnCode::NotAuthorized => Self::NOT_AUTHORIZED,
        }
    }
}

/// MQTT 3.1 / 3.1.1 CONNACK return codes (3.1.1 table 3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConnectReturnCode {
    /// 0x00 Connection accepted.
    Accepted = 0,
    /// 0x01 The server does not support the requested protocol level.
    UnacceptableProtocolVersion = 1,
    /// 0x02 The client identifier is well-formed UTF-8 but not allowed.
    IdentifierRejected = 2,
    /// 0x03 The MQTT service is unavailable.
    ServerUnavailable = 3,
    /// 0x04 The user name or password is malformed.
    BadUserNameOrPassword = 4,
    /// 0x05 The client is not authorized to connect.
    NotAuthorized = 5,
}

impl ConnectReturnCode {
    /// The return code for a byte; `None` for the reserved values 6-255.
    pub const fn from_u8(value: u8) -> Option<Self> {
        Some(match value {
            0 => Self::Accepted,
            1 => Self::UnacceptableProtocolVersion,
            2 => Self::IdentifierRejected,
            3 => Self::ServerUnavailable,
            4 => Self::BadUserNameOrPassword,
            5 => Self::NotAuthorized,
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_display() {
        assert_eq!(
            ReasonCode::NOT_AUTHORIZED.to_string(),
            "not authorized (0x87)"
        );
        assert_eq!(ReasonCode(0x03).name(), "unknown reason code");
        assert!(ReasonCode::GRANTED_QOS_2.is_success());
        assert!(!ReasonCode::UNSPECIFIED_ERROR.is_success());
    }

    #[test]
    fn validity_per_packet_follows_table_2_6() {
        assert!(ReasonCode::SUCCESS.is_valid_for(PacketType::PubAck));
        assert!(ReasonCode::NO_MATCHING_SUBSCRIBERS.is_valid_for(PacketType::PubRec));
        assert!(!ReasonCode::NO_MATCHING_SUBSCRIBERS.is_valid_for(PacketType::PubRel));
        assert!(ReasonCode::PACKET_IDENTIFIER_NOT_FOUND.is_valid_for(PacketType::PubComp));
        assert!(!ReasonCode::GRANTED_QOS_1.is_valid_for(PacketType::ConnAck));
        assert!(ReasonCode::SESSION_TAKEN_OVER.is_valid_for(PacketType::Disconnect));
        assert!(!ReasonCode(0x03).is_valid_for(PacketType::Disconnect));
    }

    #[test]
    fn v3_return_codes_round_trip_through_reason_codes() {
        for value in 0..=5 {
            let code = ConnectReturnCode::from_u8(value).unwrap();
            assert_eq!(ReasonCode::from(code).to_connect_return_code(), code);
        }
        assert_eq!(ConnectReturnCode::from_u8(6), None);
    }
}
