//! Writing frames to a classic pcap file (microsecond timestamps, Ethernet), for replay by
//! DPDK's net_pcap.

use std::io::{BufWriter, Write};
use std::path::Path;

const MAGIC: u32 = 0xa1b2_c3d4;
const LINKTYPE_ETHERNET: u32 = 1;
const SNAPLEN: u32 = 65535;

/// Writes `frames` to `path` (created, or truncated), all with timestamp 0.
pub fn write(path: &Path, frames: &[Vec<u8>]) -> std::io::Result<()> {
    let mut f = BufWriter::new(std::fs::File::create(path)?);
    f.write_all(&header())?;
    for fr in frames {
        f.write_all(&record_header(fr.len())?)?;
        f.write_all(fr)?;
    }
    f.flush()
}

fn header() -> [u8; 24] {
    let mut h = [0u8; 24];
    h[0..4].copy_from_slice(&MAGIC.to_le_bytes());
    h[4..6].copy_from_slice(&2u16.to_le_bytes());
    h[6..8].copy_from_slice(&4u16.to_le_bytes());
    // thiszone and sigfigs stay 0.
    h[16..20].copy_from_slice(&SNAPLEN.to_le_bytes());
    h[20..24].copy_from_slice(&LINKTYPE_ETHERNET.to_le_bytes());
    h
}

fn record_header(len: usize) -> std::io::Result<[u8; 16]> {
    let len = u32::try_from(len)
        .ok()
        .filter(|&l| l <= SNAPLEN)
        .ok_or_else(|| std::io::Error::other(format!("a frame of {len} bytes")))?;
    let mut r = [0u8; 16];
    r[8..12].copy_from_slice(&len.to_le_bytes());
    r[12..16].copy_from_slice(&len.to_le_bytes());
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bytes libpcap expects: the global header, then per frame its 16-byte record
    /// header (captured and original length) and the frame.
    #[test]
    fn writes_a_classic_pcap() {
        let dir = std::env::temp_dir().join(format!("loadgen-pcap-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("t.pcap");
        write(&path, &[vec![0xaa; 60], vec![0xbb; 3]]).unwrap();
        let b = std::fs::read(&path).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(
            b[..24],
            hex::decode("d4c3b2a1020004000000000000000000ffff000001000000").unwrap()[..]
        );
        assert_eq!(
            b[24..40],
            hex::decode("00000000000000003c0000003c000000").unwrap()[..]
        );
        assert_eq!(b[40..100], [0xaa; 60]);
        assert_eq!(
            b[100..116],
            hex::decode("00000000000000000300000003000000").unwrap()[..]
        );
        assert_eq!(b[116..], [0xbb; 3]);
        assert!(record_header(70_000).is_err());
    }
}
