//! UNSUBACK (MQTT 5.0 3.11, 3.1.1 3.11): in 5.0 one reason code per topic filter of the
//! UNSUBSCRIBE [MQTT-3.11.3-1]; before 5.0 only the packet identifier.

use bytes::BufMut;

use crate::codec::Reader;
use crate::error::{DecodeError, EncodeError};
use crate::properties::{decode_ack_in, AckProperties, Context, PropertySet};
use crate::reason::ReasonCode;
use crate::types::{PacketId, PacketType, ProtocolVersion};

/// An UNSUBACK packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsubAck {
    pub packet_id: PacketId,
    /// MQTT 5.0 only: one per filter. Empty when decoded from 3.x.
    pub reason_codes: Vec<ReasonCode>,
    /// MQTT 5.0 only.
    pub properties: AckProperties,
}

impl UnsubAck {
    /// An UNSUBACK with these codes and no properties.
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
        let packet = PacketType::UnsubAck;
        let packet_id = PacketId::new(reader.u16()?).ok_or(DecodeError::ZeroPacketId { packet })?;
        let mut unsuback = Self::new(packet_id, Vec::new());
        if version.is_v5() {
            unsuback.properties = decode_ack_in(reader, Context::UnsubAck)?;
            while !reader.is_empty() {
                let code = reader.u8()?;
                if !ReasonCode(code).is_valid_for(packet) {
                    return Err(DecodeError::InvalidReasonCode { packet, code });
                }
                unsuback.reason_codes.push(ReasonCode(code));
            }
        }
        Ok(unsuback)
    }

    pub(crate) fn remaining_len(&self, version: ProtocolVersion) -> Result<usize, EncodeError> {
        if !version.is_v5() {
            return Ok(2);
        }
        Ok(2 + self.properties.encoded_len()? + self.reason_codes.len())
    }

    pub(crate) fn encode_body(&self, version: ProtocolVersion, buf: &mut impl BufMut) {
        buf.put_u16(self.packet_id.get());
        if version.is_v5() {
            let len = self.properties.content_len().unwrap_or(0);
            self.properties.encode(len, buf);
            for code in &self.reason_codes {
                buf.put_u8(code.0);
            }
        }
    }
}
