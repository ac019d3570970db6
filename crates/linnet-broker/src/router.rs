//! The subscription index: which subscriptions match a topic. Filters without wildcards sit
//! in a hash map keyed by the whole topic (one lookup per message); wildcard filters sit in a
//! trie walked level by level. Shared subscriptions (`$share/{group}/{filter}`) are stored as
//! groups; a match picks one member of each group, round-robin, preferring members the caller
//! calls eligible (connected). This is the fan-out hot path: matching allocates nothing.

use std::collections::HashMap;

/// Topic-keyed maps on the per-message path: foldhash is several times cheaper than SipHash
/// on short topic levels and still seeded per process.
type TopicMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytestring::ByteString;
use linnet_proto::{SubscriptionOptions, TopicFilter};

/// One client's subscription to one filter.
#[derive(Debug, Clone)]
pub struct Entry<S> {
    /// Whatever the broker delivers to (a session handle).
    pub subscriber: S,
    /// Identifies the subscribing session; one entry per (client, filter).
    pub client: u64,
    pub options: SubscriptionOptions,
    /// v5 Subscription Identifier, echoed in matching PUBLISH packets.
    pub identifier: Option<NonZeroU32>,
    /// The whole `$share/{group}/{filter}` for a shared subscription, to find its group again
    /// when a message has to go to another member.
    pub shared_filter: Option<TopicFilter>,
}

/// Members of one shared subscription group on one filter.
#[derive(Debug)]
struct SharedGroup<S> {
    name: ByteString,
    members: Vec<Entry<S>>,
    /// Round-robin cursor; atomic so that matching needs only a shared borrow.
    next: AtomicUsize,
}

/// Subscriptions that end at one point of the index.
#[derive(Debug)]
struct Bucket<S> {
    plain: Vec<Entry<S>>,
    shared: Vec<SharedGroup<S>>,
}

impl<S> Default for Bucket<S> {
    fn default() -> Self {
        Self {
            plain: Vec::new(),
            shared: Vec::new(),
        }
    }
}

impl<S> Bucket<S> {
    fn is_empty(&self) -> bool {
        self.plain.is_empty() && self.shared.is_empty()
    }

    /// Adds or replaces; true when an existing subscription was replaced.
    fn insert(&mut self, group: Option<&str>, entry: Entry<S>) -> bool {
        let list = match group {
            None => &mut self.plain,
            Some(name) => {
                let index = match self.shared.iter().position(|g| g.name == name) {
                    Some(index) => index,
                    None => {
                        self.shared.push(SharedGroup {
                            name: ByteString::from(name),
                            members: Vec::new(),
                            next: AtomicUsize::new(0),
                        });
                        self.shared.len() - 1
                    }
                };
                &mut self.shared[index].members
            }
        };
        match list.iter_mut().find(|e| e.client == entry.client) {
            Some(existing) => {
                *existing = entry;
                true
            }
            None => {
                list.push(entry);
                false
            }
        }
    }

    /// Removes a client's subscription; true when there was one.
    fn remove(&mut self, group: Option<&str>, client: u64) -> bool {
        match group {
            None => remove_client(&mut self.plain, client),
            Some(name) => {
                let Some(index) = self.shared.iter().position(|g| g.name == name) else {
                    return false;
                };
                let removed = remove_client(&mut self.shared[index].members, client);
                if self.shared[index].members.is_empty() {
                    self.shared.swap_remove(index);
                }
                removed
            }
        }
    }

    fn visit<'a>(
        &'a self,
        eligible: &impl Fn(&S) -> bool,
        visit: &mut impl FnMut(&'a Entry<S>, bool),
    ) {
        for entry in &self.plain {
            visit(entry, false);
        }
        for group in &self.shared {
            if let Some(entry) = pick(group, eligible) {
                visit(entry, true);
            }
        }
    }
}

fn remove_client<S>(list: &mut Vec<Entry<S>>, client: u64) -> bool {
    let before = list.len();
    list.retain(|e| e.client != client);
    list.len() != before
}

