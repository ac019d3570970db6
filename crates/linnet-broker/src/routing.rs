//! Routing and session lifecycle, shared by every connection: fan-out of a message to the
//! matching sessions (the hot path), subscriptions and retained messages, shared-subscription
//! re-dispatch, wills and session expiry, and attaching a connection to its session.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytestring::ByteString;
use linnet_proto::{QoS, RetainHandling, Subscription, TopicFilter, Will};

use crate::message::{Message, Routed};
use crate::router::{Entry, Router};
use crate::session::{Delivery, FlushBatch, Offer, QueueLimits, Session, Stage};
use crate::{lock, read, write, Broker};

/// Finds or creates the session for `client_id` and takes it from any connection that holds
/// it (that connection is woken and closes with 0x8E) [MQTT-3.1.4-3]. Returns the session,
/// whether it was resumed, and a session that clean start replaced.
pub(crate) fn attach_session(
    broker: &Broker,
    client_id: &ByteString,
    clean_start: bool,
) -> (Arc<Session>, bool, Option<Arc<Session>>) {
    let mut sessions = lock(&broker.inner.sessions);
    let existing = sessions.get(client_id).cloned();
    if let Some(old) = &existing {
        // Detach the old connection; it notices its generation is gone and closes.
        {
            let mut state = lock(&old.state);
            state.link = None;
            state.socket = None;
            broker.inner.keep_alive.disarm(old);
        }
        old.wake.notify_one();
    }
    match existing {
        Some(old) if !clean_start => (old, true, None),
        other => {
            let session = Arc::new(Session::new(broker.next_session_id(), client_id.clone()));
            sessions.insert(client_id.clone(), session.clone());
            (session, false, other)
        }
    }
}

/// Ends a session: its subscriptions leave the router, and messages it received through a
/// shared subscription but never acknowledged go to another member of the group (MQTT 5.0
/// 4.8.2).
pub(crate) fn discard_session(broker: &Broker, session: &Arc<Session>) {
    let (subscriptions, orphans) = {
        let mut guard = lock(&session.state);
        // Through a plain reference, so that fields can be borrowed separately.
        let state = &mut *guard;
        let unacknowledged = state
            .inflight
            .drain(..)
            // A QoS 2 message already sent may reach no other member [MQTT-4.8.2-5]; QoS 1
            // ones and those still queued may.
            .filter(|i| i.stage == Stage::Published && i.qos == QoS::AtLeastOnce)
            .map(|i| i.delivery);
        let orphans: Vec<Delivery> = unacknowledged
            .chain(state.queue.drain(..))
            .filter(|d| d.shared.is_some())
            .collect();
        let subscriptions: Vec<TopicFilter> = state
            .subscriptions
            .drain()
            .map(|(_, filter)| filter)
            .collect();
        (subscriptions, orphans)
    };
    if !subscriptions.is_empty() {
        let mut router = write(&broker.inner.router);
        for filter in &subscriptions {
            router.unsubscribe(filter, session.id);
        }
    }
    broker.inner.store.session_ended(&session.client_id);
    if !orphans.is_empty() {
        broker.redispatch_shared(orphans);
    }
}

/// One subscriber a topic resolves to, after No Local and the merge of one client's
/// overlapping subscriptions.
struct Target {
    client: u64,
    subscriber: Arc<Session>,
    /// Highest granted QoS among the merged subscriptions.
    qos: QoS,
    /// Retain As Published on any of them.
    keep_retain: bool,
    subscription_ids: Vec<NonZeroU32>,
    /// The `$share/...` filter of a shared pick.
    shared: Option<TopicFilter>,
    is_shared: bool,
}

