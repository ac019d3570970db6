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

#[cfg(test)]
mod tests {
    use bytes::BytesMut;

    use super::*;
    use crate::packet::test_support::{assert_rejected, assert_wire};
    use crate::packet::Packet;
    use crate::properties::PropertyId;
    use crate::reason::ReasonCode;
    use crate::topic::TopicError;

    fn filters(names: &[&str]) -> Vec<TopicFilter> {
        names
            .iter()
            .map(|f| TopicFilter::new(*f).unwrap())
            .collect()
    }

    #[test]
    fn spec_3_10_v3_unsubscribe_with_two_filters() {
        let unsubscribe = Unsubscribe::new(PacketId::new(11).unwrap(), filters(&["a/b", "c"]));
        #[rustfmt::skip]
        let wire = [
            0xA2, 0x0A,                      // UNSUBSCRIBE (flags 0010), remaining length 10
            0x00, 0x0B,                      // packet id 11
            0x00, 0x03, b'a', b'/', b'b',    // "a/b"
            0x00, 0x01, b'c',                // "c"
        ];
        assert_wire(&unsubscribe.clone().into(), ProtocolVersion::V3_1_1, &wire);
        assert_wire(&unsubscribe.into(), ProtocolVersion::V3_1, &wire);
    }

    #[test]
    fn spec_3_10_2_v5_without_properties() {
        let unsubscribe = Unsubscribe::new(PacketId::new(1).unwrap(), filters(&["$share/g/#"]));
        #[rustfmt::skip]
        let wire = [
            0xA2, 0x0F,                      // UNSUBSCRIBE, remaining length 15
            0x00, 0x01,                      // packet id 1
            0x00,                            // property length 0
            0x00, 0x0A, b'$', b's', b'h', b'a', b'r', b'e', b'/', b'g', b'/', b'#',
        ];
        assert_wire(&unsubscribe.into(), ProtocolVersion::V5, &wire);
    }

    #[test]
    fn spec_3_10_2_1_v5_with_user_property() {
        let mut unsubscribe = Unsubscribe::new(PacketId::new(11).unwrap(), filters(&["a/b"]));
        unsubscribe.properties.user_properties = vec![("k".into(), "v".into())];
        #[rustfmt::skip]
        let wire = [
            0xA2, 0x0F,                                // UNSUBSCRIBE, remaining length 15
            0x00, 0x0B,                                // packet id 11
            0x07,                                      // property length 7
            0x26, 0x00, 0x01, b'k', 0x00, 0x01, b'v',  //   user property k=v
            0x00, 0x03, b'a', b'/', b'b',              // "a/b"
        ];
        assert_wire(&unsubscribe.into(), ProtocolVersion::V5, &wire);
    }

    #[test]
    fn mqtt_3_10_3_2_empty_unsubscribe_rejected() {
        assert_rejected(
            ProtocolVersion::V3_1_1,
            &[0xA2, 0x02, 0x00, 0x01],
            DecodeError::EmptyUnsubscribe,
            ReasonCode::PROTOCOL_ERROR,
        );
        assert_rejected(
            ProtocolVersion::V5,
            &[0xA2, 0x03, 0x00, 0x01, 0x00],
            DecodeError::EmptyUnsubscribe,
            ReasonCode::PROTOCOL_ERROR,
        );
    }

    #[test]
    fn mqtt_2_1_3_1_reserved_header_flags() {
        for first in [0xA0, 0xA3] {
            assert_rejected(
                ProtocolVersion::V3_1_1,
                &[first, 0x05, 0x00, 0x01, 0x00, 0x01, b'a'],
                DecodeError::InvalidHeaderFlags {
                    packet: PacketType::Unsubscribe,
                    flags: first & 0x0F,
                },
                ReasonCode::MALFORMED_PACKET,
            );
        }
    }

    #[test]
    fn spec_2_2_1_3_zero_packet_id_rejected() {
        assert_rejected(
            ProtocolVersion::V3_1_1,
            &[0xA2, 0x05, 0x00, 0x00, 0x00, 0x01, b'a'],
            DecodeError::ZeroPacketId {
                packet: PacketType::Unsubscribe,
            },
            ReasonCode::PROTOCOL_ERROR,
        );
    }

    #[test]
    fn mqtt_4_7_1_2_invalid_topic_filter() {
        assert_rejected(
            ProtocolVersion::V3_1_1,
            &[0xA2, 0x06, 0x00, 0x01, 0x00, 0x02, b'+', b'a'],
            DecodeError::InvalidTopicFilter(TopicError::SingleLevelNotAlone),
            ReasonCode::TOPIC_FILTER_INVALID,
        );
    }

    #[test]
    fn spec_2_2_2_2_property_not_allowed_in_unsubscribe() {
        #[rustfmt::skip]
        let wire = [
            0xA2, 0x08, 0x00, 0x01,
            0x02, 0x0B, 0x01,                          // subscription identifier 1
            0x00, 0x01, b'a',
        ];
        assert_rejected(
            ProtocolVersion::V5,
            &wire,
            DecodeError::PropertyNotAllowed {
                property: PropertyId::SubscriptionIdentifier,
                context: "UNSUBSCRIBE",
            },
            ReasonCode::MALFORMED_PACKET,
        );
    }

    #[test]
    fn filter_running_past_the_packet_is_truncated() {
        // A filter length of 5 with no filter bytes.
        assert_rejected(
            ProtocolVersion::V3_1_1,
            &[0xA2, 0x04, 0x00, 0x01, 0x00, 0x05],
            DecodeError::Truncated {
                packet: PacketType::Unsubscribe,
            },
            ReasonCode::MALFORMED_PACKET,
        );
    }

    #[test]
    fn encode_refuses_an_unsubscribe_without_filters() {
        let unsubscribe = Unsubscribe::new(PacketId::new(1).unwrap(), Vec::new());
        let mut buf = BytesMut::new();
        assert_eq!(
            Packet::from(unsubscribe).encode(ProtocolVersion::V3_1_1, &mut buf),
            Err(EncodeError::NoTopicFilters(PacketType::Unsubscribe))
        );
        assert!(buf.is_empty());
    }
}
