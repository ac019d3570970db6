//! DISCONNECT (MQTT 5.0 3.14, 3.1.1 3.14). Before 5.0 it has no body and only a client sends
//! it; in 5.0 either side sends it with a reason code, which with its properties may be
//! omitted when it is Normal disconnection and there are none [MQTT-3.14.2.1].

use bytes::BufMut;

use crate::codec::Reader;
use crate::error::{DecodeError, EncodeError};
use crate::properties::{DisconnectProperties, PropertySet};
use crate::reason::ReasonCode;
use crate::types::{PacketType, ProtocolVersion};

/// A DISCONNECT packet.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Disconnect {
    /// MQTT 5.0 only; Normal disconnection otherwise.
    pub reason_code: ReasonCode,
    /// MQTT 5.0 only.
    pub properties: DisconnectProperties,
}

impl Default for ReasonCode {
    fn default() -> Self {
        Self::SUCCESS
    }
}

impl Disconnect {
    /// A DISCONNECT with `reason_code` and no properties.
    pub fn new(reason_code: ReasonCode) -> Self {
        Self {
            reason_code,
            properties: DisconnectProperties::default(),
        }
    }

    pub(crate) fn decode(
        reader: &mut Reader,
        version: ProtocolVersion,
    ) -> Result<Self, DecodeError> {
        let mut disconnect = Self::default();
        if version.is_v5() && !reader.is_empty() {
            let code = reader.u8()?;
            if !ReasonCode(code).is_valid_for(PacketType::Disconnect) {
                return Err(DecodeError::InvalidReasonCode {
                    packet: PacketType::Disconnect,
                    code,
                });
            }
            disconnect.reason_code = ReasonCode(code);
            if !reader.is_empty() {
                disconnect.properties = DisconnectProperties::decode(reader)?;
            }
        }
        Ok(disconnect)
    }

    pub(crate) fn remaining_len(&self, version: ProtocolVersion) -> Result<usize, EncodeError> {
        if !version.is_v5() {
            return Ok(0);
        }
        let properties = self.properties.content_len()?;
        Ok(match (self.reason_code, properties) {
            (ReasonCode::NORMAL_DISCONNECTION, 0) => 0,
            (_, 0) => 1,
            _ => 1 + crate::codec::varint_len(properties as u32) + properties,
        })
    }

