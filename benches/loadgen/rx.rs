//! Receive: count what the gateway sends back, and take latency samples.
//!
//! Encrypt direction: ESP comes back. Every packet with a known SPI counts; every Nth is
//! decrypted with the mirror of the gateway's outbound SA (`dataplane::esp::decap`), which
//! also proves the gateway's ESP correct, and its payload stamp gives the latency.
//! Decrypt direction: cleartext comes back; the stamp's sequence is the pool index whose TX
//! time was recorded when it was sent. Anything else is counted as not ours. Nothing here
//! panics on any input.

use crate::latency::Latency;
use crate::traffic::{read_stamp, DPORT};
use dataplane::burst::MAX_BURST;
use dataplane::esp::{decap, DecapError};
use dataplane::sa::InboundSa;
use dataplane::wire::{esp, ethernet, ipv4, udp};
use dpdk_sys::sys::rte_mbuf;
use dpdk_sys::Mbuf;
use serde::Serialize;
use std::collections::HashMap;

/// What the receiver expects.
pub enum Expect {
    /// ESP, decrypted one packet in `every`.
    Esp {
        sas: Vec<InboundSa>,
        by_spi: HashMap<u32, usize>,
        every: u64,
        countdown: u64,
    },
    /// Cleartext UDP carrying pool indices.
    Clear,
}

#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct RxStats {
    /// Our packets, and their frame bytes.
    pub packets: u64,
    pub bytes: u64,
    /// Frames that are not our traffic (another protocol, port, or an unknown SPI).
    pub not_ours: u64,
    /// Encrypt direction: samples decrypted and authenticated, and those that failed
    /// (`auth_failures` of them because the ICV did not verify).
    pub samples_ok: u64,
    pub samples_failed: u64,
    pub auth_failures: u64,
    /// Authenticated or cleartext packets without a valid stamp.
    pub bad_stamps: u64,
    #[serde(skip)]
    pub first_tsc: u64,
    #[serde(skip)]
    pub last_tsc: u64,
}

pub struct Receiver {
    port: u16,
    pub expect: Expect,
    pub stats: RxStats,
}

