//! Fuzz target: topic name / filter validation and matching against naive references.
//!
//! The input (as UTF-8, invalid sequences replaced) is split at its first NUL byte into a
//! filter and a topic name; NUL is invalid in both, so the separator never hides a valid
//! input. What this proves, for every input it runs:
//!
//! - validation and matching never panic, whatever the strings (matching invalid input is
//!   allowed to give any answer, but not to crash);
//! - `validate_topic_name` / `validate_topic_filter` agree with the constructors and with a
//!   rule-by-rule reference validator (MQTT 5.0 4.7.1, 4.7.3 and 4.8.2);
//! - for a valid filter and topic, `topic_matches` and `TopicFilter::matches` agree with a
//!   split-on-'/' reference matcher (MQTT 5.0 4.7.1 and 4.7.2).
#![no_main]

use libfuzzer_sys::fuzz_target;
use linnet_proto::topic::{topic_matches, validate_topic_filter, validate_topic_name};
use linnet_proto::{TopicFilter, TopicName};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (filter, topic) = text.split_once('\0').unwrap_or((&text, ""));

    // Never panics, valid or not.
    let _ = topic_matches(filter, topic);

    let filter_ok = validate_topic_filter(filter);
    let topic_ok = validate_topic_name(topic);
    assert_eq!(TopicFilter::new(filter).err(), filter_ok.err());
    assert_eq!(TopicName::new(topic).err(), topic_ok.err());
    assert_eq!(
        filter_ok.is_ok(),
        reference_filter_valid(filter),
        "filter {filter:?}: {filter_ok:?}"
    );
    assert_eq!(
        topic_ok.is_ok(),
        reference_name_valid(topic),
        "topic {topic:?}: {topic_ok:?}"
    );

    let (Ok(parsed), Ok(())) = (TopicFilter::new(filter), topic_ok) else {
        return;
    };
    let inner = parsed.match_filter();
    let expected = reference_matches(inner, topic);
    assert_eq!(
        topic_matches(inner, topic),
        expected,
        "{inner:?} vs {topic:?}"
    );
    assert_eq!(parsed.matches(topic), expected, "{filter:?} vs {topic:?}");
});

/// Non-empty, at most 65,535 bytes, no U+0000 (MQTT 5.0 4.7.3).
fn reference_common_valid(s: &str) -> bool {
    !s.is_empty() && s.len() <= usize::from(u16::MAX) && !s.contains('\0')
}

/// A topic name also has no wildcard characters [MQTT-3.3.2-2].
fn reference_name_valid(name: &str) -> bool {
    reference_common_valid(name) && !name.contains(['+', '#'])
}

/// Every '+' is a whole level, '#' only as the whole last level (MQTT 5.0 4.7.1); a
/// `$share/{ShareName}/{filter}` has a non-empty `ShareName` without wildcards and a non-empty
/// filter (MQTT 5.0 4.8.2).
fn reference_filter_valid(filter: &str) -> bool {
    if !reference_common_valid(filter) {
        return false;
    }
    let levels: Vec<&str> = filter.split('/').collect();
    if levels.len() >= 3 && levels[0] == "$share" {
        let group = levels[1];
        let inner = &levels[2..];
        return !group.is_empty()
            && !group.contains(['+', '#'])
            && inner != [""]
            && wildcards_valid(inner);
    }
    if levels[0] == "$share" && levels.len() == 2 {
        // "$share/{group}" with no filter after it.
        return false;
    }
    wildcards_valid(&levels)
}

fn wildcards_valid(levels: &[&str]) -> bool {
    levels.iter().enumerate().all(|(i, level)| {
        *level == "+" || (*level == "#" && i == levels.len() - 1) || !level.contains(['+', '#'])
    })
}

/// Level-by-level matching, written for obviousness rather than speed.
fn reference_matches(filter: &str, topic: &str) -> bool {
    // Wildcard-leading filters do not see '$' topics [MQTT-4.7.2-1].
    if filter.starts_with(['+', '#']) && topic.starts_with('$') {
        return false;
    }
    let filter: Vec<&str> = filter.split('/').collect();
    let topic: Vec<&str> = topic.split('/').collect();
    let mut f = filter.iter();
    let mut t = topic.iter();
    loop {
        match (f.next(), t.next()) {
            // '#' matches what is left, even nothing: "a/#" matches "a" (MQTT 5.0 4.7.1.2).
            (Some(&"#"), _) => return true,
            (None, None) => return true,
            (Some(&"+"), Some(_)) => {}
            (Some(a), Some(b)) if a == b => {}
            _ => return false,
        }
    }
}