/// The subscribers of the last few topics one connection published to. A device publishes
/// to the same few topics again and again, and the index walk is the largest part of routing
/// a message; an entry holds while the router's generation is the one it was resolved under.
/// Bounded: a few topics, each with a few dozen subscribers at most (a broadcast topic is
/// matched every time rather than held once per publisher).
#[derive(Default)]
pub(crate) struct MatchCache {
    entries: Vec<CachedMatch>,
    /// Which entry a new topic replaces once all are in use (round robin).
    next: usize,
    /// A target list kept for its allocation: the last unremembered match's, or the last
    /// replaced entry's.
    scratch: Vec<Target>,
    /// Lookups since the hit rate was last looked at, and the hits among them.
    lookups: u8,
    hits: u8,
    /// Misses still to go before new topics are remembered again: set when few lookups hit,
    /// as for a gateway publishing to ever new topics, which would pay for copies it never
    /// reuses. Lookups that could not be remembered anyway (shared, long, broadcast) do not
    /// count.
    resting: u16,
}

struct CachedMatch {
    topic: Box<str>,
    generation: u64,
    /// Subscriptions matched before the merge (for "no matching subscribers").
    matched: usize,
    targets: Vec<Target>,
}

impl MatchCache {
    /// Topics remembered per connection.
    const TOPICS: usize = 4;
    /// Longer topics are matched every time rather than copied here.
    const MAX_TOPIC_LEN: usize = 256;
    /// Topics with more subscribers than this are matched every time.
    const MAX_TARGETS: usize = 64;

    /// Lookups per hit-rate check, the fewest hits among them that keep remembering on, and
    /// how many misses a rest lasts.
    const WINDOW: u8 = 64;
    const MIN_HITS: u8 = 16;
    const REST: u16 = 1024;

    fn get(&mut self, topic: &str, generation: u64) -> Option<&CachedMatch> {
        let found = self
            .entries
            .iter()
            .position(|entry| entry.generation == generation && *entry.topic == *topic)?;
        self.count(true);
        Some(&self.entries[found])
    }

    /// After a miss of a match that could be remembered: whether to remember it (not while
    /// resting).
    fn remember_next(&mut self) -> bool {
        if self.resting > 0 {
            self.resting -= 1;
            return false;
        }
        self.count(false);
        true
    }

    /// Counts a hit or a rememberable miss, outside a rest; a window with too few hits
    /// starts one.
    fn count(&mut self, hit: bool) {
        if self.resting > 0 {
            return;
        }
        self.lookups += 1;
        self.hits += u8::from(hit);
        if self.lookups == Self::WINDOW {
            if self.hits < Self::MIN_HITS {
                self.resting = Self::REST;
            }
            self.lookups = 0;
            self.hits = 0;
        }
    }

    /// Drops the entries from before `generation`; true when none is left.
    pub(crate) fn forget_stale(&mut self, generation: u64) -> bool {
        self.entries.retain(|entry| entry.generation == generation);
        self.scratch = Vec::new();
        self.entries.is_empty()
    }

    fn insert(&mut self, topic: &str, generation: u64, matched: usize, targets: Vec<Target>) {
        // Entries from an older generation are dead: drop them and the sessions they hold.
        self.entries.retain(|entry| entry.generation == generation);
        let entry = CachedMatch {
            topic: topic.into(),
            generation,
            matched,
            targets,
        };
        if self.entries.len() < Self::TOPICS {
            self.entries.push(entry);
        } else {
            let replaced = std::mem::replace(&mut self.entries[self.next], entry);
            self.next = (self.next + 1) % Self::TOPICS;
            let mut targets = replaced.targets;
            targets.clear();
            self.scratch = targets;
        }
    }
}

/// Every subscriber `message` goes to, into `out`: one target per client for overlapping
/// subscriptions, at the highest QoS, with every subscription identifier [MQTT-3.3.4-2]
/// [MQTT-3.3.4-3]; shared picks stay separate. Returns how many subscriptions matched and
/// whether a shared group was among them.
fn resolve(
    router: &Router<Arc<Session>>,
    message: &Message,
    out: &mut Vec<Target>,
) -> (usize, bool) {
    let mut any_shared = false;
    router.for_each_match(
        &message.topic,
        |s| s.is_connected(),
        |entry, shared| {
            // No Local: not back to the publisher's own non-shared subscriptions [MQTT-3.8.3-3].
            if entry.options.no_local && entry.client == message.origin && !shared {
                return;
            }
            any_shared |= shared;
            out.push(Target {
                client: entry.client,
                subscriber: entry.subscriber.clone(),
                qos: entry.options.qos,
                keep_retain: entry.options.retain_as_published,
                subscription_ids: entry.identifier.into_iter().collect(),
                shared: entry.shared_filter.clone(),
                is_shared: shared,
            });
        },
    );
    let matched = out.len();
    if matched > 1 {
        out.sort_unstable_by_key(|target| (target.client, target.is_shared));
        out.dedup_by(|later, kept| {
            let same_client = !later.is_shared && !kept.is_shared && later.client == kept.client;
            if same_client {
                kept.qos = kept.qos.max(later.qos);
                kept.keep_retain |= later.keep_retain;
                kept.subscription_ids.append(&mut later.subscription_ids);
            }
            same_client
        });
    }
    (matched, any_shared)
}

