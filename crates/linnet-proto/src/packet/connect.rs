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
