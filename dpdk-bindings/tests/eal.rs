//! End-to-end test against a real EAL with virtual devices. The EAL can be
//! initialized once per process, so everything runs in one #[test].

#![warn(clippy::undocumented_unsafe_blocks)]

use std::ffi::c_void;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dpdk_sys::port::port_name;
use dpdk_sys::{eal, lcore, mbuf, sys, Eal, Mbuf, Mempool, Port, PortConfig, Ring};

/// Packets per burst in these checks.
const MAX_BURST: usize = 32;

const POOL_SIZE: u32 = 1023;

#[test]
fn eal_end_to_end() {
    if skip() {
        return;
    }
    let (cpu_main, cpu_worker) = two_cpus();
    let args: Vec<String> = [
        "--no-pci",
        "--no-huge",
        "-m",
        "256",
        "--file-prefix",
        &format!("dpdksys-test-{}", std::process::id()),
        "--no-telemetry",
        // lcore 0 and 1 on the first two CPUs we may run on (the same CPU
        // twice on a single-CPU machine).
        &format!("--lcores=0@{cpu_main},1@{cpu_worker}"),
        "--vdev",
        "net_ring0",
        "--vdev",
        "net_null0",
        "--log-level=warning",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();

    let eal = Eal::init(&args).expect("EAL init");
    let runtime_dir = runtime_dir();
    let again = Eal::init(&args).expect_err("second init must fail");
    assert_eq!(again.errno(), libc::EALREADY);

    check_lcore_queries(&eal);
    let pool = Mempool::pktmbuf(
        "dpdksys_pool",
        POOL_SIZE,
        32,
        mbuf::DEFAULT_BUF_SIZE,
        eal.lcore_socket(0),
    )
    .expect("pool");
    assert_eq!(pool.available(), POOL_SIZE);
    assert_eq!(pool.in_use(), 0);
    let dup = Mempool::pktmbuf("dpdksys_pool", 63, 0, mbuf::DEFAULT_BUF_SIZE, -1)
        .expect_err("duplicate name");
    assert_eq!(dup.errno(), libc::EEXIST);

    check_mbuf_editing(&pool);
    check_pool_exhaustion_and_leak_guard();

    assert_eq!(dpdk_sys::port_count(), 2);
    let ring_id = find_port("net_ring0");
    let null_id = find_port("net_null0");
    check_queue_clamping(ring_id, &pool);

    let rss = PortConfig {
        rss: true,
        ..PortConfig::default()
    };
    let mut ring_port = Port::configure(ring_id, &rss, &pool).expect("configure net_ring0");
    let mut null_port = Port::configure(null_id, &rss, &pool).expect("configure net_null0");
    check_rss_masking(&ring_port, &null_port);
    assert_eq!((ring_port.rx_queues(), ring_port.tx_queues()), (1, 1));
    assert_eq!(ring_port.name(), "net_ring0");
    ring_port.start().expect("start ring");
    null_port.start().expect("start null");
    assert!(ring_port.link_up() && null_port.link_up());
    ring_port.promiscuous(true).expect("promiscuous ring");
    null_port.promiscuous(true).expect("promiscuous null");
    check_mac(&mut null_port);

    check_ring_port_loopback(&ring_port, &pool);
    check_null_port(&null_port, &pool);
    check_ring_fifo(&pool);
    check_launch();
    check_worker_ring_handoff(&pool);

    drop(ring_port);
    drop(null_port);
    assert_eq!(pool.in_use(), 0, "every mbuf must be back in the pool");
    assert_eq!(pool.available(), POOL_SIZE);
    drop(pool);

    drop(eal);
    assert!(!eal::is_running());
    // rte_eal_cleanup leaves the per-prefix runtime dir (a few MB in /run).
    std::fs::remove_dir_all(&runtime_dir).expect("remove EAL runtime dir");
    let after = Ring::new("after_cleanup", 8, -1, false, false).expect_err("EAL is gone");
    assert_eq!(after.errno(), libc::ENODEV);
}

/// `/var/run/dpdk/<file-prefix>` (or the XDG equivalent), unique to this run.
fn runtime_dir() -> std::path::PathBuf {
    // SAFETY: returns a pointer to EAL's static runtime-dir string.
    let dir = unsafe { std::ffi::CStr::from_ptr(sys::rte_eal_get_runtime_dir()) };
    let dir = std::path::PathBuf::from(dir.to_str().expect("UTF-8 runtime dir"));
    assert!(
        dir.ends_with(format!("dpdksys-test-{}", std::process::id())),
        "{dir:?}"
    );
    dir
}

/// Without root the EAL usually cannot start; skip locally, but CI must run.
fn skip() -> bool {
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    if !root && !ci {
        println!("skipping eal_end_to_end: needs root (set CI=true to force)");
        return true;
    }
    false
}

/// First two CPUs of our affinity mask (the same one twice if only one).
fn two_cpus() -> (usize, usize) {
    // SAFETY: cpu_set_t is plain data; zero is a valid empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: set is a live cpu_set_t of the size passed.
    let rc =
        unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) };
    assert_eq!(rc, 0, "sched_getaffinity");
    // SAFETY: CPU_ISSET only reads the set.
    let cpus: Vec<usize> = (0..libc::CPU_SETSIZE as usize)
        .filter(|&c| unsafe { libc::CPU_ISSET(c, &set) })
        .collect();
    let first = cpus[0];
    (first, cpus.get(1).copied().unwrap_or(first))
}

