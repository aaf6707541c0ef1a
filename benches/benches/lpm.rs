//! Route lookups: IPv4's 16-8-8 trie (`forward::lpm`) beside IPv6's per-length hash
//! (`forward::lpm6`), each over a table shaped like a gateway's (a default route, many
//! subnet routes, host routes), looked up for addresses spread over it; for IPv6 also with
//! more distinct prefix lengths, since it probes once per length in use.
//!
//! cargo bench -p espgw-benches --bench lpm

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use dataplane::forward::lpm::Lpm;
use dataplane::forward::lpm6::Lpm6;
use dataplane::mem::Memory;
use std::hint::black_box;
use std::net::{Ipv4Addr, Ipv6Addr};

const ROUTES: u32 = 10_000;
const PROBES: usize = 1024;

/// A cheap spread of numbers (splitmix64), so that every run looks up the same addresses.
fn spread(i: u64) -> u64 {
    let mut z = i.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn ipv4(c: &mut Criterion) {
    let mut t = Lpm::new(Memory::Heap, -1, 4 * ROUTES).expect("trie");
    t.insert(Ipv4Addr::UNSPECIFIED, 0, 0).expect("default");
    for i in 0..ROUTES {
        let a = Ipv4Addr::from(0x0a00_0000 | (i << 8));
        t.insert(a, 24, i + 1).expect("/24");
        t.insert(Ipv4Addr::from(u32::from(a) | 1), 32, i + 1)
            .expect("/32");
    }
    let probes: Vec<Ipv4Addr> = (0..PROBES as u64)
        .map(|i| Ipv4Addr::from(0x0a00_0000 | (spread(i) as u32 & 0x00ff_ffff)))
        .collect();
    let mut g = c.benchmark_group("lpm");
    g.throughput(Throughput::Elements(PROBES as u64));
    g.bench_function("ipv4 /0 /24 /32", |b| {
        b.iter(|| {
            probes
                .iter()
                .filter_map(|a| t.lookup(black_box(*a)))
                .count()
        })
    });
    g.finish();
}

fn ipv6(c: &mut Criterion) {
    let mut g = c.benchmark_group("lpm");
    g.throughput(Throughput::Elements(PROBES as u64));
    // A gateway's usual lengths, then one with a dozen lengths in use.
    for lengths in [
        &[0u8, 48, 64, 128][..],
        &[0, 32, 40, 44, 48, 52, 56, 60, 64, 96, 120, 128],
    ] {
        let mut t = Lpm6::new(Memory::Heap, -1, ROUTES * lengths.len() as u32).expect("table");
        for i in 0..ROUTES {
            let base = (0x2001_0db8u128 << 96) | (u128::from(i) << 64);
            for &l in lengths {
                t.insert(Ipv6Addr::from(base | 1), l, i + 1)
                    .expect("insert");
            }
        }
        let probes: Vec<Ipv6Addr> = (0..PROBES as u64)
            .map(|i| {
                let r = spread(i);
                let net = u128::from(r as u32 % (2 * ROUTES));
                Ipv6Addr::from((0x2001_0db8u128 << 96) | (net << 64) | u128::from(r >> 60))
            })
            .collect();
        let id = BenchmarkId::new("ipv6 lengths", lengths.len());
        g.bench_with_input(id, &probes, |b, probes| {
            b.iter(|| {
                probes
                    .iter()
                    .filter_map(|a| t.lookup(black_box(*a)))
                    .count()
            })
        });
    }
    g.finish();
}

criterion_group!(benches, ipv4, ipv6);
criterion_main!(benches);