impl Receiver {
    pub fn new(port: u16, expect: Expect) -> Receiver {
        Receiver {
            port,
            expect,
            stats: RxStats::default(),
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// One RX burst. `tx_tsc` holds the pool's send times (decrypt direction).
    pub fn poll(&mut self, tx_tsc: &[u64], lat: &mut Latency) -> usize {
        let mut raw = [std::ptr::null_mut::<rte_mbuf>(); MAX_BURST];
        // SAFETY: queue 0 of a started port, polled by this thread only; raw has room.
        let n = unsafe { dpdk_sys::rx_burst(self.port, 0, &mut raw) };
        if n == 0 {
            return 0;
        }
        let now = dpdk_sys::eal::tsc();
        let before = self.stats.packets;
        for &r in &raw[..n] {
            // SAFETY: the PMD handed us ownership of each received mbuf; dropped (freed) below.
            let mut m = unsafe { Mbuf::from_raw(r) };
            // The frame as received: a decrypted sample shrinks it.
            let len = m.len() as u64;
            let ours = match &mut self.expect {
                Expect::Esp {
                    sas,
                    by_spi,
                    every,
                    countdown,
                } => {
                    let sample = *countdown == 0;
                    let r = esp_packet(&mut m, sas, by_spi, sample, now, lat, &mut self.stats);
                    if r && sample {
                        *countdown = *every - 1;
                    } else if r {
                        *countdown -= 1;
                    }
                    r
                }
                Expect::Clear => clear_packet(&m, tx_tsc, now, lat, &mut self.stats),
            };
            if ours {
                self.stats.packets += 1;
                self.stats.bytes += len;
            } else {
                self.stats.not_ours += 1;
            }
        }
        // The receive window spans the bursts that brought our packets.
        if self.stats.packets > before {
            if self.stats.first_tsc == 0 {
                self.stats.first_tsc = now;
            }
            self.stats.last_tsc = now;
        }
        n
    }
}

/// Receives and frees a burst on a port where we expect nothing; returns how many.
pub fn drain(port: u16) -> usize {
    let mut raw = [std::ptr::null_mut::<rte_mbuf>(); MAX_BURST];
    // SAFETY: as in `Receiver::poll`; every received mbuf is freed right away.
    unsafe {
        let n = dpdk_sys::rx_burst(port, 0, &mut raw);
        dpdk_sys::mbuf::free_bulk(&mut raw[..n]);
        n
    }
}

/// Offset of the ESP header in an ESP or ESP-in-UDP frame, and its SPI.
fn esp_offset(frame: &[u8]) -> Option<(usize, u32)> {
    let eth = ethernet::Frame::new_checked(frame).ok()?;
    if eth.ethertype() != ethernet::ETHERTYPE_IPV4 {
        return None;
    }
    let ip = ipv4::Packet::new_checked(eth.payload()).ok()?;
    let off = ethernet::HEADER_LEN + ip.header_len();
    let off = match ip.protocol() {
        ipv4::PROTO_ESP => off,
        ipv4::PROTO_UDP => {
            udp::Datagram::new_checked(ip.payload()).ok()?;
            off + udp::HEADER_LEN
        }
        _ => return None,
    };
    let e = esp::Packet::new_checked(frame.get(off..)?).ok()?;
    Some((off, e.spi()))
}

/// The stamp of a cleartext UDP/IPv4 packet to our port (`bytes` starts at the IPv4 header).
fn stamp_of(ip_bytes: &[u8]) -> Option<(u64, u64)> {
    let ip = ipv4::Packet::new_checked(ip_bytes).ok()?;
    if ip.protocol() != ipv4::PROTO_UDP {
        return None;
    }
    let u = udp::Datagram::new_checked(ip.payload()).ok()?;
    if u.dst_port() != DPORT {
        return None;
    }
    read_stamp(u.payload())
}

fn esp_packet(
    m: &mut Mbuf,
    sas: &mut [InboundSa],
    by_spi: &HashMap<u32, usize>,
    sample: bool,
    now: u64,
    lat: &mut Latency,
    st: &mut RxStats,
) -> bool {
    let Some((off, spi)) = esp_offset(m.data()) else {
        return false;
    };
    let Some(sa) = by_spi.get(&spi).and_then(|&i| sas.get_mut(i)) else {
        return false;
    };
    if !sample {
        return true;
    }
    match decap(sa, m, off) {
        Ok(()) => {
            st.samples_ok += 1;
            match stamp_of(m.data()) {
                Some((_, tsc)) => lat.record(tsc, now),
                None => st.bad_stamps += 1,
            }
        }
        Err(e) => {
            st.samples_failed += 1;
            if e == DecapError::Auth {
                st.auth_failures += 1;
            }
        }
    }
    true
}

fn clear_packet(m: &Mbuf, tx_tsc: &[u64], now: u64, lat: &mut Latency, st: &mut RxStats) -> bool {
    let Ok(eth) = ethernet::Frame::new_checked(m.data()) else {
        return false;
    };
    if eth.ethertype() != ethernet::ETHERTYPE_IPV4 {
        return false;
    }
    let Some((index, _)) = stamp_of(eth.payload()) else {
        return false;
    };
    match usize::try_from(index).ok().and_then(|i| tx_tsc.get(i)) {
        Some(&sent) => lat.record(sent, now),
        None => st.bad_stamps += 1,
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::traffic::ClearFrames;
    use dataplane::esp::crypto::Algorithm;
    use dataplane::esp::crypto::Backend;
    use dataplane::esp::encap;
    use dataplane::esp::replay::ReplayWindow;
    use dataplane::packet::{PacketBuf, VecBuf};
    use dataplane::sa::{InboundParams, OutboundParams, OutboundSa};
    use dataplane::testkit;
    use std::net::Ipv4Addr;

    /// An ESP frame as the gateway sends it (Ethernet + outer IPv4 [+ UDP] + ESP), carrying a
    /// cleartext frame stamped with (seq 7, TSC 1234), and the SA that opens it.
    fn esp_frame(udp: Option<(u16, u16)>) -> (Vec<u8>, InboundSa) {
        let km = testkit::keymat(Algorithm::Aes128Gcm, 0);
        let tunnel = testkit::tunnel(udp);
        let p = OutboundParams::new(0x100000, false, tunnel);
        let mut out = OutboundSa::new(p, &km, testkit::counters(), &Backend::Ring).unwrap();
        let mut clear = vec![0u8; 60];
        let (src, dst) = (Ipv4Addr::new(10, 1, 0, 10), Ipv4Addr::new(10, 128, 0, 0));
        assert!(ClearFrames::build_to(
            &mut clear, &[0; 14], src, dst, 1024, 7, 7
        ));
        clear[crate::traffic::TSC_OFF..crate::traffic::TSC_OFF + 8]
            .copy_from_slice(&1234u64.to_be_bytes());
        let mut b = VecBuf::new(&clear[ethernet::HEADER_LEN..]);
        encap(&mut out, &mut b).unwrap();
        b.prepend(14)
            .unwrap()
            .copy_from_slice(&[2, 0, 0, 0, 2, 2, 2, 0, 0, 0, 2, 1, 8, 0]);
        let p = InboundParams {
            tunnel: 0,
            tcp_mss: 0,
            spi: 0x100000,
            esn: false,
            local: Ipv4Addr::new(192, 0, 2, 2),
            udp_encap: udp.is_some(),
            selectors: Default::default(),
            soft: Default::default(),
            hard: Default::default(),
        };
        let w = ReplayWindow::new(0, false);
        let sa = InboundSa::new(p, &km, w, testkit::counters(), &Backend::Ring).unwrap();
        (b.data().to_vec(), sa)
    }

    #[test]
    fn finds_esp_and_opens_the_stamp() {
        for udp in [None, Some((4500, 4500))] {
            let (frame, mut sa) = esp_frame(udp);
            let (off, spi) = esp_offset(&frame).unwrap();
            assert_eq!(
                (off, spi),
                (34 + if udp.is_some() { 8 } else { 0 }, 0x100000)
            );
            let mut b = VecBuf::new(&frame);
            decap(&mut sa, &mut b, off).unwrap();
            assert_eq!(stamp_of(b.data()), Some((7, 1234)));
            // A flipped ciphertext bit fails authentication.
            let mut bad = VecBuf::new(&frame);
            bad.data_mut()[off + 20] ^= 1;
            assert_eq!(decap(&mut sa, &mut bad, off), Err(DecapError::Auth));
        }
    }

    #[test]
    fn never_panics_on_truncated_or_foreign_frames() {
        let (frame, _) = esp_frame(None);
        for n in 0..frame.len() {
            let _ = esp_offset(&frame[..n]);
            let _ = stamp_of(&frame[..n]);
            let _ = stamp_of(&frame[14..n.max(14)]);
        }
        let mut arp = frame.clone();
        arp[12..14].copy_from_slice(&[8, 6]);
        assert_eq!(esp_offset(&arp), None);
        let mut icmp = frame;
        icmp[14 + 9] = 1;
        assert_eq!(esp_offset(&icmp), None);
        assert_eq!(stamp_of(&icmp[14..]), None);
    }
}
