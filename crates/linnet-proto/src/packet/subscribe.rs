//! SUBSCRIBE (MQTT 5.0 3.8, 3.1.1 3.8): a packet identifier, properties (5.0) and one or more
//! topic filters, each with its subscription options.

use bytes::BufMut;

use crate::codec::{check_len, put_str, Reader};
use crate::error::{DecodeError, EncodeError};
use crate::properties::{PropertySet, SubscribeProperties};
use crate::topic::TopicFilter;
use crate::types::{PacketId, PacketType, ProtocolVersion, QoS, RetainHandling};

/// A SUBSCRIBE packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscribe {
    pub packet_id: PacketId,
    /// At least one [MQTT-3.8.3-2].
    pub subscriptions: Vec<Subscription>,
    /// MQTT 5.0 only.
    pub properties: SubscribeProperties,
}

/// One topic filter of a SUBSCRIBE with its options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    pub filter: TopicFilter,
    pub options: SubscriptionOptions,
}

/// The subscription options byte (MQTT 5.0 3.8.3.1). Before 5.0 only `qos` exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SubscriptionOptions {
    /// Maximum QoS the subscriber accepts.
    pub qos: QoS,
    /// Do not send the subscriber its own publications [MQTT-3.8.3-3].
    pub no_local: bool,
    /// Keep the RETAIN flag as published instead of clearing it.
    pub retain_as_published: bool,
    pub retain_handling: RetainHandling,
}

impl SubscriptionOptions {
    /// Options with `qos` and every 5.0 option at its default.
    pub fn qos(qos: QoS) -> Self {
        Self {
            qos,
            ..Self::default()
        }
    }

    fn decode(byte: u8, version: ProtocolVersion) -> Result<Self, DecodeError> {
        let reserved = if version.is_v5() {
            0b1100_0000
        } else {
            0b1111_1100
        };
        if byte & reserved != 0 {
            return Err(DecodeError::SubscriptionOptionsReserved(byte));
        }
        let qos = QoS::from_u8(byte & 0b11).ok_or(DecodeError::SubscriptionQoS3)?;
        let retain_handling = match (byte >> 4) & 0b11 {
            0 => RetainHandling::SendAtSubscribe,
            1 => RetainHandling::SendIfNew,
            2 => RetainHandling::DoNotSend,
            _ => return Err(DecodeError::SubscriptionOptionsReserved(byte)),
        };
        Ok(Self {
            qos,
            no_local: byte & 0b0100 != 0,
            retain_as_published: byte & 0b1000 != 0,
            retain_handling,
        })
    }

    fn encode(&self, version: ProtocolVersion) -> u8 {
        let mut byte = self.qos as u8;
        if version.is_v5() {
            byte |= u8::from(self.no_local) << 2;
            byte |= u8::from(self.retain_as_published) << 3;
            byte |= (self.retain_handling as u8) << 4;
        }
        byte
    }
}

impl Subscribe {
    /// A SUBSCRIBE for one filter at `qos`.
    pub fn new(packet_id: PacketId, filter: TopicFilter, qos: QoS) -> Self {
        Self {
            packet_id,
            subscriptions: vec![Subscription {
                filter,
                options: SubscriptionOptions::qos(qos),
            }],
            properties: SubscribeProperties::default(),
        }
    }

    pub(crate) fn decode(
        reader: &mut Reader,
        version: ProtocolVersion,
    ) -> Result<Self, DecodeError> {
        let packet_id = PacketId::new(reader.u16()?).ok_or(DecodeError::ZeroPacketId {
            packet: PacketType::Subscribe,
        })?;
        let properties = if version.is_v5() {
            SubscribeProperties::decode(reader)?
        } else {
            Default::default()
        };
        let mut subscriptions = Vec::new();
        while !reader.is_empty() {
            let filter =
                TopicFilter::new(reader.string()?).map_err(DecodeError::InvalidTopicFilter)?;
            let options = SubscriptionOptions::decode(reader.u8()?, version)?;
            if options.no_local && filter.shared().is_some() {
                return Err(DecodeError::NoLocalOnSharedSubscription);
            }
            subscriptions.push(Subscription { filter, options });
        }
        if subscriptions.is_empty() {
            return Err(DecodeError::EmptySubscribe);
        }
        Ok(Self {
            packet_id,
            subscriptions,
            properties,
        })
    }

