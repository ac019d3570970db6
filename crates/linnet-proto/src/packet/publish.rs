//! PUBLISH (MQTT 5.0 3.3, 3.1.1 3.3): the application message, both directions. The payload
//! is a zero-copy slice of the received buffer and is shared, never copied, when forwarded.

use bytes::{BufMut, Bytes};
use bytestring::ByteString;

use crate::codec::{check_len, put_str, put_varint, varint_len, Reader};
use crate::error::{DecodeError, EncodeError};
use crate::properties::{PerHop, PropertySet, PublishProperties};
use crate::topic::TopicError;
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

    #[inline]
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
        // One pass over the topic for what it may not hold: U+0000 [MQTT-1.5.4-2] and
        // wildcards [MQTT-3.3.2-2]; the errors come in the order `Reader::string` and
        // `validate_topic_name` would give them.
        let raw = reader.binary()?;
        let (nul, wildcard) = scan_topic(&raw);
        if nul {
            return Err(DecodeError::NullCharacter);
        }
        let topic = ByteString::try_from(raw).map_err(|_| DecodeError::InvalidUtf8)?;
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
        } else if wildcard {
            return Err(DecodeError::InvalidTopicName(TopicError::WildcardInName));
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

/// Whether `bytes` holds U+0000, and whether it holds a wildcard (`+` or `#`): eight bytes
/// at a time, since every PUBLISH topic passes through here.
fn scan_topic(bytes: &[u8]) -> (bool, bool) {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);
    // Some byte of `word` is zero (exact as a yes/no answer).
    let has_zero = |word: u64| word.wrapping_sub(ONES) & !word & HIGHS != 0;
    let (mut nul, mut wildcard) = (false, false);
    let mut chunks = bytes.chunks_exact(8);
    for chunk in &mut chunks {
        let mut word = [0; 8];
        word.copy_from_slice(chunk);
        let word = u64::from_ne_bytes(word);
        nul |= has_zero(word);
        wildcard |=
            has_zero(word ^ (ONES * u64::from(b'+'))) || has_zero(word ^ (ONES * u64::from(b'#')));
    }
    for &byte in chunks.remainder() {
        nul |= byte == 0;
        wildcard |= byte == b'+' || byte == b'#';
    }
    (nul, wildcard)
}

/// A PUBLISH as a server forwards a routed message: the publisher's fields by reference and
/// this hop's Message Expiry Interval, Topic Alias and Subscription Identifiers. Encodes
/// without building a [`Publish`], so fan-out clones no properties.
#[derive(Debug, Clone, Copy)]
pub struct Forward<'a> {
    pub dup: bool,
    pub qos: QoS,
    pub retain: bool,
    /// Empty when `hop.topic_alias` stands for a topic the client already knows.
    pub topic: &'a str,
    /// Present exactly when `qos` is 1 or 2 [MQTT-2.2.1-2].
    pub packet_id: Option<PacketId>,
    pub payload: &'a [u8],
    /// The publisher's properties; their per-hop fields are ignored (`hop` replaces them).
    pub properties: &'a PublishProperties,
    pub hop: PerHop<'a>,
}

impl Forward<'_> {
    /// Appends the packet to `buf`, reserving its exact size once; nothing is written when
    /// it would exceed `max_size` (the client's Maximum Packet Size) or cannot be encoded.
    /// Returns the bytes written.
    pub fn encode_within(
        &self,
        version: ProtocolVersion,
        max_size: u32,
        buf: &mut bytes::BytesMut,
    ) -> Result<usize, EncodeError> {
        check_len("topic name", self.topic.as_bytes())?;
        if self.packet_id.is_some() == (self.qos == QoS::AtMostOnce) {
            return Err(EncodeError::PacketIdMismatch);
        }
        let properties = if version.is_v5() {
            Some(self.properties.forwarded_content_len(&self.hop)?)
        } else {
            None
        };
        let remaining = 2
            + self.topic.len()
            + if self.packet_id.is_some() { 2 } else { 0 }
            + properties.map_or(0, |len| varint_len(len as u32) + len)
            + self.payload.len();
        let size = super::frame_size(remaining)?;
        if size > max_size as usize {
            return Err(EncodeError::PacketTooLarge {
                size,
                max: max_size,
            });
        }
        buf.reserve(size);
        let flags = (u8::from(self.dup) << 3) | ((self.qos as u8) << 1) | u8::from(self.retain);
        buf.put_u8(((PacketType::Publish as u8) << 4) | flags);
        put_varint(buf, remaining as u32);
        put_str(buf, self.topic);
        if let Some(id) = self.packet_id {
            buf.put_u16(id.get());
        }
        if let Some(len) = properties {
            self.properties.encode_forwarded(&self.hop, len, buf);
        }
        buf.put_slice(self.payload);
        Ok(size)
    }
}

