//! Decode and encode errors. Each protocol violation is a variant whose message starts with
//! the spec clause it breaks, and [`DecodeError::reason_code`] maps it, in this one place, to
//! the reason code a v5 peer must be told (MQTT 5.0 section 4.13).

use thiserror::Error;

use crate::properties::PropertyId;
use crate::reason::ReasonCode;
use crate::topic::TopicError;
use crate::types::PacketType;

/// Why bytes from a peer are not a valid packet.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The packet type nibble is 0, or 15 (AUTH) before MQTT 5.0.
    #[error("[MQTT-2.1.3-1] reserved or unknown packet type {0}")]
    ReservedPacketType(u8),
    /// The fixed header flags differ from the ones the packet type requires.
    #[error("[MQTT-2.1.3-1] invalid fixed header flags {flags:#06b} for {packet}")]
    InvalidHeaderFlags { packet: PacketType, flags: u8 },
    /// A variable byte integer uses a fifth byte.
    #[error("[MQTT-1.5.5-1] variable byte integer longer than 4 bytes")]
    VarIntTooLong,
    /// A variable byte integer uses more bytes than its value needs (MQTT 5.0 1.5.5).
    #[error("[MQTT-1.5.5-1] variable byte integer not encoded in the minimum number of bytes")]
    VarIntNotMinimal,
    /// The packet is larger than this side accepts.
    #[error("packet of {size} bytes exceeds the maximum packet size of {max} bytes")]
    PacketTooLarge { size: usize, max: u32 },
    /// A field runs past the end of the packet.
    #[error("[MQTT-1.5.4-3] {packet} truncated: a field runs past the remaining length")]
    Truncated { packet: PacketType },
    /// Bytes are left over after the last field of a packet with no payload.
    #[error("{packet} has {extra} unexpected bytes after its last field")]
    TrailingBytes { packet: PacketType, extra: usize },
    /// A UTF-8 string is not well formed (surrogates included).
    #[error("[MQTT-1.5.4-1] string is not well-formed UTF-8")]
    InvalidUtf8,
    /// A UTF-8 string contains U+0000.
    #[error("[MQTT-1.5.4-2] string contains the null character U+0000")]
    NullCharacter,
    /// The CONNECT protocol name is not "MQTT" (or "MQIsdp" for level 3).
    #[error("[MQTT-3.1.2-1] unknown protocol name {0:?}")]
    InvalidProtocolName(String),
    /// The CONNECT protocol level is not 3, 4 or 5.
    #[error("[MQTT-3.1.2-2] unsupported protocol level {0}")]
    UnsupportedProtocolLevel(u8),
    /// The reserved bit 0 of the CONNECT flags is set.
    #[error("[MQTT-3.1.2-3] CONNECT reserved flag is not zero")]
    ConnectReservedFlag,
    /// Will QoS or Will Retain is set while the Will Flag is not.
    #[error("[MQTT-3.1.2-11] will QoS / will retain set without the will flag")]
    WillFlagsWithoutWill,
    /// Will QoS is 3.
    #[error("[MQTT-3.1.2-12] will QoS 3")]
    WillQoS3,
    /// MQTT 3.1.1 forbids a password without a user name.
    #[error("[MQTT-3.1.2-22] password flag set without the user name flag")]
    PasswordWithoutUsername,
    /// A PUBLISH has both QoS bits set.
    #[error("[MQTT-3.3.1-4] PUBLISH with QoS 3")]
    PublishQoS3,
    /// A QoS 0 PUBLISH has DUP set.
    #[error("[MQTT-3.3.1-2] DUP flag set on a QoS 0 PUBLISH")]
    DupOnQoS0,
    /// A packet identifier is zero where one is required.
    #[error("[MQTT-2.2.1-3] zero packet identifier in {packet}")]
    ZeroPacketId { packet: PacketType },
    /// A PUBLISH topic name is not valid.
    #[error("invalid topic name: {0}")]
    InvalidTopicName(TopicError),
    /// A PUBLISH has an empty topic name and no Topic Alias.
    #[error("empty topic name without a topic alias (MQTT 5.0 3.3.2.1)")]
    EmptyTopicWithoutAlias,
    /// A SUBSCRIBE or UNSUBSCRIBE topic filter is not valid.
    #[error("invalid topic filter: {0}")]
    InvalidTopicFilter(TopicError),
    /// A SUBSCRIBE carries no topic filter.
    #[error("[MQTT-3.8.3-2] SUBSCRIBE without any topic filter")]
    EmptySubscribe,
    /// An UNSUBSCRIBE carries no topic filter.
    #[error("[MQTT-3.10.3-2] UNSUBSCRIBE without any topic filter")]
    EmptyUnsubscribe,
    /// Reserved bits of the subscription options are set, or Retain Handling is 3.
    #[error("[MQTT-3.8.3-5] reserved subscription option bits set: {0:#010b}")]
    SubscriptionOptionsReserved(u8),
    /// A subscription asks for QoS 3.
    #[error("subscription with QoS 3 (MQTT 5.0 3.8.3.1)")]
    SubscriptionQoS3,
    /// No Local is set on a shared subscription.
    #[error("[MQTT-3.8.3-4] No Local set on a shared subscription")]
    NoLocalOnSharedSubscription,
    /// A reason or return code is not one this packet may carry.
    #[error("invalid reason code {code:#04x} in {packet}")]
    InvalidReasonCode { packet: PacketType, code: u8 },
    /// The CONNACK acknowledge flags have reserved bits set.
    #[error("[MQTT-3.2.2-1] CONNACK reserved acknowledge flags set")]
    ConnAckReservedFlags,
    /// A property identifier is not defined by MQTT 5.0.
    #[error("unknown property identifier {0:#04x} (MQTT 5.0 2.2.2.2)")]
    UnknownProperty(u32),
    /// A property is defined but not allowed in this packet.
    #[error("property {property} is not allowed in {context} (MQTT 5.0 2.2.2.2)")]
    PropertyNotAllowed {
        property: PropertyId,
        context: &'static str,
    },
    /// A property that may appear once appears again.
    #[error("property {0} included more than once")]
    DuplicateProperty(PropertyId),
    /// A property has a value the spec forbids (e.g. Receive Maximum 0).
    #[error("property {property} has invalid value {value}")]
    InvalidPropertyValue { property: PropertyId, value: u32 },
    /// Authentication Data without an Authentication Method.
    #[error("authentication data without an authentication method (MQTT 5.0 3.1.2.11.10)")]
    AuthDataWithoutMethod,
    /// The property length disagrees with the properties it frames.
    #[error("property length runs past the end of the packet")]
    PropertyLength,
    /// A Subscription Identifier appears in a PUBLISH sent by a client, or is 0.
    #[error("[MQTT-3.3.4-6] subscription identifier in a client PUBLISH")]
    SubscriptionIdFromClient,
}