/// The next eligible member after the cursor, or the next member if none is eligible (its
/// session queues the message until it reconnects).
fn pick<'a, S>(group: &'a SharedGroup<S>, eligible: &impl Fn(&S) -> bool) -> Option<&'a Entry<S>> {
    let count = group.members.len();
    if count == 0 {
        return None;
    }
    let start = group.next.fetch_add(1, Ordering::Relaxed) % count;
    (0..count)
        .map(|offset| &group.members[(start + offset) % count])
        .find(|e| eligible(&e.subscriber))
        .or(Some(&group.members[start]))
}

/// A trie node for wildcard filters.
#[derive(Debug)]
struct Node<S> {
    children: TopicMap<Box<str>, Node<S>>,
    /// Filters continuing with `+` at this level.
    plus: Option<Box<Node<S>>>,
    /// Filters ending exactly at this node.
    here: Bucket<S>,
    /// Filters ending with `/#` after this node (or `#` at the root).
    hash: Bucket<S>,
}

impl<S> Default for Node<S> {
    fn default() -> Self {
        Self {
            children: TopicMap::default(),
            plus: None,
            here: Bucket::default(),
            hash: Bucket::default(),
        }
    }
}

impl<S> Node<S> {
    fn is_empty(&self) -> bool {
        self.children.is_empty()
            && self.plus.is_none()
            && self.here.is_empty()
            && self.hash.is_empty()
    }

    /// The bucket a filter ends in, creating the path.
    fn bucket_mut(&mut self, filter: &str) -> &mut Bucket<S> {
        let mut node = self;
        let mut levels = filter.split('/').peekable();
        while let Some(level) = levels.next() {
            if level == "#" {
                return &mut node.hash;
            }
            node = if level == "+" {
                node.plus.get_or_insert_with(Box::default)
            } else {
                node.children.entry(level.into()).or_default()
            };
            if levels.peek().is_none() {
                return &mut node.here;
            }
        }
        &mut node.here
    }

    /// The bucket a wildcard filter ends in, if it exists.
    fn find(&self, filter: &str) -> Option<&Bucket<S>> {
        let mut node = self;
        let mut levels = filter.split('/').peekable();
        while let Some(level) = levels.next() {
            if level == "#" {
                return Some(&node.hash);
            }
            node = if level == "+" {
                node.plus.as_deref()?
            } else {
                node.children.get(level)?
            };
            if levels.peek().is_none() {
                return Some(&node.here);
            }
        }
        Some(&node.here)
    }

    /// Removes a subscription and prunes the nodes it leaves empty.
    fn remove(&mut self, levels: &[&str], group: Option<&str>, client: u64) -> bool {
        let Some((&level, rest)) = levels.split_first() else {
            return self.here.remove(group, client);
        };
        if level == "#" {
            return self.hash.remove(group, client);
        }
        if level == "+" {
            let Some(child) = self.plus.as_mut() else {
                return false;
            };
            let removed = child.remove(rest, group, client);
            if child.is_empty() {
                self.plus = None;
            }
            return removed;
        }
        let Some(child) = self.children.get_mut(level) else {
            return false;
        };
        let removed = child.remove(rest, group, client);
        if child.is_empty() {
            self.children.remove(level);
        }
        removed
    }

    /// Visits every subscription matching the levels in `rest` (`None`: no level left).
    fn walk<'a>(
        &'a self,
        rest: Option<&str>,
        at_root_of_system_topic: bool,
        eligible: &impl Fn(&S) -> bool,
        visit: &mut impl FnMut(&'a Entry<S>, bool),
    ) {
        // Wildcards at the first level never match `$` topics [MQTT-4.7.2-1].
        if !at_root_of_system_topic {
            // `#` also matches the parent level: "sport/#" matches "sport".
            self.hash.visit(eligible, visit);
        }
        let Some(rest) = rest else {
            self.here.visit(eligible, visit);
            return;
        };
        // A byte scan: levels are short, and `split_once(char)` sets up a searcher per call.
        let (level, next) = match rest.bytes().position(|b| b == b'/') {
            Some(at) => (&rest[..at], Some(&rest[at + 1..])),
            None => (rest, None),
        };
        if let Some(child) = self.children.get(level) {
            child.walk(next, false, eligible, visit);
        }
        if !at_root_of_system_topic {
            if let Some(plus) = &self.plus {
                plus.walk(next, false, eligible, visit);
            }
        }
    }
}