impl Broker {
    /// Routes a message to every matching subscription and stores it if retained. Returns how
    /// many subscriptions matched.
    pub(crate) fn publish(&self, message: Arc<Message>) -> usize {
        let mut batch = FlushBatch::default();
        let matched = self.publish_into(Routed::from(message), &mut batch, None, Instant::now());
        batch.finish(&self.inner.stats);
        matched
    }

    /// [`Broker::publish`] for a connection's read batch: subscribers whose output was idle
    /// go into `batch`, to be written once the batch is handled. With a `cache`, a topic the
    /// connection published to before, while no subscription changed, skips matching. `now`
    /// is what the message's expiry is checked against: only a message with an expiry needs
    /// the real time (nothing else on the way is timed).
    pub(crate) fn publish_into(
        &self,
        routed: Routed,
        batch: &mut FlushBatch,
        mut cache: Option<&mut MatchCache>,
        now: Instant,
    ) -> usize {
        let message = routed.message();
        if message.retain {
            let mut retained = write(&self.inner.retained);
            if message.payload.is_empty() {
                // An empty retained message deletes the topic's retained message [MQTT-3.3.1-6].
                if retained.remove(&message.topic).is_some() {
                    self.inner.store.retained_cleared(&message.topic);
                }
            } else {
                let kept = routed.shared();
                self.inner.store.retained_set(&kept);
                retained.insert(message.topic.clone(), kept);
            }
        }
        let limits = self.queue_limits();
        let stats = &self.inner.stats;
        // Held while delivering, as before the cache: a subscription that is being removed
        // gets nothing once its UNSUBACK can have been sent.
        let router = read(&self.inner.router);
        let generation = router.generation();
        let mut deliver = |target: &Target| {
            let offer = Offer {
                routed: &routed,
                qos: message.qos.min(target.qos),
                // Live messages go out with RETAIN 0 unless Retain As Published [MQTT-3.3.1-12].
                retain: message.retain && target.keep_retain,
                subscription_ids: &target.subscription_ids,
                shared: target.shared.as_ref(),
            };
            let session = &target.subscriber;
            if lock(&session.state).offer(offer, limits, stats, now) {
                batch.add(session);
            }
        };
        if let Some(hit) = cache
            .as_deref_mut()
            .and_then(|cache| cache.get(&message.topic, generation))
        {
            hit.targets.iter().for_each(&mut deliver);
            return hit.matched;
        }
        let mut targets = cache
            .as_deref_mut()
            .map(|cache| std::mem::take(&mut cache.scratch))
            .unwrap_or_default();
        let (matched, any_shared) = resolve(&router, message, &mut targets);
        targets.iter().for_each(&mut deliver);
        if let Some(cache) = cache {
            // A shared group picks a member per message: such a match is not remembered.
            if any_shared
                || message.topic.len() > MatchCache::MAX_TOPIC_LEN
                || targets.len() > MatchCache::MAX_TARGETS
                || !cache.remember_next()
            {
                targets.clear();
                cache.scratch = targets;
            } else {
                cache.insert(&message.topic, generation, matched, targets);
            }
        }
        matched
    }

    /// The router's generation: it changes whenever a subscription does.
    pub(crate) fn router_generation(&self) -> u64 {
        read(&self.inner.router).generation()
    }

