//! SUBACK (MQTT 5.0 3.9, 3.1.1 3.9): one reason code per topic filter of the SUBSCRIBE, in
//! order [MQTT-3.9.3-1]. Before 5.0 the codes are 0, 1, 2 (granted QoS) or 0x80 (failure).

use bytes::BufMut;

use crate::codec::Reader;
use crate::error::{DecodeError, EncodeError};
use crate::properties::{decode_ack_in, AckProperties, Context, PropertySet};
use crate::reason::ReasonCode;
use crate::types::{PacketId, PacketType, ProtocolVersion};

/// A SUBACK packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubAck {
    pub packet_id: PacketId,
    /// One per requested filter; values below 0x80 grant that QoS.
    pub reason_codes: Vec<ReasonCode>,
    /// MQTT 5.0 only.
    pub properties: AckProperties,
}

impl SubAck {
    /// A SUBACK with these codes and no properties.
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
        let packet = PacketType::SubAck;
        let packet_id = PacketId::new(reader.u16()?).ok_or(DecodeError::ZeroPacketId { packet })?;
        let properties = if version.is_v5() {
            decode_ack_in(reader, Context::SubAck)?
        } else {
            AckProperties::default()
        };
        let mut reason_codes = Vec::with_capacity(reader.remaining());
        while !reader.is_empty() {
            let code = reader.u8()?;
            let valid = if version.is_v5() {
                ReasonCode(code).is_valid_for(packet)
            } else {
                matches!(code, 0 | 1 | 2 | 0x80)
            };
            if !valid {
                return Err(DecodeError::InvalidReasonCode { packet, code });
            }
            reason_codes.push(ReasonCode(code));
        }
        Ok(Self {
            packet_id,
            reason_codes,
            properties,
        })
    }

    pub(crate) fn remaining_len(&self, version: ProtocolVersion) -> Result<usize, EncodeError> {
        let properties = if version.is_v5() {
            self.properties.encoded_len()?
        } else {
            0
        };
        Ok(2 + properties + self.reason_codes.len())
    }

    pub(crate) fn encode_body(&self, version: ProtocolVersion, buf: &mut impl BufMut) {
        buf.put_u16(self.packet_id.get());
        if version.is_v5() {
            let len = self.properties.content_len().unwrap_or(0);
            self.properties.encode(len, buf);
            for code in &self.reason_codes {
                buf.put_u8(code.0);
            }
        } else {
            // 3.x knows only the granted QoS or the single failure code 0x80.
            for code in &self.reason_codes {
                buf.put_u8(if code.is_success() { code.0 } else { 0x80 });
            }
        }
    }
}
