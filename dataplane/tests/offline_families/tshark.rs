//! tshark's view of what the gateway sent: with only the outbound SAs' keys it decrypts every
//! ESP frame (raw, or in UDP through its "udpencap" dissector) and must show, field by field,
//! what RFC 4303 (and RFC 3948) say the frame holds.

use super::packets::{addr, hop, padding};
use super::{is_v6, sh, PerTunnel, Tunnel, GW_WAN, HOPS, OUTER_HOPS, TUNNELS};
use dataplane::wire::ethernet;
use std::process::Command;

/// tshark's decode of an outbound ESP frame: these fields, in this order. The last three are
/// bytes. A field of a protocol present twice (IPv4 in IPv4, UDP in ESP in UDP) lists the
/// outer header's value first.
const FIELDS: [&str; 23] = [
    "eth.dst",
    "eth.src",
    "frame.protocols",
    "ip.src",
    "ip.dst",
    "ip.ttl",
    "ip.flags.df",
    "ip.checksum.status",
    "ipv6.src",
    "ipv6.dst",
    "ipv6.hlim",
    "udp.srcport",
    "udp.dstport",
    "udp.length",
    "udp.checksum",
    "udp.checksum.status",
    "esp.spi",
    "esp.sequence",
    "esp.protocol",
    "esp.pad_len",
    "esp.pad",
    "esp.contained_data",
    "udp.payload",
];

/// Wireshark's checksum statuses (`udp.checksum.status`): verified good, and absent (an IPv4
/// UDP checksum of 0).
const GOOD: &str = "1";
const NOT_PRESENT: &str = "3";

/// The UDP header fields (`udp.srcport` .. `udp.checksum.status`) of datagram `u`, sent as
/// it is in IP packet `ip`, as tshark must show them.
fn udp_fields(ip: &[u8], u: &[u8]) -> [String; 5] {
    let word = |at: usize| u16::from_be_bytes([u[at], u[at + 1]]);
    let status = if ip[0] >> 4 == 6 { GOOD } else { NOT_PRESENT };
    [
        word(0).to_string(),
        word(2).to_string(),
        word(4).to_string(),
        format!("0x{:04x}", word(6)),
        status.to_string(),
    ]
}

/// Field `i` of each header, outer first, as tshark lists a field present more than once.
fn col<const N: usize>(hs: &[[String; N]], i: usize) -> String {
    hs.iter()
        .map(|h| h[i].as_str())
        .collect::<Vec<_>>()
        .join(",")
}

/// What tshark must show for `inner` (as the gateway received it) sent through `t` as ESP
/// sequence number `seq` in Ethernet frame `frame`.
fn expected_row(t: &Tunnel, inner: &[u8], seq: usize, frame: &[u8]) -> Vec<String> {
    let out = hop(inner);
    let (outer6, inner6) = (is_v6(t), inner[0] >> 4 == 6);
    // (src, dst, hops) of the IPv4 headers, and of the IPv6 ones, outer first.
    let mut v4: Vec<[String; 3]> = Vec::new();
    let mut v6: Vec<[String; 3]> = Vec::new();
    let outer = [
        t.local.to_string(),
        t.remote.to_string(),
        OUTER_HOPS.to_string(),
    ];
    if outer6 { &mut v6 } else { &mut v4 }.push(outer);
    let (src, dst) = (addr(inner, false), addr(inner, true));
    let fields = [src.to_string(), dst.to_string(), (HOPS - 1).to_string()];
    if inner6 { &mut v6 } else { &mut v4 }.push(fields);
    let hl = if inner6 { 40 } else { 20 };
    let pad = padding(inner.len());
    // The UDP headers. RFC 3948's: ports 4500 both, around the whole ESP packet (SPI,
    // sequence number, IV, the inner packet, padding, pad length, next header, ICV), its
    // checksum 0 over IPv4; over IPv6, which forbids 0, whatever is on the wire, so long as
    // tshark finds it good. Then the host's own, as sent. And their payloads: the ESP packet
    // as sent, the host's data.
    let (mut udp, mut udp_payloads) = (Vec::new(), Vec::new());
    if t.udp {
        let at = 14 + if outer6 { 40 } else { 20 };
        let esp_len = 8 + 8 + inner.len() + pad.len() + 2 + 16;
        let (checksum, status) = if outer6 {
            (u16::from_be_bytes([frame[at + 6], frame[at + 7]]), GOOD)
        } else {
            (0, NOT_PRESENT)
        };
        let len = (8 + esp_len).to_string();
        let checksum = format!("0x{checksum:04x}");
        udp.push(["4500", "4500", &len, &checksum, status].map(String::from));
        udp_payloads.push(hex::encode(&frame[at + 8..]));
    }
    udp.push(udp_fields(&out, &out[hl..]));
    udp_payloads.push(hex::encode(&out[hl + 8..]));
    // Every IPv4 header has DF (the inner one as sent; the outer one copied from it, or set
    // for IPv6, which nothing on the way may fragment) and a good checksum (1).
    let each_v4 = |v: &str| vec![v; v4.len()].join(",");
    let name = |v6: bool| if v6 { "ipv6" } else { "ip" };
    let encap = if t.udp { "udp:udpencap:esp" } else { "esp" };
    let mut row = vec![
        ethernet::Mac(t.peer).to_string(),
        ethernet::Mac(GW_WAN).to_string(),
        format!(
            "eth:ethertype:{}:{encap}:{}:udp:data",
            name(outer6),
            name(inner6)
        ),
        col(&v4, 0),
        col(&v4, 1),
        col(&v4, 2),
        each_v4("1"),
        each_v4("1"),
        col(&v6, 0),
        col(&v6, 1),
        col(&v6, 2),
    ];
    row.extend((0..5).map(|i| col(&udp, i)));
    row.extend([
        format!("0x{:08x}", t.out_spi),
        seq.to_string(),
        // RFC 4303 next header: IP-in-IP (4) or IPv6 (41).
        if inner6 { "0x29" } else { "0x04" }.to_string(),
        pad.len().to_string(),
        hex::encode(&pad),
        hex::encode(&out),
        udp_payloads.join(","),
    ]);
    row
}

