//! IKEv2 (RFC 7296), as a sans-IO core the control process drives: `wire` is the message
//! format (never panicking on any input), `kdf` the key schedule, `proposal` the algorithms
//! in strongSwan's syntax and the responder's choice, `sk` the Encrypted payload with
//! AES-GCM. The SA state machine, AUTH, AES-CBC for SK, DH and the transports come next
//! (issue 17).

pub mod kdf;
pub mod proposal;
pub mod sk;
pub mod wire;