#[cfg(test)]
mod tests {
    use std::num::{NonZeroU16, NonZeroU32};

    use bytes::BytesMut;

    use super::*;
    use crate::packet::test_support::{assert_rejected, assert_wire, checked_decode as decode};
    use crate::packet::Packet;
    use crate::properties::PropertyId;
    use crate::reason::ReasonCode;
    use crate::topic::{TopicError, TopicName};

    fn id(n: u16) -> Option<PacketId> {
        Some(PacketId::new(n).unwrap())
    }

    /// A v5 QoS 0 PUBLISH to "t" with `properties` and no payload.
    fn v5_publish(properties: &[u8]) -> Vec<u8> {
        let mut wire = vec![0x30, 4 + properties.len() as u8, 0x00, 0x01, b't'];
        wire.push(properties.len() as u8);
        wire.extend_from_slice(properties);
        wire
    }

    #[test]
    fn topic_scan_finds_nul_and_wildcards_anywhere() {
        assert_eq!(scan_topic(b""), (false, false));
        assert_eq!(scan_topic(b"sensors/room-12/temperature"), (false, false));
        for at in 0..20 {
            let mut topic = vec![b'a'; 20];
            topic[at] = 0;
            assert_eq!(scan_topic(&topic), (true, false), "NUL at {at}");
            for wildcard in [b'+', b'#'] {
                topic[at] = wildcard;
                assert_eq!(scan_topic(&topic), (false, true), "{wildcard} at {at}");
            }
        }
        // Neighbours of the searched bytes are no match.
        assert_eq!(
            scan_topic(&[0x01, b'*', b',', b'"', b'$', 0xFF, 0x80, 0x2A]),
            (false, false)
        );
    }

    /// A forwarded PUBLISH is byte for byte the [`Publish`] with the hop's properties in
    /// place of the publisher's per-hop ones [MQTT-3.3.2-6] [MQTT-3.3.4-3].
    #[test]
    fn forward_encodes_like_publish_with_the_hop_properties() {
        let properties = PublishProperties {
            payload_format_indicator: Some(true),
            message_expiry_interval: Some(600),
            topic_alias: NonZeroU16::new(9),
            content_type: Some("text/plain".into()),
            user_properties: vec![("k".into(), "v".into())],
            ..Default::default()
        };
        let ids = [NonZeroU32::new(7).unwrap(), NonZeroU32::new(300).unwrap()];
        let hop = PerHop {
            message_expiry_interval: Some(42),
            topic_alias: NonZeroU16::new(2),
            subscription_identifiers: &ids,
        };
        let mut expected_properties = properties.clone();
        expected_properties.message_expiry_interval = Some(42);
        expected_properties.topic_alias = NonZeroU16::new(2);
        expected_properties.subscription_identifiers = ids.to_vec();
        for (version, qos, packet_id) in [
            (ProtocolVersion::V5, QoS::AtLeastOnce, id(5)),
            (ProtocolVersion::V5, QoS::AtMostOnce, None),
            (ProtocolVersion::V3_1_1, QoS::ExactlyOnce, id(6)),
        ] {
            let forward = Forward {
                dup: false,
                qos,
                retain: true,
                topic: "a/b",
                packet_id,
                payload: b"payload",
                properties: &properties,
                hop,
            };
            let mut publish = Publish::new("a/b", "payload").with_qos(qos, packet_id);
            publish.retain = true;
            if version.is_v5() {
                publish.properties = expected_properties.clone();
            }
            let mut expected = BytesMut::new();
            Packet::Publish(publish)
                .encode(version, &mut expected)
                .unwrap();
            let mut got = BytesMut::new();
            let written = forward.encode_within(version, u32::MAX, &mut got).unwrap();
            assert_eq!(got, expected, "{version} {qos:?}");
            assert_eq!(written, got.len());
            // Too large for the client's Maximum Packet Size: nothing is written.
            let mut small = BytesMut::new();
            let refused = forward.encode_within(version, written as u32 - 1, &mut small);
            assert!(matches!(refused, Err(EncodeError::PacketTooLarge { .. })));
            assert!(small.is_empty());
        }
    }

