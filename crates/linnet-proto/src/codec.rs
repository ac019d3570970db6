//! Framing and the primitive data types of MQTT section 1.5: variable byte integers, two-byte
//! integers, UTF-8 strings and binary data, read from a zero-copy [`Reader`] and written into
//! any [`BufMut`]; and the streaming [`Decoder`] that cuts packets out of a `BytesMut`.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use bytestring::ByteString;

use crate::error::{DecodeError, EncodeError};
use crate::packet::Packet;
use crate::types::{PacketType, ProtocolVersion};

/// The largest packet the protocol can frame: a 4-byte remaining length of 268,435,455 plus
/// the fixed header (MQTT 5.0 2.1.4).
pub const MAX_PACKET_SIZE: u32 = 268_435_455 + 5;

/// Most the decoder reserves ahead for a packet whose body is still arriving.
const RESERVE_LIMIT: usize = 64 * 1024;

/// Largest value a variable byte integer can hold.
pub const MAX_VARINT: u32 = 268_435_455;

/// Bytes a variable byte integer takes for `value`.
pub const fn varint_len(value: u32) -> usize {
    match value {
        0..=127 => 1,
        128..=16_383 => 2,
        16_384..=2_097_151 => 3,
        _ => 4,
    }
}

/// Writes `value` (at most [`MAX_VARINT`]) as a variable byte integer.
pub fn put_varint(buf: &mut impl BufMut, mut value: u32) {
    debug_assert!(value <= MAX_VARINT);
    loop {
        let mut byte = (value % 128) as u8;
        value /= 128;
        if value > 0 {
            byte |= 0x80;
        }
        buf.put_u8(byte);
        if value == 0 {
            break;
        }
    }
}

/// Reads a variable byte integer from the start of `bytes`: `Ok(None)` when more bytes are
/// needed, otherwise the value and how many bytes it took [MQTT-1.5.5-1].
pub fn read_varint(bytes: &[u8]) -> Result<Option<(u32, usize)>, DecodeError> {
    let mut value: u32 = 0;
    for (index, &byte) in bytes.iter().enumerate() {
        if index == 4 {
            return Err(DecodeError::VarIntTooLong);
        }
        value |= u32::from(byte & 0x7F) << (7 * index);
        if byte & 0x80 == 0 {
            let used = index + 1;
            // A trailing zero byte after the first means a longer-than-needed encoding.
            if used > 1 && byte == 0 {
                return Err(DecodeError::VarIntNotMinimal);
            }
            return Ok(Some((value, used)));
        }
    }
    if bytes.len() >= 4 {
        return Err(DecodeError::VarIntTooLong);
    }
    Ok(None)
}

/// Writes a length-prefixed UTF-8 string; the caller has checked the length.
pub fn put_str(buf: &mut impl BufMut, value: &str) {
    put_binary(buf, value.as_bytes());
}

/// Writes length-prefixed binary data; the caller has checked the length.
pub fn put_binary(buf: &mut impl BufMut, value: &[u8]) {
    debug_assert!(value.len() <= usize::from(u16::MAX));
    buf.put_u16(value.len() as u16);
    buf.put_slice(value);
}

/// Errors unless `value` fits a two-byte length prefix.
pub fn check_len(field: &'static str, value: &[u8]) -> Result<(), EncodeError> {
    if value.len() > usize::from(u16::MAX) {
        Err(EncodeError::FieldTooLong {
            field,
            len: value.len(),
        })
    } else {
        Ok(())
    }
}

/// A cursor over one packet's body. Strings and binary fields are zero-copy slices of it.
#[derive(Debug)]
pub struct Reader {
    bytes: Bytes,
    packet: PacketType,
}

impl Reader {
    /// A reader over `bytes`, the body of a packet of type `packet` (named in errors).
    pub fn new(bytes: Bytes, packet: PacketType) -> Self {
        Self { bytes, packet }
    }

