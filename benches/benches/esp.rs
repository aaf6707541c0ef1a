//! Per-packet cost of ESP encap and decap (AES-128-GCM) beside the bare AEAD seal/open of the
//! same payload, measured in the same run, on both backends: `ring`, and DPDK's
//! `crypto_aesni_gcm` driven by CPU crypto in batches of 32 (the dataplane's fast path). The
//! cryptodev rows need the EAL (run as root); without it they are left out with a message.
//!
//! cargo bench -p espgw-benches --bench esp

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use dataplane::esp::crypto::{
    cryptodev, Aead, AeadOps, Algorithm, Backend, Cipher, DeviceSession, KeyMaterial, Op, QueuePair,
};
use dataplane::esp::replay::ReplayWindow;
use dataplane::esp::{crypto, decap, encap};
use dataplane::forward::{Forwarder, Verdict};
use dataplane::packet::{PacketBuf, VecBuf};
use dataplane::sa::{InboundParams, InboundSa, OutboundParams, OutboundSa, Selectors};
use dataplane::testkit;
use dataplane::wire::esp as esp_wire;
use std::sync::Arc;

const SIZES: [usize; 3] = [64, 512, 1420];
const BATCH: usize = 32;

/// The backends to compare: ring always, the crypto device when the EAL can start.
fn backends() -> Vec<(&'static str, Backend)> {
    // The EAL starts once per process; both bench groups share what it gave.
    static BACKENDS: std::sync::OnceLock<Vec<(&'static str, Backend)>> = std::sync::OnceLock::new();
    BACKENDS.get_or_init(start_backends).clone()
}

fn start_backends() -> Vec<(&'static str, Backend)> {
    let mut v = vec![("ring", Backend::Ring)];
    match dpdk_sys::Eal::init(&testkit::crypto_only_eal()) {
        Ok(e) => {
            // The EAL lives as long as the process; criterion exits without dropping it.
            std::mem::forget(e);
            // aesni_gcm is the dataplane's; aesni_mb (the same library through its job API)
            // is measured beside it to show the choice.
            for (name, driver) in [
                ("aesni_gcm", "crypto_aesni_gcm"),
                ("aesni_mb", "crypto_aesni_mb"),
            ] {
                // Room for every row's sessions at once (a few hundred at most).
                match cryptodev::Device::open_driver(driver, 1024, 1) {
                    Ok(d) => v.push((name, Backend::Cryptodev(Arc::new(d)))),
                    Err(e) => eprintln!("no {driver}: {e}"),
                }
            }
        }
        Err(e) => eprintln!("no EAL ({e}): cryptodev rows left out; run as root"),
    }
    v
}

/// One operation per buffer (text || tag), all with the same nonce and AAD.
fn ops_over<'a>(bufs: &'a mut [Vec<u8>], nonce: &[u8; 12], aad: ([u8; 12], usize)) -> AeadOps<'a> {
    let mut ops = AeadOps::new();
    for d in bufs {
        ops.push(d, nonce, &aad.0, aad.1).unwrap();
    }
    ops
}

/// Whether every operation succeeded.
fn all_ok(ops: &AeadOps<'_>) -> bool {
    (0..ops.len()).all(|i| ops.ok(i))
}

