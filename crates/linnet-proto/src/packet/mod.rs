//! The one [`Packet`] model for MQTT 3.1, 3.1.1 and 5.0, and the dispatch from the fixed
//! header to each packet's file. Every file under `packet/` owns one packet kind: its struct,
//! its decode, its encode and its tests. Fields that exist only in 5.0 (properties, most
//! reason codes) are simply not written for, and default when read from, older versions.

mod auth;
mod connack;
mod connect;
mod disconnect;
mod publish;
mod pubresp;
mod suback;
mod subscribe;
mod unsuback;
mod unsubscribe;

pub use auth::Auth;
pub use connack::ConnAck;
pub use connect::{Connect, Will};
pub use disconnect::Disconnect;
pub use publish::{Forward, Publish};
pub use pubresp::PubResponse;
pub use suback::SubAck;
pub use subscribe::{Subscribe, Subscription, SubscriptionOptions};
pub use unsuback::UnsubAck;
pub use unsubscribe::Unsubscribe;

use bytes::{BufMut, Bytes, BytesMut};

use crate::codec::{put_varint, varint_len, Reader, MAX_VARINT};
use crate::error::{DecodeError, EncodeError};
use crate::types::{PacketType, ProtocolVersion};

/// Any MQTT control packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packet {
    /// Boxed: large and once per connection, so it should not size the whole enum.
    Connect(Box<Connect>),
    ConnAck(ConnAck),
    Publish(Publish),
    PubAck(PubResponse),
    PubRec(PubResponse),
    PubRel(PubResponse),
    PubComp(PubResponse),
    Subscribe(Subscribe),
    SubAck(SubAck),
    Unsubscribe(Unsubscribe),
    UnsubAck(UnsubAck),
    PingReq,
    PingResp,
    Disconnect(Disconnect),
    Auth(Auth),
}

impl Packet {
    /// The control packet type.
    pub fn packet_type(&self) -> PacketType {
        match self {
            Self::Connect(_) => PacketType::Connect,
            Self::ConnAck(_) => PacketType::ConnAck,
            Self::Publish(_) => PacketType::Publish,
            Self::PubAck(_) => PacketType::PubAck,
            Self::PubRec(_) => PacketType::PubRec,
            Self::PubRel(_) => PacketType::PubRel,
            Self::PubComp(_) => PacketType::PubComp,
            Self::Subscribe(_) => PacketType::Subscribe,
            Self::SubAck(_) => PacketType::SubAck,
            Self::Unsubscribe(_) => PacketType::Unsubscribe,
            Self::UnsubAck(_) => PacketType::UnsubAck,
            Self::PingReq => PacketType::PingReq,
            Self::PingResp => PacketType::PingResp,
            Self::Disconnect(_) => PacketType::Disconnect,
            Self::Auth(_) => PacketType::Auth,
        }
    }

    /// Decodes a packet body. `first` is the fixed header's first byte and `body` exactly the
    /// remaining length's bytes. CONNECT carries its own version; every other packet is read
    /// as `version`.
    #[inline]
    pub fn decode_body(
        first: u8,
        body: Bytes,
        version: ProtocolVersion,
    ) -> Result<Self, DecodeError> {
        let nibble = first >> 4;
        let flags = first & 0x0F;
        let packet_type = match PacketType::from_nibble(nibble) {
            Some(PacketType::Auth) if !version.is_v5() => None,
            other => other,
        }
        .ok_or(DecodeError::ReservedPacketType(nibble))?;
        if packet_type != PacketType::Publish && flags != packet_type.fixed_flags() {
            return Err(DecodeError::InvalidHeaderFlags {
                packet: packet_type,
                flags,
            });
        }
        let mut reader = Reader::new(body, packet_type);
        let packet = match packet_type {
            PacketType::Connect => Self::Connect(Box::new(Connect::decode(&mut reader)?)),
            PacketType::ConnAck => Self::ConnAck(ConnAck::decode(&mut reader, version)?),
            PacketType::Publish => Self::Publish(Publish::decode(flags, &mut reader, version)?),
            PacketType::PubAck => Self::PubAck(PubResponse::decode(&mut reader, version)?),
            PacketType::PubRec => Self::PubRec(PubResponse::decode(&mut reader, version)?),
            PacketType::PubRel => Self::PubRel(PubResponse::decode(&mut reader, version)?),
            PacketType::PubComp => Self::PubComp(PubResponse::decode(&mut reader, version)?),
            PacketType::Subscribe => Self::Subscribe(Subscribe::decode(&mut reader, version)?),
            PacketType::SubAck => Self::SubAck(SubAck::decode(&mut reader, version)?),
            PacketType::Unsubscribe => {
                Self::Unsubscribe(Unsubscribe::decode(&mut reader, version)?)
            }
            PacketType::UnsubAck => Self::UnsubAck(UnsubAck::decode(&mut reader, version)?),
            PacketType::PingReq => Self::PingReq,
            PacketType::PingResp => Self::PingResp,
            PacketType::Disconnect => Self::Disconnect(Disconnect::decode(&mut reader, version)?),
            PacketType::Auth => Self::Auth(Auth::decode(&mut reader)?),
        };
        reader.finish()?;
        Ok(packet)
    }

