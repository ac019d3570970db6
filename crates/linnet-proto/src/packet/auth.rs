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
