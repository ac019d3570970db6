//! SUBACK (MQTT 5.0 3.9, 3.1.1 3.9): one reason code per topic filter of the SUBSCRIBE, in
//! order [MQTT-3.9.3-1]. Before 5.0 the codes are 0, 1, 2 (granted QoS) or 0x80 (failure).

use bytes::BufMut;

use crate::codec::Reader;
use crate::error::{DecodeError, EncodeError};
use crate::properties::{decode_ack_in, AckProperties, Context, PropertySet};
use crate::reason::ReasonCode;
use crate::types::{PacketId, PacketType, ProtocolVersion};

/// A SUBACK packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubAck {
    pub packet_id: PacketId,
    /// One per requested filter; values below 0x80 grant that QoS.
    pub reason_codes: Vec<ReasonCode>,
    /// MQTT 5.0 only.
    pub properties: AckProperties,
}

impl SubAck {
    /// A SUBACK with these codes and no properties.
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
        let packet = PacketType::SubAck;
        let packet_id = PacketId::new(reader.u16()?).ok_or(DecodeError::ZeroPacketId { packet })?;
        let properties = if version.is_v5() {
            decode_ack_in(reader, Context::SubAck)?
        } else {
            AckProperties::default()
        };
        let mut reason_codes = Vec::with_capacity(reader.remaining());
        while !reader.is_empty() {
            let code = reader.u8()?;
            let valid = if version.is_v5() {
                ReasonCode(code).is_valid_for(packet)
            } else {
                matches!(code, 0 | 1 | 2 | 0x80)
            };
            if !valid {
                return Err(DecodeError::InvalidReasonCode { packet, code });
            }
            reason_codes.push(ReasonCode(code));
        }
        Ok(Self {
            packet_id,
            reason_codes,
            properties,
        })
    }

    pub(crate) fn remaining_len(&self, version: ProtocolVersion) -> Result<usize, EncodeError> {
        let properties = if version.is_v5() {
            self.properties.encoded_len()?
        } else {
            0
        };
        Ok(2 + properties + self.reason_codes.len())
    }

    pub(crate) fn encode_body(&self, version: ProtocolVersion, buf: &mut impl BufMut) {
        buf.put_u16(self.packet_id.get());
        if version.is_v5() {
            let len = self.properties.content_len().unwrap_or(0);
            self.properties.encode(len, buf);
            for code in &self.reason_codes {
                buf.put_u8(code.0);
            }
        } else {
            // 3.x knows only the granted QoS or the single failure code 0x80.
            for code in &self.reason_codes {
                buf.put_u8(if code.is_success() { code.0 } else { 0x80 });
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
    fn spec_3_9_3_v3_granted_qos_and_failure() {
        let suback = SubAck::new(
            id(10),
            vec![
                ReasonCode::GRANTED_QOS_0,
                ReasonCode::GRANTED_QOS_1,
                ReasonCode::GRANTED_QOS_2,
                ReasonCode::UNSPECIFIED_ERROR,
            ],
        );
        // SUBACK, remaining length 6, packet id 10, return codes 0, 1, 2, 0x80 (failure).
        let wire = [0x90, 0x06, 0x00, 0x0A, 0x00, 0x01, 0x02, 0x80];
        assert_wire(&suback.clone().into(), ProtocolVersion::V3_1_1, &wire);
        assert_wire(&suback.into(), ProtocolVersion::V3_1, &wire);
    }

    #[test]
    fn v5_failure_codes_are_written_as_0x80_for_v3() {
        let suback = SubAck::new(
            id(10),
            vec![
                ReasonCode::GRANTED_QOS_2,
                ReasonCode::NOT_AUTHORIZED,
                ReasonCode::WILDCARD_SUBSCRIPTIONS_NOT_SUPPORTED,
            ],
        );
        let mut buf = BytesMut::new();
        Packet::from(suback)
            .encode(ProtocolVersion::V3_1_1, &mut buf)
            .unwrap();
        assert_eq!(&buf[..], [0x90, 0x05, 0x00, 0x0A, 0x02, 0x80, 0x80]);
    }

    #[test]
    fn spec_3_9_3_v5_reason_codes_without_properties() {
        let suback = SubAck::new(
            id(10),
            vec![ReasonCode::GRANTED_QOS_2, ReasonCode::TOPIC_FILTER_INVALID],
        );
        // SUBACK, remaining length 5, packet id 10, property length 0, codes 0x02 0x8F.
        let wire = [0x90, 0x05, 0x00, 0x0A, 0x00, 0x02, 0x8F];
        assert_wire(&suback.into(), ProtocolVersion::V5, &wire);
    }

    #[test]
    fn spec_3_9_2_1_v5_with_properties() {
        let mut suback = SubAck::new(
            id(1),
            vec![
                ReasonCode::GRANTED_QOS_0,
                ReasonCode::WILDCARD_SUBSCRIPTIONS_NOT_SUPPORTED,
            ],
        );
        suback.properties.reason_string = Some("r".into());
        suback.properties.user_properties = vec![("a".into(), "b".into())];
        #[rustfmt::skip]
        let wire = [
            0x90, 0x10,                                // SUBACK, remaining length 16
            0x00, 0x01,                                // packet id 1
            0x0B,                                      // property length 11
            0x1F, 0x00, 0x01, b'r',                    //   reason string "r"
            0x26, 0x00, 0x01, b'a', 0x00, 0x01, b'b',  //   user property a=b
            0x00, 0xA2,                                // granted QoS 0, wildcards not supported
        ];
        assert_wire(&suback.into(), ProtocolVersion::V5, &wire);
    }

    #[test]
    fn spec_3_9_3_v3_return_code_outside_0_1_2_0x80() {
        for code in [0x03, 0x81, 0x87] {
            assert_rejected(
                ProtocolVersion::V3_1_1,
                &[0x90, 0x03, 0x00, 0x01, code],
                DecodeError::InvalidReasonCode {
                    packet: PacketType::SubAck,
                    code,
                },
                ReasonCode::PROTOCOL_ERROR,
            );
        }
    }

    #[test]
    fn mqtt_3_9_3_2_v5_reason_code_not_listed_for_suback() {
        // 0x11 is UNSUBACK's, 0x10 PUBACK's, 0x03 undefined.
        for code in [0x03, 0x10, 0x11, 0x81] {
            assert_rejected(
                ProtocolVersion::V5,
                &[0x90, 0x04, 0x00, 0x01, 0x00, code],
                DecodeError::InvalidReasonCode {
                    packet: PacketType::SubAck,
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
            &[0x90, 0x03, 0x00, 0x00, 0x00],
            DecodeError::ZeroPacketId {
                packet: PacketType::SubAck,
            },
            ReasonCode::PROTOCOL_ERROR,
        );
    }

    #[test]
    fn mqtt_2_1_3_1_reserved_header_flags() {
        assert_rejected(
            ProtocolVersion::V3_1_1,
            &[0x92, 0x03, 0x00, 0x01, 0x00],
            DecodeError::InvalidHeaderFlags {
                packet: PacketType::SubAck,
                flags: 0x2,
            },
            ReasonCode::MALFORMED_PACKET,
        );
    }

    #[test]
    fn spec_2_2_2_2_property_not_allowed_in_suback() {
        #[rustfmt::skip]
        let wire = [
            0x90, 0x09, 0x00, 0x01,
            0x05, 0x11, 0x00, 0x00, 0x00, 0x00,        // session expiry interval
            0x00,
        ];
        assert_rejected(
            ProtocolVersion::V5,
            &wire,
            DecodeError::PropertyNotAllowed {
                property: PropertyId::SessionExpiryInterval,
                context: "SUBACK",
            },
            ReasonCode::MALFORMED_PACKET,
        );
    }

    #[test]
    fn duplicate_reason_string_is_a_protocol_error() {
        #[rustfmt::skip]
        let wire = [
            0x90, 0x0C, 0x00, 0x01,
            0x08, 0x1F, 0x00, 0x01, b'a', 0x1F, 0x00, 0x01, b'b',
            0x00,
        ];
        assert_rejected(
            ProtocolVersion::V5,
            &wire,
            DecodeError::DuplicateProperty(PropertyId::ReasonString),
            ReasonCode::PROTOCOL_ERROR,
        );
    }

    #[test]
    fn truncated_suback_is_malformed() {
        let truncated = DecodeError::Truncated {
            packet: PacketType::SubAck,
        };
        assert_rejected(
            ProtocolVersion::V3_1_1,
            &[0x90, 0x01, 0x00],
            truncated.clone(),
            ReasonCode::MALFORMED_PACKET,
        );
        // v5: the property length is missing.
        assert_rejected(
            ProtocolVersion::V5,
            &[0x90, 0x02, 0x00, 0x01],
            truncated,
            ReasonCode::MALFORMED_PACKET,
        );
    }
}
