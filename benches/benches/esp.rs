//! Per-packet cost of ESP encap and decap (AES-128-GCM, ring backend) beside the bare AEAD
//! seal/open of the same payload, measured in the same run.
//!
//! cargo bench -p espgw-benches --bench esp

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use dataplane::esp::crypto::{Aead, Algorithm, Keymat, RingGcm};
use dataplane::esp::{decap, encap};
use dataplane::packet::{PacketBuf, VecBuf};
use dataplane::sa::{
    DfPolicy, DscpPolicy, InboundParams, InboundSa, OutboundSa, Selectors, TunnelEncap,
};
use dataplane::wire::{esp as esp_wire, ipv4};
use std::net::Ipv4Addr;

fn keymat() -> Keymat {
    Keymat::new(Algorithm::Aes128Gcm, (0u8..20).collect::<Vec<_>>().into()).unwrap()
}

const SIZES: [usize; 3] = [64, 512, 1420];

fn inner_packet(len: usize) -> Vec<u8> {
    let mut p = vec![0u8; len];
    let mut h = [0u8; 20];
    ipv4::Repr {
        tos: 0,
        ident: 1,
        dont_frag: false,
        ttl: 64,
        protocol: ipv4::PROTO_UDP,
        src: Ipv4Addr::new(10, 1, 0, 10),
        dst: Ipv4Addr::new(10, 2, 0, 10),
        payload_len: len - 20,
    }
    .emit(&mut h);
    p[..20].copy_from_slice(&h);
    p
}

fn tunnel() -> TunnelEncap {
    TunnelEncap {
        local: Ipv4Addr::new(192, 0, 2, 1),
        remote: Ipv4Addr::new(192, 0, 2, 2),
        udp: None,
        df: DfPolicy::Copy,
        dscp: DscpPolicy::Copy,
        ttl: 64,
    }
}

fn bench(c: &mut Criterion) {
    let km = keymat();
    let aead = RingGcm::new(Algorithm::Aes128Gcm, km.key()).unwrap();
    let nonce = [7u8; 12];
    let aad = [1u8; 8];
    let mut g = c.benchmark_group("esp");
    for size in SIZES {
        g.throughput(Throughput::Bytes(size as u64));
        let inner = inner_packet(size);
        // The bytes the AEAD covers in an ESP packet: inner + padding + trailer.
        let ct_len = size + esp_wire::pad_len(size) + esp_wire::TRAILER_LEN;

        g.bench_with_input(BenchmarkId::new("seal", size), &size, |b, _| {
            b.iter_batched_ref(
                || vec![0u8; ct_len],
                |buf| {
                    let mut tag = [0u8; 16];
                    aead.seal(&nonce, &aad, buf, &mut tag).unwrap();
                    tag
                },
                BatchSize::SmallInput,
            )
        });
        let mut sa = OutboundSa::new(0x1001, false, 0, &km, tunnel(), Default::default()).unwrap();
        g.bench_with_input(BenchmarkId::new("encap", size), &size, |b, _| {
            b.iter_batched_ref(
                || VecBuf::new(&inner),
                |buf| encap(&mut sa, buf).unwrap(),
                BatchSize::SmallInput,
            )
        });

        let mut sealed = vec![0u8; ct_len];
        let mut tag = [0u8; 16];
        aead.seal(&nonce, &aad, &mut sealed, &mut tag).unwrap();
        sealed.extend_from_slice(&tag);
        g.bench_with_input(BenchmarkId::new("open", size), &size, |b, _| {
            b.iter_batched_ref(
                || sealed.clone(),
                |buf| aead.open(&nonce, &aad, buf).unwrap(),
                BatchSize::SmallInput,
            )
        });

        // One encrypted packet, decapsulated again and again: the window is off (0) so the
        // same sequence number is accepted every time.
        let mut pkt = VecBuf::new(&inner);
        encap(&mut sa, &mut pkt).unwrap();
        let params = InboundParams {
            spi: 0x1001,
            esn: false,
            tunnel: 0,
            local: tunnel().local,
            udp_encap: false,
            replay_window: 0,
            selectors: Selectors::default(),
        };
        let mut isa = InboundSa::new(params, &km, Default::default()).unwrap();
        let outer = pkt.data().to_vec();
        g.bench_with_input(BenchmarkId::new("decap", size), &size, |b, _| {
            b.iter_batched_ref(
                || VecBuf::new(&outer),
                |buf| decap(&mut isa, buf, 20).unwrap(),
                BatchSize::SmallInput,
            )
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