    /// Whether `session` is still the registered session of its client id.
    pub(crate) fn is_current_session(&self, session: &Arc<Session>) -> bool {
        lock(&self.inner.sessions)
            .get(&session.client_id)
            .is_some_and(|current| Arc::ptr_eq(current, session))
    }

    /// Sends each delivery to another member of the shared subscription it came through.
    fn redispatch_shared(&self, orphans: Vec<Delivery>) {
        let now = Instant::now();
        let limits = self.queue_limits();
        let router = read(&self.inner.router);
        for mut delivery in orphans {
            let Some(filter) = &delivery.shared else {
                continue;
            };
            let Some(member) = router.shared_member(filter, |s| s.is_connected()) else {
                continue;
            };
            delivery.qos = delivery.message.qos.min(member.options.qos);
            delivery.subscription_ids = member.identifier.into_iter().collect();
            let session = &member.subscriber;
            if lock(&session.state).deliver(delivery, limits, &self.inner.stats, now) {
                session.wake.notify_one();
            }
        }
    }

    fn queue_limits(&self) -> QueueLimits {
        let limits = &self.config().limits;
        QueueLimits {
            max_queued: limits.max_queued_messages,
            max_outbound_bytes: limits.max_outbound_bytes,
        }
    }

    /// Adds or replaces a subscription; true when the session already had this filter.
    pub(crate) fn subscribe(
        &self,
        session: &Arc<Session>,
        subscription: &Subscription,
        identifier: Option<NonZeroU32>,
    ) -> bool {
        let entry = Entry {
            subscriber: session.clone(),
            client: session.id,
            options: subscription.options,
            identifier,
            shared_filter: subscription
                .filter
                .shared()
                .is_some()
                .then(|| subscription.filter.clone()),
        };
        self.inner.store.subscribed(
            &session.client_id,
            &subscription.filter,
            subscription.options,
            identifier,
        );
        write(&self.inner.router).subscribe(&subscription.filter, entry);
        let key = ByteString::from(subscription.filter.as_str());
        lock(&session.state)
            .subscriptions
            .insert(key, subscription.filter.clone())
            .is_some()
    }

    pub(crate) fn unsubscribe(&self, session: &Arc<Session>, filter: &TopicFilter) -> bool {
        if write(&self.inner.router).unsubscribe(filter, session.id) {
            self.inner.store.unsubscribed(&session.client_id, filter);
        }
        lock(&session.state)
            .subscriptions
            .remove(filter.as_str())
            .is_some()
    }

    /// Sends the retained messages matching a new subscription, per Retain Handling.
    pub(crate) fn send_retained(
        &self,
        session: &Arc<Session>,
        subscription: &Subscription,
        identifier: Option<NonZeroU32>,
        existed: bool,
    ) {
        let options = subscription.options;
        let wanted = match options.retain_handling {
            RetainHandling::SendAtSubscribe => true,
            RetainHandling::SendIfNew => !existed,
            RetainHandling::DoNotSend => false,
        };
        // Shared subscriptions get no retained messages (MQTT 5.0 4.8.2).
        if !wanted || subscription.filter.shared().is_some() {
            return;
        }
        let now = Instant::now();
        let matching: Vec<Arc<Message>> = {
            let retained = read(&self.inner.retained);
            let filter = subscription.filter.match_filter();
            if subscription.filter.has_wildcards() {
                retained
                    .values()
                    .filter(|m| linnet_proto::topic::topic_matches(filter, &m.topic))
                    .cloned()
                    .collect()
            } else {
                retained.get(filter).cloned().into_iter().collect()
            }
        };
        let limits = self.queue_limits();
        let mut state = lock(&session.state);
        for message in matching {
            if message.is_expired(now) {
                continue;
            }
            let delivery = Delivery {
                qos: message.qos.min(options.qos),
                // Retained messages sent on subscribe keep RETAIN 1 [MQTT-3.3.1-8].
                retain: true,
                subscription_ids: identifier.into_iter().collect(),
                message,
                shared: None,
            };
            state.deliver(delivery, limits, &self.inner.stats, now);
        }
    }