    pub(crate) fn encode_body(&self, version: ProtocolVersion, buf: &mut impl BufMut) {
        if !version.is_v5() {
            return;
        }
        let properties = self.properties.content_len().unwrap_or(0);
        if self.reason_code == ReasonCode::NORMAL_DISCONNECTION && properties == 0 {
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
    use bytes::BytesMut;

    use super::*;
    use crate::packet::test_support::{assert_rejected, assert_wire, checked_decode as decode};
    use crate::packet::Packet;
    use crate::properties::PropertyId;

    #[test]
    fn spec_3_14_v3_disconnect_has_no_body() {
        for version in [ProtocolVersion::V3_1, ProtocolVersion::V3_1_1] {
            assert_wire(&Disconnect::default().into(), version, &[0xE0, 0x00]);
        }
    }

    #[test]
    fn v5_fields_are_not_written_for_v3() {
        let mut disconnect = Disconnect::new(ReasonCode::SESSION_TAKEN_OVER);
        disconnect.properties.reason_string = Some("x".into());
        let mut buf = BytesMut::new();
        Packet::from(disconnect)
            .encode(ProtocolVersion::V3_1_1, &mut buf)
            .unwrap();
        assert_eq!(&buf[..], [0xE0, 0x00]);
    }

    #[test]
    fn spec_3_14_2_1_v5_normal_disconnection_without_properties_is_empty() {
        assert_wire(
            &Disconnect::new(ReasonCode::NORMAL_DISCONNECTION).into(),
            ProtocolVersion::V5,
            &[0xE0, 0x00],
        );
    }

    #[test]
    fn spec_3_14_2_1_v5_reason_code_only_has_remaining_length_1() {
        // DISCONNECT, remaining length 1, disconnect with will message.
        assert_wire(
            &Disconnect::new(ReasonCode::DISCONNECT_WITH_WILL_MESSAGE).into(),
            ProtocolVersion::V5,
            &[0xE0, 0x01, 0x04],
        );
    }

    #[test]
    fn spec_3_14_2_2_v5_with_every_property() {
        let disconnect = Disconnect {
            reason_code: ReasonCode::USE_ANOTHER_SERVER,
            properties: DisconnectProperties {
                session_expiry_interval: Some(0),
                reason_string: Some("bye".into()),
                user_properties: vec![("a".into(), "b".into())],
                server_reference: Some("s2".into()),
            },
        };
        #[rustfmt::skip]
        let wire = [
            0xE0, 0x19,                                // DISCONNECT, remaining length 25
            0x9C,                                      // use another server
            0x17,                                      // property length 23
            0x11, 0x00, 0x00, 0x00, 0x00,              //   session expiry 0
            0x1F, 0x00, 0x03, b'b', b'y', b'e',        //   reason string "bye"
            0x26, 0x00, 0x01, b'a', 0x00, 0x01, b'b',  //   user property a=b
            0x1C, 0x00, 0x02, b's', b'2',              //   server reference "s2"
        ];
        assert_wire(&disconnect.into(), ProtocolVersion::V5, &wire);
    }

    #[test]
    fn spec_3_14_2_v5_normal_disconnection_with_properties_writes_the_code() {
        let mut disconnect = Disconnect::default();
        disconnect.properties.session_expiry_interval = Some(10);
        #[rustfmt::skip]
        let wire = [
            0xE0, 0x07,                      // DISCONNECT, remaining length 7
            0x00,                            // normal disconnection
            0x05,                            // property length 5
            0x11, 0x00, 0x00, 0x00, 0x0A,    //   session expiry 10
        ];
        assert_wire(&disconnect.into(), ProtocolVersion::V5, &wire);
    }

    #[test]
    fn v5_explicit_normal_code_and_empty_properties_decode_like_the_short_form() {
        assert_eq!(
            decode(ProtocolVersion::V5, &[0xE0, 0x02, 0x00, 0x00]).unwrap(),
            Packet::Disconnect(Disconnect::default())
        );
    }

    #[test]
    fn v3_disconnect_with_a_body_is_malformed() {
        assert_rejected(
            ProtocolVersion::V3_1_1,
            &[0xE0, 0x01, 0x00],
            DecodeError::TrailingBytes {
                packet: PacketType::Disconnect,
                extra: 1,
            },
            ReasonCode::MALFORMED_PACKET,
        );
    }

    #[test]
    fn mqtt_2_1_3_1_reserved_header_flags() {
        assert_rejected(
            ProtocolVersion::V5,
            &[0xE2, 0x00],
            DecodeError::InvalidHeaderFlags {
                packet: PacketType::Disconnect,
                flags: 0x2,
            },
            ReasonCode::MALFORMED_PACKET,
        );
    }

    #[test]
    fn mqtt_3_14_2_1_reason_code_not_listed_for_disconnect() {
        // Granted QoS 1, unsupported protocol version and packet identifier not found
        // belong to other packets; 0x03 is undefined.
        for code in [0x01, 0x03, 0x84, 0x92] {
            assert_rejected(
                ProtocolVersion::V5,
                &[0xE0, 0x01, code],
                DecodeError::InvalidReasonCode {
                    packet: PacketType::Disconnect,
                    code,
                },
                ReasonCode::PROTOCOL_ERROR,
            );
        }
    }

    #[test]
    fn spec_2_2_2_2_property_not_allowed_in_disconnect() {
        assert_rejected(
            ProtocolVersion::V5,
            &[0xE0, 0x05, 0x00, 0x03, 0x21, 0x00, 0x0A],
            DecodeError::PropertyNotAllowed {
                property: PropertyId::ReceiveMaximum,
                context: "DISCONNECT",
            },
            ReasonCode::MALFORMED_PACKET,
        );
    }

    #[test]
    fn duplicate_server_reference_is_a_protocol_error() {
        #[rustfmt::skip]
        let wire = [
            0xE0, 0x0A, 0x00,
            0x08, 0x1C, 0x00, 0x01, b'a', 0x1C, 0x00, 0x01, b'b',
        ];
        assert_rejected(
            ProtocolVersion::V5,
            &wire,
            DecodeError::DuplicateProperty(PropertyId::ServerReference),
            ReasonCode::PROTOCOL_ERROR,
        );
    }

    #[test]
    fn property_length_past_the_packet_is_malformed() {
        assert_rejected(
            ProtocolVersion::V5,
            &[0xE0, 0x03, 0x00, 0x05, 0x11],
            DecodeError::PropertyLength,
            ReasonCode::MALFORMED_PACKET,
        );
    }

    #[test]
    fn property_value_running_past_its_block_is_truncated() {
        // A 3-byte property block holding a session expiry that needs 5.
        assert_rejected(
            ProtocolVersion::V5,
            &[0xE0, 0x05, 0x00, 0x03, 0x11, 0x00, 0x00],
            DecodeError::Truncated {
                packet: PacketType::Disconnect,
            },
            ReasonCode::MALFORMED_PACKET,
        );
    }
}
