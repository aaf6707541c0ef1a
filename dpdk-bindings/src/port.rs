//! Ethernet ports: configuration, control-path queries and the RX/TX burst
//! fast path.

use std::ffi::{c_char, c_uint, CStr};
use std::ptr;

use crate::eal;
use crate::error::{Error, Result};
use crate::mempool::Mempool;
use crate::sys;

/// Requested port setup. Queue counts are clamped to what the device
/// supports; read the effective values back from [`Port`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortConfig {
    pub rx_queues: u16,
    pub tx_queues: u16,
    pub rx_desc: u16,
    pub tx_desc: u16,
    /// Spread RX over queues by IP/UDP/TCP hash, if the device can.
    pub rss: bool,
    /// The port's MTU: the largest IP packet it sends and receives, the frame
    /// without its Ethernet header and FCS. [`Port::configure`] sets it with
    /// `rte_eth_dev_set_mtu` between `rte_eth_dev_configure` and the queue
    /// setup (see [`Port::set_mtu`]). A PMD that refuses it does not fail
    /// `configure`: the port keeps its default (1500) and
    /// [`Port::mtu_status`] returns the error, for the caller to report.
    /// `None` leaves the default.
    pub mtu: Option<u16>,
}

impl Default for PortConfig {
    fn default() -> Self {
        PortConfig {
            rx_queues: 1,
            tx_queues: 1,
            rx_desc: 1024,
            tx_desc: 1024,
            rss: false,
            mtu: None,
        }
    }
}

/// Basic counters from `rte_eth_stats_get`. Virtual devices fill only some.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PortStats {
    pub ipackets: u64,
    pub opackets: u64,
    pub ibytes: u64,
    pub obytes: u64,
    pub imissed: u64,
    pub ierrors: u64,
    pub oerrors: u64,
    pub rx_nombuf: u64,
}

/// A configured port with its queues set up. Dropping it stops the port
/// if it was started (which also releases mbufs held by RX rings).
#[derive(Debug)]
pub struct Port {
    id: u16,
    rx_queues: u16,
    tx_queues: u16,
    rx_desc: u16,
    tx_desc: u16,
    rss_hf: u64,
    socket: i32,
    started: bool,
    /// What became of [`PortConfig::mtu`] in `configure`.
    mtu_status: Result<()>,
}

impl Port {
    /// Configures `port_id` and sets up every RX queue (filled from `pool`)
    /// and TX queue on the port's NUMA socket. The port must be stopped.
    pub fn configure(port_id: u16, cfg: &PortConfig, pool: &Mempool) -> Result<Port> {
        eal::ensure_running("rte_eth_dev_configure")?;
        if cfg.rx_queues == 0 || cfg.tx_queues == 0 {
            // DPDK silently substitutes defaults for 0/0; refuse instead so
            // the reported counts are the real ones.
            return Err(Error::new("rte_eth_dev_configure", libc::EINVAL));
        }
        let info = dev_info(port_id)?;
        let rx_queues = cfg.rx_queues.min(info.max_rx_queues.max(1));
        let tx_queues = cfg.tx_queues.min(info.max_tx_queues.max(1));

        let mut conf = sys::rte_eth_conf::default();
        let rss_hf = if cfg.rss {
            // SAFETY: pure function returning a constant.
            let wanted = unsafe { sys::espgw_rss_hf_ip_udp_tcp() };
            wanted & info.flow_type_rss_offloads
        } else {
            0
        };
        if rss_hf != 0 {
            conf.rxmode.mq_mode = sys::rte_eth_rx_mq_mode_RTE_ETH_MQ_RX_RSS;
            // rss_key stays NULL: the driver's default key.
            conf.rx_adv_conf.rss_conf.rss_hf = rss_hf;
        }
        // rxmode.mtu stays 0 (DPDK's default, 1500). A value there is only
        // range-checked and recorded by rte_eth_dev_configure, which then fails
        // outright for one the device refuses, and the PMD's own MTU operation
        // is never called. The MTU is set below with rte_eth_dev_set_mtu.
        // SAFETY: conf is a fully initialized rte_eth_conf; DPDK copies it.
        let ret = unsafe { sys::rte_eth_dev_configure(port_id, rx_queues, tx_queues, &conf) };
        Error::check("rte_eth_dev_configure", ret)?;
        // Before the queues are set up: some PMDs size their RX buffers (or
        // choose scattered RX) from the MTU at queue setup.
        let mtu_status = cfg.mtu.map_or(Ok(()), |mtu| set_port_mtu(port_id, mtu));

        let (mut rx_desc, mut tx_desc) = (cfg.rx_desc, cfg.tx_desc);
        // SAFETY: valid port; both pointers are to live locals.
        let ret =
            unsafe { sys::rte_eth_dev_adjust_nb_rx_tx_desc(port_id, &mut rx_desc, &mut tx_desc) };
        Error::check("rte_eth_dev_adjust_nb_rx_tx_desc", ret)?;

        // SAFETY: valid port id.
        let socket = unsafe { sys::rte_eth_dev_socket_id(port_id) }.max(sys::SOCKET_ID_ANY);
        // Queue setup takes the socket as unsigned; SOCKET_ID_ANY wraps to
        // the value DPDK expects.
        let queue_socket = socket as c_uint;
        for q in 0..rx_queues {
            // SAFETY: configured port, q below the configured count, NULL
            // rxconf selects driver defaults, pool outlives the call (and
            // Mempool's drop refuses to free while mbufs sit in RX rings).
            let ret = unsafe {
                sys::rte_eth_rx_queue_setup(
                    port_id,
                    q,
                    rx_desc,
                    queue_socket,
                    ptr::null(),
                    pool.as_ptr(),
                )
            };
            Error::check("rte_eth_rx_queue_setup", ret)?;
        }
        for q in 0..tx_queues {
            // SAFETY: as above; NULL txconf selects driver defaults.
            let ret = unsafe {
                sys::rte_eth_tx_queue_setup(port_id, q, tx_desc, queue_socket, ptr::null())
            };
            Error::check("rte_eth_tx_queue_setup", ret)?;
        }
        Ok(Port {
            id: port_id,
            rx_queues,
            tx_queues,
            rx_desc,
            tx_desc,
            rss_hf,
            socket,
            started: false,
            mtu_status,
        })
    }

