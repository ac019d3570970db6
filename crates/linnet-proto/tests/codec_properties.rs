//! Property tests for the codec as a whole, over every packet kind of MQTT 3.1, 3.1.1 and 5.0:
//!
//! - any valid packet encodes, and decodes back to the equal packet, and
//!   [`Packet::encoded_size`] is exactly the number of bytes written;
//! - packets encoded back to back and fed to the [`Decoder`] in arbitrary chunks come out in
//!   order, each as soon as its last byte arrives and never earlier;
//! - arbitrary bytes, and valid encodings with one byte corrupted, never panic the decoder, and
//!   every packet it does return re-encodes to bytes that decode to the same packet;
//! - every strict prefix of a valid encoding is answered with "need more bytes" and leaves the
//!   buffer as it was;
//! - a decoder's maximum packet size admits exactly the packets that fit, rejecting the others
//!   from the fixed header alone, and [`Packet::encode_within`] agrees on the sending side.
//!
//! The generators build only packets the spec allows in their version: 5.0-only fields
//! (properties, most reason codes, subscription options) stay at their defaults before 5.0,
//! because 3.x has nowhere to carry them.

use std::fmt::Debug;
use std::num::{NonZeroU16, NonZeroU32};

use bytes::{Bytes, BytesMut};
use linnet_proto::{
    AckProperties, Auth, AuthProperties, ByteString, ConnAck, ConnAckProperties, Connect,
    ConnectProperties, DecodeError, Decoder, Disconnect, DisconnectProperties, EncodeError, Packet,
    PacketId, ProtocolVersion, PubResponse, Publish, PublishProperties, QoS, ReasonCode,
    RetainHandling, SubAck, Subscribe, SubscribeProperties, Subscription, SubscriptionOptions,
    TopicFilter, TopicName, UnsubAck, Unsubscribe, UnsubscribeProperties, UserProperty, Will,
    WillProperties,
};
use proptest::collection::vec;
use proptest::option::of as maybe;
use proptest::prelude::*;
use proptest::sample::{select, Index};
use proptest::strategy::Union;

const VERSIONS: [ProtocolVersion; 3] = [
    ProtocolVersion::V3_1,
    ProtocolVersion::V3_1_1,
    ProtocolVersion::V5,
];

// Reason codes each packet may carry, transcribed from MQTT 5.0 table 2-6 (not read from the
// crate, so a wrong entry in its table fails these tests).
const CONNACK_V5: &[u8] = &[
    0x00, 0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8A, 0x8C, 0x90, 0x95, 0x97,
    0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9F,
];
/// The 5.0 CONNACK reasons that a 3.x return code (3.1.1 table 3.1) carries back unchanged.
const CONNACK_V3: &[u8] = &[0x00, 0x84, 0x85, 0x88, 0x86, 0x87];
const PUBACK_PUBREC: &[u8] = &[0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99];
const PUBREL_PUBCOMP: &[u8] = &[0x00, 0x92];
const SUBACK_V5: &[u8] = &[
    0x00, 0x01, 0x02, 0x80, 0x83, 0x87, 0x8F, 0x91, 0x97, 0x9E, 0xA1, 0xA2,
];
/// 3.1.1 section 3.9.3: granted QoS 0, 1, 2 or Failure.
const SUBACK_V3: &[u8] = &[0x00, 0x01, 0x02, 0x80];
const UNSUBACK_V5: &[u8] = &[0x00, 0x11, 0x80, 0x83, 0x87, 0x8F, 0x91];
const DISCONNECT_V5: &[u8] = &[
    0x00, 0x04, 0x80, 0x81, 0x82, 0x83, 0x87, 0x89, 0x8B, 0x8C, 0x8D, 0x8E, 0x8F, 0x90, 0x93, 0x94,
    0x95, 0x96, 0x97, 0x98, 0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9E, 0x9F, 0xA0, 0xA1, 0xA2,
];
const AUTH: &[u8] = &[0x00, 0x18, 0x19];

// ---- primitive values ----

