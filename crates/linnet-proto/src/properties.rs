//! MQTT 5.0 properties (section 2.2.2): every property identifier with its data type, the
//! rule of which property may appear in which packet (table 2-2 is [`PropertyId::allowed_in`]),
//! the duplicate rule (only User Property, and Subscription Identifier in a PUBLISH, repeat),
//! value rules (e.g. Receive Maximum 0 is a Protocol Error), and one typed struct per packet.
//!
//! Decoding reads each property into a [`Property`] value, checks it against the table, then
//! lets the packet's struct take it. Encoding walks the struct once through a [`PropSink`], so
//! the length pass and the write pass cannot disagree.

use std::fmt;
use std::num::{NonZeroU16, NonZeroU32};

use bytes::{BufMut, Bytes};
use bytestring::ByteString;

use crate::codec::{put_binary, put_varint, varint_len, Reader, MAX_VARINT};
use crate::error::{DecodeError, EncodeError};
use crate::topic::TopicName;
use crate::types::QoS;

/// A User Property: a name/value pair that may repeat and whose order is kept [MQTT-3.3.2-17].
pub type UserProperty = (ByteString, ByteString);

/// Where a property block sits. PUBACK, PUBREC, PUBREL and PUBCOMP share one set, as do
/// SUBACK and UNSUBACK for their properties.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Context {
    Connect,
    Will,
    ConnAck,
    Publish,
    PubResponse,
    Subscribe,
    SubAck,
    Unsubscribe,
    UnsubAck,
    Disconnect,
    Auth,
}

impl Context {
    const fn bit(self) -> u16 {
        1 << self as u16
    }

    /// The packet (or CONNECT part) name, for error messages.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Connect => "CONNECT",
            Self::Will => "will properties",
            Self::ConnAck => "CONNACK",
            Self::Publish => "PUBLISH",
            Self::PubResponse => "PUBACK/PUBREC/PUBREL/PUBCOMP",
            Self::Subscribe => "SUBSCRIBE",
            Self::SubAck => "SUBACK",
            Self::Unsubscribe => "UNSUBSCRIBE",
            Self::UnsubAck => "UNSUBACK",
            Self::Disconnect => "DISCONNECT",
            Self::Auth => "AUTH",
        }
    }
}

macro_rules! property_ids {
    ($($variant:ident = $id:literal, $name:literal, [$($ctx:ident),*];)*) => {
        /// A property identifier of MQTT 5.0 table 2-2.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum PropertyId {
            $(#[doc = $name] $variant = $id,)*
        }

        impl PropertyId {
            /// Every property identifier, in table order.
            pub const ALL: &'static [PropertyId] = &[$(Self::$variant,)*];

            /// The identifier for a value; `None` for ones the spec does not define.
            pub const fn from_u32(value: u32) -> Option<Self> {
                match value {
                    $($id => Some(Self::$variant),)*
                    _ => None,
                }
            }

            /// The spec's name for the property.
            pub const fn name(self) -> &'static str {
                match self {
                    $(Self::$variant => $name,)*
                }
            }

            /// Whether MQTT 5.0 table 2-2 lets this property appear in `context`.
            pub const fn allowed_in(self, context: Context) -> bool {
                let allowed: u16 = match self {
                    $(Self::$variant => 0 $(| Context::$ctx.bit())*,)*
                };
                allowed & context.bit() != 0
            }
        }
    };
}

property_ids! {
    PayloadFormatIndicator = 0x01, "Payload Format Indicator", [Publish, Will];
    MessageExpiryInterval = 0x02, "Message Expiry Interval", [Publish, Will];
    ContentType = 0x03, "Content Type", [Publish, Will];
    ResponseTopic = 0x08, "Response Topic", [Publish, Will];
    CorrelationData = 0x09, "Correlation Data", [Publish, Will];
    SubscriptionIdentifier = 0x0B, "Subscription Identifier", [Publish, Subscribe];
    SessionExpiryInterval = 0x11, "Session Expiry Interval", [Connect, ConnAck, Disconnect];
    AssignedClientIdentifier = 0x12, "Assigned Client Identifier", [ConnAck];
    ServerKeepAlive = 0x13, "Server Keep Alive", [ConnAck];
    AuthenticationMethod = 0x15, "Authentication Method", [Connect, ConnAck, Auth];
    AuthenticationData = 0x16, "Authentication Data", [Connect, ConnAck, Auth];
    RequestProblemInformation = 0x17, "Request Problem Information", [Connect];
    WillDelayInterval = 0x18, "Will Delay Interval", [Will];
    RequestResponseInformation = 0x19, "Request Response Information", [Connect];
    ResponseInformation = 0x1A, "Response Information", [ConnAck];
    ServerReference = 0x1C, "Server Reference", [ConnAck, Disconnect];
    ReasonString = 0x1F, "Reason String",
        [ConnAck, PubResponse, SubAck, UnsubAck, Disconnect, Auth];
    ReceiveMaximum = 0x21, "Receive Maximum", [Connect, ConnAck];
    TopicAliasMaximum = 0x22, "Topic Alias Maximum", [Connect, ConnAck];
    TopicAlias = 0x23, "Topic Alias", [Publish];
    MaximumQoS = 0x24, "Maximum QoS", [ConnAck];
    RetainAvailable = 0x25, "Retain Available", [ConnAck];
    UserProperty = 0x26, "User Property",
        [Connect, Will, ConnAck, Publish, PubResponse, Subscribe, SubAck, Unsubscribe,
         UnsubAck, Disconnect, Auth];
    MaximumPacketSize = 0x27, "Maximum Packet Size", [Connect, ConnAck];
    WildcardSubscriptionAvailable = 0x28, "Wildcard Subscription Available", [ConnAck];
    SubscriptionIdentifierAvailable = 0x29, "Subscription Identifier Available", [ConnAck];
    SharedSubscriptionAvailable = 0x2A, "Shared Subscription Available", [ConnAck];
}

