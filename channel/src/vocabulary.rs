//! The words changes are made of: names, algorithms, outer-header policies, key material and
//! lifetimes. Bounded in size, so that every message has a fixed upper size.

use arrayvec::{ArrayString, ArrayVec};
use zeroize::{Zeroize, ZeroizeOnDrop};

/// Longest name of an interface or tunnel, in bytes.
pub const MAX_NAME_LEN: usize = 32;
/// Most traffic selectors (prefixes) on each side of a tunnel.
pub const MAX_SELECTORS: usize = 16;
/// RFC 4106 section 8.1: the salt that follows the key in KEYMAT.
pub const SALT_LEN: usize = 4;
/// The longest KEYMAT: an AES-256 key and its salt.
pub const MAX_KEYMAT_LEN: usize = 32 + SALT_LEN;

/// RFC 3948: the UDP port of ESP in UDP (and of IKE after NAT-T floats).
pub const NATT_PORT: u16 = 4500;
/// Anti-replay window of an inbound SA when none is given, in packets.
pub const DEFAULT_REPLAY_WINDOW: u32 = 1024;
/// The largest anti-replay window the dataplane keeps, in packets.
pub const MAX_REPLAY_WINDOW: u32 = 65536;

/// A MAC address.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct Mac(pub [u8; 6]);

impl Mac {
    pub const BROADCAST: Mac = Mac([0xff; 6]);

    #[inline(always)]
    pub fn is_broadcast(&self) -> bool {
        *self == Mac::BROADCAST
    }
}

impl core::fmt::Display for Mac {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let m = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            m[0], m[1], m[2], m[3], m[4], m[5]
        )
    }
}

impl core::fmt::Debug for Mac {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        core::fmt::Display::fmt(self, f)
    }
}

impl core::str::FromStr for Mac {
    type Err = &'static str;
    fn from_str(s: &str) -> core::result::Result<Self, Self::Err> {
        let mut out = [0u8; 6];
        let mut parts = s.split(':');
        for b in out.iter_mut() {
            let p = parts.next().ok_or("expected six ':'-separated hex bytes")?;
            if p.len() != 2 {
                return Err("expected six ':'-separated hex bytes");
            }
            *b = u8::from_str_radix(p, 16).map_err(|_| "expected six ':'-separated hex bytes")?;
        }
        if parts.next().is_some() {
            return Err("expected six ':'-separated hex bytes");
        }
        Ok(Mac(out))
    }
}

/// Which way an SA carries traffic, seen from this gateway.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    In,
    Out,
}

impl Direction {
    pub fn name(self) -> &'static str {
        match self {
            Direction::In => "in",
            Direction::Out => "out",
        }
    }
}

/// The name of an interface or tunnel (`lan0`, `st0.12`): what the operator and the control
/// process call it. The dataplane keeps its own numbers for them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Name(ArrayString<MAX_NAME_LEN>);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("empty")]
    Empty,
    #[error("longer than {MAX_NAME_LEN} bytes")]
    TooLong,
}

impl Name {
    pub fn new(s: &str) -> Result<Name, NameError> {
        if s.is_empty() {
            return Err(NameError::Empty);
        }
        ArrayString::from(s)
            .map(Name)
            .map_err(|_| NameError::TooLong)
    }

    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

impl serde::Serialize for Name {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for Name {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Name, D::Error> {
        let s = <&str>::deserialize(d)?;
        Name::new(s).map_err(|e| serde::de::Error::custom(format_args!("name {s:?}: {e}")))
    }
}

impl std::fmt::Display for Name {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The ESP transforms the dataplane implements (RFC 4106 with a 16-byte ICV).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Algorithm {
    #[serde(rename = "aes-128-gcm")]
    Aes128Gcm,
    #[serde(rename = "aes-256-gcm")]
    Aes256Gcm,
}

impl Algorithm {
    pub fn key_len(self) -> usize {
        match self {
            Algorithm::Aes128Gcm => 16,
            Algorithm::Aes256Gcm => 32,
        }
    }
    /// RFC 4106 section 8.1: KEYMAT is the key followed by a 4-byte salt.
    pub fn keymat_len(self) -> usize {
        self.key_len() + SALT_LEN
    }
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Aes128Gcm => "aes-128-gcm",
            Algorithm::Aes256Gcm => "aes-256-gcm",
        }
    }
}

/// What the outer header's DF bit is (RFC 4301 section 8.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DfPolicy {
    #[default]
    Copy,
    Set,
    Clear,
}

/// Where the outer DSCP comes from; ECN is always copied (RFC 6040 normal mode).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub enum Dscp {
    #[default]
    Copy,
    /// This code point (0..63).
    Set(u8),
}