/// A character of a UTF-8 Encoded String: anything but U+0000 [MQTT-1.5.4-2]. Mostly
/// printable ASCII, with arbitrary (multi-byte, control, BOM, ...) characters mixed in.
fn text_char() -> impl Strategy<Value = char> {
    prop_oneof![
        3 => prop::char::range(' ', '~'),
        1 => any::<char>().prop_filter("U+0000 is not allowed", |&c| c != '\0'),
    ]
}

fn text(max_chars: usize) -> impl Strategy<Value = String> {
    vec(text_char(), 0..=max_chars).prop_map(String::from_iter)
}

fn string(max_chars: usize) -> impl Strategy<Value = ByteString> {
    text(max_chars).prop_map(ByteString::from)
}

fn binary(max_len: usize) -> impl Strategy<Value = Bytes> {
    vec(any::<u8>(), 0..=max_len).prop_map(Bytes::from)
}

/// Mostly small payloads; some past 127 and 16,383 bytes, so that remaining lengths of two
/// and three bytes occur.
fn payload() -> impl Strategy<Value = Bytes> {
    prop_oneof![
        12 => binary(48),
        3 => binary(300),
        1 => (any::<u8>(), 16_300..16_500usize).prop_map(|(byte, len)| Bytes::from(vec![byte; len])),
    ]
}

fn qos() -> impl Strategy<Value = QoS> {
    select(&[QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce][..])
}

fn packet_id() -> impl Strategy<Value = PacketId> {
    any::<NonZeroU16>()
}

/// A Subscription Identifier: 1 to 268,435,455, spread over every variable byte integer size.
fn subscription_id() -> impl Strategy<Value = NonZeroU32> {
    prop_oneof![
        1..=127u32,
        128..=16_383u32,
        16_384..=2_097_151u32,
        2_097_152..=268_435_455u32,
    ]
    .prop_map(|id| NonZeroU32::new(id).unwrap())
}

fn user_properties() -> impl Strategy<Value = Vec<UserProperty>> {
    vec((string(6), string(6)), 0..3)
}

fn reason(codes: &'static [u8]) -> impl Strategy<Value = ReasonCode> {
    select(codes).prop_map(ReasonCode)
}

// ---- topics ----

/// Text of one topic level: no '/', '+', '#' or U+0000; may be empty.
fn level() -> impl Strategy<Value = String> {
    let free = vec(
        text_char().prop_filter("not a separator or wildcard", |c| {
            !matches!(c, '/' | '+' | '#')
        }),
        0..6,
    )
    .prop_map(String::from_iter);
    prop_oneof![
        3 => free,
        1 => select(&["", "a", "sport", "$SYS", "$share", "\u{FEFF}"][..]).prop_map(String::from),
    ]
}

fn topic_name() -> impl Strategy<Value = TopicName> {
    vec(level(), 1..5)
        .prop_map(|levels| levels.join("/"))
        .prop_filter("a topic name is not empty", |name| !name.is_empty())
        .prop_map(|name| {
            TopicName::new(name.clone()).unwrap_or_else(|e| panic!("{name:?} is valid: {e}"))
        })
}

/// A non-shared filter: literal and '+' levels, optionally ending in '#'.
fn plain_filter() -> impl Strategy<Value = String> {
    let filter_level = prop_oneof![4 => level(), 1 => Just("+".to_owned())];
    (vec(filter_level, 0..5), any::<bool>())
        .prop_map(|(mut levels, hash)| {
            if hash || levels.is_empty() {
                levels.push("#".to_owned());
            }
            levels.join("/")
        })
        .prop_filter("a topic filter is not empty", |filter| !filter.is_empty())
        // A first level "$share" followed by more would turn it into a shared subscription.
        .prop_filter("not accidentally shared", |filter| {
            !filter.starts_with("$share/")
        })
}

/// A topic filter, one in five a shared subscription `$share/{group}/{filter}`.
fn topic_filter() -> impl Strategy<Value = TopicFilter> {
    let group = level().prop_filter("a ShareName is not empty", |group| !group.is_empty());
    prop_oneof![
        4 => plain_filter(),
        1 => (group, plain_filter()).prop_map(|(group, filter)| format!("$share/{group}/{filter}")),
    ]
    .prop_map(|filter| {
        TopicFilter::new(filter.clone()).unwrap_or_else(|e| panic!("{filter:?} is valid: {e}"))
    })
}

