//! CONNECT (MQTT 5.0 3.1, 3.1.1 3.1): the first packet of every connection. It fixes the
//! protocol version for the rest of the connection, so it is the one packet decoded without
//! knowing the version in advance.

use bytes::{BufMut, Bytes};
use bytestring::ByteString;

use crate::codec::{check_len, put_binary, put_str, Reader};
use crate::error::{DecodeError, EncodeError};
use crate::properties::{ConnectProperties, PropertySet, WillProperties};
use crate::topic::TopicName;
use crate::types::{ProtocolVersion, QoS};

/// A CONNECT packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connect {
    pub protocol: ProtocolVersion,
    /// Clean Start (5.0) / Clean Session (3.x).
    pub clean_start: bool,
    /// Seconds; 0 turns keep alive off.
    pub keep_alive: u16,
    /// May be empty; the server decides whether to assign one [MQTT-3.1.3-6].
    pub client_id: ByteString,
    pub will: Option<Will>,
    pub username: Option<ByteString>,
    pub password: Option<Bytes>,
    /// MQTT 5.0 only.
    pub properties: ConnectProperties,
}

/// The will message of a CONNECT, published by the server when the connection ends badly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Will {
    pub topic: TopicName,
    pub payload: Bytes,
    pub qos: QoS,
    pub retain: bool,
    /// MQTT 5.0 only.
    pub properties: WillProperties,
}

impl Will {
    /// A QoS 0, non-retained will.
    pub fn new(topic: TopicName, payload: impl Into<Bytes>) -> Self {
        Self {
            topic,
            payload: payload.into(),
            qos: QoS::AtMostOnce,
            retain: false,
            properties: WillProperties::default(),
        }
    }
}

const FLAG_RESERVED: u8 = 0b0000_0001;
const FLAG_CLEAN_START: u8 = 0b0000_0010;
const FLAG_WILL: u8 = 0b0000_0100;
const FLAG_WILL_RETAIN: u8 = 0b0010_0000;
const FLAG_PASSWORD: u8 = 0b0100_0000;
const FLAG_USERNAME: u8 = 0b1000_0000;

impl Connect {
    /// A clean-start CONNECT for `version` with a 60 s keep alive and nothing else set.
    pub fn new(version: ProtocolVersion, client_id: impl Into<ByteString>) -> Self {
        Self {
            protocol: version,
            clean_start: true,
            keep_alive: 60,
            client_id: client_id.into(),
            will: None,
            username: None,
            password: None,
            properties: ConnectProperties::default(),
        }
    }

    pub(crate) fn decode(reader: &mut Reader) -> Result<Self, DecodeError> {
        let name = reader.string()?;
        let level = reader.u8()?;
        let protocol = match (&*name, level) {
            ("MQTT", 4) => ProtocolVersion::V3_1_1,
            ("MQTT", 5) => ProtocolVersion::V5,
            ("MQIsdp", 3) => ProtocolVersion::V3_1,
            ("MQTT" | "MQIsdp", other) => {
                return Err(DecodeError::UnsupportedProtocolLevel(other));
            }
            _ => return Err(DecodeError::InvalidProtocolName(name.to_string())),
        };
        let flags = reader.u8()?;
        if flags & FLAG_RESERVED != 0 {
            return Err(DecodeError::ConnectReservedFlag);
        }
        let will_flag = flags & FLAG_WILL != 0;
        let will_qos_bits = (flags >> 3) & 0b11;
        let will_retain = flags & FLAG_WILL_RETAIN != 0;
        if !will_flag && (will_qos_bits != 0 || will_retain) {
            return Err(DecodeError::WillFlagsWithoutWill);
        }
        let will_qos = QoS::from_u8(will_qos_bits).ok_or(DecodeError::WillQoS3)?;
        let has_username = flags & FLAG_USERNAME != 0;
        let has_password = flags & FLAG_PASSWORD != 0;
        if has_password && !has_username && !protocol.is_v5() {
            return Err(DecodeError::PasswordWithoutUsername);
        }
        let keep_alive = reader.u16()?;
        let properties = if protocol.is_v5() {
            ConnectProperties::decode(reader)?
        } else {
            Default::default()
        };
        if properties.authentication_data.is_some() && properties.authentication_method.is_none() {
            return Err(DecodeError::AuthDataWithoutMethod);
        }

        // Payload order: client id, will properties, will topic, will payload, user, password.
        let client_id = reader.string()?;
        let will = if will_flag {
            let properties = if protocol.is_v5() {
                WillProperties::decode(reader)?
            } else {
                Default::default()
            };
            let topic = TopicName::new(reader.string()?).map_err(DecodeError::InvalidTopicName)?;
            let payload = reader.binary()?;
            Some(Will {
                topic,
                payload,
                qos: will_qos,
                retain: will_retain,
                properties,
            })
        } else {
            None
        };
        let username = if has_username {
            Some(reader.string()?)
        } else {
            None
        };
        let password = if has_password {
            Some(reader.binary()?)
        } else {
            None
        };
        Ok(Self {
            protocol,
            clean_start: flags & FLAG_CLEAN_START != 0,
            keep_alive,
            client_id,
            will,
            username,
            password,
            properties,
        })
    }

    fn flags(&self) -> u8 {
        let mut flags = 0;
        if self.clean_start {
            flags |= FLAG_CLEAN_START;
        }
        if let Some(will) = &self.will {
            flags |= FLAG_WILL | ((will.qos as u8) << 3);
            if will.retain {
                flags |= FLAG_WILL_RETAIN;
            }
        }
        if self.username.is_some() {
            flags |= FLAG_USERNAME;
        }
        if self.password.is_some() {
            flags |= FLAG_PASSWORD;
        }
        flags
    }