    #[test]
    fn spec_3_3_qos0_in_v3() {
        let publish = Publish::new("a/b", "hi");
        #[rustfmt::skip]
        let wire = [
            0x30, 0x07,                      // PUBLISH QoS 0, remaining length 7
            0x00, 0x03, b'a', b'/', b'b',    // topic "a/b"
            b'h', b'i',                      // payload
        ];
        assert_wire(&publish.clone().into(), ProtocolVersion::V3_1_1, &wire);
        assert_wire(&publish.into(), ProtocolVersion::V3_1, &wire);
    }

    #[test]
    fn spec_3_3_qos0_with_empty_payload() {
        // PUBLISH QoS 0, remaining length 5, topic "a/b", no payload.
        let wire = [0x30, 0x05, 0x00, 0x03, b'a', b'/', b'b'];
        assert_wire(
            &Publish::new("a/b", Bytes::new()).into(),
            ProtocolVersion::V3_1_1,
            &wire,
        );
    }

    #[test]
    fn spec_3_3_1_qos1_retained() {
        let publish = Publish::new("a/b", "hi")
            .with_qos(QoS::AtLeastOnce, id(10))
            .with_retain(true);
        #[rustfmt::skip]
        let wire = [
            0x33, 0x09,                      // PUBLISH QoS 1 + RETAIN, remaining length 9
            0x00, 0x03, b'a', b'/', b'b',    // topic
            0x00, 0x0A,                      // packet id 10
            b'h', b'i',                      // payload
        ];
        assert_wire(&publish.clone().into(), ProtocolVersion::V3_1_1, &wire);
        assert_wire(&publish.into(), ProtocolVersion::V3_1, &wire);
    }

    #[test]
    fn spec_3_3_1_1_qos2_duplicate() {
        let publish = Publish {
            dup: true,
            ..Publish::new("a/b", "hi").with_qos(QoS::ExactlyOnce, id(0x1234))
        };
        #[rustfmt::skip]
        let wire = [
            0x3C, 0x09,                      // PUBLISH DUP + QoS 2, remaining length 9
            0x00, 0x03, b'a', b'/', b'b',    // topic
            0x12, 0x34,                      // packet id 0x1234
            b'h', b'i',                      // payload
        ];
        assert_wire(&publish.into(), ProtocolVersion::V3_1_1, &wire);
    }

    #[test]
    fn spec_3_3_2_3_v5_qos0_without_properties() {
        #[rustfmt::skip]
        let wire = [
            0x30, 0x08,                      // PUBLISH QoS 0, remaining length 8
            0x00, 0x03, b'a', b'/', b'b',    // topic
            0x00,                            // property length 0
            b'h', b'i',                      // payload
        ];
        assert_wire(
            &Publish::new("a/b", "hi").into(),
            ProtocolVersion::V5,
            &wire,
        );
    }

