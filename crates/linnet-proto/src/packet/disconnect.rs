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
