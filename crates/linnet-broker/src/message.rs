//! An application message as the broker routes it: decoded once from the publisher's PUBLISH
//! and shared (`Arc`) by every queue and subscriber it reaches; the payload is never copied.

use std::cell::OnceCell;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use bytestring::ByteString;
use linnet_proto::{PublishProperties, QoS};

/// A routed message.
#[derive(Debug, Clone)]
pub struct Message {
    pub topic: ByteString,
    pub payload: Bytes,
    /// QoS the publisher used; each subscriber gets at most its granted QoS.
    pub qos: QoS,
    /// RETAIN as published.
    pub retain: bool,
    /// Properties forwarded unchanged [MQTT-3.3.2-4] (user properties in order, payload
    /// format, content type, response topic, correlation data); per-hop ones removed (the
    /// expiry lives on as `expires_at`). Shared, and `None` when there are none, as for most
    /// messages: the message stays small and cheap to copy.
    pub properties: Option<Arc<PublishProperties>>,
    /// When the Message Expiry Interval runs out, if one was set.
    pub expires_at: Option<Instant>,
    /// Session id of the publisher (0: the broker itself), for No Local.
    pub origin: u64,
}

impl Message {
    /// `properties` as stored in a message: `None` when none is set.
    #[inline]
    pub fn stored_properties(properties: PublishProperties) -> Option<Arc<PublishProperties>> {
        if properties.is_none_set() {
            None
        } else {
            Some(Arc::new(properties))
        }
    }

    /// The forwarded properties (empty when there are none).
    pub fn properties(&self) -> &PublishProperties {
        static NONE: PublishProperties = PublishProperties::NONE;
        self.properties.as_deref().unwrap_or(&NONE)
    }

    /// True once the message's expiry interval has passed.
    pub fn is_expired(&self, now: Instant) -> bool {
        self.expires_at.is_some_and(|at| now >= at)
    }

    /// Seconds of life left, rounded up, for the forwarded Message Expiry Interval
    /// [MQTT-3.3.2-6].
    pub fn remaining_expiry(&self, now: Instant) -> Option<u32> {
        self.expires_at.map(|at| {
            let left = at.saturating_duration_since(now);
            let secs = left.as_secs() + u64::from(left.subsec_nanos() > 0);
            u32::try_from(secs).unwrap_or(u32::MAX)
        })
    }
}

/// A message being routed: owned while sessions only write it out at once, shared (`Arc`)
/// from the first time one has to keep it (queued, in flight or retained), and then the same
/// `Arc` for all of them. Most messages are never kept, and skip the allocation.
#[derive(Debug)]
pub(crate) enum Routed {
    Owned {
        message: Message,
        shared: OnceCell<Arc<Message>>,
    },
    Shared(Arc<Message>),
}

impl Routed {
    pub(crate) fn new(message: Message) -> Self {
        Self::Owned {
            message,
            shared: OnceCell::new(),
        }
    }

    pub(crate) fn message(&self) -> &Message {
        match self {
            Self::Owned { message, .. } => message,
            Self::Shared(message) => message,
        }
    }

    /// The message as something to keep; the first call copies it into an `Arc` (payload,
    /// topic and properties are shared, not copied).
    pub(crate) fn shared(&self) -> Arc<Message> {
        match self {
            Self::Owned { message, shared } => {
                Arc::clone(shared.get_or_init(|| Arc::new(message.clone())))
            }
            Self::Shared(message) => Arc::clone(message),
        }
    }
}

impl From<Arc<Message>> for Routed {
    fn from(message: Arc<Message>) -> Self {
        Self::Shared(message)
    }
}
