//! UNSUBSCRIBE (MQTT 5.0 3.10, 3.1.1 3.10): a packet identifier, properties (5.0) and one or
//! more topic filters.

use bytes::BufMut;

use crate::codec::{check_len, put_str, Reader};
use crate::error::{DecodeError, EncodeError};
use crate::properties::{PropertySet, UnsubscribeProperties};
use crate::topic::TopicFilter;
use crate::types::{PacketId, PacketType, ProtocolVersion};

/// An UNSUBSCRIBE packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsubscribe {
    pub packet_id: PacketId,
    /// At least one [MQTT-3.10.3-2].
    pub filters: Vec<TopicFilter>,
    /// MQTT 5.0 only.
    pub properties: UnsubscribeProperties,
}

impl Unsubscribe {
    /// An UNSUBSCRIBE for `filters` with no properties.
    pub fn new(packet_id: PacketId, filters: Vec<TopicFilter>) -> Self {
        Self {
            packet_id,
            filters,
            properties: UnsubscribeProperties::default(),
        }
    }

    pub(crate) fn decode(
        reader: &mut Reader,
        version: ProtocolVersion,
    ) -> Result<Self, DecodeError> {
        let packet_id = PacketId::new(reader.u16()?).ok_or(DecodeError::ZeroPacketId {
            packet: PacketType::Unsubscribe,
        })?;
        let properties = if version.is_v5() {
            UnsubscribeProperties::decode(reader)?
        } else {
            Default::default()
        };
        let mut filters = Vec::new();
        while !reader.is_empty() {
            filters
                .push(TopicFilter::new(reader.string()?).map_err(DecodeError::InvalidTopicFilter)?);
        }
        if filters.is_empty() {
            return Err(DecodeError::EmptyUnsubscribe);
        }
        Ok(Self {
            packet_id,
            filters,
            properties,
        })
    }

    pub(crate) fn remaining_len(&self, version: ProtocolVersion) -> Result<usize, EncodeError> {
        if self.filters.is_empty() {
            return Err(EncodeError::NoTopicFilters(PacketType::Unsubscribe));
        }
        let mut len = 2;
        if version.is_v5() {
            len += self.properties.encoded_len()?;
        }
        for filter in &self.filters {
            check_len("topic filter", filter.as_str().as_bytes())?;
            len += 2 + filter.as_str().len();
        }
        Ok(len)
    }

    pub(crate) fn encode_body(&self, version: ProtocolVersion, buf: &mut impl BufMut) {
        buf.put_u16(self.packet_id.get());
        if version.is_v5() {
            let len = self.properties.content_len().unwrap_or(0);
            self.properties.encode(len, buf);
        }
        for filter in &self.filters {
            put_str(buf, filter.as_str());
        }
    }
}
