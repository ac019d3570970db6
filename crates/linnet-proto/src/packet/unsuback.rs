//! UNSUBACK (MQTT 5.0 3.11, 3.1.1 3.11): in 5.0 one reason code per topic filter of the
//! UNSUBSCRIBE [MQTT-3.11.3-1]; before 5.0 only the packet identifier.

use bytes::BufMut;

use crate::codec::Reader;
use crate::error::{DecodeError, EncodeError};
use crate::properties::{decode_ack_in, AckProperties, Context, PropertySet};
use crate::reason::ReasonCode;
use crate::types::{PacketId, PacketType, ProtocolVersion};

/// An UNSUBACK packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsubAck {
    pub packet_id: PacketId,
    /// MQTT 5.0 only: one per filter. Empty when decoded from 3.x.
    pub reason_codes: Vec<ReasonCode>,
    /// MQTT 5.0 only.
    pub properties: AckProperties,
}

impl UnsubAck {
    /// An UNSUBACK with these codes and no properties.
    pub fn new(packet_id: PacketId, reason_codes: Vec<ReasonCode>) -> Self {
        Self {
            packet_id,
            reason_codes,
            properties: AckProperties::default(),
        }
    }

    pub(crate) fn decode(
        reader: &mut Reader,
        version: ProtocolVersion,
    ) -> Result<Self, DecodeError> {
        let packet = PacketType::UnsubAck;
        let packet_id = PacketId::new(reader.u16()?).ok_or(DecodeError::ZeroPacketId { packet })?;
        let mut unsuback = Self::new(packet_id, Vec::new());
        if version.is_v5() {
            unsuback.properties = decode_ack_in(reader, Context::UnsubAck)?;
            while !reader.is_empty() {
                let code = reader.u8()?;
                if !ReasonCode(code).is_valid_for(packet) {
                    return Err(DecodeError::InvalidReasonCode { packet, code });
                }
                unsuback.reason_codes.push(ReasonCode(code));
            }
        }
        Ok(unsuback)
    }

    pub(crate) fn remaining_len(&self, version: ProtocolVersion) -> Result<usize, EncodeError> {
        if !version.is_v5() {
            return Ok(2);
        }
        Ok(2 + self.properties.encoded_len()? + self.reason_codes.len())
    }