    /// The packet type this reader decodes, for error messages.
    pub fn packet(&self) -> PacketType {
        self.packet
    }

    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.bytes.len()
    }

    /// True when every byte has been read.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    fn truncated(&self) -> DecodeError {
        DecodeError::Truncated {
            packet: self.packet,
        }
    }

    /// Reads one byte.
    pub fn u8(&mut self) -> Result<u8, DecodeError> {
        if self.bytes.is_empty() {
            return Err(self.truncated());
        }
        Ok(self.bytes.get_u8())
    }

    /// Reads a big-endian two-byte integer.
    pub fn u16(&mut self) -> Result<u16, DecodeError> {
        if self.bytes.len() < 2 {
            return Err(self.truncated());
        }
        Ok(self.bytes.get_u16())
    }

    /// Reads a big-endian four-byte integer.
    pub fn u32(&mut self) -> Result<u32, DecodeError> {
        if self.bytes.len() < 4 {
            return Err(self.truncated());
        }
        Ok(self.bytes.get_u32())
    }

    /// Reads a variable byte integer.
    pub fn varint(&mut self) -> Result<u32, DecodeError> {
        match read_varint(&self.bytes)? {
            Some((value, used)) => {
                self.bytes.advance(used);
                Ok(value)
            }
            None => Err(self.truncated()),
        }
    }

    /// Takes the next `len` bytes.
    pub fn take(&mut self, len: usize) -> Result<Bytes, DecodeError> {
        if self.bytes.len() < len {
            return Err(self.truncated());
        }
        Ok(self.bytes.split_to(len))
    }

    /// Takes everything left (the payload).
    pub fn rest(&mut self) -> Bytes {
        std::mem::take(&mut self.bytes)
    }

    /// Reads length-prefixed binary data.
    pub fn binary(&mut self) -> Result<Bytes, DecodeError> {
        let len = self.u16()?;
        self.take(usize::from(len))
    }

    /// Reads a length-prefixed UTF-8 string: well formed, no U+0000 [MQTT-1.5.4-1]
    /// [MQTT-1.5.4-2]. Rust's UTF-8 check also rejects the surrogates U+D800..U+DFFF.
    pub fn string(&mut self) -> Result<ByteString, DecodeError> {
        let bytes = self.binary()?;
        if bytes.contains(&0) {
            return Err(DecodeError::NullCharacter);
        }
        ByteString::try_from(bytes).map_err(|_| DecodeError::InvalidUtf8)
    }

    /// Errors if bytes are left over.
    pub fn finish(&self) -> Result<(), DecodeError> {
        if self.bytes.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::TrailingBytes {
                packet: self.packet,
                extra: self.bytes.len(),
            })
        }
    }
}

/// A streaming packet decoder: feed it a growing `BytesMut`, take packets out.
///
/// It knows the protocol version of the connection (packets other than CONNECT are laid out
/// differently in 5.0) and adopts the version of any CONNECT it decodes, so a server needs no
/// extra step. The maximum packet size is checked from the fixed header, before the body has
/// arrived or any memory is reserved for it.
#[derive(Debug, Clone)]
pub struct Decoder {
    version: ProtocolVersion,
    max_packet_size: u32,
}

impl Default for Decoder {
    fn default() -> Self {
        Self::new(ProtocolVersion::V3_1_1)
    }
}

impl Decoder {
    /// A decoder for `version` that accepts packets up to [`MAX_PACKET_SIZE`].
    pub fn new(version: ProtocolVersion) -> Self {
        Self {
            version,
            max_packet_size: MAX_PACKET_SIZE,
        }
    }

    /// Limits the total size (fixed header included) of the packets accepted.
    pub fn with_max_packet_size(mut self, max: u32) -> Self {
        self.max_packet_size = max;
        self
    }

    /// Changes the limit on the total packet size.
    pub fn set_max_packet_size(&mut self, max: u32) {
        self.max_packet_size = max;
    }

    /// The limit on the total packet size.
    pub fn max_packet_size(&self) -> u32 {
        self.max_packet_size
    }

    /// The protocol version packets are decoded as.
    pub fn version(&self) -> ProtocolVersion {
        self.version
    }

    /// Decodes later packets as `version` (a client calls this when it sends CONNECT).
    pub fn set_version(&mut self, version: ProtocolVersion) {
        self.version = version;
    }