    #[test]
    fn spec_3_3_2_3_v5_qos1_with_every_property() {
        let publish = Publish {
            properties: PublishProperties {
                payload_format_indicator: Some(true),
                message_expiry_interval: Some(30),
                topic_alias: NonZeroU16::new(5),
                response_topic: Some(TopicName::new("r/t").unwrap()),
                correlation_data: Some(Bytes::from_static(&[1, 2, 3])),
                // Order kept as sent, even when not sorted [MQTT-3.3.2-18].
                user_properties: vec![("z".into(), "1".into()), ("a".into(), "2".into())],
                // One per matching subscription; 200 takes a two-byte varint.
                subscription_identifiers: vec![
                    NonZeroU32::new(1).unwrap(),
                    NonZeroU32::new(200).unwrap(),
                ],
                content_type: Some("json".into()),
            },
            ..Publish::new("t", "{}").with_qos(QoS::AtLeastOnce, id(1))
        };
        #[rustfmt::skip]
        let wire = [
            0x32, 0x38,                                // PUBLISH QoS 1, remaining length 56
            0x00, 0x01, b't',                          // topic "t"
            0x00, 0x01,                                // packet id 1
            0x30,                                      // property length 48
            0x01, 0x01,                                //   payload format indicator 1
            0x02, 0x00, 0x00, 0x00, 0x1E,              //   message expiry 30
            0x23, 0x00, 0x05,                          //   topic alias 5
            0x08, 0x00, 0x03, b'r', b'/', b't',        //   response topic "r/t"
            0x09, 0x00, 0x03, 0x01, 0x02, 0x03,        //   correlation data
            0x26, 0x00, 0x01, b'z', 0x00, 0x01, b'1',  //   user property z=1
            0x26, 0x00, 0x01, b'a', 0x00, 0x01, b'2',  //   user property a=2
            0x0B, 0x01,                                //   subscription identifier 1
            0x0B, 0xC8, 0x01,                          //   subscription identifier 200
            0x03, 0x00, 0x04, b'j', b's', b'o', b'n',  //   content type "json"
            b'{', b'}',                                // payload
        ];
        assert_wire(&publish.into(), ProtocolVersion::V5, &wire);
    }

    #[test]
    fn spec_3_3_2_3_4_topic_alias_with_empty_topic() {
        let mut publish = Publish::new("", "p");
        publish.properties.topic_alias = NonZeroU16::new(7);
        #[rustfmt::skip]
        let wire = [
            0x30, 0x07,               // PUBLISH QoS 0, remaining length 7
            0x00, 0x00,               // empty topic name
            0x03, 0x23, 0x00, 0x07,   // properties: topic alias 7
            b'p',                     // payload
        ];
        assert_wire(&publish.into(), ProtocolVersion::V5, &wire);
    }

    #[test]
    fn v5_properties_are_not_written_for_v3() {
        let mut publish = Publish::new("t", "x");
        publish.properties.message_expiry_interval = Some(9);
        let mut buf = BytesMut::new();
        Packet::from(publish)
            .encode(ProtocolVersion::V3_1_1, &mut buf)
            .unwrap();
        assert_eq!(&buf[..], [0x30, 0x04, 0x00, 0x01, b't', b'x']);
    }

    #[test]
    fn long_payload_uses_a_two_byte_remaining_length() {
        let publish = Publish::new("t", vec![0x55; 200]);
        let mut buf = BytesMut::new();
        let written = Packet::from(publish.clone())
            .encode(ProtocolVersion::V3_1_1, &mut buf)
            .unwrap();
        // Remaining length 3 + 200 = 203 = 0xCB 0x01.
        assert_eq!(&buf[..5], [0x30, 0xCB, 0x01, 0x00, 0x01]);
        assert_eq!(written, 206);
        assert_eq!(
            decode(ProtocolVersion::V3_1_1, &buf).unwrap(),
            Packet::Publish(publish)
        );
    }

    #[test]
    fn fan_out_encode_matches_packet_encode() {
        let publish = Publish::new("a/b", "hi").with_qos(QoS::ExactlyOnce, id(3));
        for version in [
            ProtocolVersion::V3_1,
            ProtocolVersion::V3_1_1,
            ProtocolVersion::V5,
        ] {
            let (mut direct, mut wrapped) = (BytesMut::new(), BytesMut::new());
            let n = publish.encode(version, &mut direct).unwrap();
            let m = Packet::from(publish.clone())
                .encode(version, &mut wrapped)
                .unwrap();
            assert_eq!(direct, wrapped);
            assert_eq!((n, m), (direct.len(), direct.len()));
        }
    }

    #[test]
    fn mqtt_3_3_1_4_publish_qos_3_is_malformed() {
        #[rustfmt::skip]
        let wire = [0x36, 0x07, 0x00, 0x03, b'a', b'/', b'b', 0x00, 0x01];
        assert_rejected(
            ProtocolVersion::V5,
            &wire,
            DecodeError::PublishQoS3,
            ReasonCode::MALFORMED_PACKET,
        );
    }

    #[test]
    fn mqtt_3_3_1_2_dup_on_qos0() {
        // covers: [v311:MQTT-3.3.1-2]
        let wire = [0x38, 0x05, 0x00, 0x03, b'a', b'/', b'b'];
        assert_rejected(
            ProtocolVersion::V3_1_1,
            &wire,
            DecodeError::DupOnQoS0,
            ReasonCode::MALFORMED_PACKET,
        );
    }

