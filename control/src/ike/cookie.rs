//! Stateless cookies (RFC 7296 section 2.6): above a number of half-open IKE SAs the
//! responder answers IKE_SA_INIT with a COOKIE made from the request and a secret, keeps no
//! state, and goes on only with a request that carries the cookie back, which an attacker
//! spoofing source addresses never sees.

use super::init::COOKIE;
use super::wire::{Message, Payload};
use std::net::{IpAddr, SocketAddr};

/// SHA-256(secret | Ni | IPi | SPIi): the same request from the same address gets the same
/// cookie, another gets another.
pub fn make(secret: &[u8; 32], m: &Message, from: SocketAddr) -> Vec<u8> {
    let ni = m.payloads.iter().find_map(|p| match p {
        Payload::Nonce(n) => Some(&n[..]),
        _ => None,
    });
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    ctx.update(secret);
    ctx.update(ni.unwrap_or_default());
    match from.ip() {
        IpAddr::V4(a) => ctx.update(&a.octets()),
        IpAddr::V6(a) => ctx.update(&a.octets()),
    }
    ctx.update(&m.header.initiator_spi.to_be_bytes());
    ctx.finish().as_ref().to_vec()
}

/// The cookie a request carries (first payload, RFC 7296 section 2.6).
pub fn carried(m: &Message) -> Option<&[u8]> {
    match m.payloads.first() {
        Some(Payload::Notify(n)) if n.kind == COOKIE => Some(&n.data),
        _ => None,
    }
}
