use super::*;
use crate::message::{Command, Event};
use crate::{Algorithm, Change, KeyMaterial, Name, OutboundSaSpec, SaSpec};

/// A directory of the test's own, removed with everything in it when the test ends.
struct TmpDir(PathBuf);

impl TmpDir {
    fn new(test: &str) -> TmpDir {
        let dir = std::env::temp_dir().join(format!("espgw-channel-{}-{test}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        TmpDir(dir)
    }
    fn file(&self) -> PathBuf {
        self.0.join("segment")
    }
}

impl Drop for TmpDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn small() -> Layout {
    let r = RingLayout {
        slots: 8,
        slot_size: 256,
    };
    Layout {
        rings: [r; 4],
        stats_len: 4096,
        grants: 16,
        windows: 16,
    }
}

#[test]
fn a_segment_is_0600_and_attaches_with_its_generation() {
    let dir = TmpDir::new("gen");
    let path = dir.file();
    let dp = Segment::create(&path, small()).unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let ctl = Segment::attach(&path).unwrap();
    assert_eq!(ctl.generation(), dp.generation());
    assert_eq!(ctl.dataplane_pid(), std::process::id());
    assert!(!ctl.is_ready());
    dp.set_ready();
    dp.beat(42);
    assert!(ctl.is_ready());
    assert_eq!(ctl.heartbeat(), 42);
    ctl.set_control(7, 3);
    assert_eq!(dp.control(), (7, 3));
    // A new start of the dataplane (this process made the old one): a new generation, and
    // the old mapping still reads the old one.
    let old = dp.generation();
    drop(dp);
    let again = Segment::create(&path, small()).unwrap();
    assert_ne!(again.generation(), old);
    assert_eq!(ctl.generation(), old);
    assert_eq!(
        Segment::attach(&path).unwrap().generation(),
        again.generation()
    );
}

#[test]
fn a_wrong_magic_or_version_is_refused_plainly() {
    let dir = TmpDir::new("magic");
    let path = dir.file();
    std::fs::write(&path, vec![0u8; 8192]).unwrap();
    let e = Segment::attach(&path).unwrap_err();
    assert!(matches!(e, SegmentError::BadMagic { .. }), "{e}");
    assert!(e.to_string().contains("not an espgw channel"), "{e}");

    let seg = Segment::create(&path, small()).unwrap();
    // SAFETY: this test's own mapping; nothing else reads it.
    unsafe { (*seg.header_mut_ptr()).version = LAYOUT_VERSION + 1 };
    let e = Segment::attach(&path).unwrap_err();
    assert!(
        e.to_string()
            .contains(&format!("layout version {}", LAYOUT_VERSION + 1)),
        "{e}"
    );
    // SAFETY: as above.
    unsafe { (*seg.header_mut_ptr()).version = LAYOUT_VERSION };
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(4096)
        .unwrap();
    let e = Segment::attach(&path).unwrap_err();
    assert!(e.to_string().contains("the file has 4096"), "{e}");
    drop(seg);
}

#[test]
fn a_segment_of_a_live_process_is_not_taken_over() {
    let dir = TmpDir::new("live");
    let path = dir.file();
    let seg = Segment::create(&path, small()).unwrap();
    // Pretend pid 1 (always alive) made it.
    // SAFETY: this test's own mapping.
    unsafe { (*seg.header_mut_ptr()).dataplane_pid = 1 };
    let e = Segment::create(&path, small()).unwrap_err();
    assert!(matches!(e, SegmentError::InUse { pid: 1, .. }), "{e}");
    drop(seg);
}

#[test]
fn a_change_with_keys_crosses_and_leaves_no_key_behind() {
    let dir = TmpDir::new("keys");
    let path = dir.file();
    let dp = Segment::create(&path, small()).unwrap();
    let ctl = Segment::attach(&path).unwrap();
    let mut tx = ctl.producer(RingId::Commands).unwrap();
    let mut rx = dp.consumer(RingId::Commands).unwrap();
    let key = [0xc3u8; 20];
    let change = Change::SetOutboundSa(OutboundSaSpec {
        sa: SaSpec {
            tunnel: Name::new("st0.1").unwrap(),
            spi: 0x1001,
            keys: KeyMaterial::new(Algorithm::Aes128Gcm, &key).unwrap(),
            esn: true,
            soft: Default::default(),
            hard: Default::default(),
        },
        first_seq: 5,
    });
    tx.send(&Command::Change { id: 9, change }).unwrap();
    let file = || std::fs::read(&path).unwrap();
    assert!(
        file().windows(20).any(|w| w == key),
        "the key is in the slot"
    );
    let got: Command = rx.recv().unwrap().unwrap();
    let Command::Change {
        id: 9,
        change: Change::SetOutboundSa(o),
    } = got
    else {
        panic!("{got:?}")
    };
    assert_eq!(o.sa.keys.bytes(), key);
    assert_eq!((o.sa.spi, o.first_seq, o.sa.esn), (0x1001, 5, true));
    assert!(
        !file().windows(20).any(|w| w == key),
        "no key left in the segment"
    );
    assert!(rx.recv::<Command>().unwrap().is_none());

    // Garbage in a slot: refused, skipped, and the ring goes on.
    tx.ring.push(&[0xff; 30]).unwrap();
    tx.send(&Command::Hello { pid: 3 }).unwrap();
    assert!(matches!(
        rx.recv::<Command>(),
        Err(crate::RecvError::Decode(_))
    ));
    assert!(matches!(
        rx.recv::<Command>(),
        Ok(Some(Command::Hello { pid: 3 }))
    ));

    // Events the other way.
    let mut etx = dp.producer(RingId::Events).unwrap();
    let mut erx = ctl.consumer(RingId::Events).unwrap();
    let ev = Event::Refused {
        id: 9,
        error: crate::message::error_text(&"x".repeat(500)),
    };
    etx.send(&ev).unwrap();
    assert_eq!(erx.recv::<Event>().unwrap(), Some(ev));
    drop((dp, ctl, tx, rx, etx, erx));
}

/// Grants survive the process that published them: the next start reads them from the old
/// segment before it replaces it.
#[test]
fn grants_are_read_back_by_the_next_start() {
    let dir = TmpDir::new("grants");
    let path = dir.file();
    let seg = Segment::create(&path, small()).unwrap();
    assert!(seg.grants().is_empty());
    let g = |spi, end| crate::Grant {
        spi,
        key: [spi as u8; 16],
        end,
    };
    assert!(seg.publish_grant(3, g(0x1001, 1 << 20)));
    assert!(
        seg.publish_grant(3, g(0x1001, 2 << 20)),
        "the same SA: its end moves"
    );
    assert!(seg.publish_grant(4, g(0x1002, 77)));
    assert!(!seg.publish_grant(16, g(0x1003, 1)), "no such record");
    let mut got = seg.grants();
    got.sort_by_key(|g| g.spi);
    assert_eq!(got, [g(0x1001, 2 << 20), g(0x1002, 77)]);
    // Another SA in record 4 replaces the first whole.
    assert!(seg.publish_grant(4, g(0x1005, 9)));
    assert!(seg.grants().contains(&g(0x1005, 9)));
    assert!(!seg.grants().iter().any(|x| x.spi == 0x1002));
    drop(seg);
    let prev = Segment::previous_grants(&path);
    assert_eq!(prev.len(), 2);
    let again = Segment::create(&path, small()).unwrap();
    assert!(
        again.grants().is_empty(),
        "a new start begins with an empty table"
    );
    assert!(Segment::previous_grants(&dir.0.join("none")).is_empty());
}

/// The largest tunnel change (a 32-byte name, every selector list full, IPv6 among them)
/// fits a command slot of the default layout.
#[test]
fn the_largest_tunnel_fits_a_command_slot() {
    let v4: ipnet::Ipv4Net = "10.255.255.0/24".parse().unwrap();
    let v6: ipnet::Ipv6Net = "2001:db8:ffff:ffff:ffff:ffff:ffff:ff00/120"
        .parse()
        .unwrap();
    let spec = crate::TunnelSpec {
        name: Name::new(&"t".repeat(32)).unwrap(),
        local: "192.0.2.1".parse().unwrap(),
        remote: "198.51.100.2".parse().unwrap(),
        dynamic: false,
        tcp_mss: Some(u16::MAX),
        mtu: Some(u16::MAX),
        udp: Some((u16::MAX, u16::MAX)),
        df: crate::DfPolicy::Set,
        dscp: crate::Dscp::Set(63),
        ttl: 255,
        local_selectors: [v4; crate::MAX_SELECTORS].into(),
        remote_selectors: [v4; crate::MAX_SELECTORS].into(),
        local_selectors6: Box::new([v6; crate::MAX_SELECTORS].into()),
        remote_selectors6: Box::new([v6; crate::MAX_SELECTORS].into()),
    };
    let msg = Command::Change {
        id: u64::MAX,
        change: Change::SetTunnel(spec),
    };
    let len = postcard::to_stdvec(&msg).unwrap().len();
    assert!(len > 600, "every list encoded: {len}");
    assert!(
        len <= Layout::default().rings[0].max_message(),
        "{len} bytes"
    );
}