    /// The remaining length this packet encodes to in `version`.
    fn remaining_len(&self, version: ProtocolVersion) -> Result<usize, EncodeError> {
        match self {
            Self::Connect(p) => p.remaining_len(),
            Self::ConnAck(p) => p.remaining_len(version),
            Self::Publish(p) => p.remaining_len(version),
            Self::PubAck(p) | Self::PubRec(p) | Self::PubRel(p) | Self::PubComp(p) => {
                p.remaining_len(version)
            }
            Self::Subscribe(p) => p.remaining_len(version),
            Self::SubAck(p) => p.remaining_len(version),
            Self::Unsubscribe(p) => p.remaining_len(version),
            Self::UnsubAck(p) => p.remaining_len(version),
            Self::PingReq | Self::PingResp => Ok(0),
            Self::Disconnect(p) => p.remaining_len(version),
            Self::Auth(p) => {
                if !version.is_v5() {
                    return Err(EncodeError::UnsupportedInVersion {
                        packet: PacketType::Auth,
                        version,
                    });
                }
                p.remaining_len()
            }
        }
    }

    /// The whole encoded size in `version`, fixed header included: what a sender compares
    /// with the peer's Maximum Packet Size.
    pub fn encoded_size(&self, version: ProtocolVersion) -> Result<usize, EncodeError> {
        let remaining = self.remaining_len(version)?;
        frame_size(remaining)
    }

    /// Appends the packet, encoded for `version`, to `buf`; returns the bytes written.
    pub fn encode(
        &self,
        version: ProtocolVersion,
        buf: &mut impl BufMut,
    ) -> Result<usize, EncodeError> {
        self.encode_limited(version, u32::MAX, buf, |_, _| {})
    }

    /// Like [`Packet::encode`], but refuses (writing nothing) if the packet would exceed
    /// `max_size` bytes, the peer's Maximum Packet Size [MQTT-3.1.2-24].
    pub fn encode_within(
        &self,
        version: ProtocolVersion,
        max_size: u32,
        buf: &mut impl BufMut,
    ) -> Result<usize, EncodeError> {
        self.encode_limited(version, max_size, buf, |_, _| {})
    }

    /// Like [`Packet::encode_within`] into a `BytesMut`, which is grown once to the exact
    /// size before writing (instead of step by step as each field is put): the broker's
    /// per-message path.
    pub fn encode_within_bytes(
        &self,
        version: ProtocolVersion,
        max_size: u32,
        buf: &mut BytesMut,
    ) -> Result<usize, EncodeError> {
        self.encode_limited(version, max_size, buf, |buf, size| buf.reserve(size))
    }

    /// Measures once, checks the limit, lets `reserve` prepare `buf` for the size, then
    /// writes.
    fn encode_limited<B: BufMut>(
        &self,
        version: ProtocolVersion,
        max_size: u32,
        buf: &mut B,
        reserve: impl FnOnce(&mut B, usize),
    ) -> Result<usize, EncodeError> {
        let remaining = self.remaining_len(version)?;
        let size = frame_size(remaining)?;
        if size > max_size as usize {
            return Err(EncodeError::PacketTooLarge {
                size,
                max: max_size,
            });
        }
        reserve(buf, size);
        let flags = match self {
            Self::Publish(p) => p.flags(),
            other => other.packet_type().fixed_flags(),
        };
        buf.put_u8(((self.packet_type() as u8) << 4) | flags);
        put_varint(buf, remaining as u32);
        match self {
            Self::Connect(p) => p.encode_body(buf),
            Self::ConnAck(p) => p.encode_body(version, buf),
            Self::Publish(p) => p.encode_body(version, buf),
            Self::PubAck(p) | Self::PubRec(p) | Self::PubRel(p) | Self::PubComp(p) => {
                p.encode_body(version, buf)
            }
            Self::Subscribe(p) => p.encode_body(version, buf),
            Self::SubAck(p) => p.encode_body(version, buf),
            Self::Unsubscribe(p) => p.encode_body(version, buf),
            Self::UnsubAck(p) => p.encode_body(version, buf),
            Self::PingReq | Self::PingResp => {}
            Self::Disconnect(p) => p.encode_body(version, buf),
            Self::Auth(p) => p.encode_body(buf),
        }
        Ok(size)
    }
}

/// Total size for a remaining length, or an error past the protocol's limit.
fn frame_size(remaining: usize) -> Result<usize, EncodeError> {
    if remaining > MAX_VARINT as usize {
        return Err(EncodeError::PacketTooLarge {
            size: remaining + 5,
            max: crate::codec::MAX_PACKET_SIZE,
        });
    }
    Ok(1 + varint_len(remaining as u32) + remaining)
}

impl From<Connect> for Packet {
    fn from(p: Connect) -> Self {
        Self::Connect(Box::new(p))
    }
}

impl From<ConnAck> for Packet {
    fn from(p: ConnAck) -> Self {
        Self::ConnAck(p)
    }
}

