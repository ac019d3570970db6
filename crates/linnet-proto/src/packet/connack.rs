//! CONNACK (MQTT 5.0 3.2, 3.1.1 3.2): the server's answer to CONNECT. One model for all
//! versions: the reason code is a 5.0 [`ReasonCode`]; for 3.x it is written as, and read
//! from, the matching [`ConnectReturnCode`].

use bytes::BufMut;

use crate::codec::Reader;
use crate::error::{DecodeError, EncodeError};
use crate::properties::{ConnAckProperties, PropertySet};
use crate::reason::{ConnectReturnCode, ReasonCode};
use crate::types::{PacketType, ProtocolVersion};

/// A CONNACK packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnAck {
    /// The server resumed a stored session (always false in 3.1, which has no such flag).
    pub session_present: bool,
    pub reason_code: ReasonCode,
    /// MQTT 5.0 only.
    pub properties: ConnAckProperties,
}

impl ConnAck {
    /// A CONNACK with `reason_code` and no properties.
    pub fn new(session_present: bool, reason_code: ReasonCode) -> Self {
        Self {
            session_present,
            reason_code,
            properties: ConnAckProperties::default(),
        }
    }

    pub(crate) fn decode(
        reader: &mut Reader,
        version: ProtocolVersion,
    ) -> Result<Self, DecodeError> {
        let flags = reader.u8()?;
        if flags & 0xFE != 0 {
            return Err(DecodeError::ConnAckReservedFlags);
        }
        let code = reader.u8()?;
        let invalid = || DecodeError::InvalidReasonCode {
            packet: PacketType::ConnAck,
            code,
        };
        let reason_code = if version.is_v5() {
            let reason = ReasonCode(code);
            if !reason.is_valid_for(PacketType::ConnAck) {
                return Err(invalid());
            }
            reason
        } else {
            ReasonCode::from(ConnectReturnCode::from_u8(code).ok_or_else(invalid)?)
        };
        let properties = if version.is_v5() {
            ConnAckProperties::decode(reader)?
        } else {
            Default::default()
        };
        Ok(Self {
            // 3.1 has no Session Present flag: the byte is reserved and not used there.
            session_present: flags & 1 != 0 && version != ProtocolVersion::V3_1,
            reason_code,
            properties,
        })
    }

    pub(crate) fn remaining_len(&self, version: ProtocolVersion) -> Result<usize, EncodeError> {
        Ok(2 + if version.is_v5() {
            self.properties.encoded_len()?
        } else {
            0
        })
    }