// ---- MQTT 5.0 properties, every field ----

/// `properties` in 5.0; before it the default (empty) set, which is all 3.x can carry.
fn v5_only<T, S>(version: ProtocolVersion, properties: S) -> BoxedStrategy<T>
where
    T: Default + Clone + Debug + 'static,
    S: Strategy<Value = T> + 'static,
{
    if version.is_v5() {
        properties.boxed()
    } else {
        Just(T::default()).boxed()
    }
}

fn connect_properties() -> impl Strategy<Value = ConnectProperties> {
    (
        maybe(any::<u32>()),
        maybe(any::<NonZeroU16>()),
        maybe(any::<NonZeroU32>()),
        maybe(any::<u16>()),
        maybe(any::<bool>()),
        maybe(any::<bool>()),
        user_properties(),
        maybe(string(8)),
        maybe(binary(8)),
    )
        .prop_map(
            |(session, receive, packet_size, alias, response, problem, user, method, data)| {
                ConnectProperties {
                    session_expiry_interval: session,
                    receive_maximum: receive,
                    maximum_packet_size: packet_size,
                    topic_alias_maximum: alias,
                    request_response_information: response,
                    request_problem_information: problem,
                    user_properties: user,
                    // Authentication Data only accompanies a method (MQTT 5.0 3.1.2.11.10).
                    authentication_data: method.as_ref().and(data),
                    authentication_method: method,
                }
            },
        )
}

fn will_properties() -> impl Strategy<Value = WillProperties> {
    (
        maybe(any::<u32>()),
        maybe(any::<bool>()),
        maybe(any::<u32>()),
        maybe(string(8)),
        maybe(topic_name()),
        maybe(binary(8)),
        user_properties(),
    )
        .prop_map(
            |(delay, format, expiry, content_type, response_topic, correlation, user)| {
                WillProperties {
                    will_delay_interval: delay,
                    payload_format_indicator: format,
                    message_expiry_interval: expiry,
                    content_type,
                    response_topic,
                    correlation_data: correlation,
                    user_properties: user,
                }
            },
        )
}

fn connack_properties() -> impl Strategy<Value = ConnAckProperties> {
    (
        (
            maybe(any::<u32>()),
            maybe(any::<NonZeroU16>()),
            // Maximum QoS is 0 or 1: absence means 2 (MQTT 5.0 3.2.2.3.4).
            maybe(select(&[QoS::AtMostOnce, QoS::AtLeastOnce][..])),
            maybe(any::<bool>()),
            maybe(any::<NonZeroU32>()),
            maybe(string(8)),
            maybe(any::<u16>()),
            maybe(string(8)),
        ),
        (
            user_properties(),
            maybe(any::<bool>()),
            maybe(any::<bool>()),
            maybe(any::<bool>()),
            maybe(any::<u16>()),
            maybe(string(8)),
            maybe(string(8)),
            maybe(string(8)),
            maybe(binary(8)),
        ),
    )
        .prop_map(
            |(
                (session, receive, max_qos, retain, packet_size, assigned, alias_max, reason),
                (user, wildcard, sub_ids, shared, keep_alive, response, server, method, data),
            )| ConnAckProperties {
                session_expiry_interval: session,
                receive_maximum: receive,
                maximum_qos: max_qos,
                retain_available: retain,
                maximum_packet_size: packet_size,
                assigned_client_identifier: assigned,
                topic_alias_maximum: alias_max,
                reason_string: reason,
                user_properties: user,
                wildcard_subscription_available: wildcard,
                subscription_identifiers_available: sub_ids,
                shared_subscription_available: shared,
                server_keep_alive: keep_alive,
                response_information: response,
                server_reference: server,
                authentication_data: method.as_ref().and(data),
                authentication_method: method,
            },
        )
}