    /// Takes the next whole packet off the front of `buf`. `Ok(None)` means more bytes are
    /// needed; `buf` is left untouched then, apart from capacity reserved for the packet's
    /// announced size (at most 64 KiB at a time). After an error the connection must be closed: the stream cannot be
    /// resynchronised.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Packet>, DecodeError> {
        let Some((first, remaining_len, header_len)) = self.peek_header(buf)? else {
            return Ok(None);
        };
        let total = header_len + remaining_len;
        if buf.len() < total {
            // Room for the rest, but not all at once for a large announced size: memory
            // follows the bytes that actually arrive.
            buf.reserve((total - buf.len()).min(RESERVE_LIMIT));
            return Ok(None);
        }
        let mut frame = buf.split_to(total).freeze();
        frame.advance(header_len);
        let packet = Packet::decode_body(first, frame, self.version)?;
        if let Packet::Connect(connect) = &packet {
            self.version = connect.protocol;
        }
        Ok(Some(packet))
    }

    /// Reads the fixed header: `(first byte, remaining length, header length)`, or `None` if
    /// it has not fully arrived. Checks the size limit as soon as the length is known.
    fn peek_header(&self, buf: &[u8]) -> Result<Option<(u8, usize, usize)>, DecodeError> {
        let Some(&first) = buf.first() else {
            return Ok(None);
        };
        let Some((remaining_len, len_bytes)) = read_varint(&buf[1..])? else {
            return Ok(None);
        };
        let header_len = 1 + len_bytes;
        let size = header_len + remaining_len as usize;
        if size > self.max_packet_size as usize {
            return Err(DecodeError::PacketTooLarge {
                size,
                max: self.max_packet_size,
            });
        }
        Ok(Some((first, remaining_len as usize, header_len)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varint_boundaries_round_trip() {
        // The boundary values of MQTT 5.0 table 1-1.
        for (value, len) in [
            (0, 1),
            (127, 1),
            (128, 2),
            (16_383, 2),
            (16_384, 3),
            (2_097_151, 3),
            (2_097_152, 4),
            (MAX_VARINT, 4),
        ] {
            let mut buf = Vec::new();
            put_varint(&mut buf, value);
            assert_eq!(buf.len(), len, "{value}");
            assert_eq!(varint_len(value), len);
            assert_eq!(read_varint(&buf).unwrap(), Some((value, len)));
        }
    }

    #[test]
    fn varint_byte_vectors() {
        assert_eq!(read_varint(&[0xC1, 0x02]).unwrap(), Some((321, 2)));
        assert_eq!(
            read_varint(&[0xFF, 0xFF, 0xFF, 0x7F]).unwrap(),
            Some((MAX_VARINT, 4))
        );
        assert_eq!(read_varint(&[0x80]).unwrap(), None);
        assert_eq!(read_varint(&[]).unwrap(), None);
    }

    #[test]
    fn spec_1_5_5_1_varint_longer_than_four_bytes_is_malformed() {
        assert_eq!(
            read_varint(&[0xFF, 0xFF, 0xFF, 0xFF, 0x01]),
            Err(DecodeError::VarIntTooLong)
        );
        assert_eq!(
            read_varint(&[0x80, 0x80, 0x80, 0x80]),
            Err(DecodeError::VarIntTooLong)
        );
    }

    #[test]
    fn mqtt_1_5_5_1_varint_must_use_minimum_bytes() {
        assert_eq!(
            read_varint(&[0x80, 0x00]),
            Err(DecodeError::VarIntNotMinimal)
        );
        assert_eq!(
            read_varint(&[0xFF, 0x80, 0x00]),
            Err(DecodeError::VarIntNotMinimal)
        );
    }

    #[test]
    fn spec_1_5_4_strings_reject_nul_and_invalid_utf8() {
        // covers: [MQTT-1.5.4-1] [MQTT-1.5.4-2]
        let mut reader = Reader::new(Bytes::from_static(b"\x00\x03a\x00b"), PacketType::Publish);
        assert_eq!(reader.string(), Err(DecodeError::NullCharacter));
        // An encoded surrogate U+D800 is not well-formed UTF-8 [MQTT-1.5.4-1].
        let mut reader = Reader::new(
            Bytes::from_static(b"\x00\x03\xED\xA0\x80"),
            PacketType::Publish,
        );
        assert_eq!(reader.string(), Err(DecodeError::InvalidUtf8));
        let mut reader = Reader::new(Bytes::from_static(b"\x00\x05ab"), PacketType::Publish);
        assert_eq!(
            reader.string(),
            Err(DecodeError::Truncated {
                packet: PacketType::Publish
            })
        );
    }

    #[test]
    fn mqtt_1_5_4_3_bom_is_kept_not_stripped() {
        // covers: [v311:MQTT-1.5.3-3]
        let mut reader = Reader::new(
            Bytes::from_static(b"\x00\x04\xEF\xBB\xBFA"),
            PacketType::Publish,
        );
        assert_eq!(&*reader.string().unwrap(), "\u{FEFF}A");
    }

    #[test]
    fn decoder_waits_for_whole_packet_and_enforces_size_before_body() {
        let mut decoder = Decoder::default().with_max_packet_size(10);
        let mut buf = BytesMut::from(&[0xC0][..]);
        assert_eq!(decoder.decode(&mut buf).unwrap(), None);
        // Announces 200 bytes: rejected from the header alone.
        let mut buf = BytesMut::from(&[0x30, 0xC8, 0x01][..]);
        assert_eq!(
            decoder.decode(&mut buf),
            Err(DecodeError::PacketTooLarge { size: 203, max: 10 })
        );
    }
}