    /// Whether the MTU asked for in [`PortConfig::mtu`] is in effect: `Ok`
    /// when it is (or none was asked), otherwise the `rte_eth_dev_set_mtu`
    /// error (see [`Port::set_mtu`]). The port works either way, at its
    /// previous MTU; frames over that MTU may be dropped on receive by a NIC.
    pub fn mtu_status(&self) -> Result<()> {
        self.mtu_status
    }

    /// Sets the port's MTU with `rte_eth_dev_set_mtu` (the frame without its
    /// Ethernet header and FCS). Returns `Ok` at once if the port already has
    /// this MTU, so a PMD without an MTU operation (many virtual devices) is
    /// not reported for a value it already has. Errors (op
    /// `rte_eth_dev_set_mtu`): `EINVAL` outside the device's range (see
    /// [`Port::mtu_range`]) or refused by the PMD (e.g. a frame that would
    /// not fit its RX buffers), `ENOTSUP` when the PMD cannot change its MTU,
    /// `EBUSY` when it can only do so stopped, `EIO` when the device is gone.
    ///
    /// Call it on a stopped port: [`Port::configure`] does, for
    /// [`PortConfig::mtu`]. A frame of MTU + 18 bytes (more with VLAN tags)
    /// must fit one mbuf's data room unless RX scatter is on and the caller
    /// takes multi-segment mbufs.
    pub fn set_mtu(&mut self, mtu: u16) -> Result<()> {
        set_port_mtu(self.id, mtu)
    }

    /// The port's current MTU (`rte_eth_dev_get_mtu`).
    pub fn mtu(&self) -> Result<u16> {
        port_mtu(self.id)
    }

    /// The smallest and largest MTU `rte_eth_dev_set_mtu` lets through to
    /// the PMD, as DPDK checks it: `rte_eth_dev_info`'s `min_mtu` and
    /// `max_mtu`, the latter lowered so that the frame (MTU plus the device's
    /// overhead, 18 bytes unless it reports another) fits `max_rx_pktlen`.
    /// The PMD may still refuse a value inside the range.
    pub fn mtu_range(&self) -> Result<(u16, u16)> {
        let info = dev_info(self.id)?;
        Ok(mtu_range_of(&info))
    }

    pub fn id(&self) -> u16 {
        self.id
    }

    /// Effective RX queue count (after clamping to the device maximum).
    pub fn rx_queues(&self) -> u16 {
        self.rx_queues
    }