    /// Publishes a will now, or after `delay` seconds unless a connection has attached to the
    /// session since the one that left (`generation`) [MQTT-3.1.3-9].
    pub(crate) fn schedule_will(
        &self,
        session: Arc<Session>,
        will: Will,
        delay: u32,
        generation: u64,
    ) {
        if delay == 0 {
            self.publish(will_message(&will, session.id));
            return;
        }
        let broker = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(u64::from(delay))).await;
            if still_detached_since(&session, generation) {
                // Its Message Expiry counts from now, when it is published (MQTT 5.0 3.1.3.2.4).
                broker.publish(will_message(&will, session.id));
            }
        });
    }

    /// Ends a detached session now (expiry 0) or after its expiry interval, unless a client
    /// has attached since the connection that left (`generation`) [MQTT-4.1.0-2].
    pub(crate) fn schedule_session_end(&self, session: Arc<Session>, expiry: u32, generation: u64) {
        if expiry == u32::MAX {
            return;
        }
        let broker = self.clone();
        let end = move || {
            let mut sessions = lock(&broker.inner.sessions);
            let same = sessions
                .get(&session.client_id)
                .is_some_and(|s| Arc::ptr_eq(s, &session));
            if same && still_detached_since(&session, generation) {
                sessions.remove(&session.client_id);
                drop(sessions);
                discard_session(&broker, &session);
            }
        };
        if expiry == 0 {
            end();
        } else {
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_secs(u64::from(expiry))).await;
                end();
            });
        }
    }
}

/// True while no connection has attached to `session` since the one of `generation` left.
fn still_detached_since(session: &Session, generation: u64) -> bool {
    let state = lock(&session.state);
    state.link.is_none() && state.detached_generation == generation
}

/// The message a will becomes when it is published.
fn will_message(will: &Will, origin: u64) -> Arc<Message> {
    let properties = &will.properties;
    Arc::new(Message {
        topic: will.topic.clone().into_inner(),
        payload: will.payload.clone(),
        qos: will.qos,
        retain: will.retain,
        properties: Message::stored_properties(linnet_proto::PublishProperties {
            payload_format_indicator: properties.payload_format_indicator,
            response_topic: properties.response_topic.clone(),
            correlation_data: properties.correlation_data.clone(),
            user_properties: properties.user_properties.clone(),
            content_type: properties.content_type.clone(),
            ..Default::default()
        }),
        expires_at: properties
            .message_expiry_interval
            .map(|secs| Instant::now() + Duration::from_secs(u64::from(secs))),
        origin,
    })
}

#[cfg(test)]
mod tests {
    use super::MatchCache;

    /// A connection whose topics keep changing stops paying for copies it never reuses, and
    /// remembers again after the rest; one that repeats its topics keeps remembering.
    #[test]
    fn match_cache_rests_while_few_lookups_hit() {
        let mut cache = MatchCache::default();
        for _ in 0..MatchCache::WINDOW {
            assert!(cache.get("new", 1).is_none());
            assert!(cache.remember_next());
        }
        assert_eq!(cache.resting, MatchCache::REST);
        // Now the connection repeats one topic: remembered once the rest is over.
        let mut lookups = 0;
        while cache.get("t", 1).is_none() {
            lookups += 1;
            assert!(lookups <= MatchCache::REST + 1, "the rest never ended");
            if cache.remember_next() {
                cache.insert("t", 1, 0, Vec::new());
            }
        }
        assert_eq!(lookups, MatchCache::REST + 1);

        let mut repeating = MatchCache::default();
        repeating.insert("t", 1, 0, Vec::new());
        for lookup in 0..u16::from(MatchCache::WINDOW) * 4 {
            // One lookup in four misses: well above the minimum hit rate.
            let topic = if lookup % 4 == 0 { "u" } else { "t" };
            let hit = repeating.get(topic, 1).is_some();
            assert_eq!(hit, topic == "t");
            if !hit {
                assert!(repeating.remember_next(), "lookup {lookup}");
            }
        }
        assert_eq!(repeating.resting, 0);
    }
}