/// Every subscription of the broker, indexed for matching.
#[derive(Debug)]
pub struct Router<S> {
    exact: TopicMap<ByteString, Bucket<S>>,
    wildcard: Node<S>,
    count: usize,
    /// Changes with every subscribe and every removal, so that a remembered match can tell
    /// it is still what matching would give.
    generation: u64,
}

impl<S> Default for Router<S> {
    fn default() -> Self {
        Self {
            exact: TopicMap::default(),
            wildcard: Node::default(),
            count: 0,
            generation: 0,
        }
    }
}

impl<S> Router<S> {
    /// Adds `entry` for `filter`, replacing the same client's existing subscription to the
    /// same filter [MQTT-3.8.4-3]. Returns true when one was replaced.
    pub fn subscribe(&mut self, filter: &TopicFilter, entry: Entry<S>) -> bool {
        let group = filter.shared().map(|s| s.group);
        let match_filter = filter.match_filter();
        let bucket = if filter.has_wildcards() {
            self.wildcard.bucket_mut(match_filter)
        } else {
            self.exact
                .entry(ByteString::from(match_filter))
                .or_default()
        };
        let replaced = bucket.insert(group, entry);
        if !replaced {
            self.count += 1;
        }
        self.generation += 1;
        replaced
    }

    /// Removes `client`'s subscription to `filter`; true when it existed.
    pub fn unsubscribe(&mut self, filter: &TopicFilter, client: u64) -> bool {
        let group = filter.shared().map(|s| s.group);
        let match_filter = filter.match_filter();
        let removed = if filter.has_wildcards() {
            let levels: Vec<&str> = match_filter.split('/').collect();
            self.wildcard.remove(&levels, group, client)
        } else {
            match self.exact.get_mut(match_filter) {
                Some(bucket) => {
                    let removed = bucket.remove(group, client);
                    if bucket.is_empty() {
                        self.exact.remove(match_filter);
                    }
                    removed
                }
                None => false,
            }
        };
        if removed {
            self.count -= 1;
            self.generation += 1;
        }
        removed
    }

    /// Changes whenever the set of subscriptions or their options change.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// One member of the shared subscription group `filter` (`$share/{group}/{filter}`),
    /// round-robin, preferring eligible ones; `None` when the group has no member left.
    pub fn shared_member(
        &self,
        filter: &TopicFilter,
        eligible: impl Fn(&S) -> bool,
    ) -> Option<&Entry<S>> {
        let group = filter.shared()?.group;
        let match_filter = filter.match_filter();
        let bucket = if filter.has_wildcards() {
            self.wildcard.find(match_filter)?
        } else {
            self.exact.get(match_filter)?
        };
        let group = bucket.shared.iter().find(|g| g.name == group)?;
        pick(group, &eligible)
    }

    /// Number of subscriptions (shared members counted one by one).
    pub fn len(&self) -> usize {
        self.count
    }

    /// True when nothing is subscribed.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Visits each subscription matching `topic`: every plain one, and one member of each
    /// shared group (round-robin among those `eligible` says yes to); the flag tells a shared
    /// pick. A client with several matching subscriptions is visited once per subscription;
    /// the caller merges.
    pub fn for_each_match<'a>(
        &'a self,
        topic: &str,
        eligible: impl Fn(&S) -> bool,
        mut visit: impl FnMut(&'a Entry<S>, bool),
    ) {
        if let Some(bucket) = self.exact.get(topic) {
            bucket.visit(&eligible, &mut visit);
        }
        if !self.wildcard.is_empty() {
            self.wildcard
                .walk(Some(topic), topic.starts_with('$'), &eligible, &mut visit);
        }
    }
}

#[cfg(test)]
mod tests {
    use linnet_proto::QoS;

    use super::*;

    fn entry(client: u64) -> Entry<u64> {
        Entry {
            subscriber: client,
            client,
            options: SubscriptionOptions::qos(QoS::AtMostOnce),
            identifier: None,
            shared_filter: None,
        }
    }

