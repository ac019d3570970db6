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
            session_present: flags & 1 != 0,
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