impl fmt::Display for PropertyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({:#04x})", self.name(), *self as u8)
    }
}

/// One decoded property with its value already checked against the spec's value rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Property {
    PayloadFormatIndicator(bool),
    MessageExpiryInterval(u32),
    ContentType(ByteString),
    ResponseTopic(TopicName),
    CorrelationData(Bytes),
    SubscriptionIdentifier(NonZeroU32),
    SessionExpiryInterval(u32),
    AssignedClientIdentifier(ByteString),
    ServerKeepAlive(u16),
    AuthenticationMethod(ByteString),
    AuthenticationData(Bytes),
    RequestProblemInformation(bool),
    WillDelayInterval(u32),
    RequestResponseInformation(bool),
    ResponseInformation(ByteString),
    ServerReference(ByteString),
    ReasonString(ByteString),
    ReceiveMaximum(NonZeroU16),
    TopicAliasMaximum(u16),
    TopicAlias(NonZeroU16),
    MaximumQoS(QoS),
    RetainAvailable(bool),
    UserProperty(ByteString, ByteString),
    MaximumPacketSize(NonZeroU32),
    WildcardSubscriptionAvailable(bool),
    SubscriptionIdentifierAvailable(bool),
    SharedSubscriptionAvailable(bool),
}

fn invalid(property: PropertyId, value: u32) -> DecodeError {
    DecodeError::InvalidPropertyValue { property, value }
}

fn flag(reader: &mut Reader, id: PropertyId) -> Result<bool, DecodeError> {
    match reader.u8()? {
        0 => Ok(false),
        1 => Ok(true),
        other => Err(invalid(id, u32::from(other))),
    }
}

fn non_zero_u16(reader: &mut Reader, id: PropertyId) -> Result<NonZeroU16, DecodeError> {
    NonZeroU16::new(reader.u16()?).ok_or(invalid(id, 0))
}

impl Property {
    /// Reads one property (identifier and value) from `reader`.
    pub fn read(reader: &mut Reader) -> Result<Self, DecodeError> {
        use PropertyId as Id;
        let raw = reader.varint()?;
        let id = PropertyId::from_u32(raw).ok_or(DecodeError::UnknownProperty(raw))?;
        Ok(match id {
            Id::PayloadFormatIndicator => Self::PayloadFormatIndicator(flag(reader, id)?),
            Id::MessageExpiryInterval => Self::MessageExpiryInterval(reader.u32()?),
            Id::ContentType => Self::ContentType(reader.string()?),
            Id::ResponseTopic => Self::ResponseTopic(
                TopicName::new(reader.string()?).map_err(DecodeError::InvalidTopicName)?,
            ),
            Id::CorrelationData => Self::CorrelationData(reader.binary()?),
            Id::SubscriptionIdentifier => {
                let value = reader.varint()?;
                Self::SubscriptionIdentifier(NonZeroU32::new(value).ok_or(invalid(id, 0))?)
            }
            Id::SessionExpiryInterval => Self::SessionExpiryInterval(reader.u32()?),
            Id::AssignedClientIdentifier => Self::AssignedClientIdentifier(reader.string()?),
            Id::ServerKeepAlive => Self::ServerKeepAlive(reader.u16()?),
            Id::AuthenticationMethod => Self::AuthenticationMethod(reader.string()?),
            Id::AuthenticationData => Self::AuthenticationData(reader.binary()?),
            Id::RequestProblemInformation => Self::RequestProblemInformation(flag(reader, id)?),
            Id::WillDelayInterval => Self::WillDelayInterval(reader.u32()?),
            Id::RequestResponseInformation => Self::RequestResponseInformation(flag(reader, id)?),
            Id::ResponseInformation => Self::ResponseInformation(reader.string()?),
            Id::ServerReference => Self::ServerReference(reader.string()?),
            Id::ReasonString => Self::ReasonString(reader.string()?),
            Id::ReceiveMaximum => Self::ReceiveMaximum(non_zero_u16(reader, id)?),
            Id::TopicAliasMaximum => Self::TopicAliasMaximum(reader.u16()?),
            Id::TopicAlias => Self::TopicAlias(non_zero_u16(reader, id)?),
            Id::MaximumQoS => match reader.u8()? {
                0 => Self::MaximumQoS(QoS::AtMostOnce),
                1 => Self::MaximumQoS(QoS::AtLeastOnce),
                other => return Err(invalid(id, u32::from(other))),
            },
            Id::RetainAvailable => Self::RetainAvailable(flag(reader, id)?),
            Id::UserProperty => Self::UserProperty(reader.string()?, reader.string()?),
            Id::MaximumPacketSize => {
                Self::MaximumPacketSize(NonZeroU32::new(reader.u32()?).ok_or(invalid(id, 0))?)
            }
            Id::WildcardSubscriptionAvailable => {
                Self::WildcardSubscriptionAvailable(flag(reader, id)?)
            }
            Id::SubscriptionIdentifierAvailable => {
                Self::SubscriptionIdentifierAvailable(flag(reader, id)?)
            }
            Id::SharedSubscriptionAvailable => Self::SharedSubscriptionAvailable(flag(reader, id)?),
        })
    }