    #[test]
    fn spec_2_2_1_3_zero_packet_id_rejected() {
        // covers: [v311:MQTT-2.3.1-1]
        // QoS 1 with packet id 0.
        let wire = [0x32, 0x07, 0x00, 0x03, b'a', b'/', b'b', 0x00, 0x00];
        assert_rejected(
            ProtocolVersion::V3_1_1,
            &wire,
            DecodeError::ZeroPacketId {
                packet: PacketType::Publish,
            },
            ReasonCode::PROTOCOL_ERROR,
        );
    }

    #[test]
    fn mqtt_3_3_2_2_wildcard_in_topic_name() {
        // covers: [v311:MQTT-3.3.2-2]
        for wildcard in [b'+', b'#'] {
            let wire = [0x30, 0x05, 0x00, 0x03, b'a', b'/', wildcard];
            assert_rejected(
                ProtocolVersion::V3_1_1,
                &wire,
                DecodeError::InvalidTopicName(TopicError::WildcardInName),
                ReasonCode::TOPIC_NAME_INVALID,
            );
        }
    }

    #[test]
    fn spec_3_3_2_1_empty_topic_without_alias() {
        // v3: no topic alias exists, so an empty topic is always refused.
        assert_rejected(
            ProtocolVersion::V3_1_1,
            &[0x30, 0x02, 0x00, 0x00],
            DecodeError::EmptyTopicWithoutAlias,
            ReasonCode::PROTOCOL_ERROR,
        );
        // v5: "It is a Protocol Error if the Topic Name is zero length and there is no
        // Topic Alias" (3.3.2.1).
        assert_rejected(
            ProtocolVersion::V5,
            &[0x30, 0x03, 0x00, 0x00, 0x00],
            DecodeError::EmptyTopicWithoutAlias,
            ReasonCode::PROTOCOL_ERROR,
        );
    }

    #[test]
    fn mqtt_3_3_2_8_topic_alias_zero_is_topic_alias_invalid() {
        assert_rejected(
            ProtocolVersion::V5,
            &v5_publish(&[0x23, 0x00, 0x00]),
            DecodeError::InvalidPropertyValue {
                property: PropertyId::TopicAlias,
                value: 0,
            },
            ReasonCode::TOPIC_ALIAS_INVALID,
        );
    }

    #[test]
    fn duplicate_topic_alias_is_a_protocol_error() {
        #[rustfmt::skip]
        let wire = v5_publish(&[
            0x23, 0x00, 0x01,  // topic alias 1
            0x23, 0x00, 0x02,  // topic alias 2
        ]);
        assert_rejected(
            ProtocolVersion::V5,
            &wire,
            DecodeError::DuplicateProperty(PropertyId::TopicAlias),
            ReasonCode::PROTOCOL_ERROR,
        );
    }

    #[test]
    fn every_single_valued_publish_property_may_appear_once() {
        let cases: [(PropertyId, &[u8]); 6] = [
            (PropertyId::PayloadFormatIndicator, &[0x01, 0x00]),
            (PropertyId::MessageExpiryInterval, &[0x02, 0, 0, 0, 1]),
            (PropertyId::ContentType, &[0x03, 0x00, 0x00]),
            (PropertyId::ResponseTopic, &[0x08, 0x00, 0x01, b'r']),
            (PropertyId::CorrelationData, &[0x09, 0x00, 0x00]),
            (PropertyId::TopicAlias, &[0x23, 0x00, 0x09]),
        ];
        for (property, bytes) in cases {
            let once = v5_publish(bytes);
            assert!(decode(ProtocolVersion::V5, &once).is_ok(), "{property}");
            let twice = v5_publish(&[bytes, bytes].concat());
            assert_eq!(
                decode(ProtocolVersion::V5, &twice),
                Err(DecodeError::DuplicateProperty(property))
            );
        }
    }

