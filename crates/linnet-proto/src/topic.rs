//! Topic names, topic filters and matching (MQTT 5.0 and 3.1.1 section 4.7,
//! shared subscriptions from MQTT 5.0 section 4.8.2).
//!
//! This module owns:
//! - validation of topic names ([`TopicName`], [`validate_topic_name`]) and
//!   topic filters ([`TopicFilter`], [`validate_topic_filter`]);
//! - parsing of shared-subscription filters `$share/{ShareName}/{filter}`
//!   ([`SharedFilter`]);
//! - matching a filter against a topic name ([`topic_matches`]), the broker's
//!   hot path, done in one allocation-free pass over the bytes.
//!
//! The rules are identical in 3.1.1 and 5.0 except for shared subscriptions,
//! which exist only in 5.0; a 3.1.1 session that wants `$share/...` treated as
//! an ordinary filter must decide that before building a [`TopicFilter`].

use std::borrow::Borrow;
use std::fmt;
use std::str::FromStr;

use bytestring::ByteString;

/// Longest topic name or filter: both are UTF-8 Encoded Strings, whose
/// length prefix is a u16.
const MAX_LEN: usize = u16::MAX as usize;

/// Prefix that makes a filter a shared subscription (MQTT 5.0 4.8.2).
const SHARE_PREFIX: &str = "$share/";

/// Why a topic name or filter is invalid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TopicError {
    /// The name or filter is the empty string.
    #[error("[MQTT-4.7.3-1] topic names and topic filters must be at least one character long")]
    Empty,
    /// The name or filter encodes to more than 65535 bytes.
    #[error(
        "[MQTT-4.7.3-3] topic names and topic filters must not encode to more than 65535 bytes"
    )]
    TooLong,
    /// A topic name contains `+` or `#`.
    #[error("[MQTT-3.3.2-2] a topic name must not contain wildcard characters ('+' or '#')")]
    WildcardInName,
    /// `#` is not alone in its level, or not in the last level.
    #[error("[MQTT-4.7.1-1] the multi-level wildcard '#' must occupy a whole level and be the last character of the filter")]
    MultiLevelNotLast,
    /// `+` shares its level with other characters.
    #[error(
        "[MQTT-4.7.1-2] the single-level wildcard '+' must occupy an entire level of the filter"
    )]
    SingleLevelNotAlone,
    /// The name or filter contains U+0000.
    #[error(
        "[MQTT-4.7.3-2] topic names and topic filters must not include the null character U+0000"
    )]
    NullCharacter,
    /// The ShareName of a `$share/` filter is empty or contains `+` or `#`.
    #[error("[MQTT-4.8.2-1] a shared subscription ShareName must be at least one character long and must not contain '/', '+' or '#'")]
    InvalidSharedGroup,
    /// `$share/{ShareName}` is not followed by `/` and a non-empty filter.
    #[error(
        "[MQTT-4.8.2-2] a shared subscription ShareName must be followed by '/' and a topic filter"
    )]
    SharedMissingFilter,
}

/// Checks the rules common to names and filters: non-empty, at most 65535
/// bytes, no U+0000.
fn validate_common(s: &str) -> Result<(), TopicError> {
    if s.is_empty() {
        return Err(TopicError::Empty);
    }
    if s.len() > MAX_LEN {
        return Err(TopicError::TooLong);
    }
    if s.as_bytes().contains(&0) {
        return Err(TopicError::NullCharacter);
    }
    Ok(())
}

/// Validates a topic name as carried in PUBLISH (or a Will topic): non-empty,
/// at most 65535 bytes, no U+0000 and no wildcards.
pub fn validate_topic_name(s: &str) -> Result<(), TopicError> {
    validate_common(s)?;
    if s.bytes().any(|b| b == b'+' || b == b'#') {
        return Err(TopicError::WildcardInName);
    }
    Ok(())
}

/// Validates a topic filter as carried in SUBSCRIBE / UNSUBSCRIBE, including
/// the shared-subscription form `$share/{ShareName}/{filter}`.
pub fn validate_topic_filter(s: &str) -> Result<(), TopicError> {
    validate_common(s)?;
    match s.strip_prefix(SHARE_PREFIX) {
        Some(rest) => {
            let (group, filter) = match rest.split_once('/') {
                Some((group, filter)) => (group, Some(filter)),
                None => (rest, None),
            };
            // '/' cannot appear in `group`: it ends at the first one.
            if group.is_empty() || group.bytes().any(|b| b == b'+' || b == b'#') {
                return Err(TopicError::InvalidSharedGroup);
            }
            match filter {
                Some(filter) if !filter.is_empty() => validate_wildcards(filter),
                _ => Err(TopicError::SharedMissingFilter),
            }
        }
        None => validate_wildcards(s),
    }
}

