//! The fast-path backend (DPDK `crypto_aesni_gcm`, CPU crypto in batches) against `ring`: the
//! same SA keys and sequence numbers give the same bytes on the wire, each opens what the
//! other seals, and forged packets fail on both. Needs the EAL (root); under CI=true it fails
//! rather than skips without it.
// The gateway on DPDK: only in builds with it.
#![cfg(feature = "dpdk")]

mod common;
use common::require_root;
use dataplane::burst::MAX_BURST;
use dataplane::esp::crypto::{
    self, cryptodev, Aead, AeadOps, Algorithm, Backend, KeyMaterial, Op, QueuePair,
};
use dataplane::esp::replay::ReplayWindow;
use dataplane::esp::{decap, encap, DecapError};
use dataplane::packet::{PacketBuf, VecBuf};
use dataplane::sa::*;
use dataplane::testkit::{counters, crypto_only_eal, inner_packet, keymat, mirror_gateway, tunnel};
use std::net::Ipv4Addr;
use std::sync::Arc;

/// An inbound SA that has seen up to `top`.
fn inbound(km: &KeyMaterial, esn: bool, udp: bool, top: u64, backend: &Backend) -> InboundSa {
    let p = InboundParams {
        tunnel: 0,
        tcp_mss: 0,
        spi: 0x1001,
        esn,
        local: Ipv4Addr::new(192, 0, 2, 2),
        udp_encap: udp,
        selectors: Selectors::default(),
        soft: Default::default(),
        hard: Default::default(),
    };
    let mut w = ReplayWindow::new(64, esn);
    w.set_top(top);
    InboundSa::new(p, km, w, counters(), backend).unwrap()
}

/// An outbound SA whose first packet carries `first_seq`.
fn outbound(
    km: &KeyMaterial,
    esn: bool,
    udp: bool,
    first_seq: u64,
    backend: &Backend,
) -> OutboundSa {
    let p = OutboundParams {
        first_seq,
        ..OutboundParams::new(0x1001, esn, tunnel(udp.then_some((4500, 4500))))
    };
    OutboundSa::new(p, km, counters(), backend).unwrap()
}