    /// The identifier of this property.
    pub const fn id(&self) -> PropertyId {
        use PropertyId as Id;
        match self {
            Self::PayloadFormatIndicator(_) => Id::PayloadFormatIndicator,
            Self::MessageExpiryInterval(_) => Id::MessageExpiryInterval,
            Self::ContentType(_) => Id::ContentType,
            Self::ResponseTopic(_) => Id::ResponseTopic,
            Self::CorrelationData(_) => Id::CorrelationData,
            Self::SubscriptionIdentifier(_) => Id::SubscriptionIdentifier,
            Self::SessionExpiryInterval(_) => Id::SessionExpiryInterval,
            Self::AssignedClientIdentifier(_) => Id::AssignedClientIdentifier,
            Self::ServerKeepAlive(_) => Id::ServerKeepAlive,
            Self::AuthenticationMethod(_) => Id::AuthenticationMethod,
            Self::AuthenticationData(_) => Id::AuthenticationData,
            Self::RequestProblemInformation(_) => Id::RequestProblemInformation,
            Self::WillDelayInterval(_) => Id::WillDelayInterval,
            Self::RequestResponseInformation(_) => Id::RequestResponseInformation,
            Self::ResponseInformation(_) => Id::ResponseInformation,
            Self::ServerReference(_) => Id::ServerReference,
            Self::ReasonString(_) => Id::ReasonString,
            Self::ReceiveMaximum(_) => Id::ReceiveMaximum,
            Self::TopicAliasMaximum(_) => Id::TopicAliasMaximum,
            Self::TopicAlias(_) => Id::TopicAlias,
            Self::MaximumQoS(_) => Id::MaximumQoS,
            Self::RetainAvailable(_) => Id::RetainAvailable,
            Self::UserProperty(..) => Id::UserProperty,
            Self::MaximumPacketSize(_) => Id::MaximumPacketSize,
            Self::WildcardSubscriptionAvailable(_) => Id::WildcardSubscriptionAvailable,
            Self::SubscriptionIdentifierAvailable(_) => Id::SubscriptionIdentifierAvailable,
            Self::SharedSubscriptionAvailable(_) => Id::SharedSubscriptionAvailable,
        }
    }
}

/// Receives each present property of a struct in order; one implementation measures, one
/// writes.
pub trait PropSink {
    fn byte(&mut self, id: PropertyId, value: u8);
    fn u16(&mut self, id: PropertyId, value: u16);
    fn u32(&mut self, id: PropertyId, value: u32);
    fn varint(&mut self, id: PropertyId, value: u32);
    /// A UTF-8 string or binary data: both are a two-byte length and the bytes.
    fn bytes(&mut self, id: PropertyId, value: &[u8]);
    fn pair(&mut self, id: PropertyId, name: &str, value: &str);
}

/// Measures a property block and notes the first field too long to encode.
#[derive(Debug, Default)]
struct LenSink {
    len: usize,
    too_long: Option<EncodeError>,
}

impl LenSink {
    fn field(&mut self, id: PropertyId, len: usize) {
        if len > usize::from(u16::MAX) && self.too_long.is_none() {
            self.too_long = Some(EncodeError::FieldTooLong {
                field: id.name(),
                len,
            });
        }
    }
}

impl PropSink for LenSink {
    fn byte(&mut self, _: PropertyId, _: u8) {
        self.len += 2;
    }
    fn u16(&mut self, _: PropertyId, _: u16) {
        self.len += 3;
    }
    fn u32(&mut self, _: PropertyId, _: u32) {
        self.len += 5;
    }
    fn varint(&mut self, id: PropertyId, value: u32) {
        if value > MAX_VARINT && self.too_long.is_none() {
            self.too_long = Some(EncodeError::ValueTooLarge {
                field: id.name(),
                value,
            });
        }
        self.len += 1 + varint_len(value);
    }
    fn bytes(&mut self, id: PropertyId, value: &[u8]) {
        self.field(id, value.len());
        self.len += 3 + value.len();
    }
    fn pair(&mut self, id: PropertyId, name: &str, value: &str) {
        self.field(id, name.len());
        self.field(id, value.len());
        self.len += 5 + name.len() + value.len();
    }
}

/// Writes properties into a buffer. Identifiers are all below 128: one byte each.
struct BufSink<'a, B>(&'a mut B);

impl<B: BufMut> PropSink for BufSink<'_, B> {
    fn byte(&mut self, id: PropertyId, value: u8) {
        self.0.put_u8(id as u8);
        self.0.put_u8(value);
    }
    fn u16(&mut self, id: PropertyId, value: u16) {
        self.0.put_u8(id as u8);
        self.0.put_u16(value);
    }
    fn u32(&mut self, id: PropertyId, value: u32) {
        self.0.put_u8(id as u8);
        self.0.put_u32(value);
    }
    fn varint(&mut self, id: PropertyId, value: u32) {
        self.0.put_u8(id as u8);
        put_varint(self.0, value);
    }
    fn bytes(&mut self, id: PropertyId, value: &[u8]) {
        self.0.put_u8(id as u8);
        put_binary(self.0, value);
    }
    fn pair(&mut self, id: PropertyId, name: &str, value: &str) {
        self.0.put_u8(id as u8);
        put_binary(self.0, name.as_bytes());
        put_binary(self.0, value.as_bytes());
    }
}