    pub(crate) fn remaining_len(&self) -> Result<usize, EncodeError> {
        let v5 = self.protocol.is_v5();
        let mut len = 2 + self.protocol.protocol_name().len() + 1 + 1 + 2;
        if v5 {
            len += self.properties.encoded_len()?;
        }
        check_len("client identifier", self.client_id.as_bytes())?;
        len += 2 + self.client_id.len();
        if let Some(will) = &self.will {
            if v5 {
                len += will.properties.encoded_len()?;
            }
            check_len("will payload", &will.payload)?;
            len += 2 + will.topic.as_str().len() + 2 + will.payload.len();
        }
        if let Some(username) = &self.username {
            check_len("user name", username.as_bytes())?;
            len += 2 + username.len();
        }
        if let Some(password) = &self.password {
            check_len("password", password)?;
            len += 2 + password.len();
        }
        Ok(len)
    }

    pub(crate) fn encode_body(&self, buf: &mut impl BufMut) {
        let v5 = self.protocol.is_v5();
        put_str(buf, self.protocol.protocol_name());
        buf.put_u8(self.protocol.level());
        buf.put_u8(self.flags());
        buf.put_u16(self.keep_alive);
        if v5 {
            let len = self.properties.content_len().unwrap_or(0);
            self.properties.encode(len, buf);
        }
        put_str(buf, &self.client_id);
        if let Some(will) = &self.will {
            if v5 {
                let len = will.properties.content_len().unwrap_or(0);
                will.properties.encode(len, buf);
            }
            put_str(buf, will.topic.as_str());
            put_binary(buf, &will.payload);
        }
        if let Some(username) = &self.username {
            put_str(buf, username);
        }
        if let Some(password) = &self.password {
            put_binary(buf, password);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::num::{NonZeroU16, NonZeroU32};

    use bytes::BytesMut;

    use super::*;
    use crate::codec::Decoder;
    use crate::packet::test_support::{self, assert_wire, checked_decode as decode};
    use crate::packet::{Disconnect, Packet};
    use crate::properties::PropertyId;
    use crate::reason::ReasonCode;
    use crate::topic::TopicError;
    use crate::types::PacketType;

    fn topic(name: &str) -> TopicName {
        TopicName::new(name).unwrap()
    }

    /// Asserts that `wire` fails to decode (as any version: CONNECT carries its own) with
    /// `error`, and that a v5 peer would be told `reason`.
    fn assert_rejected(wire: &[u8], error: DecodeError, reason: ReasonCode) {
        assert_eq!(decode(ProtocolVersion::V5, wire), Err(error.clone()));
        assert_eq!(error.reason_code(), reason, "{error}");
    }

    /// A 3.1.1 CONNECT whose only variable parts are `flags` and the payload after the
    /// client id "a".
    fn v311_connect(flags: u8, rest: &[u8]) -> Vec<u8> {
        let mut body = vec![0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04, flags, 0x00, 0x3C];
        body.extend_from_slice(&[0x00, 0x01, b'a']);
        body.extend_from_slice(rest);
        frame(0x10, &body)
    }

    /// A v5 CONNECT with `properties` (the property length is computed) and client id "a".
    fn v5_connect(properties: &[u8]) -> Vec<u8> {
        let mut body = vec![0x00, 0x04, b'M', b'Q', b'T', b'T', 0x05, 0x02, 0x00, 0x3C];
        body.push(properties.len() as u8);
        body.extend_from_slice(properties);
        body.extend_from_slice(&[0x00, 0x01, b'a']);
        frame(0x10, &body)
    }

    /// A fixed header (remaining length below 128) in front of `body`.
    fn frame(first: u8, body: &[u8]) -> Vec<u8> {
        assert!(body.len() < 128);
        let mut wire = vec![first, body.len() as u8];
        wire.extend_from_slice(body);
        wire
    }

    #[test]
    fn spec_3_1_2_minimal_connect_v311() {
        let connect = Connect::new(ProtocolVersion::V3_1_1, "a");
        #[rustfmt::skip]
        let wire = [
            0x10, 0x0D,                                // CONNECT, remaining length 13
            0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04,  // protocol name "MQTT", level 4
            0x02,                                      // flags: clean session
            0x00, 0x3C,                                // keep alive 60
            0x00, 0x01, b'a',                          // client id "a"
        ];
        assert_wire(&connect.into(), ProtocolVersion::V3_1_1, &wire);
    }

    #[test]
    fn spec_3_1_2_minimal_connect_v31_uses_mqisdp_level_3() {
        let connect = Connect {
            keep_alive: 10,
            ..Connect::new(ProtocolVersion::V3_1, "c1")
        };
        #[rustfmt::skip]
        let wire = [
            0x10, 0x10,                                                   // CONNECT, length 16
            0x00, 0x06, b'M', b'Q', b'I', b's', b'd', b'p', 0x03,         // "MQIsdp", level 3
            0x02,                                                         // clean session
            0x00, 0x0A,                                                   // keep alive 10
            0x00, 0x02, b'c', b'1',                                       // client id "c1"
        ];
        assert_wire(&connect.into(), ProtocolVersion::V3_1, &wire);
    }

    #[test]
    fn spec_3_1_2_minimal_connect_v5_has_empty_property_block() {
        // covers: [MQTT-2.2.2-1]
        let connect = Connect::new(ProtocolVersion::V5, "");
        #[rustfmt::skip]
        let wire = [
            0x10, 0x0D,                                // CONNECT, remaining length 13
            0x00, 0x04, b'M', b'Q', b'T', b'T', 0x05,  // "MQTT", level 5
            0x02,                                      // clean start
            0x00, 0x3C,                                // keep alive 60
            0x00,                                      // property length 0
            0x00, 0x00,                                // empty client id [MQTT-3.1.3-6]
        ];
        assert_wire(&connect.into(), ProtocolVersion::V5, &wire);
    }

    #[test]
    fn spec_3_1_3_v311_connect_with_will_username_and_password() {
        // covers: [v311:MQTT-3.1.3-1]
        let connect = Connect {
            clean_start: false,
            keep_alive: 30,
            will: Some(Will {
                qos: QoS::AtLeastOnce,
                retain: true,
                ..Will::new(topic("w/t"), "bye")
            }),
            username: Some("user".into()),
            password: Some(Bytes::from_static(b"pw")),
            ..Connect::new(ProtocolVersion::V3_1_1, "cid")
        };
        #[rustfmt::skip]
        let wire = [
            0x10, 0x23,                                // CONNECT, remaining length 35
            0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04,  // "MQTT", level 4
            0xEC,                                      // user, password, will retain, will QoS 1, will
            0x00, 0x1E,                                // keep alive 30
            0x00, 0x03, b'c', b'i', b'd',              // client id
            0x00, 0x03, b'w', b'/', b't',              // will topic
            0x00, 0x03, b'b', b'y', b'e',              // will payload
            0x00, 0x04, b'u', b's', b'e', b'r',        // user name
            0x00, 0x02, b'p', b'w',                    // password
        ];
        assert_wire(&connect.into(), ProtocolVersion::V3_1_1, &wire);
    }

    #[test]
    fn spec_3_1_3_v31_connect_with_qos2_will_and_username() {
        let connect = Connect {
            will: Some(Will {
                qos: QoS::ExactlyOnce,
                ..Will::new(topic("t"), Bytes::new())
            }),
            username: Some("u".into()),
            ..Connect::new(ProtocolVersion::V3_1, "c")
        };
        #[rustfmt::skip]
        let wire = [
            0x10, 0x17,                                                   // CONNECT, length 23
            0x00, 0x06, b'M', b'Q', b'I', b's', b'd', b'p', 0x03,         // "MQIsdp", level 3
            0x96,                                                         // user, will QoS 2, will, clean
            0x00, 0x3C,                                                   // keep alive 60
            0x00, 0x01, b'c',                                             // client id
            0x00, 0x01, b't',                                             // will topic
            0x00, 0x00,                                                   // empty will payload
            0x00, 0x01, b'u',                                             // user name
        ];
        assert_wire(&connect.into(), ProtocolVersion::V3_1, &wire);
    }

    #[test]
    fn spec_3_1_2_v5_connect_with_every_field() {
        // covers: [MQTT-3.1.3-1]
        let connect = Connect {
            clean_start: true,
            keep_alive: 60,
            client_id: "cl".into(),
            will: Some(Will {
                topic: topic("w"),
                payload: Bytes::from_static(b"x"),
                qos: QoS::AtLeastOnce,
                retain: false,
                properties: WillProperties {
                    will_delay_interval: Some(5),
                    payload_format_indicator: Some(true),
                    message_expiry_interval: Some(60),
                    content_type: Some("text".into()),
                    response_topic: Some(topic("r")),
                    correlation_data: Some(Bytes::from_static(&[0xAB])),
                    user_properties: vec![("k".into(), "v".into())],
                },
            }),
            username: Some("u".into()),
            password: Some(Bytes::from_static(&[0x00, 0xFF])),
            properties: ConnectProperties {
                session_expiry_interval: Some(3600),
                receive_maximum: NonZeroU16::new(20),
                maximum_packet_size: NonZeroU32::new(1024),
                topic_alias_maximum: Some(10),
                request_response_information: Some(true),
                request_problem_information: Some(false),
                user_properties: vec![("a".into(), "1".into()), ("b".into(), "2".into())],
                authentication_method: Some("SCRAM".into()),
                authentication_data: Some(Bytes::from_static(&[1, 2])),
            },
            protocol: ProtocolVersion::V5,
        };
        #[rustfmt::skip]
        let wire = [
            0x10, 0x6E,                                // CONNECT, remaining length 110
            0x00, 0x04, b'M', b'Q', b'T', b'T', 0x05,  // "MQTT", level 5
            0xCE,                                      // user, password, will QoS 1, will, clean
            0x00, 0x3C,                                // keep alive 60
            0x2F,                                      // property length 47
            0x11, 0x00, 0x00, 0x0E, 0x10,              //   session expiry 3600
            0x21, 0x00, 0x14,                          //   receive maximum 20
            0x27, 0x00, 0x00, 0x04, 0x00,              //   maximum packet size 1024
            0x22, 0x00, 0x0A,                          //   topic alias maximum 10
            0x19, 0x01,                                //   request response information 1
            0x17, 0x00,                                //   request problem information 0
            0x26, 0x00, 0x01, b'a', 0x00, 0x01, b'1',  //   user property a=1
            0x26, 0x00, 0x01, b'b', 0x00, 0x01, b'2',  //   user property b=2
            0x15, 0x00, 0x05, b'S', b'C', b'R', b'A', b'M', // authentication method
            0x16, 0x00, 0x02, 0x01, 0x02,              //   authentication data
            0x00, 0x02, b'c', b'l',                    // client id "cl"
            0x22,                                      // will property length 34
            0x18, 0x00, 0x00, 0x00, 0x05,              //   will delay interval 5
            0x01, 0x01,                                //   payload format indicator 1
            0x02, 0x00, 0x00, 0x00, 0x3C,              //   message expiry 60
            0x03, 0x00, 0x04, b't', b'e', b'x', b't',  //   content type "text"
            0x08, 0x00, 0x01, b'r',                    //   response topic "r"
            0x09, 0x00, 0x01, 0xAB,                    //   correlation data
            0x26, 0x00, 0x01, b'k', 0x00, 0x01, b'v',  //   user property k=v
            0x00, 0x01, b'w',                          // will topic
            0x00, 0x01, b'x',                          // will payload
            0x00, 0x01, b'u',                          // user name
            0x00, 0x02, 0x00, 0xFF,                    // password (binary)
        ];
        assert_wire(&connect.into(), ProtocolVersion::V5, &wire);
    }

    #[test]
    fn v5_connect_properties_decode_in_any_order_and_keep_user_property_order() {
        #[rustfmt::skip]
        let wire = v5_connect(&[
            0x26, 0x00, 0x01, b'z', 0x00, 0x01, b'1',  // user property z=1
            0x11, 0x00, 0x00, 0x00, 0x05,              // session expiry 5
            0x26, 0x00, 0x01, b'a', 0x00, 0x01, b'2',  // user property a=2
            0x26, 0x00, 0x01, b'z', 0x00, 0x01, b'3',  // user property z=3 again
        ]);
        let Packet::Connect(connect) = decode(ProtocolVersion::V5, &wire).unwrap() else {
            panic!("not a CONNECT");
        };
        assert_eq!(connect.properties.session_expiry_interval, Some(5));
        let users: Vec<(&str, &str)> = connect
            .properties
            .user_properties
            .iter()
            .map(|(k, v)| (&**k, &**v))
            .collect();
        assert_eq!(users, [("z", "1"), ("a", "2"), ("z", "3")]);
    }

    #[test]
    fn connect_sets_the_decoder_version_for_later_packets() {
        let mut wire = BytesMut::new();
        Packet::from(Connect::new(ProtocolVersion::V5, "a"))
            .encode(ProtocolVersion::V5, &mut wire)
            .unwrap();
        // A v5 DISCONNECT with reason code 0x04, which only a v5 decoder reads.
        wire.extend_from_slice(&[0xE0, 0x01, 0x04]);
        let mut decoder = Decoder::new(ProtocolVersion::V3_1_1);
        assert!(matches!(
            decoder.decode(&mut wire),
            Ok(Some(Packet::Connect(_)))
        ));
        assert_eq!(decoder.version(), ProtocolVersion::V5);
        assert_eq!(
            decoder.decode(&mut wire).unwrap(),
            Some(Packet::Disconnect(Disconnect::new(
                ReasonCode::DISCONNECT_WITH_WILL_MESSAGE
            )))
        );
    }

    #[test]
    fn spec_3_1_2_22_password_without_username_v311() {
        // covers: [v311:MQTT-3.1.2-22]
        // Flags 0x42: password and clean session, no user name.
        let wire = v311_connect(0x42, &[0x00, 0x01, b'p']);
        assert_rejected(
            &wire,
            DecodeError::PasswordWithoutUsername,
            ReasonCode::MALFORMED_PACKET,
        );
        // MQTT 3.1 has the same rule.
        let mut v31 = wire.clone();
        v31[1] += 2;
        v31[3] = 0x06;
        v31.splice(4..8, *b"MQIsdp");
        v31[10] = 0x03;
        assert_eq!(
            decode(ProtocolVersion::V3_1, &v31),
            Err(DecodeError::PasswordWithoutUsername)
        );
    }

    #[test]
    fn spec_3_1_2_22_password_without_username_allowed_in_v5() {
        let connect = Connect {
            password: Some(Bytes::from_static(b"p")),
            ..Connect::new(ProtocolVersion::V5, "a")
        };
        #[rustfmt::skip]
        let wire = [
            0x10, 0x11,                                // CONNECT, remaining length 17
            0x00, 0x04, b'M', b'Q', b'T', b'T', 0x05,  // "MQTT", level 5
            0x42,                                      // password, clean start; no user name
            0x00, 0x3C,                                // keep alive 60
            0x00,                                      // no properties
            0x00, 0x01, b'a',                          // client id
            0x00, 0x01, b'p',                          // password
        ];
        assert_wire(&connect.into(), ProtocolVersion::V5, &wire);
    }

    #[test]
    fn mqtt_3_1_2_1_bad_protocol_name() {
        // covers: [v311:MQTT-3.1.2-1]
        let mut wire = v311_connect(0x02, &[]);
        wire[7] = b'X'; // "MQTX"
        assert_rejected(
            &wire,
            DecodeError::InvalidProtocolName("MQTX".into()),
            ReasonCode::UNSUPPORTED_PROTOCOL_VERSION,
        );
    }

    #[test]
    fn mqtt_3_1_2_2_unsupported_level() {
        for level in [0, 1, 2, 6, 0xFF] {
            let mut wire = v311_connect(0x02, &[]);
            wire[8] = level;
            assert_rejected(
                &wire,
                DecodeError::UnsupportedProtocolLevel(level),
                ReasonCode::UNSUPPORTED_PROTOCOL_VERSION,
            );
        }
        // Each name belongs to its own levels: "MQTT" level 3 and "MQIsdp" level 4 are refused.
        let mut mqtt_3 = v311_connect(0x02, &[]);
        mqtt_3[8] = 3;
        assert_eq!(
            decode(ProtocolVersion::V3_1_1, &mqtt_3),
            Err(DecodeError::UnsupportedProtocolLevel(3))
        );
        #[rustfmt::skip]
        let mqisdp_4 = frame(0x10, &[
            0x00, 0x06, b'M', b'Q', b'I', b's', b'd', b'p', 0x04, 0x02, 0x00, 0x3C,
            0x00, 0x01, b'a',
        ]);
        assert_eq!(
            decode(ProtocolVersion::V3_1, &mqisdp_4),
            Err(DecodeError::UnsupportedProtocolLevel(4))
        );
    }

    #[test]
    fn mqtt_3_1_2_3_connect_reserved_flag_is_malformed() {
        // covers: [v311:MQTT-3.1.2-3]
        let wire = v311_connect(0x03, &[]);
        assert_rejected(
            &wire,
            DecodeError::ConnectReservedFlag,
            ReasonCode::MALFORMED_PACKET,
        );
    }

    #[test]
    fn mqtt_3_1_2_11_will_qos_without_will_flag() {
        // covers: [v311:MQTT-3.1.2-13]
        // Will QoS 1 (0x08) without the will flag.
        assert_rejected(
            &v311_connect(0x0A, &[]),
            DecodeError::WillFlagsWithoutWill,
            ReasonCode::MALFORMED_PACKET,
        );
    }

    #[test]
    fn mqtt_3_1_2_13_will_retain_without_will_flag() {
        // covers: [v311:MQTT-3.1.2-15]
        // Will retain (0x20) without the will flag.
        assert_rejected(
            &v311_connect(0x22, &[]),
            DecodeError::WillFlagsWithoutWill,
            ReasonCode::MALFORMED_PACKET,
        );
    }

    #[test]
    fn mqtt_3_1_2_12_will_qos_3() {
        // covers: [v311:MQTT-3.1.2-14]
        // Will flag with both will QoS bits set.
        let wire = v311_connect(0x1E, &[0x00, 0x01, b't', 0x00, 0x00]);
        assert_rejected(&wire, DecodeError::WillQoS3, ReasonCode::MALFORMED_PACKET);
    }

    #[test]
    fn mqtt_2_1_3_1_reserved_header_flags() {
        let mut wire = v311_connect(0x02, &[]);
        wire[0] = 0x11;
        assert_rejected(
            &wire,
            DecodeError::InvalidHeaderFlags {
                packet: PacketType::Connect,
                flags: 1,
            },
            ReasonCode::MALFORMED_PACKET,
        );
    }

    #[test]
    fn will_topic_with_wildcard_is_topic_name_invalid() {
        let wire = v311_connect(0x06, &[0x00, 0x03, b'a', b'/', b'#', 0x00, 0x00]);
        assert_rejected(
            &wire,
            DecodeError::InvalidTopicName(TopicError::WildcardInName),
            ReasonCode::TOPIC_NAME_INVALID,
        );
    }

    #[test]
    fn mqtt_1_5_4_1_client_id_must_be_well_formed_utf8() {
        let mut wire = v311_connect(0x02, &[]);
        *wire.last_mut().unwrap() = 0xFF;
        assert_rejected(
            &wire,
            DecodeError::InvalidUtf8,
            ReasonCode::MALFORMED_PACKET,
        );
    }

    #[test]
    fn truncated_connect_is_malformed() {
        // The remaining length covers the variable header only: no client id follows.
        let wire = frame(
            0x10,
            &[0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04, 0x02, 0x00, 0x3C],
        );
        let error = DecodeError::Truncated {
            packet: PacketType::Connect,
        };
        assert_rejected(&wire, error, ReasonCode::MALFORMED_PACKET);
        // The user name flag promises a field that is not there.
        assert_eq!(
            decode(ProtocolVersion::V3_1_1, &v311_connect(0x82, &[])),
            Err(DecodeError::Truncated {
                packet: PacketType::Connect
            })
        );
    }

    #[test]
    fn bytes_after_the_last_connect_field_are_malformed() {
        let wire = v311_connect(0x02, &[0x00]);
        assert_rejected(
            &wire,
            DecodeError::TrailingBytes {
                packet: PacketType::Connect,
                extra: 1,
            },
            ReasonCode::MALFORMED_PACKET,
        );
    }

    #[test]
    fn spec_2_2_2_2_property_not_allowed_in_connect() {
        // Topic Alias 1 is a PUBLISH property.
        assert_rejected(
            &v5_connect(&[0x23, 0x00, 0x01]),
            DecodeError::PropertyNotAllowed {
                property: PropertyId::TopicAlias,
                context: "CONNECT",
            },
            ReasonCode::MALFORMED_PACKET,
        );
    }

    #[test]
    fn spec_2_2_2_2_property_not_allowed_in_will_properties() {
        // A will with Session Expiry Interval 0 among its will properties.
        #[rustfmt::skip]
        let wire = frame(0x10, &[
            0x00, 0x04, b'M', b'Q', b'T', b'T', 0x05, 0x06, 0x00, 0x3C, 0x00,
            0x00, 0x01, b'a',                          // client id
            0x05, 0x11, 0x00, 0x00, 0x00, 0x00,        // will properties: session expiry
            0x00, 0x01, b't', 0x00, 0x00,              // will topic and payload
        ]);
        assert_rejected(
            &wire,
            DecodeError::PropertyNotAllowed {
                property: PropertyId::SessionExpiryInterval,
                context: "will properties",
            },
            ReasonCode::MALFORMED_PACKET,
        );
    }

    #[test]
    fn unknown_property_identifier_is_malformed() {
        assert_rejected(
            &v5_connect(&[0x05, 0x00]),
            DecodeError::UnknownProperty(0x05),
            ReasonCode::MALFORMED_PACKET,
        );
    }

    #[test]
    fn duplicate_connect_property_is_a_protocol_error() {
        #[rustfmt::skip]
        let wire = v5_connect(&[
            0x11, 0x00, 0x00, 0x00, 0x01,  // session expiry 1
            0x11, 0x00, 0x00, 0x00, 0x02,  // session expiry 2
        ]);
        assert_rejected(
            &wire,
            DecodeError::DuplicateProperty(PropertyId::SessionExpiryInterval),
            ReasonCode::PROTOCOL_ERROR,
        );
    }

    #[test]
    fn spec_3_1_2_11_3_receive_maximum_zero_is_a_protocol_error() {
        assert_rejected(
            &v5_connect(&[0x21, 0x00, 0x00]),
            DecodeError::InvalidPropertyValue {
                property: PropertyId::ReceiveMaximum,
                value: 0,
            },
            ReasonCode::PROTOCOL_ERROR,
        );
    }

    #[test]
    fn spec_3_1_2_11_4_maximum_packet_size_zero_is_a_protocol_error() {
        assert_rejected(
            &v5_connect(&[0x27, 0x00, 0x00, 0x00, 0x00]),
            DecodeError::InvalidPropertyValue {
                property: PropertyId::MaximumPacketSize,
                value: 0,
            },
            ReasonCode::PROTOCOL_ERROR,
        );
    }

    #[test]
    fn spec_3_1_2_11_7_request_problem_information_other_than_0_or_1() {
        assert_rejected(
            &v5_connect(&[0x17, 0x02]),
            DecodeError::InvalidPropertyValue {
                property: PropertyId::RequestProblemInformation,
                value: 2,
            },
            ReasonCode::PROTOCOL_ERROR,
        );
    }

    #[test]
    fn spec_3_1_3_2_will_payload_format_indicator_2_is_rejected() {
        #[rustfmt::skip]
        let wire = frame(0x10, &[
            0x00, 0x04, b'M', b'Q', b'T', b'T', 0x05, 0x06, 0x00, 0x3C, 0x00,
            0x00, 0x01, b'a',                          // client id
            0x02, 0x01, 0x02,                          // will properties: format indicator 2
            0x00, 0x01, b't', 0x00, 0x00,              // will topic and payload
        ]);
        assert_rejected(
            &wire,
            DecodeError::InvalidPropertyValue {
                property: PropertyId::PayloadFormatIndicator,
                value: 2,
            },
            ReasonCode::PROTOCOL_ERROR,
        );
    }

    #[test]
    fn property_length_past_the_packet_is_malformed() {
        // Property length 10 with only the 3-byte client id after it.
        #[rustfmt::skip]
        let wire = frame(0x10, &[
            0x00, 0x04, b'M', b'Q', b'T', b'T', 0x05, 0x02, 0x00, 0x3C, 0x0A,
            0x00, 0x01, b'a',
        ]);
        assert_rejected(
            &wire,
            DecodeError::PropertyLength,
            ReasonCode::MALFORMED_PACKET,
        );
    }

    #[test]
    fn encode_refuses_fields_longer_than_65535_bytes() {
        let long = "a".repeat(65_536);
        let cases = [
            (
                Connect::new(ProtocolVersion::V3_1_1, long.as_str()),
                "client identifier",
            ),
            (
                Connect {
                    username: Some(long.as_str().into()),
                    ..Connect::new(ProtocolVersion::V3_1_1, "a")
                },
                "user name",
            ),
            (
                Connect {
                    password: Some(Bytes::from(long.clone())),
                    username: Some("u".into()),
                    ..Connect::new(ProtocolVersion::V3_1_1, "a")
                },
                "password",
            ),
            (
                Connect {
                    will: Some(Will::new(topic("t"), long.clone())),
                    ..Connect::new(ProtocolVersion::V3_1_1, "a")
                },
                "will payload",
            ),
        ];
        for (connect, field) in cases {
            let packet = Packet::from(connect);
            let expected = EncodeError::FieldTooLong { field, len: 65_536 };
            let mut buf = BytesMut::new();
            assert_eq!(
                packet.encode(ProtocolVersion::V3_1_1, &mut buf),
                Err(expected.clone())
            );
            assert!(buf.is_empty(), "{field}: nothing may be written");
            assert_eq!(packet.encoded_size(ProtocolVersion::V3_1_1), Err(expected));
        }
        // A v5 property string is limited the same way.
        let mut connect = Connect::new(ProtocolVersion::V5, "a");
        connect.properties.user_properties = vec![(long.as_str().into(), "v".into())];
        assert_eq!(
            Packet::from(connect).encode(ProtocolVersion::V5, &mut BytesMut::new()),
            Err(EncodeError::FieldTooLong {
                field: "User Property",
                len: 65_536
            })
        );
    }

    #[test]
    fn exactly_65535_byte_client_id_round_trips() {
        let id = "i".repeat(65_535);
        let packet = Packet::from(Connect::new(ProtocolVersion::V3_1_1, id.as_str()));
        let mut buf = BytesMut::new();
        let written = packet.encode(ProtocolVersion::V3_1_1, &mut buf).unwrap();
        // 1 + 3-byte remaining length + 10 header + 2 + 65535.
        assert_eq!(written, 1 + 3 + 10 + 2 + 65_535);
        assert_eq!(&buf[14..16], &[0xFF, 0xFF]);
        assert_eq!(decode(ProtocolVersion::V3_1_1, &buf).unwrap(), packet);
    }

    #[test]
    fn authentication_data_without_method_is_a_protocol_error() {
        let mut connect = Connect::new(ProtocolVersion::V5, "c");
        connect.properties.authentication_data = Some(bytes::Bytes::from_static(b"token"));
        let mut wire = BytesMut::new();
        Packet::from(connect)
            .encode(ProtocolVersion::V5, &mut wire)
            .unwrap();
        let err = test_support::decode(ProtocolVersion::V5, &wire).unwrap_err();
        assert_eq!(err, DecodeError::AuthDataWithoutMethod);
        assert_eq!(err.reason_code(), ReasonCode::PROTOCOL_ERROR);
    }

    /// The body of a CONNECT up to the payload: protocol name and level for `version`,
    /// `flags`, keep alive 60 and (v5) an empty property block.
    fn connect_header(version: ProtocolVersion, flags: u8) -> Vec<u8> {
        let level = if version.is_v5() { 0x05 } else { 0x04 };
        let mut body = vec![0x00, 0x04, b'M', b'Q', b'T', b'T', level, flags, 0x00, 0x3C];
        if version.is_v5() {
            body.push(0x00);
        }
        body
    }

    /// A CONNECT for `version` with `flags`, client id "a" and then `rest`.
    fn connect_wire(version: ProtocolVersion, flags: u8, rest: &[u8]) -> Vec<u8> {
        let mut body = connect_header(version, flags);
        body.extend_from_slice(&[0x00, 0x01, b'a']);
        body.extend_from_slice(rest);
        frame(0x10, &body)
    }

    fn encode(connect: Connect) -> Vec<u8> {
        let version = connect.protocol;
        let mut buf = BytesMut::new();
        Packet::from(connect).encode(version, &mut buf).unwrap();
        buf.to_vec()
    }

    fn decode_connect(wire: &[u8]) -> Connect {
        match decode(ProtocolVersion::V5, wire) {
            Ok(Packet::Connect(connect)) => *connect,
            other => panic!("expected a CONNECT, got {other:?}"),
        }
    }

    const BOTH: [ProtocolVersion; 2] = [ProtocolVersion::V3_1_1, ProtocolVersion::V5];

    fn truncated() -> DecodeError {
        DecodeError::Truncated {
            packet: PacketType::Connect,
        }
    }

    fn trailing(extra: usize) -> DecodeError {
        DecodeError::TrailingBytes {
            packet: PacketType::Connect,
            extra,
        }
    }

    #[test]
    fn mqtt_3_1_2_9_will_flag_requires_the_will_fields() {
        // covers: [v311:MQTT-3.1.2-9]
        for version in BOTH {
            // v5 has Will Properties (here an empty block) before the Will Topic.
            let properties: &[u8] = if version.is_v5() { &[0x00] } else { &[] };
            let fields = [properties, &[0x00, 0x01, b't', 0x00, 0x02, b'h', b'i']].concat();
            // Flags 0x06: Will Flag and clean start.
            let wire = connect_wire(version, 0x06, &fields);
            let connect = decode_connect(&wire);
            assert_eq!(connect.will, Some(Will::new(topic("t"), "hi")), "{version}");
            // Setting the Will Flag, the encoder writes every will field.
            let will = Some(Will::new(topic("t"), "hi"));
            assert_eq!(
                encode(Connect {
                    will,
                    ..Connect::new(version, "a")
                }),
                wire
            );
            // Without all of them the CONNECT is malformed: drop the payload, then the topic.
            for cut in [2, 5, fields.len()] {
                let short = connect_wire(version, 0x06, &fields[..fields.len() - cut]);
                assert_rejected(&short, truncated(), ReasonCode::MALFORMED_PACKET);
            }
        }
    }

    #[test]
    fn mqtt311_3_1_2_11_without_the_will_flag_there_are_no_will_fields() {
        // Will Topic and Will Message after the client id without the Will Flag: bytes the
        // packet does not have room for.
        let will_fields = [0x00, 0x01, b't', 0x00, 0x02, b'h', b'i'];
        assert_rejected(
            &v311_connect(0x02, &will_fields),
            trailing(will_fields.len()),
            ReasonCode::MALFORMED_PACKET,
        );
        // Will QoS 1, 2, 3 and Will Retain without the Will Flag.
        for flags in [0x0A, 0x12, 0x1A, 0x22, 0x3A] {
            assert_rejected(
                &v311_connect(flags, &will_fields),
                DecodeError::WillFlagsWithoutWill,
                ReasonCode::MALFORMED_PACKET,
            );
        }
        // Without a will the encoder leaves every will bit 0 and writes no will field.
        let wire = encode(Connect::new(ProtocolVersion::V3_1_1, "a"));
        assert_eq!(wire, v311_connect(0x02, &[]));
    }

    #[test]
    fn mqtt_3_1_2_16_without_the_user_name_flag_there_is_no_user_name() {
        // covers: [v311:MQTT-3.1.2-18]
        for version in BOTH {
            let wire = connect_wire(version, 0x02, &[0x00, 0x01, b'u']);
            assert_rejected(&wire, trailing(3), ReasonCode::MALFORMED_PACKET);
            let plain = encode(Connect::new(version, "a"));
            assert_eq!(plain, connect_wire(version, 0x02, &[]), "{version}");
            assert_eq!(decode_connect(&plain).username, None);
        }
    }

    #[test]
    fn mqtt_3_1_2_17_the_user_name_flag_means_a_user_name_follows() {
        // covers: [v311:MQTT-3.1.2-19]
        for version in BOTH {
            let wire = connect_wire(version, 0x82, &[0x00, 0x02, b'u', b'1']);
            let connect = decode_connect(&wire);
            assert_eq!(connect.username.as_deref(), Some("u1"), "{version}");
            assert_eq!(connect.password, None);
            let username = Some("u1".into());
            assert_eq!(
                encode(Connect {
                    username,
                    ..Connect::new(version, "a")
                }),
                wire
            );
            assert_rejected(
                &connect_wire(version, 0x82, &[]),
                truncated(),
                ReasonCode::MALFORMED_PACKET,
            );
        }
    }

    #[test]
    fn mqtt_3_1_2_18_without_the_password_flag_there_is_no_password() {
        // covers: [v311:MQTT-3.1.2-20]
        for version in BOTH {
            // User name flag only, then a user name and a password.
            let wire = connect_wire(version, 0x82, &[0x00, 0x01, b'u', 0x00, 0x01, b'p']);
            assert_rejected(&wire, trailing(3), ReasonCode::MALFORMED_PACKET);
            let username = Some("u".into());
            let no_password = encode(Connect {
                username,
                ..Connect::new(version, "a")
            });
            assert_eq!(
                no_password,
                connect_wire(version, 0x82, &[0x00, 0x01, b'u'])
            );
        }
    }

    #[test]
    fn mqtt_3_1_2_19_the_password_flag_means_a_password_follows() {
        // covers: [v311:MQTT-3.1.2-21]
        for version in BOTH {
            // User name and password flags; the password is binary data.
            let wire = connect_wire(version, 0xC2, &[0x00, 0x01, b'u', 0x00, 0x02, 0x00, 0xFF]);
            let connect = decode_connect(&wire);
            assert_eq!(connect.username.as_deref(), Some("u"), "{version}");
            assert_eq!(connect.password.as_deref(), Some(&[0x00, 0xFF][..]));
            let with_password = Connect {
                username: Some("u".into()),
                password: Some(Bytes::from_static(&[0x00, 0xFF])),
                ..Connect::new(version, "a")
            };
            assert_eq!(encode(with_password), wire);
            assert_rejected(
                &connect_wire(version, 0xC2, &[0x00, 0x01, b'u']),
                truncated(),
                ReasonCode::MALFORMED_PACKET,
            );
        }
    }

    #[test]
    fn mqtt_3_1_3_3_client_id_is_mandatory_and_the_first_payload_field() {
        // covers: [v311:MQTT-3.1.3-3]
        for version in BOTH {
            // No payload at all: the client id is missing.
            let wire = frame(0x10, &connect_header(version, 0x02));
            assert_rejected(&wire, truncated(), ReasonCode::MALFORMED_PACKET);
            // With a user name: the first string is the client id, the second the user name.
            let mut body = connect_header(version, 0x82);
            body.extend_from_slice(&[0x00, 0x01, b'x', 0x00, 0x01, b'y']);
            let wire = frame(0x10, &body);
            let connect = decode_connect(&wire);
            assert_eq!(&*connect.client_id, "x", "{version}");
            assert_eq!(connect.username.as_deref(), Some("y"));
            let encoded = encode(Connect {
                username: Some("y".into()),
                ..Connect::new(version, "x")
            });
            assert_eq!(encoded, wire);
            // An empty client id is still a present (zero-length) field.
            let mut body = connect_header(version, 0x02);
            body.extend_from_slice(&[0x00, 0x00]);
            assert_eq!(&*decode_connect(&frame(0x10, &body)).client_id, "");
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
    fn mqtt_3_1_3_4_client_id_must_be_utf8() {
        // covers: [v311:MQTT-3.1.3-4]
        for version in BOTH {
            for (client_id, error) in bad_strings() {
                let mut body = connect_header(version, 0x02);
                body.extend_from_slice(&client_id);
                assert_rejected(&frame(0x10, &body), error, ReasonCode::MALFORMED_PACKET);
            }
            let mut body = connect_header(version, 0x02);
            body.extend_from_slice(&[0x00, 0x03, b'c', 0xC3, 0xA9]);
            assert_eq!(&*decode_connect(&frame(0x10, &body)).client_id, "cé");
        }
    }

    #[test]
    fn mqtt_3_1_3_11_will_topic_must_be_utf8() {
        // covers: [v311:MQTT-3.1.3-10]
        for version in BOTH {
            let properties: &[u8] = if version.is_v5() { &[0x00] } else { &[] };
            for (topic, error) in bad_strings() {
                let fields = [properties, &topic, &[0x00, 0x00]].concat();
                let wire = connect_wire(version, 0x06, &fields);
                assert_rejected(&wire, error, ReasonCode::MALFORMED_PACKET);
            }
            let fields = [properties, &[0x00, 0x02, 0xC3, 0xA9, 0x00, 0x00]].concat();
            let will = decode_connect(&connect_wire(version, 0x06, &fields)).will;
            assert_eq!(will.map(|w| w.topic), Some(topic("é")));
        }
    }

    #[test]
    fn mqtt_3_1_3_12_user_name_must_be_utf8() {
        // covers: [v311:MQTT-3.1.3-11]
        for version in BOTH {
            for (name, error) in bad_strings() {
                let wire = connect_wire(version, 0x82, &name);
                assert_rejected(&wire, error, ReasonCode::MALFORMED_PACKET);
            }
            let wire = connect_wire(version, 0x82, &[0x00, 0x02, 0xC3, 0xA9]);
            assert_eq!(decode_connect(&wire).username.as_deref(), Some("é"));
        }
    }
}
