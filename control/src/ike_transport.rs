//! IKE over kernel UDP sockets, for a control process without a dataplane (development,
//! IKE-only tests, the setup-rate benchmark): UDP 500, and 4500 with the four zero bytes of
//! the non-ESP marker in front of IKE (RFC 3948 section 2.2). The IKE manager does not know
//! which transport carries its datagrams.

use crate::ike_manager::Outgoing;
use std::io;
use std::net::{IpAddr, SocketAddr, UdpSocket};

const NON_ESP_MARKER: [u8; 4] = [0; 4];
/// A NAT keepalive (RFC 3948 section 2.3) goes as it is, without the marker.
const NATT_KEEPALIVE: [u8; 1] = [0xff];

/// The two sockets of one local address.
pub struct KernelUdp {
    ike: UdpSocket,
    natt: UdpSocket,
    buf: Vec<u8>,
}

impl KernelUdp {
    /// Binds `addr`'s IKE and NAT-T ports (500 and 4500 unless given), non-blocking; IPv4
    /// or IPv6.
    pub fn bind(addr: IpAddr, ike_port: u16, natt_port: u16) -> io::Result<KernelUdp> {
        let ike = UdpSocket::bind((addr, ike_port))?;
        let natt = UdpSocket::bind((addr, natt_port))?;
        for s in [&ike, &natt] {
            s.set_nonblocking(true)?;
            // Room for bursts (many peers at once): 4 MB each way.
            for opt in [libc::SO_RCVBUF, libc::SO_SNDBUF] {
                let v: libc::c_int = 4 << 20;
                // SAFETY: setsockopt on a socket we own, with an int option of its size.
                unsafe {
                    libc::setsockopt(
                        std::os::fd::AsRawFd::as_raw_fd(s),
                        libc::SOL_SOCKET,
                        opt,
                        (&v as *const libc::c_int).cast(),
                        std::mem::size_of::<libc::c_int>() as libc::socklen_t,
                    );
                }
            }
        }
        Ok(KernelUdp {
            ike,
            natt,
            buf: vec![0; 65536],
        })
    }

    /// Hands up to `max` waiting datagrams to `f` as (our address, the peer's, the IKE
    /// message); datagrams on the NAT-T port without the marker (ESP, keepalives) are
    /// skipped. How many were handed over.
    pub fn recv(&mut self, max: usize, mut f: impl FnMut(SocketAddr, SocketAddr, &[u8])) -> usize {
        let mut n = 0;
        for natt in [false, true] {
            let s = if natt { &self.natt } else { &self.ike };
            let Ok(local) = s.local_addr() else {
                continue;
            };
            while n < max {
                let Ok((len, from)) = s.recv_from(&mut self.buf) else {
                    break;
                };
                let data = self.buf.get(..len).unwrap_or_default();
                let msg = if natt {
                    match data.strip_prefix(&NON_ESP_MARKER[..]) {
                        Some(m) => m,
                        None => continue,
                    }
                } else {
                    data
                };
                f(local, from, msg);
                n += 1;
            }
        }
        n
    }

    /// Sends `o` from the socket of its local port (with the marker on NAT-T).
    pub fn send(&self, o: &Outgoing) -> io::Result<()> {
        let to = o.path.remote;
        let natt = self.natt.local_addr()?.port() == o.path.local.port();
        if natt && o.bytes[..] == NATT_KEEPALIVE[..] {
            self.natt.send_to(&o.bytes, to)?;
        } else if natt {
            self.natt
                .send_to(&[&NON_ESP_MARKER[..], &o.bytes].concat(), to)?;
        } else {
            self.ike.send_to(&o.bytes, to)?;
        }
        Ok(())
    }
}
