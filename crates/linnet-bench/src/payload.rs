//! The measured payload ([`Stamp`]) and the pre-encoded PUBLISH a publisher stamps
//! ([`PublishTemplate`]).
//!
//! Layout, big-endian, at the start of the payload: 8-byte send timestamp (ns, see
//! [`now_ns`](crate::now_ns)), 4-byte publisher index, 8-byte sequence number; then zero
//! padding up to the payload size, which is at least [`STAMP_LEN`].

use bytes::BytesMut;
use linnet_proto::{EncodeError, Packet, PacketId, ProtocolVersion, Publish, QoS};

/// Bytes of the stamp at the start of each measured payload; the smallest payload size.
pub const STAMP_LEN: usize = 20;

/// What a measured payload carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    /// When the message was (scheduled to be) sent, ns on the [clock](crate::now_ns).
    pub sent_ns: u64,
    /// Which publisher sent it.
    pub publisher: u32,
    /// The publisher's sequence number, from 0.
    pub seq: u64,
}

impl Stamp {
    /// Writes the stamp into the first [`STAMP_LEN`] bytes of `payload`; `false` (writing
    /// nothing) if it is shorter.
    pub fn write(&self, payload: &mut [u8]) -> bool {
        let Some(head) = payload.get_mut(..STAMP_LEN) else {
            return false;
        };
        head[..8].copy_from_slice(&self.sent_ns.to_be_bytes());
        head[8..12].copy_from_slice(&self.publisher.to_be_bytes());
        head[12..20].copy_from_slice(&self.seq.to_be_bytes());
        true
    }

    /// A payload of `size` bytes (at least [`STAMP_LEN`]) carrying this stamp.
    pub fn to_payload(&self, size: usize) -> Vec<u8> {
        let mut payload = vec![0; size.max(STAMP_LEN)];
        self.write(&mut payload);
        payload
    }

    /// The stamp at the start of `payload`, or `None` if it is too short to carry one.
    pub fn read(payload: &[u8]) -> Option<Self> {
        let head = payload.get(..STAMP_LEN)?;
        let mut ns = [0; 8];
        let mut index = [0; 4];
        let mut seq = [0; 8];
        ns.copy_from_slice(&head[..8]);
        index.copy_from_slice(&head[8..12]);
        seq.copy_from_slice(&head[12..20]);
        Some(Self {
            sent_ns: u64::from_be_bytes(ns),
            publisher: u32::from_be_bytes(index),
            seq: u64::from_be_bytes(seq),
        })
    }
}

/// One PUBLISH encoded once by `linnet-proto`; each message copies it and patches the packet
/// identifier and the stamp in place, so the hot path does no encoding and no allocation.
#[derive(Debug, Clone)]
pub struct PublishTemplate {
    bytes: Vec<u8>,
    payload_at: usize,
    packet_id_at: Option<usize>,
}

impl PublishTemplate {
    /// The PUBLISH of `payload_size` bytes (raised to [`STAMP_LEN`]) to `topic` at `qos`.
    pub fn new(
        version: ProtocolVersion,
        topic: &str,
        qos: QoS,
        payload_size: usize,
    ) -> Result<Self, EncodeError> {
        let size = payload_size.max(STAMP_LEN);
        let packet_id = (qos != QoS::AtMostOnce).then_some(PacketId::MAX);
        let publish = Publish::new(topic.to_owned(), vec![0u8; size]).with_qos(qos, packet_id);
        let mut buf = BytesMut::new();
        Packet::Publish(publish).encode(version, &mut buf)?;
        let payload_at = buf.len() - size;
        // Before the payload: [packet id (2)] [v5: property length 0 (1 byte)].
        let properties = usize::from(version.is_v5());
        let packet_id_at = packet_id.map(|_| payload_at - properties - 2);
        Ok(Self {
            bytes: buf.to_vec(),
            payload_at,
            packet_id_at,
        })
    }

    /// Bytes of one encoded message.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Never true: a PUBLISH has at least a fixed header.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// Appends one message with `stamp` (and `packet_id` for QoS 1/2) to `out`.
    pub fn append(&self, out: &mut BytesMut, packet_id: Option<PacketId>, stamp: &Stamp) {
        let start = out.len();
        out.extend_from_slice(&self.bytes);
        let message = &mut out[start..];
        if let (Some(at), Some(id)) = (self.packet_id_at, packet_id) {
            message[at..at + 2].copy_from_slice(&id.get().to_be_bytes());
        }
        stamp.write(&mut message[self.payload_at..]);
    }
}
