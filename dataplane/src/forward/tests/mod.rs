//! The whole pipeline between two gateways, frame in to frame out, with plain buffers: each
//! gateway a control state and its workers' forwarders (`testkit::Gateway`), built and changed
//! through plain-data changes as the dataplane is.

mod batch;
mod changes;
mod handoff;
mod ipv6;
mod ipv6_outer;
mod ipv6_tunnel;
mod lookahead;
mod pipeline;
mod policies;

use super::*;
use crate::packet::VecBuf;
use crate::testkit::Gateway;
use crate::wire::ethernet::{self, Mac};
use crate::wire::{checksum, icmp, ipv4};
use channel::{Change, Name};
use proptest::prelude::*;

const GW1_LAN: Mac = Mac([2, 0, 0, 0, 1, 1]);
const GW1_WAN: Mac = Mac([2, 0, 0, 0, 0xa, 1]);
const GW2_WAN: Mac = Mac([2, 0, 0, 0, 0xa, 2]);
const GW2_LAN: Mac = Mac([2, 0, 0, 0, 2, 1]);
const HOST_A: Mac = Mac([2, 0, 0, 0, 1, 0x10]);
const HOST_B: Mac = Mac([2, 0, 0, 0, 2, 0x10]);
const K1: &str = "4a4b4c4d4e4f505152535455565758595a5b5c5d";
const K2: &str = "606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f80818283";

fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

fn name(s: &str) -> Name {
    Name::new(s).unwrap()
}

/// gw1 (10.1.0.1 | 192.0.2.1) and gw2 (192.0.2.2 | 10.2.0.1), mirrored SAs, one worker.
fn gateway(first: bool, udp: bool, extra: impl FnOnce(&mut serde_json::Value)) -> Gateway {
    gateway_workers(first, udp, 1, extra)
}

/// The same gateway with `n` workers in one anchor group.
fn gateway_workers(
    first: bool,
    udp: bool,
    n: u32,
    extra: impl FnOnce(&mut serde_json::Value),
) -> Gateway {
    let (lan, lan_net, wan, peer, remote_net, host, host_mac, peer_mac, lan_mac, wan_mac) = if first
    {
        (
            "10.1.0.1/24",
            "10.1",
            "192.0.2.1",
            "192.0.2.2",
            "10.2.0.0/16",
            "10.1.0.10",
            HOST_A,
            GW2_WAN,
            GW1_LAN,
            GW1_WAN,
        )
    } else {
        (
            "10.2.0.1/24",
            "10.2",
            "192.0.2.2",
            "192.0.2.1",
            "10.1.0.0/16",
            "10.2.0.10",
            HOST_B,
            GW1_WAN,
            GW2_LAN,
            GW2_WAN,
        )
    };
    let _ = lan_net;
    let (out_spi, in_spi, out_key, in_key, out_alg, in_alg) = if first {
        ("0x1001", "0x2001", K1, K2, "aes-128-gcm", "aes-256-gcm")
    } else {
        ("0x2001", "0x1001", K2, K1, "aes-256-gcm", "aes-128-gcm")
    };
    let mut v = serde_json::json!({
        "dataplane": {"workers": [1]},
        "interfaces": [{"name": "lan0", "port": 0, "address": lan, "mac": lan_mac.to_string()},
                       {"name": "wan0", "port": 1, "address": format!("{wan}/24"), "mac": wan_mac.to_string()}],
        "neighbors": [{"address": peer, "mac": peer_mac.to_string()}, {"address": host, "mac": host_mac.to_string()}],
        "tunnels": [{"name": "st0.0", "local": wan, "remote": peer}],
        "routes": [{"prefix": remote_net, "via": "st0.0"}],
        "manual_sas": [
            {"tunnel": "st0.0", "direction": "out", "spi": out_spi, "algorithm": out_alg, "key": out_key, "esn": true},
            {"tunnel": "st0.0", "direction": "in", "spi": in_spi, "algorithm": in_alg, "key": in_key, "esn": true}
        ]
    });
    if udp {
        v["tunnels"][0]["udp_encap"] = serde_json::json!({});
    }
    extra(&mut v);
    let lcores: Vec<u32> = (1..=n).collect();
    Gateway::new(&v.to_string(), &lcores, &crate::esp::crypto::Backend::Ring).unwrap()
}