#[test]
fn cryptodev_and_ring_agree() {
    if !require_root("cryptodev backend") {
        return;
    }
    let _eal = dpdk_sys::Eal::init(&crypto_only_eal()).expect("EAL");
    let dev = cryptodev::Device::open(256, 1).expect("crypto_aesni_gcm");
    assert_eq!(dev.driver(), cryptodev::DRIVER);
    let fast = Backend::Cryptodev(Arc::new(dev));
    let ring = Backend::Ring;

    for alg in [Algorithm::Aes128Gcm, Algorithm::Aes256Gcm] {
        for esn in [false, true] {
            for udp in [false, true] {
                let km = keymat(alg, esn as u8 * 2 + udp as u8);
                // With ESN, cross 2^32 so the high half of the sequence number is in the AAD.
                let top = if esn { (1 << 32) - 3 } else { 0 };
                let mut out_ring = outbound(&km, esn, udp, top + 1, &ring);
                let mut out_fast = outbound(&km, esn, udp, top + 1, &fast);
                let mut in_ring = inbound(&km, esn, udp, top, &ring);
                let mut in_fast = inbound(&km, esn, udp, top, &fast);
                let esp_off = if udp { 28 } else { 20 };
                for len in [20, 21, 22, 23, 64, 511, 1400] {
                    let what = format!("{alg:?} esn={esn} udp={udp} len={len}");
                    let pkt = inner_packet(len, 0x28, true);
                    let mut a = VecBuf::new(&pkt);
                    let mut b = VecBuf::new(&pkt);
                    encap(&mut out_ring, &mut a).unwrap();
                    encap(&mut out_fast, &mut b).unwrap();
                    assert_eq!(a.data(), b.data(), "{what}: same bytes on the wire");

                    // A forged copy fails on the device and leaves the window alone.
                    let mut forged = VecBuf::new(b.data());
                    let n = forged.len();
                    forged.data_mut()[n - 20] ^= 0x01;
                    assert_eq!(
                        decap(&mut in_fast, &mut forged, esp_off),
                        Err(DecapError::Auth),
                        "{what}"
                    );
                    // Each opens what the other sealed.
                    decap(&mut in_fast, &mut a, esp_off).unwrap();
                    decap(&mut in_ring, &mut b, esp_off).unwrap();
                    assert_eq!(a.data(), &pkt[..], "{what}: device open");
                    assert_eq!(b.data(), &pkt[..], "{what}: ring open");
                }
            }
        }
    }

    // 70 operations in batches of a burst (32), including one shorter than a tag, which no
    // batch takes. Operation i has nonce [i; 12] and 8 bytes of AAD [i; 12].
    let km = keymat(Algorithm::Aes128Gcm, 9);
    fn batches(
        texts: &mut [Vec<u8>],
        tamper: Option<usize>,
        mut run: impl FnMut(usize, &mut AeadOps<'_>),
    ) -> Vec<bool> {
        let mut oks = vec![false; texts.len()];
        for (c, chunk) in texts.chunks_mut(MAX_BURST).enumerate() {
            let mut ops = AeadOps::new();
            let mut at = Vec::new();
            for (k, t) in chunk.iter_mut().enumerate() {
                let i = c * MAX_BURST + k;
                if Some(i) == tamper {
                    t[0] ^= 1;
                }
                if let Some(op) = ops.push(t, &[i as u8; 12], &[i as u8; 12], 8) {
                    at.push((op, i));
                }
            }
            run(c * MAX_BURST, &mut ops);
            for (op, i) in at {
                oks[i] = ops.ok(op);
            }
        }
        oks
    }
    let seal = |backend: &Backend, texts: &mut [Vec<u8>]| {
        let c = crypto::cipher(&km, Op::Seal, false, backend).unwrap();
        batches(texts, None, |_, ops| c.process(ops))
    };
    let proto: Vec<Vec<u8>> = (0..70).map(|i| vec![i as u8; 16 + 3 * i]).collect();
    let mut r = proto.clone();
    let mut f = proto.clone();
    r[40].truncate(10);
    f[40].truncate(10);
    let ok_r = seal(&ring, &mut r);
    let ok_f = seal(&fast, &mut f);
    assert_eq!(ok_r, ok_f);
    assert!(!ok_f[40] && ok_f.iter().filter(|&&o| o).count() == 69);
    assert_eq!(
        r, f,
        "70 operations sealed in batches match ring's, one by one"
    );
    let open = crypto::cipher(&km, Op::Open, false, &fast).unwrap();
    let ok = batches(&mut f, Some(7), |_, ops| open.process(ops));
    assert_eq!(
        ok.iter().filter(|&&o| o).count(),
        68,
        "all but the short and the tampered one"
    );
    assert!(!ok[7] && !ok[40]);

    // An operation whose AAD length is not its session's fails without reaching the device
    // (its bytes stay as they were); the others of its batch are sealed as ring seals them.
    // (Ring has no session AAD length: it takes each operation's own.)
    let texts: Vec<Vec<u8>> = (0..3).map(|i| vec![0x40 + i as u8; 48]).collect();
    let (mut dev_t, mut ring_t) = (texts.clone(), texts.clone());
    let mut oks = Vec::new();
    for (backend, t) in [(&fast, &mut dev_t), (&ring, &mut ring_t)] {
        let c = crypto::cipher(&km, Op::Seal, false, backend).unwrap();
        let mut ops = AeadOps::new();
        for (i, b) in t.iter_mut().enumerate() {
            let aad_len = if i == 1 { 12 } else { 8 };
            assert_eq!(
                ops.push(b, &[i as u8; 12], &[i as u8; 12], aad_len),
                Some(i)
            );
        }
        c.process(&mut ops);
        oks.push((ops.ok(0), ops.ok(1), ops.ok(2)));
    }
    assert_eq!(oks[0], (true, false, true), "device");
    assert_eq!(
        dev_t[1], texts[1],
        "the refused operation is untouched on the device"
    );
    assert_eq!((&dev_t[0], &dev_t[2]), (&ring_t[0], &ring_t[2]));

    // The same kind of operations through a worker's queue pair, spread over three SAs
    // (operation i under SA i mod 3) as a burst over many tunnels is: the bytes of each SA's
    // own CPU-crypto call, one by one, and opening them the same way fails only the short and
    // a tampered one.
    let Backend::Cryptodev(dev) = &fast else {
        unreachable!()
    };
    let mut queue = dev.queue(0).expect("a queue pair").expect("queue");
    let kms: Vec<KeyMaterial> = (0..3)
        .map(|i| keymat(Algorithm::Aes128Gcm, 20 + i))
        .collect();
    let ciphers = |op| {
        kms.iter()
            .map(|k| crypto::cipher(k, op, false, &fast).unwrap())
            .collect::<Vec<_>>()
    };
    let (sealers, openers) = (ciphers(Op::Seal), ciphers(Op::Open));
    let mut by_call = proto.clone();
    let mut by_queue = proto.clone();
    by_call[40].truncate(10);
    by_queue[40].truncate(10);
    for (i, t) in by_call.iter_mut().enumerate() {
        let mut ops = AeadOps::new();
        let pushed = ops.push(t, &[i as u8; 12], &[i as u8; 12], 8).is_some();
        sealers[i % 3].process(&mut ops);
        assert_eq!(pushed && ops.ok(0), i != 40);
    }
    let through_queue = |queue: &mut cryptodev::DeviceQueue,
                         texts: &mut [Vec<u8>],
                         ciphers: &[crypto::Cipher],
                         tamper: Option<usize>| {
        batches(texts, tamper, |first, ops| {
            // The short operation was never pushed: sessions follow the pushed ones.
            let by: Vec<crypto::DeviceSession> = (first..first + MAX_BURST)
                .filter(|&i| i != 40)
                .take(ops.len())
                .map(|i| ciphers[i % 3].device_session().expect("a device cipher"))
                .collect();
            assert!(queue.process(ops, &by), "every session is on the device");
        })
    };
    let ok = through_queue(&mut queue, &mut by_queue, &sealers, None);
    assert_eq!(
        ok.iter().filter(|&&o| o).count(),
        69,
        "all but the short one"
    );
    assert!(!ok[40]);
    assert_eq!(
        by_call, by_queue,
        "70 jobs over 3 SAs through the queue match CPU crypto"
    );
    let ok = through_queue(&mut queue, &mut by_queue, &openers, Some(7));
    assert_eq!(ok.iter().filter(|&&o| o).count(), 68);
    assert!(!ok[7] && !ok[40]);
    for (i, t) in by_queue.iter().enumerate() {
        if i != 7 && i != 40 {
            assert_eq!(
                t[..t.len() - 16],
                proto[i][..proto[i].len() - 16],
                "job {i} opened"
            );
        }
    }

    a_burst_over_many_sas_through_the_queue_pair_matches_ring(&fast, queue);
}

/// Runs one burst through `f` as a worker does; the frames out, or None for a dropped one.
fn burst(
    f: &mut dataplane::forward::Forwarder,
    port: u16,
    frames: &[Vec<u8>],
) -> Vec<Option<Vec<u8>>> {
    use dataplane::forward::Verdict;
    let mut bufs: Vec<VecBuf> = frames.iter().map(|fr| VecBuf::new(fr)).collect();
    let mut verdicts: Vec<Verdict> = bufs.iter_mut().map(|b| f.receive(port, b)).collect();
    f.complete(&mut bufs, &mut verdicts);
    bufs.iter()
        .zip(&verdicts)
        .map(|(b, v)| matches!(v, Verdict::Tx(_)).then(|| b.data().to_vec()))
        .collect()
}

/// A burst spread over 16 tunnels (more SAs than a third of its packets) goes through the
/// worker's queue pair; what leaves must be what `ring` makes of the same burst, byte for
/// byte, encrypting and decrypting, and a forged packet in it must be the only one dropped.
/// (Run by `cryptodev_and_ring_agree`: one EAL and one device per process.)
fn a_burst_over_many_sas_through_the_queue_pair_matches_ring(
    fast: &Backend,
    queue: cryptodev::DeviceQueue,
) {
    let mut by_ring = mirror_gateway(16, &Backend::Ring).unwrap();
    let mut by_queue = mirror_gateway(16, fast).unwrap();
    by_queue.set_crypto_queue(Box::new(queue));

    // LAN frames 10.1.0.10 -> 10.2.(i mod 16).10, of varied lengths.
    let lan: Vec<Vec<u8>> = (0..32)
        .map(|i| {
            let mut ip = inner_packet(40 + 37 * i, 0, false);
            ip[18] = (i % 16) as u8;
            ip[10..12].fill(0);
            let c = dataplane::wire::checksum::checksum(&ip[..20]);
            ip[10..12].copy_from_slice(&c.to_be_bytes());
            let mut fr = vec![2, 0, 0, 0, 1, 1, 2, 0, 0, 0, 1, 0x10, 8, 0];
            fr.extend_from_slice(&ip);
            fr
        })
        .collect();
    let queued =
        |f: &dataplane::forward::Forwarder| f.stats.get(dataplane::counters::Stat::QueuedBursts);
    let sealed = burst(&mut by_queue, 0, &lan);
    assert!(sealed.iter().all(Option::is_some), "every packet sealed");
    assert_eq!(
        queued(&by_queue),
        1,
        "the burst went through the queue pair"
    );
    assert_eq!(sealed, burst(&mut by_ring, 0, &lan), "ESP as ring makes it");
    assert_eq!(queued(&by_ring), 0, "ring has no queue pair");

    // ESP from the peer for the LAN host, one SA after another, and one forged.
    let mut wan: Vec<Vec<u8>> = (0..32u8)
        .map(|i| {
            let t = i % 16;
            let mut peer = tunnel(None);
            std::mem::swap(&mut peer.local, &mut peer.remote);
            let km = keymat(Algorithm::Aes128Gcm, t);
            let p = OutboundParams {
                first_seq: u64::from(i) + 1,
                ..OutboundParams::new(0x1000 + u32::from(t), false, peer)
            };
            let mut sa = OutboundSa::new(p, &km, counters(), &Backend::Ring).unwrap();
            let mut ip = inner_packet(40 + 29 * usize::from(i), 0, false);
            ip[12..16].copy_from_slice(&[10, 2, t, 10]);
            ip[16..20].copy_from_slice(&[10, 1, 0, 10]);
            ip[10..12].fill(0);
            let c = dataplane::wire::checksum::checksum(&ip[..20]);
            ip[10..12].copy_from_slice(&c.to_be_bytes());
            let mut b = VecBuf::new(&ip);
            encap(&mut sa, &mut b).unwrap();
            let mut fr = vec![2, 0, 0, 0, 0xa, 1, 2, 0, 0, 0, 0xa, 2, 8, 0];
            fr.extend_from_slice(b.data());
            fr
        })
        .collect();
    let last = wan[9].len() - 1;
    wan[9][last] ^= 0x80;
    let opened = burst(&mut by_queue, 1, &wan);
    assert_eq!(
        queued(&by_queue),
        2,
        "the burst went through the queue pair"
    );
    assert_eq!(
        opened,
        burst(&mut by_ring, 1, &wan),
        "clear frames as ring makes them"
    );
    assert!(opened[9].is_none(), "the forged packet is dropped");
    assert_eq!(opened.iter().filter(|o| o.is_some()).count(), 31);

    // A caller that pairs the verdicts with the wrong packets: no job runs over another's
    // packet; every parked packet is dropped and counted, and nothing reaches the device.
    use dataplane::counters::Stat;
    use dataplane::forward::Verdict;
    let mut bufs: Vec<VecBuf> = lan.iter().map(|fr| VecBuf::new(fr)).collect();
    let mut verdicts: Vec<Verdict> = bufs.iter_mut().map(|b| by_queue.receive(0, b)).collect();
    verdicts.swap(0, 1);
    by_queue.complete(&mut bufs, &mut verdicts);
    assert!(verdicts
        .iter()
        .all(|v| *v == Verdict::Drop(Stat::CryptoErrors)));
    assert_eq!(by_queue.stats.get(Stat::CryptoErrors), 32);
    assert_eq!(queued(&by_queue), 2, "nothing went through the queue pair");
}