    fn router(subs: &[(u64, &str)]) -> Router<u64> {
        let mut router = Router::default();
        for &(client, filter) in subs {
            router.subscribe(&TopicFilter::new(filter).unwrap(), entry(client));
        }
        router
    }

    fn matches(router: &Router<u64>, topic: &str) -> Vec<u64> {
        let mut found = Vec::new();
        router.for_each_match(topic, |_| true, |e, _| found.push(e.client));
        found.sort_unstable();
        found
    }

    #[test]
    fn exact_and_wildcard_filters_match_like_topic_matches() {
        let filters = [
            "sport/tennis",
            "sport/#",
            "sport/+",
            "+/tennis",
            "#",
            "+",
            "/+",
            "+/+",
        ];
        let subs: Vec<(u64, &str)> = filters
            .iter()
            .enumerate()
            .map(|(i, f)| (i as u64, *f))
            .collect();
        let router = router(&subs);
        for topic in [
            "sport/tennis",
            "sport",
            "sport/",
            "/finance",
            "a",
            "$SYS/x",
            "sport/tennis/p1",
        ] {
            let expected: Vec<u64> = subs
                .iter()
                .filter(|(_, f)| linnet_proto::topic::topic_matches(f, topic))
                .map(|(c, _)| *c)
                .collect();
            assert_eq!(matches(&router, topic), expected, "topic {topic}");
        }
    }

    #[test]
    fn mqtt_4_7_2_1_wildcards_do_not_match_dollar_topics() {
        let router = router(&[
            (1, "#"),
            (2, "+/monitor/Clients"),
            (3, "$SYS/#"),
            (4, "$SYS/+/Clients"),
        ]);
        assert_eq!(matches(&router, "$SYS/monitor/Clients"), vec![3, 4]);
    }

    #[test]
    fn mqtt_3_8_4_3_resubscribe_replaces_and_unsubscribe_prunes() {
        let mut router = router(&[(1, "a/+/c"), (2, "a/+/c")]);
        assert!(router.subscribe(&TopicFilter::new("a/+/c").unwrap(), entry(1)));
        assert_eq!(router.len(), 2);
        assert!(router.unsubscribe(&TopicFilter::new("a/+/c").unwrap(), 1));
        assert!(!router.unsubscribe(&TopicFilter::new("a/+/c").unwrap(), 1));
        assert!(router.unsubscribe(&TopicFilter::new("a/+/c").unwrap(), 2));
        assert!(router.is_empty() && router.wildcard.is_empty());
    }

    #[test]
    fn shared_group_delivers_to_one_member_round_robin() {
        let router = router(&[
            (1, "$share/g/t/+"),
            (2, "$share/g/t/+"),
            (3, "$share/h/t/+"),
            (4, "t/x"),
        ]);
        let mut seen_g = Vec::new();
        for _ in 0..4 {
            let found = matches(&router, "t/x");
            assert_eq!(found.len(), 3, "{found:?}");
            assert!(found.contains(&3) && found.contains(&4));
            seen_g.push(*found.iter().find(|c| **c <= 2).unwrap());
        }
        seen_g.sort_unstable();
        assert_eq!(seen_g, vec![1, 1, 2, 2]);
    }

    #[test]
    fn shared_member_finds_the_group_of_a_filter() {
        let router = router(&[
            (1, "$share/g/t/+"),
            (2, "$share/g/t/+"),
            (3, "$share/h/t/+"),
        ]);
        let filter = TopicFilter::new("$share/g/t/+").unwrap();
        let picked = router.shared_member(&filter, |s| *s == 2).map(|e| e.client);
        assert_eq!(picked, Some(2));
        let missing = TopicFilter::new("$share/x/t/+").unwrap();
        assert!(router.shared_member(&missing, |_| true).is_none());
    }

    #[test]
    fn shared_group_prefers_eligible_members() {
        let router = router(&[(1, "$share/g/t"), (2, "$share/g/t")]);
        for _ in 0..3 {
            let mut found = Vec::new();
            router.for_each_match(
                "t",
                |s| *s == 2,
                |e, shared| {
                    assert!(shared);
                    found.push(e.client)
                },
            );
            assert_eq!(found, vec![2]);
        }
    }
}
