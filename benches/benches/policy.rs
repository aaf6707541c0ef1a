//! The policy lookup of policy-based VPNs (`dataplane::forward::policy`): nanoseconds per
//! packet for 10 to 10 000 policies, against a scan of the list in order (what a naive SPD
//! does), in the same run. The policies are a VPN hub's: each a /24 of ours to a /24 of one
//! branch, a few by protocol and port, and a catch-all at the end; the packets hit rules all
//! over the list.
//!
//! `cargo bench -p espgw-benches --bench policy`

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use dataplane::forward::policy::{Action, Classifier, Key, Rule, ANY_PORT};
use ipnet::Ipv4Net;
use std::hint::black_box;
use std::net::Ipv4Addr;

fn net(a: u32, len: u8) -> Ipv4Net {
    Ipv4Net::new(Ipv4Addr::from(a), len).unwrap().trunc()
}

/// `n` rules: branch i's /24 (10.128.0.0 + i) from our 10.1.(i % 256).0/24; every tenth
/// only for TCP 443; then a /16 deny and a catch-all permit.
fn rules(n: u32) -> Vec<Rule> {
    let mut v: Vec<Rule> = (0..n)
        .map(|i| Rule {
            src: net(0x0a01_0000 | (i % 256) << 8, 24),
            dst: net(0x0a80_0000 + (i << 8), 24),
            protocol: if i % 10 == 0 { 6 } else { 0 },
            src_ports: ANY_PORT,
            dst_ports: if i % 10 == 0 { (443, 443) } else { ANY_PORT },
            action: Action::Tunnel(i),
        })
        .collect();
    v.push(Rule {
        src: net(0x0a01_0000, 16),
        dst: net(0xc0a8_0000, 16),
        protocol: 0,
        src_ports: ANY_PORT,
        dst_ports: ANY_PORT,
        action: Action::Deny,
    });
    v.push(Rule {
        src: net(0, 0),
        dst: net(0, 0),
        protocol: 0,
        src_ports: ANY_PORT,
        dst_ports: ANY_PORT,
        action: Action::Permit,
    });
    v
}

/// 256 packets, each to a rule spread over the list (host .5 to .9 of each /24).
fn packets(n: u32) -> Vec<Key> {
    (0..256u32)
        .map(|j| {
            let i = j.wrapping_mul(2_654_435_761) % n.max(1);
            Key {
                src: 0x0a01_0000 | (i % 256) << 8 | 5,
                dst: 0x0a80_0000 + (i << 8) + 9,
                protocol: 6,
                ports: Some((40_000, 443)),
            }
        })
        .collect()
}

fn policy(c: &mut Criterion) {
    let mut g = c.benchmark_group("policy");
    for n in [10u32, 100, 1000, 10_000] {
        let list = rules(n);
        let keys = packets(n);
        let classifier = Classifier::new(list.clone());
        g.throughput(Throughput::Elements(keys.len() as u64));
        g.bench_with_input(BenchmarkId::new("tuple_space", n), &keys, |b, keys| {
            b.iter(|| {
                for k in keys {
                    black_box(classifier.classify(black_box(k)));
                }
            })
        });
        if n <= 1000 {
            g.bench_with_input(BenchmarkId::new("linear_scan", n), &keys, |b, keys| {
                b.iter(|| {
                    for k in keys {
                        black_box(list.iter().position(|r| r.matches(black_box(k))));
                    }
                })
            });
        }
    }
    g.finish();
}

criterion_group!(benches, policy);
criterion_main!(benches);