impl From<Publish> for Packet {
    fn from(p: Publish) -> Self {
        Self::Publish(p)
    }
}

impl From<Subscribe> for Packet {
    fn from(p: Subscribe) -> Self {
        Self::Subscribe(p)
    }
}

impl From<SubAck> for Packet {
    fn from(p: SubAck) -> Self {
        Self::SubAck(p)
    }
}

impl From<Unsubscribe> for Packet {
    fn from(p: Unsubscribe) -> Self {
        Self::Unsubscribe(p)
    }
}

impl From<UnsubAck> for Packet {
    fn from(p: UnsubAck) -> Self {
        Self::UnsubAck(p)
    }
}

impl From<Disconnect> for Packet {
    fn from(p: Disconnect) -> Self {
        Self::Disconnect(p)
    }
}

impl From<Auth> for Packet {
    fn from(p: Auth) -> Self {
        Self::Auth(p)
    }
}

#[cfg(test)]
pub(crate) mod test_support {
    //! Helpers the packet files share in their tests.
    use bytes::BytesMut;

    use super::Packet;
    use crate::codec::Decoder;
    use crate::types::ProtocolVersion;

    /// Encodes `packet`, checks it equals `wire` byte for byte and decodes back to `packet`.
    pub(crate) fn assert_wire(packet: &Packet, version: ProtocolVersion, wire: &[u8]) {
        let mut buf = BytesMut::new();
        let written = packet.encode(version, &mut buf).unwrap();
        assert_eq!(&buf[..], wire, "encoding of {packet:?}");
        assert_eq!(written, wire.len());
        assert_eq!(packet.encoded_size(version).unwrap(), wire.len());
        assert_eq!(decode(version, wire).unwrap(), *packet);
    }

    /// [`decode`], after checking that a one-byte remaining length in `wire` matches its
    /// body, so that no rejection in a test comes from a miscounted vector.
    pub(crate) fn checked_decode(
        version: ProtocolVersion,
        wire: &[u8],
    ) -> Result<Packet, crate::DecodeError> {
        if wire[1] < 0x80 {
            assert_eq!(usize::from(wire[1]), wire.len() - 2, "test vector length");
        }
        decode(version, wire)
    }

    /// Asserts `wire` is rejected with `error`, and that `error` maps to `reason`.
    pub(crate) fn assert_rejected(
        version: ProtocolVersion,
        wire: &[u8],
        error: crate::DecodeError,
        reason: crate::ReasonCode,
    ) {
        assert_eq!(checked_decode(version, wire), Err(error.clone()));
        assert_eq!(error.reason_code(), reason, "{error}");
    }

    /// Decodes one packet that must use all of `wire`.
    pub(crate) fn decode(
        version: ProtocolVersion,
        wire: &[u8],
    ) -> Result<Packet, crate::DecodeError> {
        let mut buf = BytesMut::from(wire);
        let packet = Decoder::new(version)
            .decode(&mut buf)?
            .expect("a whole packet");
        assert!(buf.is_empty(), "decoder left {} bytes", buf.len());
        Ok(packet)
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::{assert_wire, decode};
    use super::*;
    use crate::reason::ReasonCode;

    const VERSIONS: [ProtocolVersion; 3] = [
        ProtocolVersion::V3_1,
        ProtocolVersion::V3_1_1,
        ProtocolVersion::V5,
    ];

    #[test]
    fn spec_3_12_pingreq_and_3_13_pingresp() {
        for version in VERSIONS {
            assert_wire(&Packet::PingReq, version, &[0xC0, 0x00]);
            assert_wire(&Packet::PingResp, version, &[0xD0, 0x00]);
        }
    }

    #[test]
    fn ping_with_a_body_is_malformed() {
        for (first, packet) in [(0xC0, PacketType::PingReq), (0xD0, PacketType::PingResp)] {
            let error = DecodeError::TrailingBytes { packet, extra: 1 };
            for version in VERSIONS {
                assert_eq!(decode(version, &[first, 0x01, 0x00]), Err(error.clone()));
            }
            assert_eq!(error.reason_code(), ReasonCode::MALFORMED_PACKET);
        }
    }

    #[test]
    fn mqtt_2_1_3_1_reserved_header_flags_on_ping() {
        for (first, packet) in [(0xC1, PacketType::PingReq), (0xD8, PacketType::PingResp)] {
            let error = DecodeError::InvalidHeaderFlags {
                packet,
                flags: first & 0x0F,
            };
            assert_eq!(
                decode(ProtocolVersion::V5, &[first, 0x00]),
                Err(error.clone())
            );
            assert_eq!(error.reason_code(), ReasonCode::MALFORMED_PACKET);
        }
    }

    #[test]
    fn spec_2_1_2_packet_type_0_is_reserved() {
        for version in VERSIONS {
            assert_eq!(
                decode(version, &[0x00, 0x00]),
                Err(DecodeError::ReservedPacketType(0))
            );
        }
        assert_eq!(
            DecodeError::ReservedPacketType(0).reason_code(),
            ReasonCode::MALFORMED_PACKET
        );
    }
}
