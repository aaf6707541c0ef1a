//! IKEv2 (RFC 7296), as a sans-IO core the control process drives: `wire` is the message
//! format (never panicking on any input), `kdf` the key schedule, `proposal` the algorithms in
//! strongSwan's syntax and the responder's choice, `sk` the Encrypted payload (AES-GCM-16, or
//! AES-CBC with HMAC-SHA2), `fragment` IKE fragmentation (RFC 7383), `dh` the key exchange
//! (MODP-2048, Curve25519, ECP-256, ECP-384), `auth` AUTH (pre-shared keys, signatures:
//! `signature`, with certificates and CAs from `pki` naming an `identity`), `cookie` the
//! responder's stateless cookies, `selectors` traffic selector narrowing, `init` the
//! IKE_SA_INIT exchange (NAT detection included) and the IKE SA's keys, `ike_auth` the
//! IKE_AUTH exchange and the first child SA, `create_child` CREATE_CHILD_SA for children; `sa`
//! the IKE SA state machine around them (message IDs, retransmission, rekeys, INFORMATIONAL,
//! DPD, NAT keepalives).

pub mod auth;
pub mod cookie;
pub mod create_child;
pub mod dh;
pub mod fragment;
pub mod identity;
pub mod ike_auth;
pub mod init;
pub mod kdf;
pub mod pki;
pub mod proposal;
pub mod sa;
pub mod selectors;
pub mod signature;
pub mod sk;
pub mod wire;

#[cfg(test)]
mod certificate_tests;
