//! AUTH (MQTT 5.0 3.15): the enhanced authentication exchange. It exists only in 5.0; a
//! packet type 15 on an older connection is rejected by the dispatcher as reserved.

use bytes::BufMut;

use crate::codec::Reader;
use crate::error::{DecodeError, EncodeError};
use crate::properties::{AuthProperties, PropertySet};
use crate::reason::ReasonCode;
use crate::types::PacketType;

/// An AUTH packet.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Auth {
    /// Success (0x00), Continue authentication (0x18) or Re-authenticate (0x19).
    pub reason_code: ReasonCode,
    pub properties: AuthProperties,
}

impl Auth {
    /// An AUTH with `reason_code` and no properties.
    pub fn new(reason_code: ReasonCode) -> Self {
        Self {
            reason_code,
            properties: AuthProperties::default(),
        }
    }

    pub(crate) fn decode(reader: &mut Reader) -> Result<Self, DecodeError> {
        let mut auth = Self::default();
        // Remaining length 0 means Success with no properties [MQTT-3.15.2.1].
        if !reader.is_empty() {
            let code = reader.u8()?;
            if !ReasonCode(code).is_valid_for(PacketType::Auth) {
                return Err(DecodeError::InvalidReasonCode {
                    packet: PacketType::Auth,
                    code,
                });
            }
            auth.reason_code = ReasonCode(code);
            if !reader.is_empty() {
                auth.properties = AuthProperties::decode(reader)?;
            }
        }
        Ok(auth)
    }

    pub(crate) fn remaining_len(&self) -> Result<usize, EncodeError> {
        let properties = self.properties.content_len()?;
        Ok(match (self.reason_code, properties) {
            (ReasonCode::SUCCESS, 0) => 0,
            _ => 1 + crate::codec::varint_len(properties as u32) + properties,
        })
    }

    pub(crate) fn encode_body(&self, buf: &mut impl BufMut) {
        let properties = self.properties.content_len().unwrap_or(0);
        if self.reason_code == ReasonCode::SUCCESS && properties == 0 {
            return;
        }
        buf.put_u8(self.reason_code.0);
        self.properties.encode(properties, buf);
    }
}

#[cfg(test)]
mod tests {
    use bytes::{Bytes, BytesMut};

    use super::*;
    use crate::packet::test_support::{assert_rejected, assert_wire};
    use crate::packet::Packet;
    use crate::properties::PropertyId;
    use crate::types::ProtocolVersion;

    #[test]
    fn spec_3_15_2_1_success_without_properties_is_empty() {
        assert_wire(&Auth::default().into(), ProtocolVersion::V5, &[0xF0, 0x00]);
    }

    #[test]
    fn spec_3_15_2_continue_without_properties_writes_a_property_length() {
        // covers: [MQTT-2.2.2-1]
        // AUTH, remaining length 2, continue authentication, property length 0.
        assert_wire(
            &Auth::new(ReasonCode::CONTINUE_AUTHENTICATION).into(),
            ProtocolVersion::V5,
            &[0xF0, 0x02, 0x18, 0x00],
        );
    }

    #[test]
    fn spec_3_15_2_2_continue_with_every_property() {
        let auth = Auth {
            reason_code: ReasonCode::CONTINUE_AUTHENTICATION,
            properties: AuthProperties {
                authentication_method: Some("SCRAM-SHA-1".into()),
                authentication_data: Some(Bytes::from_static(&[1, 2, 3])),
                reason_string: Some("x".into()),
                user_properties: vec![("a".into(), "b".into())],
            },
        };
        #[rustfmt::skip]
        let wire = [
            0xF0, 0x21,                                // AUTH, remaining length 33
            0x18,                                      // continue authentication
            0x1F,                                      // property length 31
            0x15, 0x00, 0x0B, b'S', b'C', b'R', b'A', b'M', b'-', b'S', b'H', b'A', b'-', b'1',
            0x16, 0x00, 0x03, 0x01, 0x02, 0x03,        //   authentication data
            0x1F, 0x00, 0x01, b'x',                    //   reason string "x"
            0x26, 0x00, 0x01, b'a', 0x00, 0x01, b'b',  //   user property a=b
        ];
        assert_wire(&auth.into(), ProtocolVersion::V5, &wire);
    }

