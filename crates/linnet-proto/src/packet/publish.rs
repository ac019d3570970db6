//! PUBLISH (MQTT 5.0 3.3, 3.1.1 3.3): the application message, both directions. The payload
//! is a zero-copy slice of the received buffer and is shared, never copied, when forwarded.

use bytes::{BufMut, Bytes};
use bytestring::ByteString;

use crate::codec::{check_len, put_str, put_varint, varint_len, Reader};
use crate::error::{DecodeError, EncodeError};
use crate::properties::{PropertySet, PublishProperties};
use crate::topic::validate_topic_name;
use crate::types::{PacketId, PacketType, ProtocolVersion, QoS};

/// A PUBLISH packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publish {
    /// Re-delivery of an earlier attempt (QoS 1/2 only) [MQTT-3.3.1-1].
    pub dup: bool,
    pub qos: QoS,
    pub retain: bool,
    /// Valid topic name without wildcards; empty only in 5.0 with a Topic Alias. The decoder
    /// guarantees this; [`Publish::new`] does not check, senders validate at their API.
    pub topic: ByteString,
    /// Present exactly when `qos` is 1 or 2 [MQTT-2.2.1-2].
    pub packet_id: Option<PacketId>,
    pub payload: Bytes,
    /// MQTT 5.0 only; empty for older versions.
    pub properties: PublishProperties,
}

impl Publish {
    /// A QoS 0, non-retained PUBLISH with no properties.
    pub fn new(topic: impl Into<ByteString>, payload: impl Into<Bytes>) -> Self {
        Self {
            dup: false,
            qos: QoS::AtMostOnce,
            retain: false,
            topic: topic.into(),
            packet_id: None,
            payload: payload.into(),
            properties: PublishProperties::default(),
        }
    }

    /// Sets the QoS and the packet identifier it needs (`None` for QoS 0).
    pub fn with_qos(mut self, qos: QoS, packet_id: Option<PacketId>) -> Self {
        self.qos = qos;
        self.packet_id = packet_id;
        self
    }

    /// Sets the RETAIN flag.
    pub fn with_retain(mut self, retain: bool) -> Self {
        self.retain = retain;
        self
    }

    /// The fixed header flags: DUP, QoS, RETAIN [MQTT-3.3.1].
    pub fn flags(&self) -> u8 {
        (u8::from(self.dup) << 3) | ((self.qos as u8) << 1) | u8::from(self.retain)
    }

    pub(crate) fn decode(
        flags: u8,
        reader: &mut Reader,
        version: ProtocolVersion,
    ) -> Result<Self, DecodeError> {
        let dup = flags & 0b1000 != 0;
        let qos = QoS::from_u8((flags >> 1) & 0b11).ok_or(DecodeError::PublishQoS3)?;
        let retain = flags & 0b0001 != 0;
        if dup && qos == QoS::AtMostOnce {
            return Err(DecodeError::DupOnQoS0);
        }
        let topic = reader.string()?;
        let packet_id = if qos == QoS::AtMostOnce {
            None
        } else {
            Some(
                PacketId::new(reader.u16()?).ok_or(DecodeError::ZeroPacketId {
                    packet: PacketType::Publish,
                })?,
            )
        };
        let properties = if version.is_v5() {
            PublishProperties::decode(reader)?
        } else {
            Default::default()
        };
        if topic.is_empty() {
            // A zero-length topic is only meaningful together with a Topic Alias [MQTT-3.3.2-1].
            if properties.topic_alias.is_none() {
                return Err(DecodeError::EmptyTopicWithoutAlias);
            }
        } else {
            validate_topic_name(&topic).map_err(DecodeError::InvalidTopicName)?;
        }
        let payload = reader.rest();
        Ok(Self {
            dup,
            qos,
            retain,
            topic,
            packet_id,
            payload,
            properties,
        })
    }

    fn check_packet_id(&self) -> Result<(), EncodeError> {
        match (self.qos, self.packet_id) {
            (QoS::AtMostOnce, None) => Ok(()),
            (QoS::AtLeastOnce | QoS::ExactlyOnce, Some(_)) => Ok(()),
            _ => Err(EncodeError::PacketIdMismatch),
        }
    }

    pub(crate) fn remaining_len(&self, version: ProtocolVersion) -> Result<usize, EncodeError> {
        check_len("topic name", self.topic.as_bytes())?;
        self.check_packet_id()?;
        let properties = if version.is_v5() {
            self.properties.encoded_len()?
        } else {
            0
        };
        let packet_id = if self.packet_id.is_some() { 2 } else { 0 };
        Ok(2 + self.topic.len() + packet_id + properties + self.payload.len())
    }

    pub(crate) fn encode_body(&self, version: ProtocolVersion, buf: &mut impl BufMut) {
        put_str(buf, &self.topic);
        if let Some(id) = self.packet_id {
            buf.put_u16(id.get());
        }
        if version.is_v5() {
            // Already measured by remaining_len, so this cannot fail here.
            let len = self.properties.content_len().unwrap_or(0);
            self.properties.encode(len, buf);
        }
        buf.put_slice(&self.payload);
    }

    /// Encodes this PUBLISH (fixed header included) without wrapping it in a
    /// [`Packet`](crate::Packet): the broker's fan-out path. Returns the bytes written.
    pub fn encode(
        &self,
        version: ProtocolVersion,
        buf: &mut impl BufMut,
    ) -> Result<usize, EncodeError> {
        let remaining = self.remaining_len(version)?;
        if remaining > crate::codec::MAX_VARINT as usize {
            return Err(EncodeError::PacketTooLarge {
                size: remaining + 5,
                max: crate::codec::MAX_PACKET_SIZE,
            });
        }
        buf.put_u8(((PacketType::Publish as u8) << 4) | self.flags());
        put_varint(buf, remaining as u32);
        self.encode_body(version, buf);
        Ok(1 + varint_len(remaining as u32) + remaining)
    }
}