/// `seal-queue` and `seal-32-sas-queue`: the seal through the device's queue pair
/// (`cryptodev::DeviceQueue`) on `crypto_aesni_gcm`.
fn queue_rows(
    g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    dev: &cryptodev::Device,
    size: usize,
    text: usize,
    blank: &[u8],
    nonce: [u8; 12],
    aad: ([u8; 12], usize),
) {
    let Some(Ok(mut q)) = dev.queue(0) else {
        return;
    };
    let ciphers: Vec<Cipher> = (0..BATCH as u8)
        .map(|i| {
            let mut k: Vec<u8> = (0u8..20).collect();
            k[0] = i;
            let km = KeyMaterial::new(Algorithm::Aes128Gcm, &k).unwrap();
            Cipher::Device(dev.session(&km, Op::Seal, false).unwrap())
        })
        .collect();
    let sessions: Vec<DeviceSession> = ciphers
        .iter()
        .map(|c| c.device_session().unwrap())
        .collect();
    for (row, n) in [("seal-queue", 1), ("seal-32-sas-queue", BATCH)] {
        g.bench_with_input(
            BenchmarkId::new(format!("{row}/aesni_gcm"), size),
            &size,
            |b, _| {
                b.iter_batched_ref(
                    || per_packet(text + 16, blank),
                    |bufs| {
                        let by: Vec<DeviceSession> = (0..BATCH).map(|i| sessions[i % n]).collect();
                        let mut ops = ops_over(bufs, &nonce, aad);
                        assert!(q.process(&mut ops, &by));
                        all_ok(&ops)
                    },
                    BatchSize::PerIteration,
                )
            },
        );
    }
}

/// Runs `f` over a batch of copies of `proto`, prepared outside the timing.
fn per_packet(len: usize, proto: &[u8]) -> Vec<Vec<u8>> {
    (0..BATCH).map(|_| proto[..len].to_vec()).collect()
}