/// An Ethernet frame carrying IPv4 `proto` from `src` to `dst` with `payload`.
fn frame(
    dst_mac: Mac,
    src_mac: Mac,
    src: &str,
    dst: &str,
    ttl: u8,
    proto: u8,
    payload: &[u8],
) -> Vec<u8> {
    let mut v = vec![0u8; 14];
    ethernet::Repr {
        dst: dst_mac,
        src: src_mac,
        ethertype: ethernet::ETHERTYPE_IPV4,
    }
    .emit((&mut v[..14]).try_into().unwrap());
    let mut h = [0u8; 20];
    ipv4::Repr {
        tos: 0,
        ident: 7,
        dont_frag: true,
        ttl,
        protocol: proto,
        src: ip(src),
        dst: ip(dst),
        payload_len: payload.len(),
    }
    .emit(&mut h);
    v.extend_from_slice(&h);
    v.extend_from_slice(payload);
    v
}

fn udp_payload(n: usize) -> Vec<u8> {
    let mut p = vec![0x30, 0x39, 0x00, 0x35, 0, 0, 0, 0];
    p[4..6].copy_from_slice(&((8 + n) as u16).to_be_bytes());
    p.extend((0..n).map(|i| i as u8));
    p
}

fn a_to_b(ttl: u8, n: usize) -> Vec<u8> {
    frame(
        GW1_LAN,
        HOST_A,
        "10.1.0.10",
        "10.2.0.10",
        ttl,
        ipv4::PROTO_UDP,
        &udp_payload(n),
    )
}

/// One frame received on `port`, as a burst of one: its verdict and what the buffer holds.
fn run(f: &mut Forwarder, port: u16, bytes: &[u8]) -> (Verdict, Vec<u8>) {
    let mut b = [VecBuf::new(bytes)];
    let mut v = [f.receive(port, &mut b[0])];
    f.complete(&mut b, &mut v);
    (v[0], b[0].data().to_vec())
}

/// A packet another worker handed over, resumed as a burst of one.
fn resume(f: &mut Forwarder, b: &mut VecBuf, r: Resume) -> Verdict {
    let mut v = [f.resume(b, r)];
    f.complete(std::slice::from_mut(b), &mut v);
    v[0]
}

/// The next-hop resolutions a gateway's bursts asked for, taken.
fn resolutions(f: &mut Forwarder) -> Vec<(u16, std::net::IpAddr)> {
    let mut r = Vec::new();
    f.events.retain(|e| match *e {
        Event::Resolve { port, addr } => {
            r.push((port, addr));
            false
        }
        _ => true,
    });
    r
}

/// A second tunnel between the same gateways, SPIs 0x1002/0x2002: gw1 routes 10.2.0.0/25 (host
/// b) into it, the rest of 10.2.0.0/16 (say 10.2.0.200, also on gw2's LAN) into st0.0.
fn second_tunnel(first: bool) -> impl FnOnce(&mut serde_json::Value) {
    move |v| {
        let (local, remote) = if first {
            ("192.0.2.1", "192.0.2.2")
        } else {
            ("192.0.2.2", "192.0.2.1")
        };
        v["tunnels"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!({"name": "st0.1", "local": local, "remote": remote}));
        if first {
            v["routes"]
                .as_array_mut()
                .unwrap()
                .push(serde_json::json!({"prefix": "10.2.0.0/25", "via": "st0.1"}));
        } else {
            let n = serde_json::json!({"address": "10.2.0.200", "mac": HOST_B.to_string()});
            v["neighbors"].as_array_mut().unwrap().push(n);
        }
        let (out_spi, in_spi) = if first {
            ("0x1002", "0x2002")
        } else {
            ("0x2002", "0x1002")
        };
        let sas = v["manual_sas"].as_array_mut().unwrap();
        sas.push(serde_json::json!({"tunnel": "st0.1", "direction": "out", "spi": out_spi, "algorithm": "aes-128-gcm", "key": K1}));
        sas.push(serde_json::json!({"tunnel": "st0.1", "direction": "in", "spi": in_spi, "algorithm": "aes-128-gcm", "key": K1}));
    }
}

/// IPv4 `proto` from the peer gateway (192.0.2.2) to gw1's WAN address.
fn to_us(proto: u8, payload: &[u8]) -> Vec<u8> {
    frame(
        GW1_WAN,
        GW2_WAN,
        "192.0.2.2",
        "192.0.2.1",
        64,
        proto,
        payload,
    )
}

/// UDP 4500 to 4500 (NAT-T) carrying `payload`, from the peer gateway to gw1.
fn natt(payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x11, 0x94, 0x11, 0x94, 0, 0, 0, 0];
    p[4..6].copy_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    p.extend_from_slice(payload);
    to_us(ipv4::PROTO_UDP, &p)
}
