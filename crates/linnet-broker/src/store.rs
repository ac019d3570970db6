//! The persistence seam. The broker keeps its live state (sessions, subscriptions, queues,
//! retained messages) in memory and tells a [`Store`] about every change that would have to
//! survive a restart. [`InMemory`] records nothing more, so with it nothing survives a
//! restart; the durable store (a later issue) implements the same trait on disk and adds the
//! load at start-up. Calls happen outside the per-message hot path for QoS 0, and never while
//! a lock is held across `.await`.

use std::fmt;
use std::num::NonZeroU32;

use linnet_proto::{SubscriptionOptions, TopicFilter};

use crate::message::Message;

/// Receives the broker's durable state changes. Every method has an empty default so a store
/// implements what it persists.
pub trait Store: Send + Sync + fmt::Debug {
    /// A session was created, or resumed with a new expiry interval.
    fn session_started(&self, _client_id: &str, _expiry_interval: u32) {}
    /// A session ended (expired, or replaced by a clean start).
    fn session_ended(&self, _client_id: &str) {}
    /// A subscription was added or replaced.
    fn subscribed(
        &self,
        _client_id: &str,
        _filter: &TopicFilter,
        _options: SubscriptionOptions,
        _identifier: Option<NonZeroU32>,
    ) {
    }
    /// A subscription was removed.
    fn unsubscribed(&self, _client_id: &str, _filter: &TopicFilter) {}
    /// A retained message was stored (replacing any before it on the topic).
    fn retained_set(&self, _message: &Message) {}
    /// A topic's retained message was deleted.
    fn retained_cleared(&self, _topic: &str) {}
}

/// Keeps no copy: the broker's memory is the only state, lost on restart.
#[derive(Debug, Default, Clone, Copy)]
pub struct InMemory;

impl Store for InMemory {}
