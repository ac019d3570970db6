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