fn bench(c: &mut Criterion) {
    let km = testkit::keymat(Algorithm::Aes128Gcm, 0);
    let nonce = [7u8; 12];
    let aad = ([1u8; 12], 8);
    let mut g = c.benchmark_group("esp");
    // Each iteration handles a batch of 32 packets, as a worker's burst: the figures are per
    // batch; divide by 32 for per packet.
    for (name, backend) in backends() {
        for size in SIZES {
            g.throughput(Throughput::Elements(BATCH as u64));
            let inner = testkit::inner_packet(size, 0, false);
            // The bytes the AEAD covers in an ESP packet: inner + padding + trailer, then ICV.
            let text = size + esp_wire::pad_len(size) + esp_wire::TRAILER_LEN;
            let sealer = crypto::cipher(&km, Op::Seal, false, &backend).unwrap();
            let opener = crypto::cipher(&km, Op::Open, false, &backend).unwrap();

            let blank = vec![0u8; text + 16];
            g.bench_with_input(
                BenchmarkId::new(format!("seal/{name}"), size),
                &size,
                |b, _| {
                    b.iter_batched_ref(
                        || per_packet(text + 16, &blank),
                        |bufs| {
                            let mut ops = ops_over(bufs, &nonce, aad);
                            sealer.process(&mut ops);
                            all_ok(&ops)
                        },
                        BatchSize::PerIteration,
                    )
                },
            );

            // The same 32 packets, each under its own SA (its own key): one backend call per
            // packet, as when a burst spreads over many tunnels.
            let sealers: Vec<_> = (0..BATCH as u8)
                .map(|i| {
                    let mut k: Vec<u8> = (0u8..20).collect();
                    k[0] = i;
                    let km = KeyMaterial::new(Algorithm::Aes128Gcm, &k).unwrap();
                    crypto::cipher(&km, Op::Seal, false, &backend).unwrap()
                })
                .collect();
            g.bench_with_input(
                BenchmarkId::new(format!("seal-32-sas/{name}"), size),
                &size,
                |b, _| {
                    b.iter_batched_ref(
                        || per_packet(text + 16, &blank),
                        |bufs| {
                            let mut ok = true;
                            for (d, c) in bufs.chunks_mut(1).zip(&sealers) {
                                let mut ops = ops_over(d, &nonce, aad);
                                c.process(&mut ops);
                                ok &= ops.ok(0);
                            }
                            ok
                        },
                        BatchSize::PerIteration,
                    )
                },
            );

            // The same two cases through the enqueue/dequeue API (one queue pair, an op per
            // packet naming its session): the whole batch in one enqueue and one dequeue,
            // whether it is under one session or 32.
            if let (Backend::Cryptodev(dev), "aesni_gcm") = (&backend, name) {
                queue_rows(&mut g, dev, size, text, &blank, nonce, aad);
            }

            let p = OutboundParams::new(0x1001, false, testkit::tunnel(None));
            let mut sa = OutboundSa::new(p, &km, testkit::counters(), &backend).unwrap();
            g.bench_with_input(
                BenchmarkId::new(format!("encap/{name}"), size),
                &size,
                |b, _| {
                    b.iter_batched_ref(
                        || (0..BATCH).map(|_| VecBuf::new(&inner)).collect::<Vec<_>>(),
                        |bufs| {
                            let prep: Vec<_> = bufs
                                .iter_mut()
                                .map(|b| encap::prepare(&mut sa, b, 0, usize::MAX).unwrap())
                                .collect();
                            let mut ops = AeadOps::new();
                            for (b, p) in bufs.iter_mut().zip(&prep) {
                                p.push(b.data_mut(), &sa.crypto, &mut ops).unwrap();
                            }
                            sealer.process(&mut ops);
                            all_ok(&ops)
                        },
                        BatchSize::PerIteration,
                    )
                },
            );

            let mut sealed = [blank.clone()];
            sealer.process(&mut ops_over(&mut sealed, &nonce, aad));
            let [sealed] = sealed;
            g.bench_with_input(
                BenchmarkId::new(format!("open/{name}"), size),
                &size,
                |b, _| {
                    b.iter_batched_ref(
                        || per_packet(text + 16, &sealed),
                        |bufs| {
                            let mut ops = ops_over(bufs, &nonce, aad);
                            opener.process(&mut ops);
                            all_ok(&ops)
                        },
                        BatchSize::PerIteration,
                    )
                },
            );

            // One encrypted packet, decapsulated again and again: the window is off (0) so the
            // same sequence number is accepted every time.
            let mut pkt = VecBuf::new(&inner);
            encap(&mut sa, &mut pkt).unwrap();
            let params = InboundParams {
                tunnel: 0,
                tcp_mss: 0,
                spi: 0x1001,
                esn: false,
                local: std::net::Ipv4Addr::new(192, 0, 2, 1),
                udp_encap: false,
                selectors: Selectors::default(),
                soft: Default::default(),
                hard: Default::default(),
            };
            let w = ReplayWindow::new(0, false);
            let mut isa = InboundSa::new(params, &km, w, testkit::counters(), &backend).unwrap();
            let outer = pkt.data().to_vec();
            g.bench_with_input(
                BenchmarkId::new(format!("decap/{name}"), size),
                &size,
                |b, _| {
                    b.iter_batched_ref(
                        || (0..BATCH).map(|_| VecBuf::new(&outer)).collect::<Vec<_>>(),
                        |bufs| {
                            let prep: Vec<_> = bufs
                                .iter()
                                .map(|b| decap::prepare(&isa, b, 20).unwrap())
                                .collect();
                            {
                                let mut ops = AeadOps::new();
                                for (b, p) in bufs.iter_mut().zip(&prep) {
                                    p.push(b.data_mut(), &isa.crypto, &mut ops).unwrap();
                                }
                                opener.process(&mut ops);
                            }
                            for (b, p) in bufs.iter_mut().zip(&prep) {
                                decap::finish(&mut isa, b, 20, p.seq).unwrap();
                            }
                        },
                        BatchSize::PerIteration,
                    )
                },
            );
        }
    }
    g.finish();
}

/// Panics unless a burst of `frame` received on `port` all leaves on `out`.
fn assert_forwards(gw: &mut Forwarder, port: u16, frame: &[u8], out: u16) {
    let mut bufs: Vec<VecBuf> = (0..BATCH).map(|_| VecBuf::new(frame)).collect();
    let mut verdicts: Vec<Verdict> = bufs.iter_mut().map(|b| gw.receive(port, b)).collect();
    gw.complete(&mut bufs, &mut verdicts);
    assert!(
        verdicts.iter().all(|v| *v == Verdict::Tx(out)),
        "the benchmarked burst does not forward: {verdicts:?}"
    );
}