/// An SA's KEYMAT (key || salt) for one algorithm. Wiped when dropped; its Debug prints no
/// key.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct KeyMaterial {
    #[zeroize(skip)]
    algorithm: Algorithm,
    bytes: [u8; MAX_KEYMAT_LEN],
    len: u8,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{algorithm} needs {want} bytes (key || 4-byte salt), got {got}", algorithm = .algorithm.name())]
pub struct KeyMaterialError {
    pub algorithm: Algorithm,
    pub want: usize,
    pub got: usize,
}

impl KeyMaterial {
    /// Copies `bytes` (key || salt); the caller wipes its own copy.
    pub fn new(algorithm: Algorithm, bytes: &[u8]) -> Result<KeyMaterial, KeyMaterialError> {
        let want = algorithm.keymat_len();
        if bytes.len() != want {
            return Err(KeyMaterialError {
                algorithm,
                want,
                got: bytes.len(),
            });
        }
        let mut k = KeyMaterial {
            algorithm,
            bytes: [0; MAX_KEYMAT_LEN],
            len: want as u8,
        };
        k.bytes[..want].copy_from_slice(bytes);
        Ok(k)
    }

    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// Key || salt.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }

    pub fn key(&self) -> &[u8] {
        &self.bytes()[..self.algorithm.key_len()]
    }

    pub fn salt(&self) -> [u8; SALT_LEN] {
        let mut s = [0; SALT_LEN];
        s.copy_from_slice(&self.bytes()[self.algorithm.key_len()..]);
        s
    }
}

/// On a ring: the algorithm and the bytes. Decoding copies the bytes straight from the slot
/// into the new value (the ring then zeroes the slot).
impl serde::Serialize for KeyMaterial {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeTuple;
        struct Bytes<'a>(&'a [u8]);
        impl serde::Serialize for Bytes<'_> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_bytes(self.0)
            }
        }
        let mut t = s.serialize_tuple(2)?;
        t.serialize_element(&self.algorithm)?;
        t.serialize_element(&Bytes(self.bytes()))?;
        t.end()
    }
}

impl<'de> serde::Deserialize<'de> for KeyMaterial {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<KeyMaterial, D::Error> {
        let (algorithm, bytes) = <(Algorithm, &'de [u8])>::deserialize(d)?;
        KeyMaterial::new(algorithm, bytes).map_err(serde::de::Error::custom)
    }
}

/// Compares every byte whatever the first difference (no early exit on key bytes).
impl PartialEq for KeyMaterial {
    fn eq(&self, other: &KeyMaterial) -> bool {
        let diff = self
            .bytes
            .iter()
            .zip(&other.bytes)
            .fold(0u8, |d, (a, b)| d | (a ^ b));
        self.algorithm == other.algorithm && self.len == other.len && diff == 0
    }
}

impl Eq for KeyMaterial {}

impl std::fmt::Debug for KeyMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KeyMaterial({}, <redacted>)", self.algorithm.name())
    }
}

/// A limit on what an SA carries (RFC 4301 section 4.4.2.1: a soft lifetime warns that the
/// SA should be replaced, a hard one ends it). `None`: no limit of that kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct Lifetime {
    pub packets: Option<u64>,
    pub bytes: Option<u64>,
}

/// Prefixes a tunnel carries on one side (its traffic selectors); empty means any.
pub type Prefixes = ArrayVec<ipnet::Ipv4Net, MAX_SELECTORS>;
/// The IPv6 prefixes among a tunnel's traffic selectors on one side.
pub type Prefixes6 = ArrayVec<ipnet::Ipv6Net, MAX_SELECTORS>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_bounded_and_never_empty() {
        assert_eq!(
            Name::new("st0.1").map(|n| n.to_string()),
            Ok("st0.1".into())
        );
        assert_eq!(Name::new(""), Err(NameError::Empty));
        assert_eq!(Name::new(&"x".repeat(33)), Err(NameError::TooLong));
        assert!(Name::new(&"x".repeat(32)).is_ok());
    }

    #[test]
    fn key_material_checks_its_length_and_hides_its_bytes() {
        let bytes: Vec<u8> = (0..20).collect();
        let k = KeyMaterial::new(Algorithm::Aes128Gcm, &bytes).unwrap();
        assert_eq!(k.key(), &bytes[..16]);
        assert_eq!(k.salt(), [16, 17, 18, 19]);
        assert_eq!(format!("{k:?}"), "KeyMaterial(aes-128-gcm, <redacted>)");
        let e = KeyMaterial::new(Algorithm::Aes256Gcm, &bytes).unwrap_err();
        assert_eq!(
            e.to_string(),
            "aes-256-gcm needs 36 bytes (key || 4-byte salt), got 20"
        );
    }

    #[test]
    fn key_material_is_wiped_in_place() {
        let mut k = KeyMaterial::new(Algorithm::Aes256Gcm, &[0xa5; 36]).unwrap();
        k.zeroize();
        assert!(k.bytes.iter().all(|&b| b == 0));
    }
}
