//! PUBACK, PUBREC, PUBREL and PUBCOMP (MQTT 5.0 3.4-3.7): the four QoS 1/2 responses share
//! one layout, a packet identifier, a reason code and properties, so they share one struct.
//! In 5.0 the reason code and properties may be omitted when they are Success and empty
//! [MQTT-3.4.2-1]; before 5.0 only the packet identifier exists.

use bytes::BufMut;

use crate::codec::Reader;
use crate::error::{DecodeError, EncodeError};
use crate::properties::{AckProperties, PropertySet};
use crate::reason::ReasonCode;
use crate::types::{PacketId, ProtocolVersion};

/// The body of PUBACK, PUBREC, PUBREL or PUBCOMP; [`Packet`](crate::Packet) names which.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PubResponse {
    pub packet_id: PacketId,
    /// MQTT 5.0 only; Success when absent or for older versions.
    pub reason_code: ReasonCode,
    /// MQTT 5.0 only.
    pub properties: AckProperties,
}

impl PubResponse {
    /// A successful response for `packet_id`.
    pub fn new(packet_id: PacketId) -> Self {
        Self {
            packet_id,
            reason_code: ReasonCode::SUCCESS,
            properties: AckProperties::default(),
        }
    }

    /// A response for `packet_id` carrying `reason_code`.
    pub fn with_reason(packet_id: PacketId, reason_code: ReasonCode) -> Self {
        Self {
            reason_code,
            ..Self::new(packet_id)
        }
    }

    pub(crate) fn decode(
        reader: &mut Reader,
        version: ProtocolVersion,
    ) -> Result<Self, DecodeError> {
        let packet = reader.packet();
        let packet_id = PacketId::new(reader.u16()?).ok_or(DecodeError::ZeroPacketId { packet })?;
        let mut response = Self::new(packet_id);
        if version.is_v5() && !reader.is_empty() {
            let code = reader.u8()?;
            if !ReasonCode(code).is_valid_for(packet) {
                return Err(DecodeError::InvalidReasonCode { packet, code });
            }
            response.reason_code = ReasonCode(code);
            // Remaining length 3: a reason code and no property length [MQTT-3.4.2.2].
            if !reader.is_empty() {
                response.properties = AckProperties::decode(reader)?;
            }
        }
        Ok(response)
    }

    pub(crate) fn remaining_len(&self, version: ProtocolVersion) -> Result<usize, EncodeError> {
        if !version.is_v5() {
            return Ok(2);
        }
        let properties = self.properties.content_len()?;
        Ok(match (self.reason_code, properties) {
            (ReasonCode::SUCCESS, 0) => 2,
            (_, 0) => 3,
            _ => 3 + crate::codec::varint_len(properties as u32) + properties,
        })
    }

    pub(crate) fn encode_body(&self, version: ProtocolVersion, buf: &mut impl BufMut) {
        buf.put_u16(self.packet_id.get());
        if !version.is_v5() {
            return;
        }
        let properties = self.properties.content_len().unwrap_or(0);
        if self.reason_code == ReasonCode::SUCCESS && properties == 0 {
            return;
        }
        buf.put_u8(self.reason_code.0);
        if properties > 0 {
            self.properties.encode(properties, buf);
        }
    }
}
