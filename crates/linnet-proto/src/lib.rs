//! `linnet-proto`: the MQTT 3.1, 3.1.1 and 5.0 wire protocol, without I/O and without a clock.
//!
//! This crate owns the bytes on the wire and nothing else: one [`Packet`] model shared by all
//! three protocol versions, a streaming [`Decoder`] over `BytesMut`, an encoder that writes into
//! a caller's buffer, MQTT 5.0 [properties], [reason codes](reason), validated
//! [topic names and filters](topic), and [errors](error) named after the spec clause they
//! enforce. Session state, timers and sockets live in the broker and client crates.
//!
//! ```
//! use bytes::BytesMut;
//! use linnet_proto::{Decoder, Packet, ProtocolVersion, Publish, QoS};
//!
//! let publish = Publish::new("python/mqtt", "messages: 1");
//! let mut wire = BytesMut::new();
//! Packet::Publish(publish.clone()).encode(ProtocolVersion::V3_1_1, &mut wire).unwrap();
//!
//! let mut decoder = Decoder::new(ProtocolVersion::V3_1_1);
//! let decoded = decoder.decode(&mut wire).unwrap();
//! assert_eq!(decoded, Some(Packet::Publish(publish)));
//! ```
#![cfg_attr(
    not(test),
    warn(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod codec;
pub mod error;
pub mod packet;
pub mod properties;
pub mod reason;
pub mod topic;
mod types;

pub use bytes::{Bytes, BytesMut};
pub use bytestring::ByteString;
pub use codec::{Decoder, MAX_PACKET_SIZE};
pub use error::{DecodeError, EncodeError};
pub use packet::*;
pub use properties::{
    AckProperties, AuthProperties, ConnAckProperties, ConnectProperties, DisconnectProperties,
    PerHop, PropertyId, PublishProperties, SubscribeProperties, UnsubscribeProperties,
    UserProperty, WillProperties,
};
pub use reason::{ConnectReturnCode, ReasonCode};
pub use topic::{SharedFilter, TopicError, TopicFilter, TopicName};
pub use types::{PacketId, PacketType, ProtocolVersion, QoS, RetainHandling};