/// Checks wildcard placement in a (non-shared) filter: every `+` and `#` must
/// be a whole level, and `#` must be the final character.
fn validate_wildcards(filter: &str) -> Result<(), TopicError> {
    let bytes = filter.as_bytes();
    let mut prev = b'/'; // the start of the filter behaves like a level start
    for (i, &b) in bytes.iter().enumerate() {
        let next = bytes.get(i + 1).copied();
        match b {
            b'#' if prev != b'/' || next.is_some() => return Err(TopicError::MultiLevelNotLast),
            b'+' if prev != b'/' || next.is_some_and(|n| n != b'/') => {
                return Err(TopicError::SingleLevelNotAlone)
            }
            _ => {}
        }
        prev = b;
    }
    Ok(())
}

/// Does the topic filter `filter` match the topic name `topic`?
///
/// Both must already be valid (see [`validate_topic_filter`] and
/// [`validate_topic_name`]); for invalid input the result is unspecified but
/// the function never panics. `filter` is a plain filter: for a shared
/// subscription pass [`TopicFilter::match_filter`], not the `$share/...` form.
///
/// One pass over both byte slices, no allocation: this is the broker's hot
/// path for routing every PUBLISH.
pub fn topic_matches(filter: &str, topic: &str) -> bool {
    let f = filter.as_bytes();
    let t = topic.as_bytes();

    // [MQTT-4.7.2-1] a filter starting with a wildcard must not match a
    // topic name starting with '$' (e.g. "#" must not see "$SYS/...").
    if matches!(f.first(), Some(b'#' | b'+')) && t.first() == Some(&b'$') {
        return false;
    }

    // Invariant at the top of each iteration: `i` and `j` are at the start of
    // a level in the filter and the topic respectively.
    let mut i = 0;
    let mut j = 0;
    loop {
        match f.get(i) {
            // In a valid filter '#' here is the whole, last level: it matches
            // this topic level and everything below it.
            Some(b'#') => return true,
            // '+' consumes exactly one topic level, possibly an empty one.
            Some(b'+') => {
                i += 1;
                while t.get(j).is_some_and(|&c| c != b'/') {
                    j += 1;
                }
            }
            // A literal level must equal the topic level byte for byte.
            _ => {
                while let Some(&c) = f.get(i) {
                    if c == b'/' {
                        break;
                    }
                    if t.get(j) != Some(&c) {
                        return false;
                    }
                    i += 1;
                    j += 1;
                }
                // The topic level must end where the filter level does.
                if t.get(j).is_some_and(|&c| c != b'/') {
                    return false;
                }
            }
        }

        // Both cursors now sit on a '/' or at the end of their string.
        match (i < f.len(), j < t.len()) {
            (false, false) => return true,
            // Both on '/': step into the next level.
            (true, true) => {
                i += 1;
                j += 1;
            }
            // The topic ran out first: only a trailing "/#" still matches,
            // because '#' also matches its parent level ("sport/#" ~ "sport").
            (true, false) => return f.get(i..) == Some(b"/#".as_slice()),
            // The filter ran out but the topic has more levels.
            (false, true) => return false,
        }
    }
}

/// A validated topic name: non-empty, at most 65535 bytes, no U+0000, no
/// wildcards. Cheap to clone (the text is reference counted).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicName(ByteString);

impl TopicName {
    /// Validates `s` as a topic name.
    pub fn new(s: impl Into<ByteString>) -> Result<Self, TopicError> {
        let s = s.into();
        validate_topic_name(&s)?;
        Ok(Self(s))
    }

    /// The name as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The underlying shared string, for zero-copy encoding.
    pub fn into_inner(self) -> ByteString {
        self.0
    }

    /// Whether the name starts with `$` (e.g. `$SYS/...`), which wildcard-
    /// leading filters must not match ([MQTT-4.7.2-1]).
    pub fn is_system(&self) -> bool {
        self.0.starts_with('$')
    }
}

/// A validated topic filter, possibly a shared subscription
/// `$share/{ShareName}/{filter}`. Cheap to clone.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicFilter(ByteString);