    pub(crate) fn encode_body(&self, version: ProtocolVersion, buf: &mut impl BufMut) {
        buf.put_u16(self.packet_id.get());
        if version.is_v5() {
            let len = self.properties.content_len().unwrap_or(0);
            self.properties.encode(len, buf);
            for code in &self.reason_codes {
                buf.put_u8(code.0);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use bytes::BytesMut;

    use super::*;
    use crate::packet::test_support::{assert_rejected, assert_wire};
    use crate::packet::Packet;
    use crate::properties::PropertyId;

    fn id(n: u16) -> PacketId {
        PacketId::new(n).unwrap()
    }

    #[test]
    fn spec_3_11_v3_unsuback_is_a_packet_id_only() {
        // UNSUBACK, remaining length 2, packet id 5.
        let wire = [0xB0, 0x02, 0x00, 0x05];
        for version in [ProtocolVersion::V3_1, ProtocolVersion::V3_1_1] {
            assert_wire(&UnsubAck::new(id(5), Vec::new()).into(), version, &wire);
        }
    }

    #[test]
    fn v5_fields_are_not_written_for_v3() {
        let mut unsuback = UnsubAck::new(id(5), vec![ReasonCode::NO_SUBSCRIPTION_EXISTED]);
        unsuback.properties.reason_string = Some("x".into());
        let mut buf = BytesMut::new();
        Packet::from(unsuback)
            .encode(ProtocolVersion::V3_1_1, &mut buf)
            .unwrap();
        assert_eq!(&buf[..], [0xB0, 0x02, 0x00, 0x05]);
    }

    #[test]
    fn spec_3_11_3_v5_reason_codes() {
        let unsuback = UnsubAck::new(
            id(5),
            vec![ReasonCode::SUCCESS, ReasonCode::NO_SUBSCRIPTION_EXISTED],
        );
        // UNSUBACK, remaining length 5, packet id 5, property length 0, codes 0x00 0x11.
        let wire = [0xB0, 0x05, 0x00, 0x05, 0x00, 0x00, 0x11];
        assert_wire(&unsuback.into(), ProtocolVersion::V5, &wire);
    }

    #[test]
    fn spec_3_11_2_1_v5_with_reason_string() {
        let mut unsuback = UnsubAck::new(id(6), vec![ReasonCode::TOPIC_FILTER_INVALID]);
        unsuback.properties.reason_string = Some("gone".into());
        #[rustfmt::skip]
        let wire = [
            0xB0, 0x0B,                                // UNSUBACK, remaining length 11
            0x00, 0x06,                                // packet id 6
            0x07,                                      // property length 7
            0x1F, 0x00, 0x04, b'g', b'o', b'n', b'e',  //   reason string "gone"
            0x8F,                                      // topic filter invalid
        ];
        assert_wire(&unsuback.into(), ProtocolVersion::V5, &wire);
    }

    #[test]
    fn v3_unsuback_with_extra_bytes_is_malformed() {
        assert_rejected(
            ProtocolVersion::V3_1_1,
            &[0xB0, 0x03, 0x00, 0x05, 0x00],
            DecodeError::TrailingBytes {
                packet: PacketType::UnsubAck,
                extra: 1,
            },
            ReasonCode::MALFORMED_PACKET,
        );
    }

    #[test]
    fn mqtt_3_11_3_2_v5_reason_code_not_listed_for_unsuback() {
        // Granted QoS 1 is SUBACK's, quota exceeded is not listed for UNSUBACK.
        for code in [0x01, 0x97, 0x9E] {
            assert_rejected(
                ProtocolVersion::V5,
                &[0xB0, 0x04, 0x00, 0x05, 0x00, code],
                DecodeError::InvalidReasonCode {
                    packet: PacketType::UnsubAck,
                    code,
                },
                ReasonCode::PROTOCOL_ERROR,
            );
        }
    }

    #[test]
    fn spec_2_2_1_zero_packet_id_rejected() {
        assert_rejected(
            ProtocolVersion::V3_1_1,
            &[0xB0, 0x02, 0x00, 0x00],
            DecodeError::ZeroPacketId {
                packet: PacketType::UnsubAck,
            },
            ReasonCode::PROTOCOL_ERROR,
        );
    }

    #[test]
    fn mqtt_2_1_3_1_reserved_header_flags() {
        assert_rejected(
            ProtocolVersion::V3_1_1,
            &[0xB2, 0x02, 0x00, 0x05],
            DecodeError::InvalidHeaderFlags {
                packet: PacketType::UnsubAck,
                flags: 0x2,
            },
            ReasonCode::MALFORMED_PACKET,
        );
    }

    #[test]
    fn spec_2_2_2_2_property_not_allowed_in_unsuback() {
        #[rustfmt::skip]
        let wire = [
            0xB0, 0x06, 0x00, 0x05,
            0x02, 0x0B, 0x01,                          // subscription identifier 1
            0x00,
        ];
        assert_rejected(
            ProtocolVersion::V5,
            &wire,
            DecodeError::PropertyNotAllowed {
                property: PropertyId::SubscriptionIdentifier,
                context: "UNSUBACK",
            },
            ReasonCode::MALFORMED_PACKET,
        );
    }

    #[test]
    fn v5_unsuback_without_property_length_is_truncated() {
        assert_rejected(
            ProtocolVersion::V5,
            &[0xB0, 0x02, 0x00, 0x05],
            DecodeError::Truncated {
                packet: PacketType::UnsubAck,
            },
            ReasonCode::MALFORMED_PACKET,
        );
    }
}
