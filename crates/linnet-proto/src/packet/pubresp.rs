//! PUBACK, PUBREC, PUBREL and PUBCOMP (MQTT 5.0 3.4-3.7): the four QoS 1/2 responses share
//! one layout, a packet identifier, a reason code and properties, so they share one struct.
//! In 5.0 the reason code and properties may be omitted when they are Success and empty
//! [MQTT-3.4.2-1]; before 5.0 only the packet identifier exists.

use bytes::BufMut;

use crate::codec::Reader;
use crate::error::{DecodeError, EncodeError};
use crate::properties::{AckProperties, PropertySet};
use crate::reason::ReasonCode;
use crate::types::{PacketId, ProtocolVersion};

/// The body of PUBACK, PUBREC, PUBREL or PUBCOMP; [`Packet`](crate::Packet) names which.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PubResponse {
    pub packet_id: PacketId,
    /// MQTT 5.0 only; Success when absent or for older versions.
    pub reason_code: ReasonCode,
    /// MQTT 5.0 only.
    pub properties: AckProperties,
}

impl PubResponse {
    /// A successful response for `packet_id`.
    pub fn new(packet_id: PacketId) -> Self {
        Self {
            packet_id,
            reason_code: ReasonCode::SUCCESS,
            properties: AckProperties::default(),
        }
    }

    /// A response for `packet_id` carrying `reason_code`.
    pub fn with_reason(packet_id: PacketId, reason_code: ReasonCode) -> Self {
        Self {
            reason_code,
            ..Self::new(packet_id)
        }
    }

    pub(crate) fn decode(
        reader: &mut Reader,
        version: ProtocolVersion,
    ) -> Result<Self, DecodeError> {
        let packet = reader.packet();
        let packet_id = PacketId::new(reader.u16()?).ok_or(DecodeError::ZeroPacketId { packet })?;
        let mut response = Self::new(packet_id);
        if version.is_v5() && !reader.is_empty() {
            let code = reader.u8()?;
            if !ReasonCode(code).is_valid_for(packet) {
                return Err(DecodeError::InvalidReasonCode { packet, code });
            }
            response.reason_code = ReasonCode(code);
            // Remaining length 3: a reason code and no property length [MQTT-3.4.2.2].
            if !reader.is_empty() {
                response.properties = AckProperties::decode(reader)?;
            }
        }
        Ok(response)
    }

    pub(crate) fn remaining_len(&self, version: ProtocolVersion) -> Result<usize, EncodeError> {
        if !version.is_v5() {
            return Ok(2);
        }
        let properties = self.properties.content_len()?;
        Ok(match (self.reason_code, properties) {
            (ReasonCode::SUCCESS, 0) => 2,
            (_, 0) => 3,
            _ => 3 + crate::codec::varint_len(properties as u32) + properties,
        })
    }

