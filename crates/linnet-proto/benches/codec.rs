//! Decode and encode cost of the packets on the hot path: a small QoS 0 / QoS 1 PUBLISH and
//! a CONNECT, for MQTT 3.1.1 and 5.0. Run: `cargo bench -p linnet-proto --bench codec`.

use std::hint::black_box;
use std::num::NonZeroU16;

use bytes::BytesMut;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use linnet_proto::{Connect, Decoder, Packet, ProtocolVersion, Publish, QoS, TopicName, Will};

fn small_publish(qos: QoS) -> Publish {
    let id = (qos != QoS::AtMostOnce).then_some(NonZeroU16::MIN);
    Publish::new("sensors/kitchen/temperature", vec![b'x'; 64]).with_qos(qos, id)
}

fn connect(version: ProtocolVersion) -> Packet {
    let mut connect = Connect::new(version, "paho-python-8f3a2c1b");
    connect.username = Some("device".into());
    connect.password = Some("secret".into());
    let topic = TopicName::new("devices/paho-python-8f3a2c1b/status").expect("valid topic");
    connect.will = Some(Will::new(topic, "offline"));
    connect.into()
}

fn bench_codec(c: &mut Criterion) {
    for version in [ProtocolVersion::V3_1_1, ProtocolVersion::V5] {
        let cases = [
            (
                "publish_qos0_64B",
                Packet::Publish(small_publish(QoS::AtMostOnce)),
            ),
            (
                "publish_qos1_64B",
                Packet::Publish(small_publish(QoS::AtLeastOnce)),
            ),
            ("connect", connect(version)),
        ];
        for (name, packet) in cases {
            let mut wire = BytesMut::new();
            packet.encode(version, &mut wire).expect("encodes");
            let wire = wire.freeze();

            let mut group = c.benchmark_group(format!("v{version}/{name}"));
            group.throughput(Throughput::Elements(1));
            group.bench_function("decode", |b| {
                let mut decoder = Decoder::new(version);
                // The buffer is filled outside the timed part; decoding splits the frame off it
                // the way a connection's read buffer is consumed.
                b.iter_batched_ref(
                    || BytesMut::from(&wire[..]),
                    |buf| black_box(decoder.decode(buf).expect("decodes")),
                    BatchSize::SmallInput,
                )
            });
            group.bench_function("encode", |b| {
                let mut buf = BytesMut::with_capacity(1024);
                b.iter(|| {
                    buf.clear();
                    black_box(&packet)
                        .encode(version, &mut buf)
                        .expect("encodes");
                    black_box(buf.len())
                })
            });
            group.finish();
        }
    }
}

criterion_group!(benches, bench_codec);
criterion_main!(benches);