/// The typed property struct of one packet kind.
pub trait PropertySet: Default {
    /// Which row of table 2-2 this struct is.
    const CONTEXT: Context;

    /// Takes one property already known to be allowed in [`Self::CONTEXT`]; errors on a
    /// duplicate.
    fn apply(&mut self, property: Property) -> Result<(), DecodeError>;

    /// Hands each present property to `sink`, in a fixed order.
    fn visit(&self, sink: &mut impl PropSink);

    /// Reads a property block: its length, then properties until that length is used up.
    fn decode(reader: &mut Reader) -> Result<Self, DecodeError> {
        let len = reader.varint()? as usize;
        if len == 0 {
            // Most packets carry none: skip setting up the block reader.
            return Ok(Self::default());
        }
        if len > reader.remaining() {
            return Err(DecodeError::PropertyLength);
        }
        let mut block = Reader::new(reader.take(len)?, reader.packet());
        let mut set = Self::default();
        while !block.is_empty() {
            let property = Property::read(&mut block)?;
            let id = property.id();
            if !id.allowed_in(Self::CONTEXT) {
                return Err(DecodeError::PropertyNotAllowed {
                    property: id,
                    context: Self::CONTEXT.name(),
                });
            }
            set.apply(property)?;
        }
        Ok(set)
    }

    /// The encoded size of the properties without the length prefix.
    fn content_len(&self) -> Result<usize, EncodeError> {
        let mut sink = LenSink::default();
        self.visit(&mut sink);
        match sink.too_long {
            Some(error) => Err(error),
            None => Ok(sink.len),
        }
    }

    /// The encoded size with the length prefix.
    fn encoded_len(&self) -> Result<usize, EncodeError> {
        let len = self.content_len()?;
        Ok(varint_len(len as u32) + len)
    }

    /// Writes the length prefix and the properties; `content_len` is [`Self::content_len`].
    fn encode(&self, content_len: usize, buf: &mut impl BufMut) {
        put_varint(buf, content_len as u32);
        self.visit(&mut BufSink(buf));
    }

    /// True when no property is present.
    fn is_empty(&self) -> bool {
        let mut sink = LenSink::default();
        self.visit(&mut sink);
        sink.len == 0
    }
}

fn set_once<T>(slot: &mut Option<T>, value: T, id: PropertyId) -> Result<(), DecodeError> {
    if slot.is_some() {
        return Err(DecodeError::DuplicateProperty(id));
    }
    *slot = Some(value);
    Ok(())
}

/// Reached only if table 2-2 and a struct's `apply` disagree; reported, never panicked on.
fn not_allowed(property: &Property, context: Context) -> DecodeError {
    DecodeError::PropertyNotAllowed {
        property: property.id(),
        context: context.name(),
    }
}

fn visit_user(sink: &mut impl PropSink, user_properties: &[UserProperty]) {
    for (name, value) in user_properties {
        sink.pair(PropertyId::UserProperty, name, value);
    }
}

fn visit_flag(sink: &mut impl PropSink, id: PropertyId, value: Option<bool>) {
    if let Some(value) = value {
        sink.byte(id, u8::from(value));
    }
}

fn visit_u32(sink: &mut impl PropSink, id: PropertyId, value: Option<u32>) {
    if let Some(value) = value {
        sink.u32(id, value);
    }
}

fn visit_u16(sink: &mut impl PropSink, id: PropertyId, value: Option<u16>) {
    if let Some(value) = value {
        sink.u16(id, value);
    }
}

fn visit_bytes(sink: &mut impl PropSink, id: PropertyId, value: Option<&[u8]>) {
    if let Some(value) = value {
        sink.bytes(id, value);
    }
}

fn str_bytes(value: &Option<ByteString>) -> Option<&[u8]> {
    value.as_ref().map(|s| s.as_bytes().as_ref())
}

/// CONNECT properties (MQTT 5.0 3.1.2.11).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConnectProperties {
    /// Seconds the session outlives the connection; absent means 0.
    pub session_expiry_interval: Option<u32>,
    /// How many QoS 1/2 PUBLISH the client will process at once; absent means 65,535.
    pub receive_maximum: Option<NonZeroU16>,
    /// The largest packet the client accepts; absent means no limit beyond the protocol's.
    pub maximum_packet_size: Option<NonZeroU32>,
    /// Highest topic alias the client accepts from the server; absent means 0 (none).
    pub topic_alias_maximum: Option<u16>,
    /// Asks the server for Response Information in CONNACK.
    pub request_response_information: Option<bool>,
    /// Whether the server may send Reason String / User Properties on failures; absent: yes.
    pub request_problem_information: Option<bool>,
    pub user_properties: Vec<UserProperty>,
    /// Enhanced authentication method.
    pub authentication_method: Option<ByteString>,
    /// Enhanced authentication data; only with a method.
    pub authentication_data: Option<Bytes>,
}

impl PropertySet for ConnectProperties {
    const CONTEXT: Context = Context::Connect;