    /// Effective TX queue count (after clamping to the device maximum).
    pub fn tx_queues(&self) -> u16 {
        self.tx_queues
    }

    /// Effective RX descriptors per queue (adjusted to device limits).
    pub fn rx_desc(&self) -> u16 {
        self.rx_desc
    }

    /// Effective TX descriptors per queue (adjusted to device limits).
    pub fn tx_desc(&self) -> u16 {
        self.tx_desc
    }

    /// RSS hash functions in effect (`RTE_ETH_RSS_*` bits); 0 means no RSS.
    pub fn rss_hf(&self) -> u64 {
        self.rss_hf
    }

    /// NUMA socket of the device, -1 if unknown.
    pub fn socket(&self) -> i32 {
        self.socket
    }

    pub fn start(&mut self) -> Result<()> {
        // SAFETY: configured port with all queues set up.
        Error::check("rte_eth_dev_start", unsafe {
            sys::rte_eth_dev_start(self.id)
        })?;
        self.started = true;
        Ok(())
    }

    pub fn stop(&mut self) -> Result<()> {
        // SAFETY: valid port id; stopping a stopped port is allowed.
        Error::check("rte_eth_dev_stop", unsafe {
            sys::rte_eth_dev_stop(self.id)
        })?;
        self.started = false;
        Ok(())
    }

    pub fn is_started(&self) -> bool {
        self.started
    }

    /// Primary MAC address.
    pub fn mac(&self) -> Result<[u8; 6]> {
        let mut addr = sys::rte_ether_addr::default();
        // SAFETY: valid port; addr is a live rte_ether_addr.
        Error::check("rte_eth_macaddr_get", unsafe {
            sys::rte_eth_macaddr_get(self.id, &mut addr)
        })?;
        Ok(ether_to_bytes(&addr))
    }

    /// Replaces the primary MAC address (ENOTSUP on some drivers).
    pub fn set_mac(&mut self, mac: [u8; 6]) -> Result<()> {
        let mut addr = ether_from_bytes(mac);
        // SAFETY: valid port; DPDK copies the address.
        let ret = unsafe { sys::rte_eth_dev_default_mac_addr_set(self.id, &mut addr) };
        Error::check("rte_eth_dev_default_mac_addr_set", ret)
    }

    pub fn promiscuous(&mut self, on: bool) -> Result<()> {
        let (op, ret) = if on {
            // SAFETY: valid port id.
            ("rte_eth_promiscuous_enable", unsafe {
                sys::rte_eth_promiscuous_enable(self.id)
            })
        } else {
            // SAFETY: valid port id.
            ("rte_eth_promiscuous_disable", unsafe {
                sys::rte_eth_promiscuous_disable(self.id)
            })
        };
        Error::check(op, ret)
    }

    pub fn stats(&self) -> Result<PortStats> {
        let mut s = sys::rte_eth_stats::default();
        // SAFETY: valid port; s is a live rte_eth_stats.
        Error::check("rte_eth_stats_get", unsafe {
            sys::rte_eth_stats_get(self.id, &mut s)
        })?;
        Ok(PortStats {
            ipackets: s.ipackets,
            opackets: s.opackets,
            ibytes: s.ibytes,
            obytes: s.obytes,
            imissed: s.imissed,
            ierrors: s.ierrors,
            oerrors: s.oerrors,
            rx_nombuf: s.rx_nombuf,
        })
    }

    /// Device name (e.g. `net_ring0`, or a PCI address).
    pub fn name(&self) -> String {
        port_name(self.id).unwrap_or_else(|| format!("port{}", self.id))
    }

    /// Link status without waiting for autonegotiation.
    pub fn link_up(&self) -> bool {
        let mut link = sys::rte_eth_link::default();
        // SAFETY: valid port; link is a live rte_eth_link.
        let ret = unsafe { sys::rte_eth_link_get_nowait(self.id, &mut link) };
        ret == 0 && link.link_status() != 0
    }
}

impl Drop for Port {
    fn drop(&mut self) {
        if self.started && eal::is_running() {
            // Errors cannot be reported from drop; stop is best effort.
            let _ = self.stop();
        }
    }
}

/// Number of usable ports.
pub fn port_count() -> u16 {
    // SAFETY: reads the static device table.
    unsafe { sys::rte_eth_dev_count_avail() }
}