/// tshark, knowing only the outbound SAs' keys, finds every packet sent into each tunnel, in
/// order, with sequence numbers 1, 2, 3, ...: `frames` as the WAN port sent them, `sent[t]`
/// the inner packets as they went into tunnel `t`.
pub fn tshark_decodes(wan_out: &std::path::Path, frames: &[Vec<u8>], sent: &PerTunnel) {
    let mut cmd = Command::new("tshark");
    cmd.args(["-n", "-r"])
        .arg(wan_out)
        .args(["-o", "esp.enable_encryption_decode:TRUE"])
        .args(["-o", "ip.check_checksum:TRUE"])
        .args(["-o", "udp.check_checksum:TRUE"]);
    for t in &TUNNELS {
        let family = if is_v6(t) { "IPv6" } else { "IPv4" };
        cmd.arg("-o").arg(format!(
            "uat:esp_sa:\"{family}\",\"{}\",\"{}\",\"0x{:08x}\",\"AES-GCM with 16 octet ICV [RFC4106]\",\"0x{}\",\"NULL\",\"\"",
            t.local, t.remote, t.out_spi, t.out_key
        ));
    }
    cmd.args(["-Y", "esp", "-T", "fields", "-E", "separator=/t"]);
    for f in FIELDS {
        cmd.args(["-e", f]);
    }
    let decoded = sh(&mut cmd);
    let rows: Vec<Vec<String>> = decoded
        .lines()
        .map(|l| {
            l.split('\t')
                .enumerate()
                // Older tsharks print bytes with colons.
                .map(|(i, c)| {
                    if i >= FIELDS.len() - 3 {
                        c.replace(':', "")
                    } else {
                        c.to_string()
                    }
                })
                .collect()
        })
        .collect();
    // Only ESP on the WAN: row i is frame i.
    assert_eq!(rows.len(), frames.len(), "{decoded}");
    let spi_field = FIELDS.iter().position(|f| *f == "esp.spi").unwrap();
    for (ti, t) in TUNNELS.iter().enumerate() {
        let spi = format!("0x{:08x}", t.out_spi);
        let got: Vec<(&Vec<String>, &Vec<u8>)> = rows
            .iter()
            .zip(frames)
            .filter(|(r, _)| r.get(spi_field) == Some(&spi))
            .collect();
        assert_eq!(got.len(), sent[ti].len(), "{} in tshark: {decoded}", t.name);
        for (i, ((row, frame), p)) in got.iter().zip(&sent[ti]).enumerate() {
            let want = expected_row(t, p, i + 1, frame);
            for (f, (g, w)) in FIELDS.iter().zip(row.iter().zip(&want)) {
                assert_eq!(g, w, "{} outbound packet {i}, tshark's {f}", t.name);
            }
            assert_eq!(row.len(), FIELDS.len());
        }
    }
}