/// A frame from 10.1.0.10 to 10.2.0.10 of `size` bytes on the wire (no FCS).
fn lan_frame(size: usize) -> Vec<u8> {
    let mut f = vec![2, 0, 0, 0, 1, 1, 2, 0, 0, 0, 1, 0x10, 8, 0];
    let mut ip = testkit::inner_packet(size - 14, 0, false);
    ip[8] = 64;
    ip[10] = 0;
    ip[11] = 0;
    let c = dataplane::wire::checksum::checksum(&ip[..20]);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    f.extend_from_slice(&ip);
    f
}

/// The whole per-packet pipeline (frame in, frame out) for a burst of 32, beside the seal of
/// the same 32 payloads alone: the difference is everything the dataplane does but the AEAD
/// (parsing, routing, SA lookup, ESP headers, batching), without the PMDs.
fn pipeline(c: &mut Criterion) {
    let mut g = c.benchmark_group("pipeline");
    for (name, backend) in backends() {
        for size in [64, 512, 1400] {
            g.throughput(Throughput::Elements(BATCH as u64));
            let mut gw = testkit::mirror_gateway(1, &backend).unwrap();
            let frame = lan_frame(size);
            // What is timed must be the path that forwards, not a drop.
            assert_forwards(&mut gw, 0, &frame, 1);
            g.bench_with_input(
                BenchmarkId::new(format!("encrypt/{name}"), size),
                &size,
                |b, _| {
                    b.iter_batched_ref(
                        || (0..BATCH).map(|_| VecBuf::new(&frame)).collect::<Vec<_>>(),
                        |bufs| {
                            let mut verdicts = [Verdict::Tx(0); BATCH];
                            for (b, v) in bufs.iter_mut().zip(verdicts.iter_mut()) {
                                *v = gw.receive(0, b);
                            }
                            gw.complete(bufs, &mut verdicts);
                            verdicts
                        },
                        BatchSize::PerIteration,
                    )
                },
            );
            // ESP from the peer (192.0.2.2) carrying a packet for the LAN host, so that
            // the decrypted packet is routed out in clear.
            let mut ip = frame[14..].to_vec();
            ip[16..20].copy_from_slice(&[10, 1, 0, 10]);
            ip[12..16].copy_from_slice(&[10, 2, 0, 10]);
            ip[10..12].copy_from_slice(&[0, 0]);
            let c = dataplane::wire::checksum::checksum(&ip[..20]);
            ip[10..12].copy_from_slice(&c.to_be_bytes());
            let mut peer = testkit::tunnel(None);
            std::mem::swap(&mut peer.local, &mut peer.remote);
            let mut peer_sa = OutboundSa::new(
                OutboundParams::new(0x1000, false, peer),
                &testkit::keymat(Algorithm::Aes128Gcm, 0),
                testkit::counters(),
                &Backend::Ring,
            )
            .unwrap();
            let mut pkt = VecBuf::new(&ip);
            encap(&mut peer_sa, &mut pkt).unwrap();
            let mut esp = vec![2, 0, 0, 0, 0xa, 1, 2, 0, 0, 0, 0xa, 2, 8, 0];
            esp.extend_from_slice(pkt.data());
            assert_forwards(&mut gw, 1, &esp, 0);
            g.bench_with_input(
                BenchmarkId::new(format!("decrypt/{name}"), size),
                &size,
                |b, _| {
                    b.iter_batched_ref(
                        || (0..BATCH).map(|_| VecBuf::new(&esp)).collect::<Vec<_>>(),
                        |bufs| {
                            let mut verdicts = [Verdict::Tx(0); BATCH];
                            for (b, v) in bufs.iter_mut().zip(verdicts.iter_mut()) {
                                *v = gw.receive(1, b);
                            }
                            gw.complete(bufs, &mut verdicts);
                            verdicts
                        },
                        BatchSize::PerIteration,
                    )
                },
            );
        }
    }
    g.finish();
}

criterion_group!(benches, bench, pipeline);
criterion_main!(benches);
