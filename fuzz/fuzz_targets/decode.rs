//! Fuzz target: the streaming [`Decoder`] on arbitrary bytes, with a round-trip oracle.
//!
//! The first input byte picks the version the connection starts in (3.1, 3.1.1 or 5.0, by the
//! byte modulo 3); the rest is the byte stream, decoded packet by packet until the decoder
//! wants more bytes or reports an error. What this proves, for every input it runs:
//!
//! - decoding never panics (nor overflows, nor reads out of bounds under the sanitizer);
//! - "need more bytes" leaves the buffer as it was;
//! - every packet the decoder accepts re-encodes, in the version it was read as, to exactly
//!   `encoded_size` bytes, which decode back to the equal packet: the decoder accepts nothing
//!   the encoder cannot reproduce, and the encoder writes nothing the decoder reads otherwise.
#![no_main]

use libfuzzer_sys::fuzz_target;
use linnet_proto::{BytesMut, Decoder, Packet, ProtocolVersion};

fuzz_target!(|data: &[u8]| {
    let Some((&selector, stream)) = data.split_first() else {
        return;
    };
    let version = match selector % 3 {
        0 => ProtocolVersion::V3_1,
        1 => ProtocolVersion::V3_1_1,
        _ => ProtocolVersion::V5,
    };
    let mut decoder = Decoder::new(version);
    let mut buf = BytesMut::from(stream);
    loop {
        // A CONNECT switches the decoder to its own version; everything else is read as this.
        let read_as = decoder.version();
        let before = buf.clone();
        match decoder.decode(&mut buf) {
            Ok(Some(packet)) => {
                let consumed = &before[..before.len() - buf.len()];
                assert_round_trips(read_as, &packet, consumed);
            }
            Ok(None) => {
                assert_eq!(buf, before, "Ok(None) changed the buffer");
                return;
            }
            Err(_) => return,
        }
    }
});

/// Encodes `packet` in `version` and decodes the result, which must be the same packet.
fn assert_round_trips(version: ProtocolVersion, packet: &Packet, read_from: &[u8]) {
    let mut wire = BytesMut::new();
    let written = match packet.encode(version, &mut wire) {
        Ok(written) => written,
        Err(e) => panic!("decoded {packet:?} from {read_from:02x?} but it does not encode: {e}"),
    };
    assert_eq!(written, wire.len(), "encode reported the wrong size");
    assert_eq!(
        packet.encoded_size(version),
        Ok(written),
        "encoded_size is wrong"
    );
    let encoded = wire.to_vec();
    let again = Decoder::new(version).decode(&mut wire);
    assert_eq!(
        again,
        Ok(Some(packet.clone())),
        "MQTT {version}: read {read_from:02x?}, re-encoded as {encoded:02x?}"
    );
    assert!(wire.is_empty(), "re-encoding decoded with bytes to spare");
}