fn publish_properties() -> impl Strategy<Value = PublishProperties> {
    (
        maybe(any::<bool>()),
        maybe(any::<u32>()),
        maybe(any::<NonZeroU16>()),
        maybe(topic_name()),
        maybe(binary(8)),
        user_properties(),
        vec(subscription_id(), 0..3),
        maybe(string(8)),
    )
        .prop_map(
            |(format, expiry, alias, response_topic, correlation, user, sub_ids, content_type)| {
                PublishProperties {
                    payload_format_indicator: format,
                    message_expiry_interval: expiry,
                    topic_alias: alias,
                    response_topic,
                    correlation_data: correlation,
                    user_properties: user,
                    subscription_identifiers: sub_ids,
                    content_type,
                }
            },
        )
}

fn ack_properties() -> impl Strategy<Value = AckProperties> {
    (maybe(string(12)), user_properties()).prop_map(|(reason, user)| AckProperties {
        reason_string: reason,
        user_properties: user,
    })
}

fn subscribe_properties() -> impl Strategy<Value = SubscribeProperties> {
    (maybe(subscription_id()), user_properties()).prop_map(|(id, user)| SubscribeProperties {
        subscription_identifier: id,
        user_properties: user,
    })
}

fn unsubscribe_properties() -> impl Strategy<Value = UnsubscribeProperties> {
    user_properties().prop_map(|user| UnsubscribeProperties {
        user_properties: user,
    })
}

fn disconnect_properties() -> impl Strategy<Value = DisconnectProperties> {
    (
        maybe(any::<u32>()),
        maybe(string(12)),
        user_properties(),
        maybe(string(8)),
    )
        .prop_map(|(session, reason, user, server)| DisconnectProperties {
            session_expiry_interval: session,
            reason_string: reason,
            user_properties: user,
            server_reference: server,
        })
}

fn auth_properties() -> impl Strategy<Value = AuthProperties> {
    (
        maybe(string(8)),
        maybe(binary(8)),
        maybe(string(12)),
        user_properties(),
    )
        .prop_map(|(method, data, reason, user)| AuthProperties {
            authentication_data: method.as_ref().and(data),
            authentication_method: method,
            reason_string: reason,
            user_properties: user,
        })
}

// ---- packets ----

fn will(version: ProtocolVersion) -> impl Strategy<Value = Will> {
    (
        topic_name(),
        binary(16),
        qos(),
        any::<bool>(),
        v5_only(version, will_properties()),
    )
        .prop_map(|(topic, payload, qos, retain, properties)| Will {
            topic,
            payload,
            qos,
            retain,
            properties,
        })
}

fn connect(version: ProtocolVersion) -> impl Strategy<Value = Packet> {
    (
        any::<bool>(),
        any::<u16>(),
        string(23),
        maybe(will(version)),
        maybe(string(12)),
        maybe(binary(12)),
        v5_only(version, connect_properties()),
    )
        .prop_map(
            move |(clean_start, keep_alive, client_id, will, username, password, properties)| {
                // Before 5.0 a password needs a user name [MQTT-3.1.2-22].
                let password = password.filter(|_| version.is_v5() || username.is_some());
                Packet::from(Connect {
                    protocol: version,
                    clean_start,
                    keep_alive,
                    client_id,
                    will,
                    username,
                    password,
                    properties,
                })
            },
        )
}

fn connack(version: ProtocolVersion) -> impl Strategy<Value = Packet> {
    let codes = if version.is_v5() {
        CONNACK_V5
    } else {
        CONNACK_V3
    };
    (
        any::<bool>(),
        reason(codes),
        v5_only(version, connack_properties()),
    )
        .prop_map(move |(session_present, reason_code, properties)| {
            Packet::ConnAck(ConnAck {
                // Only with Success [MQTT-3.2.2-6], and 3.1 has no such flag at all.
                session_present: session_present
                    && reason_code == ReasonCode::SUCCESS
                    && version != ProtocolVersion::V3_1,
                reason_code,
                properties,
            })
        })
}