    #[test]
    fn repeated_user_properties_are_allowed_and_kept_in_order() {
        #[rustfmt::skip]
        let wire = v5_publish(&[
            0x26, 0x00, 0x01, b'k', 0x00, 0x01, b'2',  // user property k=2
            0x26, 0x00, 0x01, b'k', 0x00, 0x01, b'1',  // user property k=1
            0x26, 0x00, 0x01, b'k', 0x00, 0x01, b'2',  // user property k=2 again
        ]);
        let Packet::Publish(publish) = decode(ProtocolVersion::V5, &wire).unwrap() else {
            panic!("not a PUBLISH");
        };
        let values: Vec<&str> = publish
            .properties
            .user_properties
            .iter()
            .map(|(_, v)| &**v)
            .collect();
        assert_eq!(values, ["2", "1", "2"]);
    }

    #[test]
    fn spec_3_3_2_3_2_payload_format_indicator_2_is_rejected() {
        assert_rejected(
            ProtocolVersion::V5,
            &v5_publish(&[0x01, 0x02]),
            DecodeError::InvalidPropertyValue {
                property: PropertyId::PayloadFormatIndicator,
                value: 2,
            },
            ReasonCode::PROTOCOL_ERROR,
        );
    }

    #[test]
    fn spec_3_3_2_3_8_subscription_identifier_zero_is_a_protocol_error() {
        assert_rejected(
            ProtocolVersion::V5,
            &v5_publish(&[0x0B, 0x00]),
            DecodeError::InvalidPropertyValue {
                property: PropertyId::SubscriptionIdentifier,
                value: 0,
            },
            ReasonCode::PROTOCOL_ERROR,
        );
    }

    #[test]
    fn mqtt_3_3_2_14_response_topic_with_wildcard_rejected() {
        assert_rejected(
            ProtocolVersion::V5,
            &v5_publish(&[0x08, 0x00, 0x01, b'#']),
            DecodeError::InvalidTopicName(TopicError::WildcardInName),
            ReasonCode::TOPIC_NAME_INVALID,
        );
    }

    #[test]
    fn spec_2_2_2_2_property_not_allowed_in_publish() {
        // Session Expiry Interval is a CONNECT/CONNACK/DISCONNECT property.
        assert_rejected(
            ProtocolVersion::V5,
            &v5_publish(&[0x11, 0x00, 0x00, 0x00, 0x00]),
            DecodeError::PropertyNotAllowed {
                property: PropertyId::SessionExpiryInterval,
                context: "PUBLISH",
            },
            ReasonCode::MALFORMED_PACKET,
        );
    }

    #[test]
    fn property_length_past_the_packet_is_malformed() {
        // Property length 5 with one byte left.
        let wire = [0x30, 0x05, 0x00, 0x01, b't', 0x05, 0x01];
        assert_rejected(
            ProtocolVersion::V5,
            &wire,
            DecodeError::PropertyLength,
            ReasonCode::MALFORMED_PACKET,
        );
    }

    #[test]
    fn truncated_publish_is_malformed() {
        let truncated = DecodeError::Truncated {
            packet: PacketType::Publish,
        };
        // QoS 1 whose remaining length ends before the packet id.
        assert_rejected(
            ProtocolVersion::V3_1_1,
            &[0x32, 0x05, 0x00, 0x03, b'a', b'/', b'b'],
            truncated.clone(),
            ReasonCode::MALFORMED_PACKET,
        );
        // A topic length of 5 with one byte of topic.
        assert_rejected(
            ProtocolVersion::V3_1_1,
            &[0x30, 0x03, 0x00, 0x05, b'a'],
            truncated.clone(),
            ReasonCode::MALFORMED_PACKET,
        );
        // v5 without the property length.
        assert_rejected(
            ProtocolVersion::V5,
            &[0x30, 0x03, 0x00, 0x01, b't'],
            truncated,
            ReasonCode::MALFORMED_PACKET,
        );
    }

    #[test]
    fn encode_refuses_qos_and_packet_id_mismatch() {
        let cases = [
            Publish::new("t", "x").with_qos(QoS::AtLeastOnce, None),
            Publish::new("t", "x").with_qos(QoS::ExactlyOnce, None),
            Publish::new("t", "x").with_qos(QoS::AtMostOnce, id(1)),
        ];
        for publish in cases {
            let mut buf = BytesMut::new();
            assert_eq!(
                publish.encode(ProtocolVersion::V3_1_1, &mut buf),
                Err(EncodeError::PacketIdMismatch)
            );
            let packet = Packet::from(publish);
            assert_eq!(
                packet.encode(ProtocolVersion::V5, &mut buf),
                Err(EncodeError::PacketIdMismatch)
            );
            assert!(buf.is_empty());
        }
    }