    fn apply(&mut self, property: Property) -> Result<(), DecodeError> {
        use Property as P;
        let id = property.id();
        match property {
            P::SessionExpiryInterval(v) => set_once(&mut self.session_expiry_interval, v, id),
            P::ReceiveMaximum(v) => set_once(&mut self.receive_maximum, v, id),
            P::MaximumPacketSize(v) => set_once(&mut self.maximum_packet_size, v, id),
            P::TopicAliasMaximum(v) => set_once(&mut self.topic_alias_maximum, v, id),
            P::RequestResponseInformation(v) => {
                set_once(&mut self.request_response_information, v, id)
            }
            P::RequestProblemInformation(v) => {
                set_once(&mut self.request_problem_information, v, id)
            }
            P::UserProperty(k, v) => {
                self.user_properties.push((k, v));
                Ok(())
            }
            P::AuthenticationMethod(v) => set_once(&mut self.authentication_method, v, id),
            P::AuthenticationData(v) => set_once(&mut self.authentication_data, v, id),
            other => Err(not_allowed(&other, Self::CONTEXT)),
        }
    }

    fn visit(&self, sink: &mut impl PropSink) {
        use PropertyId as Id;
        visit_u32(
            sink,
            Id::SessionExpiryInterval,
            self.session_expiry_interval,
        );
        visit_u16(
            sink,
            Id::ReceiveMaximum,
            self.receive_maximum.map(NonZeroU16::get),
        );
        visit_u32(
            sink,
            Id::MaximumPacketSize,
            self.maximum_packet_size.map(NonZeroU32::get),
        );
        visit_u16(sink, Id::TopicAliasMaximum, self.topic_alias_maximum);
        visit_flag(
            sink,
            Id::RequestResponseInformation,
            self.request_response_information,
        );
        visit_flag(
            sink,
            Id::RequestProblemInformation,
            self.request_problem_information,
        );
        visit_user(sink, &self.user_properties);
        visit_bytes(
            sink,
            Id::AuthenticationMethod,
            str_bytes(&self.authentication_method),
        );
        visit_bytes(
            sink,
            Id::AuthenticationData,
            self.authentication_data.as_deref(),
        );
    }
}

/// Will properties, in the CONNECT payload (MQTT 5.0 3.1.3.2).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WillProperties {
    /// Seconds the server waits after the connection closes before publishing the will.
    pub will_delay_interval: Option<u32>,
    /// `Some(true)` when the payload is UTF-8 text.
    pub payload_format_indicator: Option<bool>,
    /// Lifetime of the will message in seconds.
    pub message_expiry_interval: Option<u32>,
    pub content_type: Option<ByteString>,
    pub response_topic: Option<TopicName>,
    pub correlation_data: Option<Bytes>,
    pub user_properties: Vec<UserProperty>,
}

impl PropertySet for WillProperties {
    const CONTEXT: Context = Context::Will;

    fn apply(&mut self, property: Property) -> Result<(), DecodeError> {
        use Property as P;
        let id = property.id();
        match property {
            P::WillDelayInterval(v) => set_once(&mut self.will_delay_interval, v, id),
            P::PayloadFormatIndicator(v) => set_once(&mut self.payload_format_indicator, v, id),
            P::MessageExpiryInterval(v) => set_once(&mut self.message_expiry_interval, v, id),
            P::ContentType(v) => set_once(&mut self.content_type, v, id),
            P::ResponseTopic(v) => set_once(&mut self.response_topic, v, id),
            P::CorrelationData(v) => set_once(&mut self.correlation_data, v, id),
            P::UserProperty(k, v) => {
                self.user_properties.push((k, v));
                Ok(())
            }
            other => Err(not_allowed(&other, Self::CONTEXT)),
        }
    }

    fn visit(&self, sink: &mut impl PropSink) {
        use PropertyId as Id;
        visit_u32(sink, Id::WillDelayInterval, self.will_delay_interval);
        visit_flag(
            sink,
            Id::PayloadFormatIndicator,
            self.payload_format_indicator,
        );
        visit_u32(
            sink,
            Id::MessageExpiryInterval,
            self.message_expiry_interval,
        );
        visit_bytes(sink, Id::ContentType, str_bytes(&self.content_type));
        visit_bytes(
            sink,
            Id::ResponseTopic,
            self.response_topic.as_ref().map(|t| t.as_str().as_bytes()),
        );
        visit_bytes(sink, Id::CorrelationData, self.correlation_data.as_deref());
        visit_user(sink, &self.user_properties);
    }
}

/// CONNACK properties (MQTT 5.0 3.2.2.3): what the server supports and assigned.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConnAckProperties {
    pub session_expiry_interval: Option<u32>,
    pub receive_maximum: Option<NonZeroU16>,
    /// Absent means QoS 2 is supported; `Some(ExactlyOnce)` is therefore not written.
    pub maximum_qos: Option<QoS>,
    pub retain_available: Option<bool>,
    pub maximum_packet_size: Option<NonZeroU32>,
    pub assigned_client_identifier: Option<ByteString>,
    pub topic_alias_maximum: Option<u16>,
    pub reason_string: Option<ByteString>,
    pub user_properties: Vec<UserProperty>,
    pub wildcard_subscription_available: Option<bool>,
    pub subscription_identifiers_available: Option<bool>,
    pub shared_subscription_available: Option<bool>,
    pub server_keep_alive: Option<u16>,
    pub response_information: Option<ByteString>,
    pub server_reference: Option<ByteString>,
    pub authentication_method: Option<ByteString>,
    pub authentication_data: Option<Bytes>,
}

impl PropertySet for ConnAckProperties {
    const CONTEXT: Context = Context::ConnAck;