/// The parts of a shared-subscription filter `$share/{group}/{filter}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SharedFilter<'a> {
    /// The ShareName: non-empty, without `/`, `+` or `#`.
    pub group: &'a str,
    /// The filter that topics are matched against.
    pub filter: &'a str,
}

impl TopicFilter {
    /// Validates `s` as a topic filter (shared or not).
    pub fn new(s: impl Into<ByteString>) -> Result<Self, TopicError> {
        let s = s.into();
        validate_topic_filter(&s)?;
        Ok(Self(s))
    }

    /// The whole filter as sent, including any `$share/{group}/` prefix.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The underlying shared string, for zero-copy encoding.
    pub fn into_inner(self) -> ByteString {
        self.0
    }

    /// The group and inner filter when this is a shared subscription.
    pub fn shared(&self) -> Option<SharedFilter<'_>> {
        let rest = self.0.strip_prefix(SHARE_PREFIX)?;
        let (group, filter) = rest.split_once('/')?;
        Some(SharedFilter { group, filter })
    }

    /// Whether this is a shared subscription (`$share/...`).
    pub fn is_shared(&self) -> bool {
        self.0.starts_with(SHARE_PREFIX)
    }

    /// The part matched against topic names: the inner filter of a shared
    /// subscription, otherwise the whole filter.
    pub fn match_filter(&self) -> &str {
        match self.shared() {
            Some(shared) => shared.filter,
            None => self.as_str(),
        }
    }

    /// Whether [`match_filter`](Self::match_filter) contains `+` or `#`.
    pub fn has_wildcards(&self) -> bool {
        self.match_filter().bytes().any(|b| b == b'+' || b == b'#')
    }

    /// Whether this filter matches the topic name `topic`.
    pub fn matches(&self, topic: &str) -> bool {
        topic_matches(self.match_filter(), topic)
    }
}