fn check_lcore_queries(eal: &Eal) {
    assert_eq!(eal.lcore_count(), 2);
    assert_eq!(eal.main_lcore(), 0);
    assert!(eal.is_lcore_enabled(0) && eal.is_lcore_enabled(1));
    assert!(!eal.is_lcore_enabled(2));
    assert!(!eal.is_lcore_enabled(u32::MAX));
    assert!(eal.lcore_socket(0) >= 0);
    assert_eq!(eal.lcore_socket(u32::MAX), -1);
    assert_eq!(
        eal::current_lcore(),
        0,
        "init thread becomes the main lcore"
    );
    assert!(eal::tsc_hz() > 1_000_000, "tsc_hz {}", eal::tsc_hz());
    let t0 = eal::tsc();
    std::thread::sleep(Duration::from_millis(2));
    assert!(eal::tsc() > t0);
    assert_eq!(lcore::worker_lcores().collect::<Vec<_>>(), vec![1]);
}

fn check_mbuf_editing(pool: &Mempool) {
    let mut m = pool.alloc().expect("alloc");
    assert_eq!(pool.in_use(), 1);
    assert!(m.is_empty() && m.is_contiguous());
    assert_eq!(m.headroom(), mbuf::HEADROOM);
    let room = m.tailroom();
    assert_eq!(
        usize::from(room),
        usize::from(mbuf::DEFAULT_BUF_SIZE - mbuf::HEADROOM)
    );

    let tail = m.append(10).expect("append");
    tail.copy_from_slice(&[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    assert_eq!(m.data(), &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    assert_eq!(m.tailroom(), room - 10);

    m.prepend(4).expect("prepend").fill(0xaa);
    assert_eq!(
        m.data(),
        &[0xaa, 0xaa, 0xaa, 0xaa, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9]
    );
    assert_eq!(
        (m.len(), m.data_len(), m.headroom()),
        (14, 14, mbuf::HEADROOM - 4)
    );

    assert!(m.adj(2));
    assert!(m.trim(3));
    assert_eq!(m.data(), &[0xaa, 0xaa, 0, 1, 2, 3, 4, 5, 6]);
    assert_eq!(m.len(), 9);

    m.data_mut()[2] = 0x55;
    assert_eq!(m.data()[..3], [0xaa, 0xaa, 0x55]);

    // Failed edits return None/false and leave the packet untouched.
    assert!(m.prepend(m.headroom() + 1).is_none());
    assert!(m.append(m.tailroom() + 1).is_none());
    assert!(!m.adj(10));
    assert!(!m.trim(10));
    assert_eq!(m.len(), 9);

    // The Rust edits match DPDK's own inline functions (through the shim), field by field.
    let mut ours = pool.alloc().expect("alloc");
    let theirs = pool.alloc().expect("alloc").into_raw();
    let fields = |p: *mut dpdk_sys::sys::rte_mbuf| {
        // SAFETY: p is a valid mbuf we own for the duration of this test.
        let r = unsafe { &*p };
        (r.data_off, r.data_len, r.pkt_len)
    };
    for (op, n) in [
        (0, 100u16),
        (1, 20),
        (2, 7),
        (3, 11),
        (1, 200),
        (2, 500),
        (3, 500),
        (0, 60000),
    ] {
        // SAFETY: theirs is a valid single-segment mbuf owned by this test.
        let dpdk_ok = unsafe {
            match op {
                0 => !dpdk_sys::sys::espgw_pktmbuf_append(theirs, n).is_null(),
                1 => !dpdk_sys::sys::espgw_pktmbuf_prepend(theirs, n).is_null(),
                2 => !dpdk_sys::sys::espgw_pktmbuf_adj(theirs, n).is_null(),
                _ => dpdk_sys::sys::espgw_pktmbuf_trim(theirs, n) == 0,
            }
        };
        let our_ok = match op {
            0 => ours.append(n).is_some(),
            1 => ours.prepend(n).is_some(),
            2 => ours.adj(n),
            _ => ours.trim(n),
        };
        assert_eq!(our_ok, dpdk_ok, "op {op} n {n}");
        assert_eq!(fields(ours.as_ptr()), fields(theirs), "op {op} n {n}");
        // SAFETY: as above; read-only queries.
        unsafe {
            assert_eq!(
                ours.headroom(),
                dpdk_sys::sys::espgw_pktmbuf_headroom(theirs)
            );
            assert_eq!(
                ours.tailroom(),
                dpdk_sys::sys::espgw_pktmbuf_tailroom(theirs)
            );
        }
    }
    drop(ours);
    // SAFETY: theirs came from into_raw and is not used again.
    drop(unsafe { dpdk_sys::Mbuf::from_raw(theirs) });

    m.set_port(7);
    assert_eq!(m.port(), 7);
    assert_eq!(m.ol_flags(), 0);
    assert_eq!(m.segments(), 1);

    // into_raw/from_raw keep ownership (no free in between).
    let raw = m.into_raw();
    assert_eq!(pool.in_use(), 1);
    // SAFETY: raw came from into_raw just above.
    let m = unsafe { Mbuf::from_raw(raw) };
    drop(m);
    assert_eq!(pool.in_use(), 0);
}

fn check_pool_exhaustion_and_leak_guard() {
    let tiny =
        Mempool::pktmbuf("dpdksys_tiny", 4, 0, mbuf::DEFAULT_BUF_SIZE, -1).expect("tiny pool");
    let held: Vec<Mbuf> = (0..4)
        .map(|_| tiny.alloc().expect("alloc from tiny"))
        .collect();
    assert!(tiny.alloc().is_none(), "pool of 4 must be exhausted");
    assert_eq!((tiny.in_use(), tiny.available()), (4, 0));
    // Dropping a pool with mbufs out leaks it instead of freeing memory the
    // mbufs still point into; freeing them afterwards must be fine.
    drop(tiny);
    drop(held);
}

fn find_port(name: &str) -> u16 {
    (0..dpdk_sys::port_count())
        .find(|&p| port_name(p).as_deref() == Some(name))
        .unwrap_or_else(|| panic!("no port named {name}"))
}

fn check_queue_clamping(port_id: u16, pool: &Mempool) {
    let many = PortConfig {
        rx_queues: 1000,
        tx_queues: 1000,
        ..PortConfig::default()
    };
    let p = Port::configure(port_id, &many, pool).expect("configure with too many queues");
    println!(
        "{}: asked 1000/1000 queues, got rx={} tx={} desc rx={} tx={}",
        p.name(),
        p.rx_queues(),
        p.tx_queues(),
        p.rx_desc(),
        p.tx_desc()
    );
    assert!((1..1000).contains(&p.rx_queues()));
    assert!((1..1000).contains(&p.tx_queues()));
    let zero = PortConfig {
        rx_queues: 0,
        ..PortConfig::default()
    };
    assert_eq!(
        Port::configure(port_id, &zero, pool).unwrap_err().errno(),
        libc::EINVAL
    );
    assert_eq!(
        Port::configure(999, &PortConfig::default(), pool)
            .unwrap_err()
            .errno(),
        libc::ENODEV
    );
}

fn check_rss_masking(ring: &Port, null: &Port) {
    // SAFETY: pure shim function returning a constant.
    let wanted = unsafe { sys::espgw_rss_hf_ip_udp_tcp() };
    println!(
        "rss_hf: net_ring0={:#x} net_null0={:#x}",
        ring.rss_hf(),
        null.rss_hf()
    );
    assert_eq!(ring.rss_hf(), 0, "net_ring has no RSS");
    assert_eq!(null.rss_hf() & !wanted, 0, "only requested hash types");
}

fn check_mac(port: &mut Port) {
    let before = port.mac().expect("mac");
    let new = [0x02, 0xe5, 0x90, 0x00, 0x00, 0x01];
    assert_ne!(before, new);
    port.set_mac(new).expect("set_mac");
    assert_eq!(port.mac().expect("mac"), new);
}

fn pattern(i: usize, j: usize) -> u8 {
    (i * 31 + j * 7) as u8
}

fn check_ring_port_loopback(port: &Port, pool: &Mempool) {
    const SENT: usize = 8;
    let before = port.stats().expect("stats");
    let mut tx: Vec<*mut sys::rte_mbuf> = (0..SENT)
        .map(|i| {
            let mut m = pool.alloc().expect("alloc");
            let len = 60 + i as u16;
            for (j, b) in m.append(len).expect("append").iter_mut().enumerate() {
                *b = pattern(i, j);
            }
            m.into_raw()
        })
        .collect();
    // SAFETY: started port, queue 0 used only by this thread, tx holds owned
    // mbufs.
    let sent = unsafe { dpdk_sys::tx_burst(port.id(), 0, &mut tx) };
    assert_eq!(sent, SENT);

    let mut rx = [std::ptr::null_mut(); MAX_BURST];
    // SAFETY: as above for RX queue 0.
    let got = unsafe { dpdk_sys::rx_burst(port.id(), 0, &mut rx) };
    assert_eq!(got, SENT, "net_ring0 loops TX back to RX");
    for (i, &raw) in rx[..got].iter().enumerate() {
        // SAFETY: rx_burst handed us ownership of these mbufs.
        let m = unsafe { Mbuf::from_raw(raw) };
        assert_eq!(m.len(), 60 + i);
        assert!(
            m.data()
                .iter()
                .enumerate()
                .all(|(j, &b)| b == pattern(i, j)),
            "packet {i} corrupted"
        );
    }
    // SAFETY: as above.
    assert_eq!(unsafe { dpdk_sys::rx_burst(port.id(), 0, &mut rx) }, 0);

    let after = port.stats().expect("stats");
    println!("net_ring0 stats before {before:?} after {after:?}");
    assert_eq!(after.opackets - before.opackets, SENT as u64);
    assert_eq!(after.ipackets - before.ipackets, SENT as u64);
}

fn check_null_port(port: &Port, pool: &Mempool) {
    let before = port.stats().expect("stats");
    let mut tx: Vec<*mut sys::rte_mbuf> = (0..4)
        .map(|_| pool.alloc().expect("alloc").into_raw())
        .collect();
    let in_use = pool.in_use();
    // SAFETY: started port, queue 0 used only by this thread, owned mbufs.
    assert_eq!(unsafe { dpdk_sys::tx_burst(port.id(), 0, &mut tx) }, 4);
    assert_eq!(pool.in_use(), in_use - 4, "net_null frees what it sends");

    let mut rx = [std::ptr::null_mut(); MAX_BURST];
    // SAFETY: as above for RX queue 0.
    let got = unsafe { dpdk_sys::rx_burst(port.id(), 0, &mut rx) };
    assert_eq!(got, MAX_BURST, "net_null RX always fills the burst");
    for &raw in &rx[..got] {
        // SAFETY: rx_burst returned valid mbufs; we only read them here.
        let (len, p) = unsafe { ((*raw).pkt_len, (*raw).port) };
        assert_eq!((len, p), (64, port.id()));
    }
    // SAFETY: rx[..got] are ours; the NULL tail is skipped.
    unsafe { mbuf::free_bulk(&mut rx) };
    assert!(rx.iter().all(|p| p.is_null()));
    assert_eq!(pool.in_use(), in_use - 4);

    let after = port.stats().expect("stats");
    assert_eq!(after.opackets - before.opackets, 4);
    assert_eq!(after.ipackets - before.ipackets, MAX_BURST as u64);
}

fn check_ring_fifo(pool: &Mempool) {
    let bad = Ring::new("dpdksys_bad", 6, -1, true, true).expect_err("6 is not a power of two");
    assert_eq!(bad.errno(), libc::EINVAL);

    let ring = Ring::new("dpdksys_ring", 8, -1, true, true).expect("ring");
    let dup = Ring::new("dpdksys_ring", 8, -1, true, true).expect_err("duplicate ring");
    assert_eq!(dup.errno(), libc::EEXIST);
    assert_eq!((ring.count(), ring.free_count()), (0, 7));

    let mut mbufs: Vec<*mut sys::rte_mbuf> = (0..10)
        .map(|_| pool.alloc().expect("alloc").into_raw())
        .collect();
    assert_eq!(ring.enqueue_mbufs(&mbufs), 7, "8-slot ring holds 7");
    assert_eq!((ring.count(), ring.free_count()), (7, 0));
    assert_eq!(ring.enqueue_mbufs(&mbufs[7..]), 0);

    let mut out = [std::ptr::null_mut(); 4];
    assert_eq!(ring.dequeue_mbufs(&mut out), 4);
    assert_eq!(out, mbufs[..4]);
    let mut rest = [std::ptr::null_mut(); 10];
    assert_eq!(ring.dequeue_mbufs(&mut rest), 3);
    assert_eq!(rest[..3], mbufs[4..7]);
    assert_eq!(ring.count(), 0);

    // Generic pointers go through unchanged too.
    let token = 0x1234usize as *mut c_void;
    assert_eq!(ring.enqueue_burst(&[token]), 1);
    let mut one = [std::ptr::null_mut(); 1];
    assert_eq!(ring.dequeue_burst(&mut one), 1);
    assert_eq!(one[0], token);

    // SAFETY: every pointer is an mbuf we own exactly once (the ring handed
    // them back unchanged).
    unsafe { mbuf::free_bulk(&mut mbufs) };
}

fn check_launch() {
    lcore::launch(1, || eal::current_lcore() as i32 + 100).expect("launch");
    assert_eq!(lcore::wait(1).expect("wait"), 101, "closure ran on lcore 1");

    lcore::launch(1, || panic!("deliberate worker panic")).expect("launch");
    assert_eq!(lcore::wait(1).expect("wait"), lcore::PANICKED);

    assert_eq!(
        lcore::launch(0, || 0).unwrap_err().errno(),
        libc::EINVAL,
        "main lcore"
    );
    assert_eq!(
        lcore::launch(5, || 0).unwrap_err().errno(),
        libc::EINVAL,
        "disabled lcore"
    );
    assert_eq!(lcore::wait(0).unwrap_err().errno(), libc::EINVAL);
    lcore::wait_all();
}

/// Main enqueues mbufs on an SP/SC ring, lcore 1 dequeues and frees them.
fn check_worker_ring_handoff(pool: &Mempool) {
    const N: usize = 200;
    let ring = Arc::new(Ring::new("dpdksys_handoff", 64, -1, true, true).expect("ring"));
    let worker_ring = Arc::clone(&ring);
    lcore::launch(1, move || {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut bytes = 0usize;
        let mut seen = 0;
        let mut buf = [std::ptr::null_mut(); MAX_BURST];
        while seen < N && Instant::now() < deadline {
            let n = worker_ring.dequeue_mbufs(&mut buf);
            for &raw in &buf[..n] {
                // SAFETY: the producer gave up ownership when enqueueing.
                bytes += unsafe { Mbuf::from_raw(raw) }.len();
            }
            seen += n;
        }
        if bytes == N * 3 {
            seen as i32
        } else {
            -2
        }
    })
    .expect("launch consumer");

    let mut pending: Vec<*mut sys::rte_mbuf> = (0..N)
        .map(|_| {
            let mut m = pool.alloc().expect("alloc");
            m.append(3).expect("append").fill(1);
            m.into_raw()
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut off = 0;
    while off < N && Instant::now() < deadline {
        off += ring.enqueue_mbufs(&pending[off..(off + MAX_BURST).min(N)]);
    }
    assert_eq!(off, N, "consumer stalled");
    pending.clear();
    assert_eq!(lcore::wait(1).expect("wait"), N as i32);
}