    fn apply(&mut self, property: Property) -> Result<(), DecodeError> {
        use Property as P;
        let id = property.id();
        match property {
            P::SessionExpiryInterval(v) => set_once(&mut self.session_expiry_interval, v, id),
            P::ReceiveMaximum(v) => set_once(&mut self.receive_maximum, v, id),
            P::MaximumQoS(v) => set_once(&mut self.maximum_qos, v, id),
            P::RetainAvailable(v) => set_once(&mut self.retain_available, v, id),
            P::MaximumPacketSize(v) => set_once(&mut self.maximum_packet_size, v, id),
            P::AssignedClientIdentifier(v) => set_once(&mut self.assigned_client_identifier, v, id),
            P::TopicAliasMaximum(v) => set_once(&mut self.topic_alias_maximum, v, id),
            P::ReasonString(v) => set_once(&mut self.reason_string, v, id),
            P::UserProperty(k, v) => {
                self.user_properties.push((k, v));
                Ok(())
            }
            P::WildcardSubscriptionAvailable(v) => {
                set_once(&mut self.wildcard_subscription_available, v, id)
            }
            P::SubscriptionIdentifierAvailable(v) => {
                set_once(&mut self.subscription_identifiers_available, v, id)
            }
            P::SharedSubscriptionAvailable(v) => {
                set_once(&mut self.shared_subscription_available, v, id)
            }
            P::ServerKeepAlive(v) => set_once(&mut self.server_keep_alive, v, id),
            P::ResponseInformation(v) => set_once(&mut self.response_information, v, id),
            P::ServerReference(v) => set_once(&mut self.server_reference, v, id),
            P::AuthenticationMethod(v) => set_once(&mut self.authentication_method, v, id),
            P::AuthenticationData(v) => set_once(&mut self.authentication_data, v, id),
            other => Err(not_allowed(&other, Self::CONTEXT)),
        }
    }

    fn visit(&self, sink: &mut impl PropSink) {
        use PropertyId as Id;
        visit_u32(
            sink,
            Id::SessionExpiryInterval,
            self.session_expiry_interval,
        );
        visit_u16(
            sink,
            Id::ReceiveMaximum,
            self.receive_maximum.map(NonZeroU16::get),
        );
        // Only 0 or 1 may be sent; QoS 2 is what absence means.
        if let Some(qos) = self.maximum_qos.filter(|q| *q != QoS::ExactlyOnce) {
            sink.byte(Id::MaximumQoS, qos as u8);
        }
        visit_flag(sink, Id::RetainAvailable, self.retain_available);
        visit_u32(
            sink,
            Id::MaximumPacketSize,
            self.maximum_packet_size.map(NonZeroU32::get),
        );
        visit_bytes(
            sink,
            Id::AssignedClientIdentifier,
            str_bytes(&self.assigned_client_identifier),
        );
        visit_u16(sink, Id::TopicAliasMaximum, self.topic_alias_maximum);
        visit_bytes(sink, Id::ReasonString, str_bytes(&self.reason_string));
        visit_user(sink, &self.user_properties);
        visit_flag(
            sink,
            Id::WildcardSubscriptionAvailable,
            self.wildcard_subscription_available,
        );
        visit_flag(
            sink,
            Id::SubscriptionIdentifierAvailable,
            self.subscription_identifiers_available,
        );
        visit_flag(
            sink,
            Id::SharedSubscriptionAvailable,
            self.shared_subscription_available,
        );
        visit_u16(sink, Id::ServerKeepAlive, self.server_keep_alive);
        visit_bytes(
            sink,
            Id::ResponseInformation,
            str_bytes(&self.response_information),
        );
        visit_bytes(sink, Id::ServerReference, str_bytes(&self.server_reference));
        visit_bytes(
            sink,
            Id::AuthenticationMethod,
            str_bytes(&self.authentication_method),
        );
        visit_bytes(
            sink,
            Id::AuthenticationData,
            self.authentication_data.as_deref(),
        );
    }
}

/// PUBLISH properties (MQTT 5.0 3.3.2.3).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PublishProperties {
    /// `Some(true)` when the payload is UTF-8 text.
    pub payload_format_indicator: Option<bool>,
    /// Remaining lifetime in seconds; a server forwards what is left [MQTT-3.3.2-6].
    pub message_expiry_interval: Option<u32>,
    pub topic_alias: Option<NonZeroU16>,
    pub response_topic: Option<TopicName>,
    pub correlation_data: Option<Bytes>,
    /// In order, as sent [MQTT-3.3.2-17] [MQTT-3.3.2-18].
    pub user_properties: Vec<UserProperty>,
    /// Server to client only: one per matching subscription that had one [MQTT-3.3.4-3].
    pub subscription_identifiers: Vec<NonZeroU32>,
    pub content_type: Option<ByteString>,
}

impl PropertySet for PublishProperties {
    const CONTEXT: Context = Context::Publish;

    fn apply(&mut self, property: Property) -> Result<(), DecodeError> {
        use Property as P;
        let id = property.id();
        match property {
            P::PayloadFormatIndicator(v) => set_once(&mut self.payload_format_indicator, v, id),
            P::MessageExpiryInterval(v) => set_once(&mut self.message_expiry_interval, v, id),
            P::TopicAlias(v) => set_once(&mut self.topic_alias, v, id),
            P::ResponseTopic(v) => set_once(&mut self.response_topic, v, id),
            P::CorrelationData(v) => set_once(&mut self.correlation_data, v, id),
            P::UserProperty(k, v) => {
                self.user_properties.push((k, v));
                Ok(())
            }
            P::SubscriptionIdentifier(v) => {
                self.subscription_identifiers.push(v);
                Ok(())
            }
            P::ContentType(v) => set_once(&mut self.content_type, v, id),
            other => Err(not_allowed(&other, Self::CONTEXT)),
        }
    }