    #[test]
    fn spec_3_15_2_1_re_authenticate() {
        let mut auth = Auth::new(ReasonCode::RE_AUTHENTICATE);
        auth.properties.authentication_method = Some("M".into());
        // AUTH, remaining length 6, re-authenticate, property length 4, method "M".
        let wire = [0xF0, 0x06, 0x19, 0x04, 0x15, 0x00, 0x01, b'M'];
        assert_wire(&auth.into(), ProtocolVersion::V5, &wire);
    }

    #[test]
    fn auth_on_a_v3_connection_is_a_reserved_type() {
        for version in [ProtocolVersion::V3_1, ProtocolVersion::V3_1_1] {
            assert_rejected(
                version,
                &[0xF0, 0x00],
                DecodeError::ReservedPacketType(15),
                ReasonCode::MALFORMED_PACKET,
            );
        }
    }

    #[test]
    fn encoding_auth_for_v3_is_unsupported() {
        for version in [ProtocolVersion::V3_1, ProtocolVersion::V3_1_1] {
            let packet = Packet::from(Auth::new(ReasonCode::CONTINUE_AUTHENTICATION));
            let error = EncodeError::UnsupportedInVersion {
                packet: PacketType::Auth,
                version,
            };
            let mut buf = BytesMut::new();
            assert_eq!(packet.encode(version, &mut buf), Err(error.clone()));
            assert_eq!(packet.encoded_size(version), Err(error));
            assert!(buf.is_empty());
        }
    }

    #[test]
    fn mqtt_2_1_3_1_reserved_header_flags() {
        assert_rejected(
            ProtocolVersion::V5,
            &[0xF1, 0x00],
            DecodeError::InvalidHeaderFlags {
                packet: PacketType::Auth,
                flags: 0x1,
            },
            ReasonCode::MALFORMED_PACKET,
        );
    }

    #[test]
    fn mqtt_3_15_2_1_reason_code_not_listed_for_auth() {
        // 0x80 and 0x87 are failures AUTH cannot carry; 0x04 is DISCONNECT's.
        for code in [0x04, 0x80, 0x87] {
            assert_rejected(
                ProtocolVersion::V5,
                &[0xF0, 0x02, code, 0x00],
                DecodeError::InvalidReasonCode {
                    packet: PacketType::Auth,
                    code,
                },
                ReasonCode::PROTOCOL_ERROR,
            );
        }
    }

    #[test]
    fn spec_2_2_2_2_property_not_allowed_in_auth() {
        assert_rejected(
            ProtocolVersion::V5,
            &[0xF0, 0x07, 0x18, 0x05, 0x11, 0x00, 0x00, 0x00, 0x00],
            DecodeError::PropertyNotAllowed {
                property: PropertyId::SessionExpiryInterval,
                context: "AUTH",
            },
            ReasonCode::MALFORMED_PACKET,
        );
    }

    #[test]
    fn duplicate_authentication_method_is_a_protocol_error() {
        #[rustfmt::skip]
        let wire = [
            0xF0, 0x0A, 0x18,
            0x08, 0x15, 0x00, 0x01, b'A', 0x15, 0x00, 0x01, b'B',
        ];
        assert_rejected(
            ProtocolVersion::V5,
            &wire,
            DecodeError::DuplicateProperty(PropertyId::AuthenticationMethod),
            ReasonCode::PROTOCOL_ERROR,
        );
    }

    #[test]
    fn bytes_after_the_property_block_are_malformed() {
        assert_rejected(
            ProtocolVersion::V5,
            &[0xF0, 0x03, 0x18, 0x00, 0xFF],
            DecodeError::TrailingBytes {
                packet: PacketType::Auth,
                extra: 1,
            },
            ReasonCode::MALFORMED_PACKET,
        );
    }
}