/// Name of a port, `None` if the port id is not in use.
pub fn port_name(port_id: u16) -> Option<String> {
    let mut buf: [c_char; sys::RTE_ETH_NAME_MAX_LEN as usize] =
        [0; sys::RTE_ETH_NAME_MAX_LEN as usize];
    // SAFETY: buf has RTE_ETH_NAME_MAX_LEN bytes, the size DPDK requires;
    // invalid port ids are rejected by DPDK without touching buf.
    let ret = unsafe { sys::rte_eth_dev_get_name_by_port(port_id, buf.as_mut_ptr()) };
    if ret != 0 {
        return None;
    }
    // The last byte guarantees termination even if DPDK filled the buffer.
    buf[buf.len() - 1] = 0;
    // SAFETY: buf is NUL-terminated (set above) and lives for this call.
    let name = unsafe { CStr::from_ptr(buf.as_ptr()) };
    Some(name.to_string_lossy().into_owned())
}

/// Receives up to `bufs.len()` packets (at most 65535) into `bufs`;
/// returns how many were written. The caller owns those mbufs.
///
/// # Safety
/// `port`/`queue` must name a started port's set-up RX queue, and no other
/// thread may poll the same queue concurrently (DPDK queues are not MT-safe).
#[inline]
pub unsafe fn rx_burst(port: u16, queue: u16, bufs: &mut [*mut sys::rte_mbuf]) -> usize {
    let n = bufs.len().min(usize::from(u16::MAX)) as u16;
    // SAFETY: bufs has room for n pointers; the caller upholds the queue
    // contract.
    usize::from(unsafe { sys::espgw_rx_burst(port, queue, bufs.as_mut_ptr(), n) })
}

/// Queues the first packets of `bufs` for transmission; returns how many
/// were accepted. Ownership of `bufs[..n]` passes to the driver; the rest
/// stay with the caller (free or retry them).
///
/// # Safety
/// `port`/`queue` must name a started port's set-up TX queue used by no
/// other thread concurrently, and every entry must be a valid mbuf owned by
/// the caller.
#[inline]
pub unsafe fn tx_burst(port: u16, queue: u16, bufs: &mut [*mut sys::rte_mbuf]) -> usize {
    let n = bufs.len().min(usize::from(u16::MAX)) as u16;
    // SAFETY: bufs holds n caller-owned mbufs; caller upholds the queue
    // contract.
    usize::from(unsafe { sys::espgw_tx_burst(port, queue, bufs.as_mut_ptr(), n) })
}

fn port_mtu(port_id: u16) -> Result<u16> {
    let mut mtu = 0u16;
    // SAFETY: DPDK rejects an invalid port id without touching mtu; mtu is a
    // live local.
    let ret = unsafe { sys::rte_eth_dev_get_mtu(port_id, &mut mtu) };
    Error::check("rte_eth_dev_get_mtu", ret)?;
    Ok(mtu)
}

fn set_port_mtu(port_id: u16, mtu: u16) -> Result<()> {
    if port_mtu(port_id).is_ok_and(|m| m == mtu) {
        return Ok(());
    }
    // SAFETY: DPDK validates the port id, the port's state and the value.
    let ret = unsafe { sys::rte_eth_dev_set_mtu(port_id, mtu) };
    Error::check("rte_eth_dev_set_mtu", ret)
}

/// DPDK 22.11's `eth_dev_validate_mtu`, as a range.
fn mtu_range_of(info: &sys::rte_eth_dev_info) -> (u16, u16) {
    const ETHER_OVERHEAD: u32 = 18; // RTE_ETHER_HDR_LEN + RTE_ETHER_CRC_LEN
    let (max_mtu, max_frame) = (u32::from(info.max_mtu), info.max_rx_pktlen);
    let overhead = if info.max_mtu != u16::MAX && max_frame > max_mtu {
        max_frame - max_mtu
    } else {
        ETHER_OVERHEAD
    };
    let max = max_mtu.min(max_frame.saturating_sub(overhead));
    (info.min_mtu, u16::try_from(max).unwrap_or(u16::MAX))
}

fn dev_info(port_id: u16) -> Result<sys::rte_eth_dev_info> {
    // SAFETY: valid-port check only reads the device table.
    if unsafe { sys::rte_eth_dev_is_valid_port(port_id) } == 0 {
        return Err(Error::new("rte_eth_dev_info_get", libc::ENODEV));
    }
    let mut info = sys::rte_eth_dev_info::default();
    // SAFETY: valid port; info is a live, zeroed rte_eth_dev_info.
    let ret = unsafe { sys::rte_eth_dev_info_get(port_id, &mut info) };
    Error::check("rte_eth_dev_info_get", ret)?;
    Ok(info)
}