    fn visit(&self, sink: &mut impl PropSink) {
        self.visit_hop(
            sink,
            &PerHop {
                message_expiry_interval: self.message_expiry_interval,
                topic_alias: self.topic_alias,
                subscription_identifiers: &self.subscription_identifiers,
            },
        );
    }
}

/// The PUBLISH properties that change from hop to hop: a server sets them for each client it
/// forwards a message to [MQTT-3.3.2-6] [MQTT-3.3.4-3], and a client's Topic Alias is its own.
#[derive(Debug, Clone, Copy, Default)]
pub struct PerHop<'a> {
    pub message_expiry_interval: Option<u32>,
    pub topic_alias: Option<NonZeroU16>,
    pub subscription_identifiers: &'a [NonZeroU32],
}

impl PerHop<'_> {
    fn is_empty(&self) -> bool {
        self.message_expiry_interval.is_none()
            && self.topic_alias.is_none()
            && self.subscription_identifiers.is_empty()
    }
}

impl PublishProperties {
    /// None set: what [`Default`] gives, for use in constants.
    pub const NONE: Self = Self {
        payload_format_indicator: None,
        message_expiry_interval: None,
        topic_alias: None,
        response_topic: None,
        correlation_data: None,
        user_properties: Vec::new(),
        subscription_identifiers: Vec::new(),
        content_type: None,
    };

    /// True when no property is set (cheaper than comparing with the default).
    pub fn is_none_set(&self) -> bool {
        self.only_per_hop()
            && self.message_expiry_interval.is_none()
            && self.topic_alias.is_none()
            && self.subscription_identifiers.is_empty()
    }

    /// True when no property but the per-hop ones is set: the common message, whose
    /// forwarded property block is then only what the hop adds.
    fn only_per_hop(&self) -> bool {
        self.payload_format_indicator.is_none()
            && self.response_topic.is_none()
            && self.correlation_data.is_none()
            && self.user_properties.is_empty()
            && self.content_type.is_none()
    }

    /// The encoded size without the length prefix, with `hop` in place of this struct's
    /// per-hop fields.
    pub(crate) fn forwarded_content_len(&self, hop: &PerHop<'_>) -> Result<usize, EncodeError> {
        if hop.is_empty() && self.only_per_hop() {
            return Ok(0);
        }
        let mut sink = LenSink::default();
        self.visit_hop(&mut sink, hop);
        match sink.too_long {
            Some(error) => Err(error),
            None => Ok(sink.len),
        }
    }

    /// Writes the length prefix and the properties, with `hop` in place of this struct's
    /// per-hop fields; `content_len` is what [`Self::forwarded_content_len`] returned.
    pub(crate) fn encode_forwarded(
        &self,
        hop: &PerHop<'_>,
        content_len: usize,
        buf: &mut impl BufMut,
    ) {
        put_varint(buf, content_len as u32);
        if content_len > 0 {
            self.visit_hop(&mut BufSink(buf), hop);
        }
    }

    fn visit_hop(&self, sink: &mut impl PropSink, hop: &PerHop<'_>) {
        use PropertyId as Id;
        visit_flag(
            sink,
            Id::PayloadFormatIndicator,
            self.payload_format_indicator,
        );
        visit_u32(sink, Id::MessageExpiryInterval, hop.message_expiry_interval);
        visit_u16(sink, Id::TopicAlias, hop.topic_alias.map(NonZeroU16::get));
        visit_bytes(
            sink,
            Id::ResponseTopic,
            self.response_topic.as_ref().map(|t| t.as_str().as_bytes()),
        );
        visit_bytes(sink, Id::CorrelationData, self.correlation_data.as_deref());
        visit_user(sink, &self.user_properties);
        for id_value in hop.subscription_identifiers {
            sink.varint(Id::SubscriptionIdentifier, id_value.get());
        }
        visit_bytes(sink, Id::ContentType, str_bytes(&self.content_type));
    }
}

/// Properties of PUBACK, PUBREC, PUBREL, PUBCOMP, SUBACK and UNSUBACK: the same two.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AckProperties {
    pub reason_string: Option<ByteString>,
    pub user_properties: Vec<UserProperty>,
}

impl AckProperties {
    fn apply_in(&mut self, property: Property, context: Context) -> Result<(), DecodeError> {
        let id = property.id();
        match property {
            Property::ReasonString(v) => set_once(&mut self.reason_string, v, id),
            Property::UserProperty(k, v) => {
                self.user_properties.push((k, v));
                Ok(())
            }
            other => Err(not_allowed(&other, context)),
        }
    }

    fn visit_all(&self, sink: &mut impl PropSink) {
        visit_bytes(
            sink,
            PropertyId::ReasonString,
            str_bytes(&self.reason_string),
        );
        visit_user(sink, &self.user_properties);
    }
}

impl PropertySet for AckProperties {
    // Table 2-2 gives SUBACK and UNSUBACK the same two properties as the PUBLISH responses.
    const CONTEXT: Context = Context::PubResponse;

    fn apply(&mut self, property: Property) -> Result<(), DecodeError> {
        self.apply_in(property, Self::CONTEXT)
    }

