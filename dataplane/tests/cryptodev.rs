//! The fast-path backend (DPDK `crypto_aesni_gcm`, CPU crypto in batches) against `ring`: the
//! same SA keys and sequence numbers give the same bytes on the wire, each opens what the
//! other seals, and forged packets fail on both. Needs the EAL (root); under CI=true it fails
//! rather than skips without it.

mod common;
use common::require_root;
use dataplane::counters::SaCounters;
use dataplane::esp::crypto::{self, Algorithm, Backend, Job, Keymat, Op};
use dataplane::esp::{cryptodev, decap, encap, DecapError};
use dataplane::packet::{PacketBuf, VecBuf};
use dataplane::sa::*;
use dataplane::testkit::{crypto_only_eal, inner_packet, keymat, tunnel};
use std::net::Ipv4Addr;
use std::sync::Arc;

fn inbound(km: &Keymat, esn: bool, udp: bool, backend: &Backend) -> InboundSa {
    let p = InboundParams {
        spi: 0x1001,
        esn,
        tunnel: 0,
        local: Ipv4Addr::new(192, 0, 2, 2),
        udp_encap: udp,
        replay_window: 64,
        selectors: Selectors::default(),
    };
    InboundSa::with_backend(p, km, Arc::new(SaCounters::default()), backend).unwrap()
}

fn outbound(km: &Keymat, esn: bool, udp: bool, backend: &Backend) -> OutboundSa {
    OutboundSa::with_backend(
        0x1001,
        esn,
        0,
        km,
        tunnel(udp.then_some((4500, 4500))),
        Arc::new(SaCounters::default()),
        backend,
    )
    .unwrap()
}

#[test]
fn cryptodev_and_ring_agree() {
    if !require_root("cryptodev backend") {
        return;
    }
    let _eal = dpdk_sys::Eal::init(&crypto_only_eal()).expect("EAL");
    let dev = cryptodev::Device::open(256).expect("crypto_aesni_gcm");
    assert_eq!(dev.driver(), cryptodev::DRIVER);
    let fast = Backend::Cryptodev(Arc::new(dev));
    let ring = Backend::Ring;

    for alg in [Algorithm::Aes128Gcm, Algorithm::Aes256Gcm] {
        for esn in [false, true] {
            for udp in [false, true] {
                let km = keymat(alg, esn as u8 * 2 + udp as u8);
                let mut out_ring = outbound(&km, esn, udp, &ring);
                let mut out_fast = outbound(&km, esn, udp, &fast);
                if esn {
                    // Cross 2^32 so the high half of the sequence number is in the AAD.
                    out_ring.set_last_seq((1 << 32) - 3);
                    out_fast.set_last_seq((1 << 32) - 3);
                }
                let mut in_ring = inbound(&km, esn, udp, &ring);
                let mut in_fast = inbound(&km, esn, udp, &fast);
                if esn {
                    in_ring.replay.set_top((1 << 32) - 3);
                    in_fast.replay.set_top((1 << 32) - 3);
                }
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

    // One call with more jobs than a device vector holds, including a bad one in the middle.
    let km = keymat(Algorithm::Aes128Gcm, 9);
    let seal = |backend: &Backend, texts: &mut [Vec<u8>]| {
        let c = crypto::cipher(&km, Op::Seal, false, backend).unwrap();
        let mut jobs: Vec<Job> = texts
            .iter_mut()
            .enumerate()
            .map(|(i, t)| Job::new([i as u8; 12], ([i as u8; 12], 8), &mut t[..]))
            .collect();
        c.process(&mut jobs);
        jobs.iter().map(|j| j.ok).collect::<Vec<_>>()
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
    assert_eq!(r, f, "70 jobs sealed in one call match ring's, job by job");
    let open = crypto::cipher(&km, Op::Open, false, &fast).unwrap();
    let mut jobs: Vec<Job> = f
        .iter_mut()
        .enumerate()
        .map(|(i, t)| Job::new([i as u8; 12], ([i as u8; 12], 8), &mut t[..]))
        .collect();
    jobs[7].data[0] ^= 1;
    open.process(&mut jobs);
    let ok: Vec<bool> = jobs.iter().map(|j| j.ok).collect();
    assert_eq!(
        ok.iter().filter(|&&o| o).count(),
        68,
        "all but the short and the tampered one"
    );
    assert!(!ok[7] && !ok[40]);
}