/// Shared trait impls for the two string newtypes; they differ only in the
/// validating constructor.
macro_rules! string_newtype_impls {
    ($ty:ident) => {
        impl FromStr for $ty {
            type Err = TopicError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::new(s)
            }
        }

        impl TryFrom<&str> for $ty {
            type Error = TopicError;
            fn try_from(s: &str) -> Result<Self, Self::Error> {
                Self::new(s)
            }
        }

        impl TryFrom<String> for $ty {
            type Error = TopicError;
            fn try_from(s: String) -> Result<Self, Self::Error> {
                Self::new(s)
            }
        }

        impl TryFrom<ByteString> for $ty {
            type Error = TopicError;
            fn try_from(s: ByteString) -> Result<Self, Self::Error> {
                Self::new(s)
            }
        }

        impl From<$ty> for ByteString {
            fn from(v: $ty) -> ByteString {
                v.0
            }
        }

        impl AsRef<str> for $ty {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        // Sound because ByteString hashes, compares and orders exactly like
        // str, so maps keyed by the newtype can be queried with a &str.
        impl Borrow<str> for $ty {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl PartialEq<str> for $ty {
            fn eq(&self, other: &str) -> bool {
                self.as_str() == other
            }
        }

        impl PartialEq<&str> for $ty {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

string_newtype_impls!(TopicName);
string_newtype_impls!(TopicFilter);

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(s: &str) -> TopicFilter {
        TopicFilter::new(s).unwrap_or_else(|e| panic!("{s:?} should be a valid filter: {e}"))
    }

    fn name(s: &str) -> TopicName {
        TopicName::new(s).unwrap_or_else(|e| panic!("{s:?} should be a valid name: {e}"))
    }

    /// Checks through both the free function and the TopicFilter method.
    fn m(f: &str, t: &str) -> bool {
        let by_fn = topic_matches(f, t);
        assert_eq!(by_fn, filter(f).matches(name(t).as_str()), "{f:?} vs {t:?}");
        by_fn
    }

    // ---- 4.7.1.1 topic level separator ----

    #[test]
    fn spec_4_7_1_1_empty_levels_are_allowed() {
        for t in ["a//b", "/a", "a/", "/", "//"] {
            assert!(validate_topic_name(t).is_ok(), "{t:?}");
            assert!(validate_topic_filter(t).is_ok(), "{t:?}");
            assert!(m(t, t), "{t:?}");
        }
        assert!(!m("a//b", "a/b"));
        assert!(m("a/+/b", "a//b"));
        assert!(m("+/a", "/a"));
        assert!(m("a/+", "a/"));
        assert!(m("+/+", "/"));
        assert!(!m("+", "/"));
    }

    // ---- 4.7.1.2 multi-level wildcard ----

    #[test]
    fn spec_4_7_1_2_multi_level_matches_children() {
        let f = "sport/tennis/player1/#";
        assert!(m(f, "sport/tennis/player1"));
        assert!(m(f, "sport/tennis/player1/ranking"));
        assert!(m(f, "sport/tennis/player1/score/wimbledon"));
        assert!(!m(f, "sport/tennis/player2"));
        assert!(!m(f, "sport/tennis/player10"));
        assert!(!m(f, "sport/tennis"));
    }

    #[test]
    fn spec_4_7_1_2_multi_level_matches_parent() {
        assert!(m("sport/#", "sport"));
        assert!(m("sport/#", "sport/"));
        assert!(m("sport/#", "sport/tennis/player1"));
        assert!(!m("sport/#", "sports"));
        assert!(!m("sport/#", "spor"));
        assert!(m("/#", "/"));
        assert!(m("/#", "/a/b"));
        assert!(!m("/#", "a"));
        assert!(m("a//#", "a/"));
        assert!(!m("a//#", "a"));
    }

    #[test]
    fn spec_4_7_1_2_hash_alone_matches_everything() {
        assert!(validate_topic_filter("#").is_ok());
        for t in ["a", "/", "/a", "a/b/c", "sport/tennis/player1", "+x"] {
            assert!(topic_matches("#", t), "{t:?}");
        }
        assert!(m("#", "a/b/c"));
    }

    #[test]
    fn spec_4_7_1_2_valid_multi_level_filters() {
        for f in ["#", "sport/tennis/#", "/#", "+/#", "$SYS/#", "a//#"] {
            assert_eq!(validate_topic_filter(f), Ok(()), "{f:?}");
        }
    }

    #[test]
    fn mqtt_4_7_1_1_multi_level_must_be_last() {
        for f in [
            "sport/tennis#",
            "sport/tennis/#/ranking",
            "#/",
            "#/a",
            "a#",
            "#a",
            "a/#b",
            "##",
            "a/b#/c",
        ] {
            assert_eq!(
                validate_topic_filter(f),
                Err(TopicError::MultiLevelNotLast),
                "{f:?}"
            );
        }
    }

    // ---- 4.7.1.3 single-level wildcard ----

    #[test]
    fn spec_4_7_1_3_single_level_matches_one_level() {
        let f = "sport/tennis/+";
        assert!(m(f, "sport/tennis/player1"));
        assert!(m(f, "sport/tennis/player2"));
        assert!(!m(f, "sport/tennis/player1/ranking"));
        assert!(!m(f, "sport/tennis"));
    }

    #[test]
    fn spec_4_7_1_3_single_level_matches_empty_level_not_parent() {
        assert!(!m("sport/+", "sport"));
        assert!(m("sport/+", "sport/"));
    }

    #[test]
    fn spec_4_7_1_3_valid_single_level_filters() {
        for f in [
            "+",
            "+/tennis/#",
            "sport/+/player1",
            "+/+",
            "/+",
            "+/",
            "a/+/+/b",
        ] {
            assert_eq!(validate_topic_filter(f), Ok(()), "{f:?}");
        }
        assert!(m("sport/+/player1", "sport/tennis/player1"));
        assert!(!m("sport/+/player1", "sport/tennis/player2"));
        assert!(m("+/tennis/#", "sport/tennis"));
        assert!(m("+/tennis/#", "sport/tennis/player1/ranking"));
        assert!(!m("+/tennis/#", "sport/golf"));
    }

    #[test]
    fn mqtt_4_7_1_2_single_level_must_be_alone() {
        for f in ["sport+", "+sport", "sport/+tennis", "a/b+/c", "++", "+a/#"] {
            assert_eq!(
                validate_topic_filter(f),
                Err(TopicError::SingleLevelNotAlone),
                "{f:?}"
            );
        }
    }

    #[test]
    fn spec_4_7_1_3_finance_examples() {
        assert!(m("+/+", "/finance"));
        assert!(m("/+", "/finance"));
        assert!(!m("+", "/finance"));
    }

    // ---- 4.7.2 topics beginning with $ ----

    #[test]
    fn mqtt_4_7_2_1_wildcard_first_does_not_match_dollar_topics() {
        assert!(!m("#", "$SYS/broker/uptime"));
        assert!(!m("#", "$SYS"));
        assert!(!m("+/monitor/Clients", "$SYS/monitor/Clients"));
        assert!(!m("+", "$x"));
        assert!(!m("+/#", "$SYS/x"));
    }

    #[test]
    fn spec_4_7_2_1_explicit_dollar_filters_match() {
        assert!(m("$SYS/#", "$SYS/broker/uptime"));
        assert!(m("$SYS/#", "$SYS"));
        assert!(m("$SYS/monitor/+", "$SYS/monitor/Clients"));
        assert!(m("$SYS/broker/uptime", "$SYS/broker/uptime"));
        assert!(!m("$SYS/#", "$SYSTEM/x"));
        // Only the first character matters: '$' deeper in the topic is plain.
        assert!(m("#", "a/$SYS"));
        assert!(m("+/$x", "a/$x"));
    }

    #[test]
    fn is_system_reports_dollar_prefix() {
        assert!(name("$SYS/broker").is_system());
        assert!(name("$").is_system());
        assert!(!name("SYS/$broker").is_system());
    }

    // ---- 4.7.3 topic semantic and usage ----

    #[test]
    fn mqtt_4_7_3_1_must_not_be_empty() {
        assert_eq!(validate_topic_name(""), Err(TopicError::Empty));
        assert_eq!(validate_topic_filter(""), Err(TopicError::Empty));
        assert_eq!(TopicName::new(""), Err(TopicError::Empty));
        assert_eq!(TopicFilter::new(""), Err(TopicError::Empty));
    }

    #[test]
    fn mqtt_4_7_3_2_no_null_character() {
        assert_eq!(validate_topic_name("a\0b"), Err(TopicError::NullCharacter));
        assert_eq!(
            validate_topic_filter("a/\0"),
            Err(TopicError::NullCharacter)
        );
        assert_eq!(validate_topic_filter("\0"), Err(TopicError::NullCharacter));
        assert_eq!(
            validate_topic_filter("$share/g\0/a"),
            Err(TopicError::NullCharacter)
        );
    }

    #[test]
    fn mqtt_4_7_3_3_at_most_65535_bytes() {
        let ok = "a".repeat(MAX_LEN);
        assert_eq!(validate_topic_name(&ok), Ok(()));
        assert_eq!(validate_topic_filter(&ok), Ok(()));
        let long = "a".repeat(MAX_LEN + 1);
        assert_eq!(validate_topic_name(&long), Err(TopicError::TooLong));
        assert_eq!(validate_topic_filter(&long), Err(TopicError::TooLong));
        // Bytes, not characters: 21846 three-byte chars = 65538 bytes.
        let wide = "€".repeat(21_846);
        assert_eq!(validate_topic_name(&wide), Err(TopicError::TooLong));
    }

    #[test]
    fn mqtt_4_7_3_4_case_sensitive_and_no_normalisation() {
        assert!(!m("ACCOUNTS", "Accounts"));
        assert!(m("Accounts payable", "Accounts payable"));
        assert!(!m("/finance", "finance"));
        assert!(!m("finance", "/finance"));
        assert!(!m("a ", "a"));
        assert!(m("caf\u{e9}", "caf\u{e9}"));
        assert!(!m("caf\u{e9}", "cafe\u{301}"));
    }

    #[test]
    fn mqtt_3_3_2_2_name_must_not_contain_wildcards() {
        for t in ["#", "+", "a/#", "a/+/b", "a+", "sport#"] {
            assert_eq!(
                validate_topic_name(t),
                Err(TopicError::WildcardInName),
                "{t:?}"
            );
            assert_eq!(TopicName::try_from(t), Err(TopicError::WildcardInName));
        }
    }

    // ---- 4.8.2 shared subscriptions ----

    #[test]
    fn spec_4_8_2_shared_filter_parsing() {
        let f = filter("$share/consumer1/sport/tennis/+");
        assert!(f.is_shared());
        assert_eq!(
            f.shared(),
            Some(SharedFilter {
                group: "consumer1",
                filter: "sport/tennis/+"
            })
        );
        assert_eq!(f.match_filter(), "sport/tennis/+");
        assert_eq!(f.as_str(), "$share/consumer1/sport/tennis/+");
        assert!(f.has_wildcards());
        assert!(f.matches("sport/tennis/player1"));
        assert!(!f.matches("$share/consumer1/sport/tennis/player1"));

        let f = filter("$share/g//");
        assert_eq!(f.shared().map(|s| s.filter), Some("/"));
        assert!(!f.has_wildcards());

        let f = filter("$share/g/$share/h/x");
        assert_eq!(f.match_filter(), "$share/h/x");
        assert!(f.matches("$share/h/x"));
    }

    #[test]
    fn spec_4_8_2_shared_inner_filter_follows_dollar_rule() {
        // covers: [MQTT-4.7.2-1]
        let f = filter("$share/g/#");
        assert!(!f.matches("$SYS/x"));
        assert!(f.matches("a/b"));
        assert!(filter("$share/g/$SYS/#").matches("$SYS/x"));
        assert!(!filter("$share/g/+/x").matches("$SYS/x"));
    }

    #[test]
    fn mqtt_4_8_2_1_share_name_must_be_valid() {
        for f in [
            "$share/",
            "$share//a",
            "$share/g+/a",
            "$share/#/a",
            "$share/+/a",
            "$share/a#",
        ] {
            assert_eq!(
                validate_topic_filter(f),
                Err(TopicError::InvalidSharedGroup),
                "{f:?}"
            );
        }
    }

    #[test]
    fn mqtt_4_8_2_2_share_name_must_be_followed_by_filter() {
        for f in ["$share/g", "$share/g/"] {
            assert_eq!(
                validate_topic_filter(f),
                Err(TopicError::SharedMissingFilter),
                "{f:?}"
            );
        }
    }

    #[test]
    fn spec_4_8_2_inner_filter_is_validated() {
        // covers: [MQTT-4.7.1-1] [MQTT-4.7.1-2]
        assert_eq!(
            validate_topic_filter("$share/g/a#"),
            Err(TopicError::MultiLevelNotLast)
        );
        assert_eq!(
            validate_topic_filter("$share/g/#/a"),
            Err(TopicError::MultiLevelNotLast)
        );
        assert_eq!(
            validate_topic_filter("$share/g/a+"),
            Err(TopicError::SingleLevelNotAlone)
        );
    }

    #[test]
    fn share_lookalikes_are_ordinary_filters() {
        for s in ["$share", "$sharefoo/x", "$Share/g/x", "a/$share/g/x"] {
            let f = filter(s);
            assert!(!f.is_shared(), "{s:?}");
            assert_eq!(f.shared(), None);
            assert_eq!(f.match_filter(), s);
            assert!(f.matches(s));
        }
        // "$share" is a valid topic name, too.
        assert!(name("$share").is_system());
    }

    // ---- conversions ----

    #[test]
    fn conversions_round_trip() {
        let n: TopicName = "a/b".parse().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(n.to_string(), "a/b");
        assert_eq!(n.as_ref(), "a/b");
        assert_eq!(n, "a/b");
        assert_eq!(TopicName::try_from(String::from("a/b")), Ok(n.clone()));
        assert_eq!(n.clone().into_inner(), ByteString::from("a/b"));

        let f: TopicFilter = "a/+".parse().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(f.to_string(), "a/+");
        assert_eq!(TopicFilter::try_from("a/+"), Ok(f.clone()));
        assert_eq!(TopicFilter::try_from(String::from("a/+")), Ok(f.clone()));
        assert_eq!(ByteString::from(f), ByteString::from("a/+"));
        assert_eq!(
            "a#".parse::<TopicFilter>(),
            Err(TopicError::MultiLevelNotLast)
        );
    }

    #[test]
    fn borrow_str_lookups() {
        let mut set = std::collections::HashSet::new();
        set.insert(filter("a/+"));
        assert!(set.contains("a/+"));
        let mut map = std::collections::BTreeMap::new();
        map.insert(name("a/b"), 1);
        assert_eq!(map.get("a/b"), Some(&1));
    }

    #[test]
    fn error_messages_start_with_clause_id() {
        let all = [
            TopicError::Empty,
            TopicError::TooLong,
            TopicError::WildcardInName,
            TopicError::MultiLevelNotLast,
            TopicError::SingleLevelNotAlone,
            TopicError::NullCharacter,
            TopicError::InvalidSharedGroup,
            TopicError::SharedMissingFilter,
        ];
        for e in all {
            assert!(e.to_string().starts_with("[MQTT-"), "{e:?}");
        }
    }
}