fn publish(version: ProtocolVersion) -> impl Strategy<Value = Packet> {
    (
        (qos(), any::<bool>(), any::<bool>(), packet_id()),
        topic_name(),
        any::<bool>(),
        payload(),
        v5_only(version, publish_properties()),
    )
        .prop_map(
            |((qos, dup, retain, id), topic, empty_topic, payload, properties)| {
                // An empty topic only stands for the one a Topic Alias maps [MQTT-3.3.2-1].
                let topic = if empty_topic && properties.topic_alias.is_some() {
                    ByteString::new()
                } else {
                    topic.into_inner()
                };
                Packet::Publish(Publish {
                    // DUP and a packet identifier exist only at QoS 1 and 2.
                    dup: dup && qos != QoS::AtMostOnce,
                    qos,
                    retain,
                    topic,
                    packet_id: (qos != QoS::AtMostOnce).then_some(id),
                    payload,
                    properties,
                })
            },
        )
}

fn pub_response(
    version: ProtocolVersion,
    codes: &'static [u8],
    kind: fn(PubResponse) -> Packet,
) -> impl Strategy<Value = Packet> {
    let codes = if version.is_v5() { codes } else { &[0x00] };
    (
        packet_id(),
        reason(codes),
        v5_only(version, ack_properties()),
    )
        .prop_map(move |(packet_id, reason_code, properties)| {
            kind(PubResponse {
                packet_id,
                reason_code,
                properties,
            })
        })
}

fn subscription(version: ProtocolVersion) -> impl Strategy<Value = Subscription> {
    let retain_handling = select(
        &[
            RetainHandling::SendAtSubscribe,
            RetainHandling::SendIfNew,
            RetainHandling::DoNotSend,
        ][..],
    );
    (
        topic_filter(),
        qos(),
        any::<bool>(),
        any::<bool>(),
        retain_handling,
    )
        .prop_map(
            move |(filter, qos, no_local, retain_as_published, retain_handling)| {
                let options = if version.is_v5() {
                    SubscriptionOptions {
                        qos,
                        // Not on a shared subscription [MQTT-3.8.3-4].
                        no_local: no_local && !filter.is_shared(),
                        retain_as_published,
                        retain_handling,
                    }
                } else {
                    SubscriptionOptions::qos(qos)
                };
                Subscription { filter, options }
            },
        )
}

fn subscribe(version: ProtocolVersion) -> impl Strategy<Value = Packet> {
    (
        packet_id(),
        vec(subscription(version), 1..4),
        v5_only(version, subscribe_properties()),
    )
        .prop_map(|(packet_id, subscriptions, properties)| {
            Packet::Subscribe(Subscribe {
                packet_id,
                subscriptions,
                properties,
            })
        })
}

fn suback(version: ProtocolVersion) -> impl Strategy<Value = Packet> {
    let codes = if version.is_v5() {
        SUBACK_V5
    } else {
        SUBACK_V3
    };
    (
        packet_id(),
        vec(reason(codes), 1..5),
        v5_only(version, ack_properties()),
    )
        .prop_map(|(packet_id, reason_codes, properties)| {
            Packet::SubAck(SubAck {
                packet_id,
                reason_codes,
                properties,
            })
        })
}

fn unsubscribe(version: ProtocolVersion) -> impl Strategy<Value = Packet> {
    (
        packet_id(),
        vec(topic_filter(), 1..4),
        v5_only(version, unsubscribe_properties()),
    )
        .prop_map(|(packet_id, filters, properties)| {
            Packet::Unsubscribe(Unsubscribe {
                packet_id,
                filters,
                properties,
            })
        })
}

fn unsuback(version: ProtocolVersion) -> BoxedStrategy<Packet> {
    if version.is_v5() {
        (
            packet_id(),
            vec(reason(UNSUBACK_V5), 1..5),
            ack_properties(),
        )
            .prop_map(|(packet_id, reason_codes, properties)| {
                Packet::UnsubAck(UnsubAck {
                    packet_id,
                    reason_codes,
                    properties,
                })
            })
            .boxed()
    } else {
        // 3.x UNSUBACK is a packet identifier and nothing else.
        packet_id()
            .prop_map(|id| Packet::UnsubAck(UnsubAck::new(id, Vec::new())))
            .boxed()
    }
}

fn disconnect(version: ProtocolVersion) -> BoxedStrategy<Packet> {
    if version.is_v5() {
        (reason(DISCONNECT_V5), disconnect_properties())
            .prop_map(|(reason_code, properties)| {
                Packet::Disconnect(Disconnect {
                    reason_code,
                    properties,
                })
            })
            .boxed()
    } else {
        Just(Packet::Disconnect(Disconnect::default())).boxed()
    }
}