    #[test]
    fn encode_refuses_a_topic_longer_than_65535_bytes() {
        let publish = Publish::new("t".repeat(65_536), "x");
        let error = EncodeError::FieldTooLong {
            field: "topic name",
            len: 65_536,
        };
        let mut buf = BytesMut::new();
        assert_eq!(
            Packet::from(publish.clone()).encode(ProtocolVersion::V3_1_1, &mut buf),
            Err(error.clone())
        );
        assert_eq!(publish.encode(ProtocolVersion::V5, &mut buf), Err(error));
        assert!(buf.is_empty());
    }

    #[test]
    fn encode_refuses_a_property_longer_than_65535_bytes() {
        let mut publish = Publish::new("t", "x");
        publish.properties.correlation_data = Some(Bytes::from(vec![0; 65_536]));
        assert_eq!(
            publish.encode(ProtocolVersion::V5, &mut BytesMut::new()),
            Err(EncodeError::FieldTooLong {
                field: "Correlation Data",
                len: 65_536
            })
        );
        // v3 does not write properties, so it does not measure them either.
        assert!(publish
            .encode(ProtocolVersion::V3_1_1, &mut BytesMut::new())
            .is_ok());
    }

    #[test]
    fn mqtt_3_1_2_24_encode_within_refuses_a_too_large_packet() {
        // 0x30 0x07 + 7 bytes: 9 in all.
        let packet = Packet::from(Publish::new("a/b", "hi"));
        let mut buf = BytesMut::new();
        assert_eq!(
            packet.encode_within(ProtocolVersion::V3_1_1, 8, &mut buf),
            Err(EncodeError::PacketTooLarge { size: 9, max: 8 })
        );
        assert!(buf.is_empty(), "nothing may be written");
        assert_eq!(
            packet.encode_within(ProtocolVersion::V3_1_1, 9, &mut buf),
            Ok(9)
        );
        assert_eq!(buf.len(), 9);
        // The same packet is one byte larger in v5 (property length).
        assert_eq!(
            packet.encode_within(ProtocolVersion::V5, 9, &mut BytesMut::new()),
            Err(EncodeError::PacketTooLarge { size: 10, max: 9 })
        );
    }

    #[test]
    fn mqtt_2_2_1_2_qos0_publish_has_no_packet_id() {
        // covers: [v311:MQTT-2.3.1-5]
        for version in [ProtocolVersion::V3_1_1, ProtocolVersion::V5] {
            let mut buf = BytesMut::new();
            let with_id = Publish::new("t", "x").with_qos(QoS::AtMostOnce, id(1));
            assert_eq!(
                with_id.encode(version, &mut buf),
                Err(EncodeError::PacketIdMismatch)
            );
            // The encoder writes no packet id: the topic, (v5) the properties, the payload.
            let properties: &[u8] = if version.is_v5() { &[0x00] } else { &[] };
            let body = [&[0x00, 0x01, b't'][..], properties, &[0x00, 0x07]].concat();
            let mut wire = vec![0x30, body.len() as u8];
            wire.extend_from_slice(&body);
            let publish = Publish::new("t", Bytes::from_static(&[0x00, 0x07]));
            assert_wire(&publish.into(), version, &wire);
            // The decoder reads no packet id either: the two bytes are payload. With QoS 1
            // the same bytes after the topic are the packet id.
            let Packet::Publish(qos0) = decode(version, &wire).unwrap() else {
                panic!("not a PUBLISH");
            };
            assert_eq!(
                (qos0.packet_id, &qos0.payload[..]),
                (None, &[0x00, 0x07][..])
            );
            let qos1 = [&[0x00, 0x01, b't', 0x00, 0x07][..], properties].concat();
            let mut wire = vec![0x32, qos1.len() as u8];
            wire.extend_from_slice(&qos1);
            let Packet::Publish(qos1) = decode(version, &wire).unwrap() else {
                panic!("not a PUBLISH");
            };
            assert_eq!((qos1.packet_id, qos1.payload.len()), (id(7), 0));
        }
    }

