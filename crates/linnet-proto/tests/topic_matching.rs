//! Property tests for topic validation and matching: the byte-wise
//! `topic_matches` must agree with a deliberately naive split-on-'/'
//! reference implementation of MQTT 5.0 section 4.7.

use linnet_proto::topic::{
    topic_matches, validate_topic_filter, validate_topic_name, TopicError, TopicFilter, TopicName,
};
use proptest::prelude::*;

/// Reference matcher, written for obviousness rather than speed.
fn reference_matches(filter: &str, topic: &str) -> bool {
    // [MQTT-4.7.2-1]
    if (filter.starts_with('#') || filter.starts_with('+')) && topic.starts_with('$') {
        return false;
    }
    let f: Vec<&str> = filter.split('/').collect();
    let t: Vec<&str> = topic.split('/').collect();
    levels_match(&f, &t)
}

fn levels_match(f: &[&str], t: &[&str]) -> bool {
    match (f.first(), t.first()) {
        // '#' matches the remaining levels, including none (the parent).
        (Some(&"#"), _) => true,
        (None, None) => true,
        (Some(&"+"), Some(_)) => levels_match(&f[1..], &t[1..]),
        (Some(a), Some(b)) if a == b => levels_match(&f[1..], &t[1..]),
        _ => false,
    }
}

/// Reference filter validator for filters without `$share/`.
fn reference_filter_valid(filter: &str) -> bool {
    if filter.is_empty() {
        return false;
    }
    let levels: Vec<&str> = filter.split('/').collect();
    levels.iter().enumerate().all(|(i, level)| {
        *level == "+"
            || (*level == "#" && i == levels.len() - 1)
            || !(level.contains('+') || level.contains('#'))
    })
}

const NAME_LEVELS: &[&str] = &["a", "b", "ab", "", "$x"];
const FILTER_LEVELS: &[&str] = &["a", "b", "ab", "", "$x", "+"];

fn join(levels: Vec<&str>) -> String {
    levels.join("/")
}

/// Valid topic names built from a small level alphabet.
fn topic_name() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(NAME_LEVELS), 1..6)
        .prop_map(join)
        .prop_filter("names are non-empty", |s| !s.is_empty())
}

/// Valid topic filters built from a small level alphabet, with an optional
/// trailing '#' level (the only place it is allowed).
fn topic_filter() -> impl Strategy<Value = String> {
    (
        prop::collection::vec(prop::sample::select(FILTER_LEVELS), 0..6),
        any::<bool>(),
    )
        .prop_map(|(mut levels, hash)| {
            if hash || levels.is_empty() {
                levels.push("#");
            }
            join(levels)
        })
        .prop_filter("filters are non-empty", |s| !s.is_empty())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4096))]

    /// (1) The byte-wise matcher agrees with the split-based reference.
    #[test]
    fn matches_reference(filter in topic_filter(), topic in topic_name()) {
        prop_assert_eq!(validate_topic_filter(&filter), Ok(()));
        prop_assert_eq!(validate_topic_name(&topic), Ok(()));
        let expected = reference_matches(&filter, &topic);
        prop_assert_eq!(topic_matches(&filter, &topic), expected);
        let parsed = TopicFilter::new(filter.clone()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(parsed.matches(&topic), expected);
        // The same filter inside a shared subscription matches identically.
        let shared = TopicFilter::new(format!("$share/g/{filter}"))
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(shared.match_filter(), filter.as_str());
        prop_assert_eq!(shared.matches(&topic), expected);
    }

    /// (1b) Character-level strings: validation and matching agree with the
    /// reference, including filters the level generator cannot produce.
    #[test]
    fn char_strings_agree_with_reference(
        filter in "[ab/+#$]{0,10}",
        topic in "[ab/$+#]{0,10}",
    ) {
        let filter_ok = validate_topic_filter(&filter).is_ok();
        prop_assert_eq!(filter_ok, reference_filter_valid(&filter), "filter {:?}", filter);
        let name_ok = validate_topic_name(&topic).is_ok();
        prop_assert_eq!(
            name_ok,
            !topic.is_empty() && !topic.contains('+') && !topic.contains('#'),
            "name {:?}", topic
        );
        if filter_ok && name_ok {
            prop_assert_eq!(
                topic_matches(&filter, &topic),
                reference_matches(&filter, &topic),
                "{:?} vs {:?}", filter, topic
            );
        }
    }

    /// (2) Every topic name, used as a filter, matches itself.
    #[test]
    fn topic_matches_itself(topic in topic_name()) {
        prop_assert!(topic_matches(&topic, &topic));
        let as_filter = TopicFilter::new(topic.clone()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert!(!as_filter.has_wildcards());
        prop_assert!(as_filter.matches(&topic));
    }

    /// (2b) Same for arbitrary Unicode names that validate.
    #[test]
    fn arbitrary_valid_name_matches_itself(topic in "\\PC{1,20}") {
        if let Ok(name) = TopicName::new(topic.clone()) {
            prop_assert!(topic_matches(name.as_str(), name.as_str()));
            prop_assert!(TopicFilter::new(topic.clone()).is_ok());
        }
    }

    /// (3) Validation never panics on arbitrary input, and its verdict is
    /// consistent with the constructors.
    #[test]
    fn validate_never_panics(s in any::<String>()) {
        let name = validate_topic_name(&s);
        let filter = validate_topic_filter(&s);
        prop_assert_eq!(TopicName::new(s.clone()).err(), name.err());
        prop_assert_eq!(TopicFilter::new(s.clone()).err(), filter.err());
        // Every valid name is a valid filter, except for "$share/..." names,
        // which are parsed as shared subscriptions.
        if name.is_ok() && !s.starts_with("$share/") {
            prop_assert_eq!(filter, Ok(()));
        }
        if s.contains('\0') {
            prop_assert_eq!(name, Err(TopicError::NullCharacter));
        }
    }

    /// Matching arbitrary (even invalid) input never panics.
    #[test]
    fn matching_never_panics(filter in any::<String>(), topic in any::<String>()) {
        let _ = topic_matches(&filter, &topic);
    }

    /// Shared filters with arbitrary group names either parse into their
    /// parts or are rejected with a shared-subscription error.
    #[test]
    fn shared_group_parsing(group in "[ab+#]{0,4}", inner in "[ab/+#]{0,6}") {
        let s = format!("$share/{group}/{inner}");
        match TopicFilter::new(s) {
            Ok(f) => {
                let shared = f.shared().ok_or_else(|| TestCaseError::fail("not shared"))?;
                prop_assert_eq!(shared.group, group.as_str());
                prop_assert_eq!(shared.filter, inner.as_str());
                prop_assert!(reference_filter_valid(&inner));
            }
            Err(TopicError::InvalidSharedGroup) => {
                prop_assert!(group.is_empty() || group.contains(['+', '#']));
            }
            Err(TopicError::SharedMissingFilter) => prop_assert!(inner.is_empty()),
            Err(_) => prop_assert!(!reference_filter_valid(&inner)),
        }
    }
}