    fn visit(&self, sink: &mut impl PropSink) {
        self.visit_all(sink);
    }
}

/// SUBSCRIBE properties (MQTT 5.0 3.8.2.1).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SubscribeProperties {
    /// Identifier echoed in every PUBLISH this subscription matches; at most one.
    pub subscription_identifier: Option<NonZeroU32>,
    pub user_properties: Vec<UserProperty>,
}

impl PropertySet for SubscribeProperties {
    const CONTEXT: Context = Context::Subscribe;

    fn apply(&mut self, property: Property) -> Result<(), DecodeError> {
        let id = property.id();
        match property {
            Property::SubscriptionIdentifier(v) => {
                set_once(&mut self.subscription_identifier, v, id)
            }
            Property::UserProperty(k, v) => {
                self.user_properties.push((k, v));
                Ok(())
            }
            other => Err(not_allowed(&other, Self::CONTEXT)),
        }
    }

    fn visit(&self, sink: &mut impl PropSink) {
        if let Some(id) = self.subscription_identifier {
            sink.varint(PropertyId::SubscriptionIdentifier, id.get());
        }
        visit_user(sink, &self.user_properties);
    }
}

/// UNSUBSCRIBE properties (MQTT 5.0 3.10.2.1): user properties only.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UnsubscribeProperties {
    pub user_properties: Vec<UserProperty>,
}

impl PropertySet for UnsubscribeProperties {
    const CONTEXT: Context = Context::Unsubscribe;

    fn apply(&mut self, property: Property) -> Result<(), DecodeError> {
        match property {
            Property::UserProperty(k, v) => {
                self.user_properties.push((k, v));
                Ok(())
            }
            other => Err(not_allowed(&other, Self::CONTEXT)),
        }
    }

    fn visit(&self, sink: &mut impl PropSink) {
        visit_user(sink, &self.user_properties);
    }
}

/// DISCONNECT properties (MQTT 5.0 3.14.2.2).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DisconnectProperties {
    pub session_expiry_interval: Option<u32>,
    pub reason_string: Option<ByteString>,
    pub user_properties: Vec<UserProperty>,
    pub server_reference: Option<ByteString>,
}

impl PropertySet for DisconnectProperties {
    const CONTEXT: Context = Context::Disconnect;

    fn apply(&mut self, property: Property) -> Result<(), DecodeError> {
        use Property as P;
        let id = property.id();
        match property {
            P::SessionExpiryInterval(v) => set_once(&mut self.session_expiry_interval, v, id),
            P::ReasonString(v) => set_once(&mut self.reason_string, v, id),
            P::UserProperty(k, v) => {
                self.user_properties.push((k, v));
                Ok(())
            }
            P::ServerReference(v) => set_once(&mut self.server_reference, v, id),
            other => Err(not_allowed(&other, Self::CONTEXT)),
        }
    }

    fn visit(&self, sink: &mut impl PropSink) {
        use PropertyId as Id;
        visit_u32(
            sink,
            Id::SessionExpiryInterval,
            self.session_expiry_interval,
        );
        visit_bytes(sink, Id::ReasonString, str_bytes(&self.reason_string));
        visit_user(sink, &self.user_properties);
        visit_bytes(sink, Id::ServerReference, str_bytes(&self.server_reference));
    }
}

/// AUTH properties (MQTT 5.0 3.15.2.2).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthProperties {
    pub authentication_method: Option<ByteString>,
    pub authentication_data: Option<Bytes>,
    pub reason_string: Option<ByteString>,
    pub user_properties: Vec<UserProperty>,
}

impl PropertySet for AuthProperties {
    const CONTEXT: Context = Context::Auth;

    fn apply(&mut self, property: Property) -> Result<(), DecodeError> {
        use Property as P;
        let id = property.id();
        match property {
            P::AuthenticationMethod(v) => set_once(&mut self.authentication_method, v, id),
            P::AuthenticationData(v) => set_once(&mut self.authentication_data, v, id),
            P::ReasonString(v) => set_once(&mut self.reason_string, v, id),
            P::UserProperty(k, v) => {
                self.user_properties.push((k, v));
                Ok(())
            }
            other => Err(not_allowed(&other, Self::CONTEXT)),
        }
    }

    fn visit(&self, sink: &mut impl PropSink) {
        use PropertyId as Id;
        visit_bytes(
            sink,
            Id::AuthenticationMethod,
            str_bytes(&self.authentication_method),
        );
        visit_bytes(
            sink,
            Id::AuthenticationData,
            self.authentication_data.as_deref(),
        );
        visit_bytes(sink, Id::ReasonString, str_bytes(&self.reason_string));
        visit_user(sink, &self.user_properties);
    }
}

/// Decodes SUBACK / UNSUBACK properties with their own context name in errors.
pub(crate) fn decode_ack_in(
    reader: &mut Reader,
    context: Context,
) -> Result<AckProperties, DecodeError> {
    let len = reader.varint()? as usize;
    if len > reader.remaining() {
        return Err(DecodeError::PropertyLength);
    }
    let mut block = Reader::new(reader.take(len)?, reader.packet());
    let mut set = AckProperties::default();
    while !block.is_empty() {
        let property = Property::read(&mut block)?;
        if !property.id().allowed_in(context) {
            return Err(not_allowed(&property, context));
        }
        set.apply_in(property, context)?;
    }
    Ok(set)
}