/// AUTH exists only in 5.0.
fn auth() -> impl Strategy<Value = Packet> {
    (reason(AUTH), auth_properties()).prop_map(|(reason_code, properties)| {
        Packet::Auth(Auth {
            reason_code,
            properties,
        })
    })
}

/// Any valid packet of `version`, every kind equally likely.
fn packet(version: ProtocolVersion) -> BoxedStrategy<Packet> {
    let mut kinds = vec![
        connect(version).boxed(),
        connack(version).boxed(),
        publish(version).boxed(),
        pub_response(version, PUBACK_PUBREC, Packet::PubAck).boxed(),
        pub_response(version, PUBACK_PUBREC, Packet::PubRec).boxed(),
        pub_response(version, PUBREL_PUBCOMP, Packet::PubRel).boxed(),
        pub_response(version, PUBREL_PUBCOMP, Packet::PubComp).boxed(),
        subscribe(version).boxed(),
        suback(version).boxed(),
        unsubscribe(version).boxed(),
        unsuback(version),
        Just(Packet::PingReq).boxed(),
        Just(Packet::PingResp).boxed(),
        disconnect(version),
    ];
    if version.is_v5() {
        kinds.push(auth().boxed());
    }
    Union::new(kinds).boxed()
}

/// `per_version(v)` for a version chosen among 3.1, 3.1.1 and 5.0, paired with it.
fn with_version<T, S>(
    per_version: impl Fn(ProtocolVersion) -> S,
) -> BoxedStrategy<(ProtocolVersion, T)>
where
    T: Debug + 'static,
    S: Strategy<Value = T> + 'static,
{
    Union::new(VERSIONS.map(|v| per_version(v).prop_map(move |t| (v, t)).boxed())).boxed()
}

// ---- helpers ----

fn encode(version: ProtocolVersion, packet: &Packet) -> Result<BytesMut, TestCaseError> {
    let mut wire = BytesMut::new();
    let written = packet
        .encode(version, &mut wire)
        .map_err(|e| TestCaseError::fail(format!("{packet:?} does not encode: {e}")))?;
    prop_assert_eq!(written, wire.len());
    Ok(wire)
}

/// Length of the fixed header at the start of a valid encoding.
fn fixed_header_len(wire: &[u8]) -> usize {
    1 + wire[1..]
        .iter()
        .take_while(|&&byte| byte & 0x80 != 0)
        .count()
        + 1
}