    pub(crate) fn encode_body(&self, version: ProtocolVersion, buf: &mut impl BufMut) {
        // 3.1 has no Session Present flag: the byte is reserved there.
        let session_present = self.session_present && version != ProtocolVersion::V3_1;
        buf.put_u8(u8::from(session_present));
        if version.is_v5() {
            buf.put_u8(self.reason_code.0);
            let len = self.properties.content_len().unwrap_or(0);
            self.properties.encode(len, buf);
        } else {
            buf.put_u8(self.reason_code.to_connect_return_code() as u8);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::num::{NonZeroU16, NonZeroU32};

    use bytes::{Bytes, BytesMut};

    use super::*;
    use crate::packet::test_support::{assert_wire, checked_decode as decode};
    use crate::packet::Packet;
    use crate::properties::PropertyId;
    use crate::types::QoS;

    fn assert_rejected(version: ProtocolVersion, wire: &[u8], error: DecodeError) {
        assert_eq!(decode(version, wire), Err(error));
    }

    /// A v5 CONNACK (success, no session) with `properties` after the computed length.
    fn v5_connack(properties: &[u8]) -> Vec<u8> {
        let mut wire = vec![0x20, 3 + properties.len() as u8, 0x00, 0x00];
        wire.push(properties.len() as u8);
        wire.extend_from_slice(properties);
        wire
    }

    #[test]
    fn spec_3_2_2_2_v311_accepted_with_session_present() {
        // CONNACK, remaining length 2, session present, return code 0.
        let wire = [0x20, 0x02, 0x01, 0x00];
        assert_wire(
            &ConnAck::new(true, ReasonCode::SUCCESS).into(),
            ProtocolVersion::V3_1_1,
            &wire,
        );
    }

    #[test]
    fn spec_3_2_2_3_v3_return_codes() {
        for version in [ProtocolVersion::V3_1, ProtocolVersion::V3_1_1] {
            for (value, reason) in [
                (0x00, ReasonCode::SUCCESS),
                (0x01, ReasonCode::UNSUPPORTED_PROTOCOL_VERSION),
                (0x02, ReasonCode::CLIENT_IDENTIFIER_NOT_VALID),
                (0x03, ReasonCode::SERVER_UNAVAILABLE),
                (0x04, ReasonCode::BAD_USER_NAME_OR_PASSWORD),
                (0x05, ReasonCode::NOT_AUTHORIZED),
            ] {
                // CONNACK, remaining length 2, no session, return code.
                let wire = [0x20, 0x02, 0x00, value];
                assert_wire(&ConnAck::new(false, reason).into(), version, &wire);
            }
        }
    }

    #[test]
    fn v5_only_reason_codes_are_written_as_the_nearest_v3_return_code() {
        for (reason, value) in [
            (ReasonCode::BANNED, 0x05),
            (ReasonCode::BAD_AUTHENTICATION_METHOD, 0x05),
            (ReasonCode::UNSPECIFIED_ERROR, 0x03),
            (ReasonCode::SERVER_BUSY, 0x03),
        ] {
            let mut buf = BytesMut::new();
            Packet::from(ConnAck::new(false, reason))
                .encode(ProtocolVersion::V3_1_1, &mut buf)
                .unwrap();
            assert_eq!(&buf[..], [0x20, 0x02, 0x00, value], "{reason}");
        }
    }

    #[test]
    fn v31_never_writes_session_present() {
        // 3.1 has no Session Present flag: the first variable header byte is reserved.
        let packet = Packet::from(ConnAck::new(true, ReasonCode::SUCCESS));
        let mut buf = BytesMut::new();
        packet.encode(ProtocolVersion::V3_1, &mut buf).unwrap();
        assert_eq!(&buf[..], [0x20, 0x02, 0x00, 0x00]);
        // ... and does not read one either.
        assert_eq!(
            decode(ProtocolVersion::V3_1, &[0x20, 0x02, 0x01, 0x00]).unwrap(),
            Packet::ConnAck(ConnAck::new(false, ReasonCode::SUCCESS))
        );
    }

    #[test]
    fn spec_3_2_2_v5_success_without_properties() {
        // CONNACK, remaining length 3, flags 0, reason 0, property length 0.
        let wire = [0x20, 0x03, 0x00, 0x00, 0x00];
        assert_wire(
            &ConnAck::new(false, ReasonCode::SUCCESS).into(),
            ProtocolVersion::V5,
            &wire,
        );
    }

    #[test]
    fn spec_3_2_2_2_v5_failure_reason_code() {
        // CONNACK, remaining length 3, flags 0, reason 0x87 not authorized, no properties.
        let wire = [0x20, 0x03, 0x00, 0x87, 0x00];
        assert_wire(
            &ConnAck::new(false, ReasonCode::NOT_AUTHORIZED).into(),
            ProtocolVersion::V5,
            &wire,
        );
    }

    #[test]
    fn spec_3_2_2_3_v5_with_session_present_and_every_property() {
        let connack = ConnAck {
            session_present: true,
            reason_code: ReasonCode::SUCCESS,
            properties: ConnAckProperties {
                session_expiry_interval: Some(60),
                receive_maximum: NonZeroU16::new(10),
                maximum_qos: Some(QoS::AtLeastOnce),
                retain_available: Some(false),
                maximum_packet_size: NonZeroU32::new(65_536),
                assigned_client_identifier: Some("auto-1".into()),
                topic_alias_maximum: Some(5),
                reason_string: Some("ok".into()),
                user_properties: vec![("x".into(), "y".into())],
                wildcard_subscription_available: Some(false),
                subscription_identifiers_available: Some(false),
                shared_subscription_available: Some(true),
                server_keep_alive: Some(120),
                response_information: Some("resp".into()),
                server_reference: Some("srv".into()),
                authentication_method: Some("M".into()),
                authentication_data: Some(Bytes::from_static(&[9])),
            },
        };
        #[rustfmt::skip]
        let wire = [
            0x20, 0x4A,                                // CONNACK, remaining length 74
            0x01,                                      // session present
            0x00,                                      // reason code success
            0x47,                                      // property length 71
            0x11, 0x00, 0x00, 0x00, 0x3C,              //   session expiry 60
            0x21, 0x00, 0x0A,                          //   receive maximum 10
            0x24, 0x01,                                //   maximum QoS 1
            0x25, 0x00,                                //   retain available 0
            0x27, 0x00, 0x01, 0x00, 0x00,              //   maximum packet size 65536
            0x12, 0x00, 0x06, b'a', b'u', b't', b'o', b'-', b'1', // assigned client id
            0x22, 0x00, 0x05,                          //   topic alias maximum 5
            0x1F, 0x00, 0x02, b'o', b'k',              //   reason string
            0x26, 0x00, 0x01, b'x', 0x00, 0x01, b'y',  //   user property x=y
            0x28, 0x00,                                //   wildcard subscriptions 0
            0x29, 0x00,                                //   subscription identifiers 0
            0x2A, 0x01,                                //   shared subscriptions 1
            0x13, 0x00, 0x78,                          //   server keep alive 120
            0x1A, 0x00, 0x04, b'r', b'e', b's', b'p',  //   response information
            0x1C, 0x00, 0x03, b's', b'r', b'v',        //   server reference
            0x15, 0x00, 0x01, b'M',                    //   authentication method
            0x16, 0x00, 0x01, 0x09,                    //   authentication data
        ];
        assert_wire(&connack.into(), ProtocolVersion::V5, &wire);
    }

    #[test]
    fn mqtt_3_2_2_1_reserved_acknowledge_flags() {
        for version in [ProtocolVersion::V3_1_1, ProtocolVersion::V5] {
            let wire: &[u8] = if version.is_v5() {
                &[0x20, 0x03, 0x02, 0x00, 0x00]
            } else {
                &[0x20, 0x02, 0x02, 0x00]
            };
            assert_rejected(version, wire, DecodeError::ConnAckReservedFlags);
        }
        assert_eq!(
            DecodeError::ConnAckReservedFlags.reason_code(),
            ReasonCode::MALFORMED_PACKET
        );
    }

    #[test]
    fn mqtt_2_1_3_1_reserved_header_flags() {
        let error = DecodeError::InvalidHeaderFlags {
            packet: PacketType::ConnAck,
            flags: 0x01,
        };
        assert_rejected(
            ProtocolVersion::V3_1_1,
            &[0x21, 0x02, 0x00, 0x00],
            error.clone(),
        );
        assert_eq!(error.reason_code(), ReasonCode::MALFORMED_PACKET);
    }

    #[test]
    fn v3_return_code_above_5_is_rejected() {
        for code in [0x06, 0x80, 0xFF] {
            assert_rejected(
                ProtocolVersion::V3_1_1,
                &[0x20, 0x02, 0x00, code],
                DecodeError::InvalidReasonCode {
                    packet: PacketType::ConnAck,
                    code,
                },
            );
        }
    }

    #[test]
    fn v5_reason_code_not_listed_for_connack_is_a_protocol_error() {
        // 0x01 (granted QoS 1) and 0x8E (session taken over) belong to other packets.
        for code in [0x01, 0x04, 0x8E, 0x92, 0xFF] {
            let error = DecodeError::InvalidReasonCode {
                packet: PacketType::ConnAck,
                code,
            };
            assert_rejected(
                ProtocolVersion::V5,
                &[0x20, 0x03, 0x00, code, 0x00],
                error.clone(),
            );
            assert_eq!(error.reason_code(), ReasonCode::PROTOCOL_ERROR);
        }
    }

    #[test]
    fn spec_3_2_2_3_4_maximum_qos_2_is_a_protocol_error() {
        let error = DecodeError::InvalidPropertyValue {
            property: PropertyId::MaximumQoS,
            value: 2,
        };
        assert_rejected(
            ProtocolVersion::V5,
            &v5_connack(&[0x24, 0x02]),
            error.clone(),
        );
        assert_eq!(error.reason_code(), ReasonCode::PROTOCOL_ERROR);
    }

    #[test]
    fn spec_3_2_2_3_3_receive_maximum_zero_is_a_protocol_error() {
        assert_rejected(
            ProtocolVersion::V5,
            &v5_connack(&[0x21, 0x00, 0x00]),
            DecodeError::InvalidPropertyValue {
                property: PropertyId::ReceiveMaximum,
                value: 0,
            },
        );
    }

    #[test]
    fn spec_3_2_2_3_5_retain_available_other_than_0_or_1() {
        assert_rejected(
            ProtocolVersion::V5,
            &v5_connack(&[0x25, 0x02]),
            DecodeError::InvalidPropertyValue {
                property: PropertyId::RetainAvailable,
                value: 2,
            },
        );
    }

    #[test]
    fn duplicate_connack_property_is_a_protocol_error() {
        let error = DecodeError::DuplicateProperty(PropertyId::AssignedClientIdentifier);
        #[rustfmt::skip]
        let wire = v5_connack(&[
            0x12, 0x00, 0x01, b'a',  // assigned client id "a"
            0x12, 0x00, 0x01, b'b',  // assigned client id "b"
        ]);
        assert_rejected(ProtocolVersion::V5, &wire, error.clone());
        assert_eq!(error.reason_code(), ReasonCode::PROTOCOL_ERROR);
    }

    #[test]
    fn spec_2_2_2_2_property_not_allowed_in_connack() {
        let error = DecodeError::PropertyNotAllowed {
            property: PropertyId::WillDelayInterval,
            context: "CONNACK",
        };
        assert_rejected(
            ProtocolVersion::V5,
            &v5_connack(&[0x18, 0x00, 0x00, 0x00, 0x01]),
            error.clone(),
        );
        assert_eq!(error.reason_code(), ReasonCode::MALFORMED_PACKET);
    }

    #[test]
    fn v5_connack_without_property_length_is_truncated() {
        // The 3.1.1 layout read as 5.0: the property length is missing.
        let error = DecodeError::Truncated {
            packet: PacketType::ConnAck,
        };
        assert_rejected(
            ProtocolVersion::V5,
            &[0x20, 0x02, 0x00, 0x00],
            error.clone(),
        );
        assert_eq!(error.reason_code(), ReasonCode::MALFORMED_PACKET);
        assert_rejected(ProtocolVersion::V3_1_1, &[0x20, 0x01, 0x00], error);
    }

    #[test]
    fn v3_connack_with_a_third_byte_is_malformed() {
        // The 5.0 layout read as 3.1.1: the property length byte is left over.
        assert_rejected(
            ProtocolVersion::V3_1_1,
            &[0x20, 0x03, 0x00, 0x00, 0x00],
            DecodeError::TrailingBytes {
                packet: PacketType::ConnAck,
                extra: 1,
            },
        );
    }
}