    pub(crate) fn remaining_len(&self, version: ProtocolVersion) -> Result<usize, EncodeError> {
        if self.subscriptions.is_empty() {
            return Err(EncodeError::NoTopicFilters(PacketType::Subscribe));
        }
        let mut len = 2;
        if version.is_v5() {
            len += self.properties.encoded_len()?;
        }
        for subscription in &self.subscriptions {
            check_len("topic filter", subscription.filter.as_str().as_bytes())?;
            len += 2 + subscription.filter.as_str().len() + 1;
        }
        Ok(len)
    }

    pub(crate) fn encode_body(&self, version: ProtocolVersion, buf: &mut impl BufMut) {
        buf.put_u16(self.packet_id.get());
        if version.is_v5() {
            let len = self.properties.content_len().unwrap_or(0);
            self.properties.encode(len, buf);
        }
        for subscription in &self.subscriptions {
            put_str(buf, subscription.filter.as_str());
            buf.put_u8(subscription.options.encode(version));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroU32;

    use bytes::BytesMut;

    use super::*;
    use crate::packet::test_support::{assert_rejected, assert_wire, checked_decode as decode};
    use crate::packet::Packet;
    use crate::properties::PropertyId;
    use crate::reason::ReasonCode;
    use crate::topic::TopicError;

    fn id(n: u16) -> PacketId {
        PacketId::new(n).unwrap()
    }

    fn subscription(filter: &str, options: SubscriptionOptions) -> Subscription {
        Subscription {
            filter: TopicFilter::new(filter).unwrap(),
            options,
        }
    }

    /// A v5 SUBSCRIBE, packet id 1, no properties, one filter "a/b" with `options`.
    fn v5_subscribe(options: u8) -> [u8; 11] {
        [
            0x82, 0x09, 0x00, 0x01, 0x00, 0x00, 0x03, b'a', b'/', b'b', options,
        ]
    }

    #[test]
    fn spec_3_8_v3_subscribe_with_several_filters() {
        let subscribe = Subscribe {
            packet_id: id(10),
            subscriptions: vec![
                subscription("a/b", SubscriptionOptions::qos(QoS::AtLeastOnce)),
                subscription("c/#", SubscriptionOptions::qos(QoS::ExactlyOnce)),
                subscription("+", SubscriptionOptions::qos(QoS::AtMostOnce)),
            ],
            properties: SubscribeProperties::default(),
        };
        #[rustfmt::skip]
        let wire = [
            0x82, 0x12,                            // SUBSCRIBE (flags 0010), remaining length 18
            0x00, 0x0A,                            // packet id 10
            0x00, 0x03, b'a', b'/', b'b', 0x01,    // "a/b" QoS 1
            0x00, 0x03, b'c', b'/', b'#', 0x02,    // "c/#" QoS 2
            0x00, 0x01, b'+', 0x00,                // "+" QoS 0
        ];
        assert_wire(&subscribe.clone().into(), ProtocolVersion::V3_1_1, &wire);
        assert_wire(&subscribe.into(), ProtocolVersion::V3_1, &wire);
    }

    #[test]
    fn spec_3_8_3_1_v5_subscribe_with_options_and_properties() {
        let subscribe = Subscribe {
            packet_id: id(1),
            subscriptions: vec![
                subscription(
                    "a/+",
                    SubscriptionOptions {
                        qos: QoS::AtLeastOnce,
                        no_local: true,
                        retain_as_published: true,
                        retain_handling: RetainHandling::DoNotSend,
                    },
                ),
                subscription(
                    "$share/g/x",
                    SubscriptionOptions {
                        retain_handling: RetainHandling::SendIfNew,
                        ..SubscriptionOptions::default()
                    },
                ),
                subscription("y", SubscriptionOptions::qos(QoS::ExactlyOnce)),
            ],
            properties: SubscribeProperties {
                subscription_identifier: NonZeroU32::new(300),
                user_properties: vec![("k".into(), "v".into())],
            },
        };
        #[rustfmt::skip]
        let wire = [
            0x82, 0x24,                                // SUBSCRIBE, remaining length 36
            0x00, 0x01,                                // packet id 1
            0x0A,                                      // property length 10
            0x0B, 0xAC, 0x02,                          //   subscription identifier 300
            0x26, 0x00, 0x01, b'k', 0x00, 0x01, b'v',  //   user property k=v
            0x00, 0x03, b'a', b'/', b'+',              // "a/+"
            0x2D,                                      //   RH 2, RAP, NL, QoS 1
            0x00, 0x0A, b'$', b's', b'h', b'a', b'r', b'e', b'/', b'g', b'/', b'x',
            0x10,                                      //   RH 1, QoS 0
            0x00, 0x01, b'y',                          // "y"
            0x02,                                      //   QoS 2
        ];
        assert_wire(&subscribe.into(), ProtocolVersion::V5, &wire);
    }

    #[test]
    fn v5_options_are_not_written_for_v3() {
        let subscribe = Subscribe {
            packet_id: id(2),
            subscriptions: vec![subscription(
                "t",
                SubscriptionOptions {
                    qos: QoS::AtLeastOnce,
                    no_local: true,
                    retain_as_published: true,
                    retain_handling: RetainHandling::DoNotSend,
                },
            )],
            properties: SubscribeProperties {
                subscription_identifier: NonZeroU32::new(1),
                user_properties: Vec::new(),
            },
        };
        let mut buf = BytesMut::new();
        Packet::from(subscribe)
            .encode(ProtocolVersion::V3_1_1, &mut buf)
            .unwrap();
        assert_eq!(&buf[..], [0x82, 0x06, 0x00, 0x02, 0x00, 0x01, b't', 0x01]);
    }

    #[test]
    fn mqtt_2_1_3_1_reserved_header_flags() {
        for first in [0x80, 0x83, 0x8A] {
            let mut wire = v5_subscribe(0x00);
            wire[0] = first;
            assert_rejected(
                ProtocolVersion::V5,
                &wire,
                DecodeError::InvalidHeaderFlags {
                    packet: PacketType::Subscribe,
                    flags: first & 0x0F,
                },
                ReasonCode::MALFORMED_PACKET,
            );
        }
    }

    #[test]
    fn mqtt_3_8_3_2_empty_subscribe_rejected() {
        assert_rejected(
            ProtocolVersion::V3_1_1,
            &[0x82, 0x02, 0x00, 0x01],
            DecodeError::EmptySubscribe,
            ReasonCode::PROTOCOL_ERROR,
        );
        assert_rejected(
            ProtocolVersion::V5,
            &[0x82, 0x03, 0x00, 0x01, 0x00],
            DecodeError::EmptySubscribe,
            ReasonCode::PROTOCOL_ERROR,
        );
    }

    #[test]
    fn spec_2_2_1_3_zero_packet_id_rejected() {
        let mut wire = v5_subscribe(0x00);
        wire[3] = 0x00;
        assert_rejected(
            ProtocolVersion::V5,
            &wire,
            DecodeError::ZeroPacketId {
                packet: PacketType::Subscribe,
            },
            ReasonCode::PROTOCOL_ERROR,
        );
    }

    #[test]
    fn mqtt_3_8_3_5_reserved_subscription_option_bits() {
        for options in [0x40, 0x80, 0xC1] {
            assert_rejected(
                ProtocolVersion::V5,
                &v5_subscribe(options),
                DecodeError::SubscriptionOptionsReserved(options),
                ReasonCode::MALFORMED_PACKET,
            );
        }
        // Reserved bits together with Retain Handling 3 are still malformed.
        assert_eq!(
            DecodeError::SubscriptionOptionsReserved(0x70).reason_code(),
            ReasonCode::MALFORMED_PACKET
        );
    }

    #[test]
    fn spec_3_8_3_4_v311_options_above_qos_are_reserved() {
        // In 3.1.1 bits 2-7 are reserved: the v5 option bits included.
        let wire = [0x82, 0x06, 0x00, 0x01, 0x00, 0x01, b't', 0x04];
        for version in [ProtocolVersion::V3_1, ProtocolVersion::V3_1_1] {
            assert_eq!(
                decode(version, &wire),
                Err(DecodeError::SubscriptionOptionsReserved(0x04))
            );
        }
    }

    #[test]
    fn spec_3_8_3_1_retain_handling_3_is_a_protocol_error() {
        assert_rejected(
            ProtocolVersion::V5,
            &v5_subscribe(0x30),
            DecodeError::SubscriptionOptionsReserved(0x30),
            ReasonCode::PROTOCOL_ERROR,
        );
    }

    #[test]
    fn spec_3_8_3_1_maximum_qos_3_is_a_protocol_error() {
        assert_rejected(
            ProtocolVersion::V5,
            &v5_subscribe(0x03),
            DecodeError::SubscriptionQoS3,
            ReasonCode::PROTOCOL_ERROR,
        );
        assert_eq!(
            decode(
                ProtocolVersion::V3_1_1,
                &[0x82, 0x06, 0x00, 0x01, 0x00, 0x01, b't', 0x03]
            ),
            Err(DecodeError::SubscriptionQoS3)
        );
    }

    #[test]
    fn mqtt_3_8_3_4_no_local_on_shared_subscription() {
        #[rustfmt::skip]
        let wire = [
            0x82, 0x10, 0x00, 0x01, 0x00,
            0x00, 0x0A, b'$', b's', b'h', b'a', b'r', b'e', b'/', b'g', b'/', b'x',
            0x04,                                      // No Local
        ];
        assert_rejected(
            ProtocolVersion::V5,
            &wire,
            DecodeError::NoLocalOnSharedSubscription,
            ReasonCode::PROTOCOL_ERROR,
        );
    }

    #[test]
    fn mqtt_4_7_1_1_invalid_topic_filter() {
        #[rustfmt::skip]
        let wire = [
            0x82, 0x0B, 0x00, 0x01, 0x00,
            0x00, 0x05, b'a', b'/', b'#', b'/', b'b',  // '#' not last
            0x00,
        ];
        assert_rejected(
            ProtocolVersion::V5,
            &wire,
            DecodeError::InvalidTopicFilter(TopicError::MultiLevelNotLast),
            ReasonCode::TOPIC_FILTER_INVALID,
        );
    }

    #[test]
    fn spec_3_8_2_1_2_subscription_identifier_zero_is_a_protocol_error() {
        #[rustfmt::skip]
        let wire = [
            0x82, 0x09, 0x00, 0x01,
            0x02, 0x0B, 0x00,                          // subscription identifier 0
            0x00, 0x01, b't', 0x00,
        ];
        assert_rejected(
            ProtocolVersion::V5,
            &wire,
            DecodeError::InvalidPropertyValue {
                property: PropertyId::SubscriptionIdentifier,
                value: 0,
            },
            ReasonCode::PROTOCOL_ERROR,
        );
    }

    #[test]
    fn spec_3_8_2_1_2_subscription_identifier_twice_is_a_protocol_error() {
        #[rustfmt::skip]
        let wire = [
            0x82, 0x0B, 0x00, 0x01,
            0x04, 0x0B, 0x01, 0x0B, 0x02,              // subscription identifiers 1 and 2
            0x00, 0x01, b't', 0x00,
        ];
        assert_rejected(
            ProtocolVersion::V5,
            &wire,
            DecodeError::DuplicateProperty(PropertyId::SubscriptionIdentifier),
            ReasonCode::PROTOCOL_ERROR,
        );
    }

    #[test]
    fn spec_2_2_2_2_property_not_allowed_in_subscribe() {
        #[rustfmt::skip]
        let wire = [
            0x82, 0x0C, 0x00, 0x01,
            0x05, 0x1F, 0x00, 0x02, b'n', b'o',        // reason string
            0x00, 0x01, b't', 0x00,
        ];
        assert_rejected(
            ProtocolVersion::V5,
            &wire,
            DecodeError::PropertyNotAllowed {
                property: PropertyId::ReasonString,
                context: "SUBSCRIBE",
            },
            ReasonCode::MALFORMED_PACKET,
        );
    }

    #[test]
    fn filter_without_options_byte_is_truncated() {
        assert_rejected(
            ProtocolVersion::V3_1_1,
            &[0x82, 0x05, 0x00, 0x01, 0x00, 0x01, b'a'],
            DecodeError::Truncated {
                packet: PacketType::Subscribe,
            },
            ReasonCode::MALFORMED_PACKET,
        );
    }

    #[test]
    fn encode_refuses_a_subscribe_without_filters() {
        let subscribe = Subscribe {
            packet_id: id(1),
            subscriptions: Vec::new(),
            properties: SubscribeProperties::default(),
        };
        let mut buf = BytesMut::new();
        assert_eq!(
            Packet::from(subscribe).encode(ProtocolVersion::V5, &mut buf),
            Err(EncodeError::NoTopicFilters(PacketType::Subscribe))
        );
        assert!(buf.is_empty());
    }
}