/// Decodes packets off `bytes` until the decoder wants more or reports an error. It must not
/// panic, must leave the buffer untouched when it wants more, and every packet it returns must
/// survive encode and decode unchanged.
fn decode_all(version: ProtocolVersion, bytes: &[u8]) -> Result<(), TestCaseError> {
    let mut decoder = Decoder::new(version);
    let mut buf = BytesMut::from(bytes);
    loop {
        let before = buf.clone();
        // CONNECT switches the decoder to its own version: re-encode in the one it was read as.
        let read_as = decoder.version();
        match decoder.decode(&mut buf) {
            Ok(Some(packet)) => {
                let mut wire = encode(read_as, &packet)?;
                prop_assert_eq!(
                    Decoder::new(read_as).decode(&mut wire),
                    Ok(Some(packet.clone())),
                    "{} does not round-trip; read from {:02x?}",
                    packet.packet_type(),
                    &before[..before.len() - buf.len()]
                );
            }
            Ok(None) => {
                prop_assert_eq!(buf, before);
                return Ok(());
            }
            Err(_) => return Ok(()),
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn encode_then_decode_gives_the_packet_back((version, packet) in with_version(packet)) {
        let mut wire = encode(version, &packet)?;
        prop_assert_eq!(packet.encoded_size(version), Ok(wire.len()));
        let mut decoder = Decoder::new(version);
        prop_assert_eq!(decoder.decode(&mut wire), Ok(Some(packet)));
        prop_assert!(wire.is_empty(), "{} bytes left over", wire.len());
        prop_assert_eq!(decoder.version(), version);
    }

    #[test]
    fn a_stream_fed_in_arbitrary_chunks_decodes_in_order(
        (version, packets) in with_version(|v| vec(packet(v), 1..6)),
        chunks in vec(1..64usize, 1..16),
    ) {
        let mut wire = Vec::new();
        let mut ends = Vec::new();
        for packet in &packets {
            wire.extend_from_slice(&encode(version, packet)?);
            ends.push(wire.len());
        }
        let mut decoder = Decoder::new(version);
        let mut buf = BytesMut::new();
        let mut fed = 0;
        let mut decoded = Vec::new();
        for &chunk in chunks.iter().cycle() {
            if fed == wire.len() {
                break;
            }
            let next = (fed + chunk).min(wire.len());
            buf.extend_from_slice(&wire[fed..next]);
            fed = next;
            while let Some(packet) = decoder
                .decode(&mut buf)
                .map_err(|e| TestCaseError::fail(format!("decode error: {e}")))?
            {
                decoded.push(packet);
                // Exactly the packet's bytes were taken: it had arrived whole.
                prop_assert_eq!(Some(&(fed - buf.len())), ends.get(decoded.len() - 1));
            }
            // Asked for more: the next packet has not arrived whole yet.
            if let Some(&end) = ends.get(decoded.len()) {
                prop_assert!(end > fed, "packet ending at {} not returned at {}", end, fed);
            }
        }
        prop_assert_eq!(decoded, packets);
        prop_assert!(buf.is_empty());
    }

    #[test]
    fn arbitrary_bytes_never_panic_the_decoder(bytes in vec(any::<u8>(), 0..512)) {
        for version in VERSIONS {
            decode_all(version, &bytes)?;
        }
    }

    #[test]
    fn a_corrupted_byte_never_panics_the_decoder(
        (version, packet) in with_version(packet),
        at in any::<Index>(),
        byte in any::<u8>(),
        keep in any::<Index>(),
    ) {
        let mut wire = encode(version, &packet)?;
        let at = at.index(wire.len());
        wire[at] = byte;
        // Sometimes cut short, too, so that corrupt headers meet missing bodies.
        let keep = wire.len() - keep.index(wire.len()) / 4;
        decode_all(version, &wire[..keep])?;
    }

    #[test]
    fn every_truncation_asks_for_more_bytes((version, packet) in with_version(packet)) {
        let wire = encode(version, &packet)?;
        for cut in 0..wire.len() {
            let mut buf = BytesMut::from(&wire[..cut]);
            prop_assert_eq!(Decoder::new(version).decode(&mut buf), Ok(None), "cut at {}", cut);
            prop_assert_eq!(&buf[..], &wire[..cut]);
        }
    }

    #[test]
    fn max_packet_size_admits_exactly_what_fits(
        (version, packet) in with_version(packet),
        delta in prop_oneof![3 => -2i64..=2, 1 => -100_000i64..=100_000],
    ) {
        let wire = encode(version, &packet)?;
        let size = wire.len();
        let max = u32::try_from((size as i64 + delta).max(0)).unwrap();
        let mut decoder = Decoder::new(version).with_max_packet_size(max);
        let mut out = BytesMut::new();
        if size <= max as usize {
            prop_assert_eq!(decoder.decode(&mut wire.clone()), Ok(Some(packet.clone())));
            prop_assert_eq!(packet.encode_within(version, max, &mut out), Ok(size));
            prop_assert_eq!(out, wire);
        } else {
            let too_large = Err(DecodeError::PacketTooLarge { size, max });
            prop_assert_eq!(decoder.decode(&mut wire.clone()), too_large.clone());
            // Known from the fixed header alone, before the body arrives.
            let mut header = BytesMut::from(&wire[..fixed_header_len(&wire)]);
            prop_assert_eq!(decoder.decode(&mut header), too_large);
            prop_assert_eq!(
                packet.encode_within(version, max, &mut out),
                Err(EncodeError::PacketTooLarge { size, max })
            );
            prop_assert!(out.is_empty(), "encode_within wrote {} bytes", out.len());
        }
    }
}