// rte_ether_addr is opaque in the bindings (packed + aligned in C): 6 bytes.
const _: () = assert!(std::mem::size_of::<sys::rte_ether_addr>() == 6);

fn ether_to_bytes(addr: &sys::rte_ether_addr) -> [u8; 6] {
    let mut out = [0u8; 6];
    // SAFETY: rte_ether_addr is exactly 6 bytes (asserted above) of plain
    // data; the regions do not overlap.
    unsafe { ptr::copy_nonoverlapping(ptr::from_ref(addr).cast::<u8>(), out.as_mut_ptr(), 6) };
    out
}

fn ether_from_bytes(mac: [u8; 6]) -> sys::rte_ether_addr {
    let mut addr = sys::rte_ether_addr::default();
    // SAFETY: as in ether_to_bytes, in the other direction.
    unsafe { ptr::copy_nonoverlapping(mac.as_ptr(), ptr::from_mut(&mut addr).cast::<u8>(), 6) };
    addr
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_round_trips_through_rte_ether_addr() {
        let mac = [0x02, 0x11, 0x22, 0x33, 0x44, 0xfe];
        assert_eq!(ether_to_bytes(&ether_from_bytes(mac)), mac);
    }

    #[test]
    fn rss_mask_covers_ip_udp_tcp() {
        // SAFETY: pure function returning a constant.
        let hf = unsafe { sys::espgw_rss_hf_ip_udp_tcp() };
        let bit = |n: u32| 1u64 << n;
        // RTE_ETH_RSS_IPV4 (2), NONFRAG_IPV4_TCP (4), NONFRAG_IPV4_UDP (5),
        // IPV6 (8), NONFRAG_IPV6_TCP (10), NONFRAG_IPV6_UDP (11).
        for n in [2, 4, 5, 8, 10, 11] {
            assert_ne!(hf & bit(n), 0, "bit {n} missing from {hf:#x}");
        }
        // SCTP (6) is not requested.
        assert_eq!(hf & bit(6), 0);
    }

    #[test]
    fn default_config_is_single_queue() {
        let c = PortConfig::default();
        assert_eq!(
            (c.rx_queues, c.tx_queues, c.rss, c.mtu),
            (1, 1, false, None)
        );
    }

    #[test]
    fn mtu_calls_report_their_operation() {
        // Unit tests never initialize the EAL, so there is no port: DPDK
        // checks the port id first, and the error names the call that failed.
        let e = set_port_mtu(0, 9000).unwrap_err();
        assert_eq!((e.op(), e.errno()), ("rte_eth_dev_set_mtu", libc::ENODEV));
        let e = port_mtu(0).unwrap_err();
        assert_eq!((e.op(), e.errno()), ("rte_eth_dev_get_mtu", libc::ENODEV));
        let text = set_port_mtu(0, 1500).unwrap_err().to_string();
        assert!(text.starts_with("rte_eth_dev_set_mtu: "), "{text}");
    }

    #[test]
    fn mtu_range_follows_ethdev_validation() {
        let info = |min_mtu, max_mtu, max_rx_pktlen| sys::rte_eth_dev_info {
            min_mtu,
            max_mtu,
            max_rx_pktlen,
            ..Default::default()
        };
        // No max_mtu reported (net_tap, 22.11): the frame limit decides.
        assert_eq!(mtu_range_of(&info(46, u16::MAX, 1522)), (46, 1504));
        // Both reported: the device's own overhead (here 26, with two VLANs).
        assert_eq!(mtu_range_of(&info(68, 9702, 9728)), (68, 9702));
        assert_eq!(mtu_range_of(&info(46, u16::MAX, u32::MAX)), (46, u16::MAX));
    }

    #[test]
    fn queries_without_eal_see_no_ports() {
        // Unit tests never initialize the EAL.
        assert_eq!(port_name(0), None);
        assert_eq!(port_count(), 0);
        let pool_err = Mempool::pktmbuf("p", 64, 0, 2176, -1).unwrap_err();
        assert_eq!(pool_err.errno(), libc::ENODEV);
    }
}