impl DecodeError {
    /// The MQTT 5.0 reason code for a DISCONNECT (or CONNACK) that reports this error.
    pub const fn reason_code(&self) -> ReasonCode {
        match self {
            Self::PacketTooLarge { .. } => ReasonCode::PACKET_TOO_LARGE,
            Self::UnsupportedProtocolLevel(_) | Self::InvalidProtocolName(_) => {
                ReasonCode::UNSUPPORTED_PROTOCOL_VERSION
            }
            Self::InvalidTopicName(_) => ReasonCode::TOPIC_NAME_INVALID,
            Self::InvalidTopicFilter(_) => ReasonCode::TOPIC_FILTER_INVALID,
            // "A Topic Alias value of 0 ... is a Protocol Error, the receiver uses DISCONNECT
            // with Reason Code of 0x94 (Topic Alias invalid)" (MQTT 5.0 3.3.4).
            Self::InvalidPropertyValue {
                property: PropertyId::TopicAlias,
                ..
            } => ReasonCode::TOPIC_ALIAS_INVALID,
            // Retain Handling 3 alone (bits 6-7 clear) is a Protocol Error, not a reserved bit
            // (MQTT 5.0 3.8.3.1); reserved bits 6-7 stay Malformed [MQTT-3.8.3-5].
            Self::SubscriptionOptionsReserved(byte) if *byte & 0b1100_0000 == 0 => {
                ReasonCode::PROTOCOL_ERROR
            }
            // Parsed, but carries data the protocol forbids (MQTT 5.0 4.13 "Protocol Error").
            Self::ZeroPacketId { .. }
            | Self::EmptyTopicWithoutAlias // MQTT 5.0 3.3.2.1
            | Self::EmptySubscribe
            | Self::EmptyUnsubscribe
            | Self::NoLocalOnSharedSubscription
            | Self::SubscriptionQoS3 // MQTT 5.0 3.8.3.1
            | Self::InvalidReasonCode { .. }
            | Self::DuplicateProperty(_)
            | Self::AuthDataWithoutMethod
            | Self::InvalidPropertyValue { .. }
            | Self::SubscriptionIdFromClient => ReasonCode::PROTOCOL_ERROR,
            // Cannot be parsed according to the spec (MQTT 5.0 4.13 "Malformed Packet").
            Self::ReservedPacketType(_)
            | Self::InvalidHeaderFlags { .. }
            | Self::VarIntTooLong
            | Self::VarIntNotMinimal
            | Self::Truncated { .. }
            | Self::TrailingBytes { .. }
            | Self::InvalidUtf8
            | Self::NullCharacter
            | Self::ConnectReservedFlag
            | Self::WillFlagsWithoutWill
            | Self::WillQoS3
            | Self::PasswordWithoutUsername
            | Self::PublishQoS3
            | Self::DupOnQoS0
            | Self::SubscriptionOptionsReserved(_)
            | Self::ConnAckReservedFlags
            | Self::UnknownProperty(_)
            // "An Identifier which is not valid for its packet type ... is a Malformed
            // Packet" (MQTT 5.0 2.2.2.2).
            | Self::PropertyNotAllowed { .. }
            | Self::PropertyLength => ReasonCode::MALFORMED_PACKET,
        }
    }
}

/// Why a packet cannot be encoded.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// The encoded packet would exceed the limit the peer set (or the protocol's 256 MiB).
    #[error("encoded packet of {size} bytes exceeds the maximum packet size of {max} bytes")]
    PacketTooLarge { size: usize, max: u32 },
    /// A string or binary field is longer than 65,535 bytes.
    #[error("{field} is {len} bytes, longer than 65535")]
    FieldTooLong { field: &'static str, len: usize },
    /// A variable byte integer field is above 268,435,455.
    #[error("{field} value {value} does not fit a variable byte integer")]
    ValueTooLarge { field: &'static str, value: u32 },
    /// A QoS 1/2 PUBLISH has no packet identifier, or a QoS 0 one has one.
    #[error("PUBLISH QoS and packet identifier disagree")]
    PacketIdMismatch,
    /// The packet has no encoding in this protocol version (AUTH before 5.0).
    #[error("{packet} does not exist in MQTT {version}")]
    UnsupportedInVersion {
        packet: PacketType,
        version: crate::types::ProtocolVersion,
    },
    /// SUBSCRIBE or UNSUBSCRIBE with no topic filter [MQTT-3.8.3-2].
    #[error("{0} needs at least one topic filter")]
    NoTopicFilters(PacketType),
}
