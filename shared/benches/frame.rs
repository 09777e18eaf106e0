//! The frame codec: encoding page data (zero-copy and plain), decoding messages, and reading
//! frames from a stream. `cargo bench -p imagecast-shared --bench frame`.

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use imagecast_shared::DeliveryId;
use imagecast_shared::frame::{FrameReader, OutFrame, decode};
use imagecast_shared::limits::{CHUNK_SIZE, MAX_FRAME};
use imagecast_shared::msg::{ClientMsg, ServerMsg};

fn data_msg(data: Bytes) -> ServerMsg {
    ServerMsg::DeliverData {
        delivery: DeliveryId(42),
        page: 1,
        offset: 1 << 20,
        data,
    }
}

fn encode(c: &mut Criterion) {
    let chunk = Bytes::from(vec![0x5a; CHUNK_SIZE]);
    let mut g = c.benchmark_group("encode 256 KiB page data");
    g.throughput(Throughput::Bytes(CHUNK_SIZE as u64));
    g.bench_function("zero-copy (encode_with_data)", |b| {
        b.iter(|| OutFrame::encode_with_data(&data_msg(Bytes::new()), chunk.clone()))
    });
    g.bench_function("plain postcard (encode)", |b| {
        b.iter(|| OutFrame::encode(&data_msg(chunk.clone())))
    });
    g.finish();
    c.bench_function("encode a small request", |b| {
        b.iter(|| {
            OutFrame::encode(&ClientMsg::ListGroups {
                id: 7,
                for_registration: true,
            })
        })
    });
}

fn read(c: &mut Criterion) {
    let chunk = Bytes::from(vec![0x5a; CHUNK_SIZE]);
    let frame = OutFrame::encode(&ClientMsg::PageData {
        upload: 1,
        page: 0,
        offset: 0,
        data: chunk,
    })
    .unwrap_or_else(|e| panic!("{e}"));
    let mut wire = Vec::new();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    rt.block_on(async {
        for _ in 0..16 {
            frame
                .write_to(&mut wire)
                .await
                .unwrap_or_else(|e| panic!("{e}"));
        }
    });
    let mut g = c.benchmark_group("read and decode 16 frames of 256 KiB");
    g.throughput(Throughput::Bytes(wire.len() as u64));
    g.bench_function("FrameReader + postcard", |b| {
        b.iter(|| {
            rt.block_on(async {
                let mut r = FrameReader::new(&wire[..], MAX_FRAME);
                let mut n = 0;
                while let Some(body) = r.read_frame().await.unwrap_or_else(|e| panic!("{e}")) {
                    let msg: ClientMsg =
                        decode(&body, "client message").unwrap_or_else(|e| panic!("{e}"));
                    if matches!(msg, ClientMsg::PageData { .. }) {
                        n += 1;
                    }
                }
                n
            })
        })
    });
    g.finish();
}

criterion_group!(benches, encode, read);
criterion_main!(benches);