    /// Ill-formed UTF-8 strings, each with its length prefix, and the error each must give.
    fn bad_strings() -> [(Vec<u8>, DecodeError); 4] {
        [
            (vec![0x00, 0x01, 0xFF], DecodeError::InvalidUtf8),
            // An encoded surrogate U+D800.
            (vec![0x00, 0x03, 0xED, 0xA0, 0x80], DecodeError::InvalidUtf8),
            // An overlong encoding of '/'.
            (vec![0x00, 0x02, 0xC0, 0xAF], DecodeError::InvalidUtf8),
            (vec![0x00, 0x02, b'a', 0x00], DecodeError::NullCharacter),
        ]
    }

    #[test]
    fn mqtt_3_3_2_1_topic_name_is_the_first_field_and_utf8() {
        // covers: [v311:MQTT-3.3.2-1]
        for version in [ProtocolVersion::V3_1_1, ProtocolVersion::V5] {
            let properties: &[u8] = if version.is_v5() { &[0x00] } else { &[] };
            for (topic, error) in bad_strings() {
                // QoS 1: the topic, then the packet id.
                let body = [&topic[..], &[0x00, 0x01], properties].concat();
                let mut wire = vec![0x32, body.len() as u8];
                wire.extend_from_slice(&body);
                assert_rejected(version, &wire, error, ReasonCode::MALFORMED_PACKET);
            }
            let body = [&[0x00, 0x03, b'a', 0xC3, 0xA9, 0x12, 0x34][..], properties].concat();
            let mut wire = vec![0x32, body.len() as u8];
            wire.extend_from_slice(&body);
            let expected = Publish::new("aé", Bytes::new()).with_qos(QoS::AtLeastOnce, id(0x1234));
            assert_wire(&expected.into(), version, &wire);
        }
    }

    /// Asserts that a v5 PUBLISH whose only property is `id` followed by each ill-formed
    /// string is rejected, and that `good` (id and value) decodes.
    fn assert_string_property_is_utf8(id: u8, good: &[u8]) -> PublishProperties {
        for (value, error) in bad_strings() {
            let property = [&[id][..], &value].concat();
            assert_rejected(
                ProtocolVersion::V5,
                &v5_publish(&property),
                error,
                ReasonCode::MALFORMED_PACKET,
            );
        }
        match decode(ProtocolVersion::V5, &v5_publish(good)).unwrap() {
            Packet::Publish(publish) => publish.properties,
            other => panic!("expected a PUBLISH, got {other:?}"),
        }
    }

    #[test]
    fn mqtt_3_3_2_13_response_topic_must_be_utf8() {
        let good = [0x08, 0x00, 0x04, b'r', b'/', 0xC3, 0xA9];
        let properties = assert_string_property_is_utf8(0x08, &good);
        assert_eq!(
            properties.response_topic,
            Some(TopicName::new("r/é").unwrap())
        );
    }

    #[test]
    fn mqtt_3_3_2_19_content_type_must_be_utf8() {
        let good = [0x03, 0x00, 0x03, b't', 0xC3, 0xA9];
        let properties = assert_string_property_is_utf8(0x03, &good);
        assert_eq!(properties.content_type.as_deref(), Some("té"));
    }

    #[test]
    fn mqtt_1_5_7_1_user_property_name_and_value_must_be_utf8() {
        for (bad, error) in bad_strings() {
            // The name ill-formed, then the value.
            for property in [
                [&[0x26][..], &bad, &[0x00, 0x01, b'v']].concat(),
                [&[0x26, 0x00, 0x01, b'k'][..], &bad].concat(),
            ] {
                assert_rejected(
                    ProtocolVersion::V5,
                    &v5_publish(&property),
                    error.clone(),
                    ReasonCode::MALFORMED_PACKET,
                );
            }
        }
        let good = [0x26, 0x00, 0x02, 0xC3, 0xA9, 0x00, 0x03, 0xE2, 0x82, 0xAC];
        let Packet::Publish(publish) = decode(ProtocolVersion::V5, &v5_publish(&good)).unwrap()
        else {
            panic!("not a PUBLISH");
        };
        assert_eq!(
            publish.properties.user_properties,
            vec![("é".into(), "€".into())]
        );
    }
}