    pub(crate) fn encode_body(&self, version: ProtocolVersion, buf: &mut impl BufMut) {
        buf.put_u16(self.packet_id.get());
        if !version.is_v5() {
            return;
        }
        let properties = self.properties.content_len().unwrap_or(0);
        if self.reason_code == ReasonCode::SUCCESS && properties == 0 {
            return;
        }
        buf.put_u8(self.reason_code.0);
        if properties > 0 {
            self.properties.encode(properties, buf);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::test_support::{assert_wire, checked_decode as decode};
    use crate::packet::Packet;
    use crate::properties::PropertyId;
    use crate::types::PacketType;

    fn id(n: u16) -> PacketId {
        PacketId::new(n).unwrap()
    }

    /// Wraps a [`PubResponse`] as one of the four packets.
    type MakeResponse = fn(PubResponse) -> Packet;

    /// The four responses with their fixed header first byte.
    fn kinds() -> [(MakeResponse, u8); 4] {
        [
            (Packet::PubAck, 0x40),
            (Packet::PubRec, 0x50),
            (Packet::PubRel, 0x62),
            (Packet::PubComp, 0x70),
        ]
    }

    #[test]
    fn spec_3_4_v3_responses_are_a_packet_id_only() {
        for version in [ProtocolVersion::V3_1, ProtocolVersion::V3_1_1] {
            for (make, first) in kinds() {
                // Fixed header, remaining length 2, packet id 0x0102.
                let wire = [first, 0x02, 0x01, 0x02];
                assert_wire(&make(PubResponse::new(id(0x0102))), version, &wire);
            }
        }
    }

    #[test]
    fn spec_3_4_2_1_v5_success_without_properties_uses_the_short_form() {
        for (make, first) in kinds() {
            // Remaining length 2: reason code and properties omitted.
            let wire = [first, 0x02, 0x00, 0x07];
            assert_wire(&make(PubResponse::new(id(7))), ProtocolVersion::V5, &wire);
        }
    }

    #[test]
    fn spec_3_4_2_1_v5_reason_code_without_properties_has_remaining_length_3() {
        let cases = [
            (
                Packet::PubAck as MakeResponse,
                0x40,
                ReasonCode::NO_MATCHING_SUBSCRIBERS,
            ),
            (Packet::PubRec, 0x50, ReasonCode::QUOTA_EXCEEDED),
            (
                Packet::PubRel,
                0x62,
                ReasonCode::PACKET_IDENTIFIER_NOT_FOUND,
            ),
            (
                Packet::PubComp,
                0x70,
                ReasonCode::PACKET_IDENTIFIER_NOT_FOUND,
            ),
        ];
        for (make, first, reason) in cases {
            // Remaining length 3: packet id 2, reason code, no property length.
            let wire = [first, 0x03, 0x00, 0x02, reason.0];
            assert_wire(
                &make(PubResponse::with_reason(id(2), reason)),
                ProtocolVersion::V5,
                &wire,
            );
        }
    }

    #[test]
    fn spec_3_5_2_v5_full_form_with_properties() {
        let mut pubrec = PubResponse::with_reason(id(7), ReasonCode::UNSPECIFIED_ERROR);
        pubrec.properties = AckProperties {
            reason_string: Some("no".into()),
            user_properties: vec![("a".into(), "b".into())],
        };
        #[rustfmt::skip]
        let wire = [
            0x50, 0x10,                                // PUBREC, remaining length 16
            0x00, 0x07,                                // packet id 7
            0x80,                                      // unspecified error
            0x0C,                                      // property length 12
            0x1F, 0x00, 0x02, b'n', b'o',              //   reason string "no"
            0x26, 0x00, 0x01, b'a', 0x00, 0x01, b'b',  //   user property a=b
        ];
        assert_wire(&Packet::PubRec(pubrec), ProtocolVersion::V5, &wire);
    }

    #[test]
    fn spec_3_7_2_v5_success_with_properties_writes_the_reason_code() {
        let mut pubcomp = PubResponse::new(id(3));
        pubcomp.properties.reason_string = Some("ok".into());
        #[rustfmt::skip]
        let wire = [
            0x70, 0x09,                     // PUBCOMP, remaining length 9
            0x00, 0x03,                     // packet id 3
            0x00,                           // success
            0x05,                           // property length 5
            0x1F, 0x00, 0x02, b'o', b'k',   //   reason string "ok"
        ];
        assert_wire(&Packet::PubComp(pubcomp), ProtocolVersion::V5, &wire);
    }

    #[test]
    fn v5_explicit_success_and_empty_properties_decode_like_the_short_form() {
        // Remaining length 4: packet id, success, property length 0.
        assert_eq!(
            decode(ProtocolVersion::V5, &[0x40, 0x04, 0x00, 0x09, 0x00, 0x00]).unwrap(),
            Packet::PubAck(PubResponse::new(id(9)))
        );
    }

    #[test]
    fn v5_fields_are_not_written_for_v3() {
        let mut puback = PubResponse::with_reason(id(1), ReasonCode::NOT_AUTHORIZED);
        puback.properties.reason_string = Some("x".into());
        let mut buf = bytes::BytesMut::new();
        Packet::PubAck(puback)
            .encode(ProtocolVersion::V3_1_1, &mut buf)
            .unwrap();
        assert_eq!(&buf[..], [0x40, 0x02, 0x00, 0x01]);
    }

    #[test]
    fn mqtt_2_1_3_1_reserved_header_flags() {
        // covers: [v311:MQTT-2.2.2-1]
        // PUBREL must carry 0b0010; the others 0.
        for (wire, packet, flags) in [
            ([0x60, 0x02, 0x00, 0x01], PacketType::PubRel, 0x0),
            ([0x63, 0x02, 0x00, 0x01], PacketType::PubRel, 0x3),
            ([0x42, 0x02, 0x00, 0x01], PacketType::PubAck, 0x2),
            ([0x52, 0x02, 0x00, 0x01], PacketType::PubRec, 0x2),
            ([0x72, 0x02, 0x00, 0x01], PacketType::PubComp, 0x2),
        ] {
            let error = DecodeError::InvalidHeaderFlags { packet, flags };
            assert_eq!(decode(ProtocolVersion::V3_1_1, &wire), Err(error.clone()));
            assert_eq!(error.reason_code(), ReasonCode::MALFORMED_PACKET);
        }
    }

    #[test]
    fn spec_2_2_1_zero_packet_id_rejected() {
        for (_, first) in kinds() {
            let packet = PacketType::from_nibble(first >> 4).unwrap();
            let error = DecodeError::ZeroPacketId { packet };
            assert_eq!(
                decode(ProtocolVersion::V5, &[first, 0x02, 0x00, 0x00]),
                Err(error.clone())
            );
            assert_eq!(error.reason_code(), ReasonCode::PROTOCOL_ERROR);
        }
    }

    #[test]
    fn mqtt_3_4_2_1_invalid_reason_codes_per_packet() {
        // Each code is valid for some packet, but not for this one (table 2-6).
        for (first, code) in [
            (0x40, 0x92), // PUBACK: packet identifier not found is PUBREL/PUBCOMP only
            (0x40, 0x81), // PUBACK: malformed packet is CONNACK/DISCONNECT only
            (0x50, 0x04), // PUBREC: disconnect with will message
            (0x62, 0x10), // PUBREL: no matching subscribers is PUBACK/PUBREC only
            (0x62, 0x80), // PUBREL: unspecified error is not listed for PUBREL
            (0x70, 0x87), // PUBCOMP: not authorized is not listed for PUBCOMP
            (0x70, 0x03), // PUBCOMP: undefined
        ] {
            let packet = PacketType::from_nibble(first >> 4).unwrap();
            let error = DecodeError::InvalidReasonCode { packet, code };
            assert_eq!(
                decode(ProtocolVersion::V5, &[first, 0x03, 0x00, 0x01, code]),
                Err(error.clone())
            );
            assert_eq!(error.reason_code(), ReasonCode::PROTOCOL_ERROR);
        }
    }

    #[test]
    fn v3_puback_with_a_reason_code_byte_is_malformed() {
        // A 5.0 remaining length 3 form read as 3.1.1.
        let error = DecodeError::TrailingBytes {
            packet: PacketType::PubAck,
            extra: 1,
        };
        assert_eq!(
            decode(ProtocolVersion::V3_1_1, &[0x40, 0x03, 0x00, 0x01, 0x00]),
            Err(error.clone())
        );
        assert_eq!(error.reason_code(), ReasonCode::MALFORMED_PACKET);
    }

    #[test]
    fn truncated_packet_id_is_malformed() {
        for version in [ProtocolVersion::V3_1_1, ProtocolVersion::V5] {
            assert_eq!(
                decode(version, &[0x40, 0x01, 0x00]),
                Err(DecodeError::Truncated {
                    packet: PacketType::PubAck
                })
            );
        }
    }

    #[test]
    fn spec_2_2_2_2_property_not_allowed_in_a_publish_response() {
        // PUBACK with Topic Alias 1.
        #[rustfmt::skip]
        let wire = [0x40, 0x07, 0x00, 0x01, 0x00, 0x03, 0x23, 0x00, 0x01];
        let error = DecodeError::PropertyNotAllowed {
            property: PropertyId::TopicAlias,
            context: "PUBACK/PUBREC/PUBREL/PUBCOMP",
        };
        assert_eq!(decode(ProtocolVersion::V5, &wire), Err(error.clone()));
        assert_eq!(error.reason_code(), ReasonCode::MALFORMED_PACKET);
    }

    #[test]
    fn duplicate_reason_string_is_a_protocol_error() {
        #[rustfmt::skip]
        let wire = [
            0x62, 0x0C, 0x00, 0x01, 0x00,
            0x08,                           // property length 8
            0x1F, 0x00, 0x01, b'a',         //   reason string "a"
            0x1F, 0x00, 0x01, b'b',         //   reason string "b"
        ];
        let error = DecodeError::DuplicateProperty(PropertyId::ReasonString);
        assert_eq!(decode(ProtocolVersion::V5, &wire), Err(error.clone()));
        assert_eq!(error.reason_code(), ReasonCode::PROTOCOL_ERROR);
    }

    #[test]
    fn property_length_past_the_packet_is_malformed() {
        // Property length 5 with nothing after it.
        assert_eq!(
            decode(ProtocolVersion::V5, &[0x40, 0x04, 0x00, 0x01, 0x00, 0x05]),
            Err(DecodeError::PropertyLength)
        );
    }
}
