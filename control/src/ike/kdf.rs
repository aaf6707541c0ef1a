//! The IKEv2 key schedule (RFC 7296 sections 2.13, 2.14, 2.17, 2.18) over HMAC PRFs from
//! `ring`: prf+, SKEYSEED, the IKE SA's keys, child SA keying material, and the SKEYSEED of a
//! rekeyed IKE SA. Every secret it returns is wiped when dropped.

use ring::hmac;
use zeroize::Zeroizing;

/// The PRFs (transform type 2). SHA-1 only for the published test vectors and old peers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prf {
    HmacSha1,
    HmacSha256,
    HmacSha384,
    HmacSha512,
}

/// Secret bytes, wiped on drop.
pub type Secret = Zeroizing<Vec<u8>>;

impl Prf {
    /// Transform IDs (IANA "Transform Type 2").
    pub fn from_id(id: u16) -> Option<Prf> {
        Some(match id {
            2 => Prf::HmacSha1,
            5 => Prf::HmacSha256,
            6 => Prf::HmacSha384,
            7 => Prf::HmacSha512,
            _ => return None,
        })
    }

    fn algorithm(self) -> hmac::Algorithm {
        match self {
            Prf::HmacSha1 => hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
            Prf::HmacSha256 => hmac::HMAC_SHA256,
            Prf::HmacSha384 => hmac::HMAC_SHA384,
            Prf::HmacSha512 => hmac::HMAC_SHA512,
        }
    }

    /// Output length, which is also the length of SK_d, SK_pi and SK_pr.
    pub fn output_len(self) -> usize {
        self.algorithm().digest_algorithm().output_len()
    }

    /// prf(key, data...), the data given in pieces.
    pub fn prf(self, key: &[u8], data: &[&[u8]]) -> Secret {
        let k = hmac::Key::new(self.algorithm(), key);
        let mut ctx = hmac::Context::with_key(&k);
        for d in data {
            ctx.update(d);
        }
        Zeroizing::new(ctx.sign().as_ref().to_vec())
    }

    /// prf+ (RFC 7296 section 2.13): T1 = prf(K, S | 0x01), Tn = prf(K, Tn-1 | S | n), up to
    /// 255 blocks; `len` bytes of T1 | T2 | ... `None` if more than 255 blocks are asked for.
    pub fn prf_plus(self, key: &[u8], seed: &[&[u8]], len: usize) -> Option<Secret> {
        let blocks = len.div_ceil(self.output_len());
        if blocks > 255 {
            return None;
        }
        let mut out = Zeroizing::new(Vec::with_capacity(blocks * self.output_len()));
        let mut t: Secret = Zeroizing::new(Vec::new());
        for n in 1..=blocks as u8 {
            let mut parts: Vec<&[u8]> = Vec::with_capacity(seed.len() + 2);
            parts.push(&t);
            parts.extend_from_slice(seed);
            let counter = [n];
            parts.push(&counter);
            t = self.prf(key, &parts);
            out.extend_from_slice(&t);
        }
        out.truncate(len);
        Some(out)
    }

    /// SKEYSEED = prf(Ni | Nr, g^ir) (RFC 7296 section 2.14).
    pub fn skeyseed(self, ni: &[u8], nr: &[u8], gir: &[u8]) -> Secret {
        let mut key = Zeroizing::new(Vec::with_capacity(ni.len() + nr.len()));
        key.extend_from_slice(ni);
        key.extend_from_slice(nr);
        self.prf(&key, &[gir])
    }

    /// SK_d | SK_ai | SK_ar | SK_ei | SK_er | SK_pi | SK_pr = prf+(SKEYSEED, Ni | Nr | SPIi |
    /// SPIr), `len` bytes of it.
    pub fn ike_keys(
        self,
        skeyseed: &[u8],
        ni: &[u8],
        nr: &[u8],
        spi_i: u64,
        spi_r: u64,
        len: usize,
    ) -> Option<Secret> {
        self.prf_plus(
            skeyseed,
            &[ni, nr, &spi_i.to_be_bytes(), &spi_r.to_be_bytes()],
            len,
        )
    }

    /// A child SA's KEYMAT = prf+(SK_d, [g^ir (new) |] Ni | Nr) (RFC 7296 section 2.17).
    pub fn child_keymat(
        self,
        sk_d: &[u8],
        gir_new: Option<&[u8]>,
        ni: &[u8],
        nr: &[u8],
        len: usize,
    ) -> Option<Secret> {
        match gir_new {
            Some(g) => self.prf_plus(sk_d, &[g, ni, nr], len),
            None => self.prf_plus(sk_d, &[ni, nr], len),
        }
    }

    /// The SKEYSEED of a rekeyed IKE SA: prf(SK_d (old), g^ir (new) | Ni | Nr) (RFC 7296
    /// section 2.18).
    pub fn rekey_skeyseed(self, sk_d_old: &[u8], gir_new: &[u8], ni: &[u8], nr: &[u8]) -> Secret {
        self.prf(sk_d_old, &[gir_new, ni, nr])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(s: &str) -> Vec<u8> {
        hex::decode(s).unwrap()
    }

    /// A NIST CAVS IKEv2 KDF vector (SHA-1, DKM 132 bytes), as libreswan's CAVS tool prints
    /// it: independent of this code and of ring.
    #[test]
    fn the_key_schedule_matches_a_cavs_vector() {
        let gir = h("4b2c1f971981a8ad8d0abeafabf38cf75fc8349c148142465ed9c8b516b8be52");
        let gir_new = h("863f3c9d06efd39d2b907b97f8699e5dd5251ef64a2a176f36ee40c87d4f9330");
        let (ni, nr) = (h("32b50d5f4a3763f3"), h("9206a04b26564cb1"));
        let (spi_i, spi_r) = (0x34c9e7c188868785u64, 0x3ff77d760d2b2199u64);
        let p = Prf::HmacSha1;
        let skeyseed = p.skeyseed(&ni, &nr, &gir);
        assert_eq!(
            hex::encode(&*skeyseed),
            "a9a7b222b59f8f48645f28a1db5b5f5d7479cba7"
        );
        let dkm = p.ike_keys(&skeyseed, &ni, &nr, spi_i, spi_r, 132).unwrap();
        assert_eq!(
            hex::encode(&*dkm),
            "a14293677cc80ff8f9cc0eee30d895da9d8f405666e30ef0dfcb63c634a46002a2a63080e514a062768b76606f9fa5e992204fc5a670bde3f10d6b027113936a5c55b648a194ae587b0088d52204b702c979fa280870d2ed41efa9c549fd11198af1670b143d384bd275c5f594cf266b05ebadca855e4249520a441a81157435a7a56cc4"
        );
        let sk_d = &dkm[..p.output_len()];
        let child = p.child_keymat(sk_d, None, &ni, &nr, 132).unwrap();
        assert_eq!(
            hex::encode(&*child),
            "8059e3ee8810e6c3a91bc8bcd2a7a41151b8d0e6ae239c7b38093ad85ef4c5811a8e7b5d1cdabd9560b2d5e092d1f24e2d4b85eccdf0ad0dc9abd94b51ee71814ca6dbc8bb51b6309f5b9545c7eb35cf5580b1e521a8fe20754a2d883ba0c2cf285f524aea6545b33106bc03e614296d319d41d4b50b3f510b1c0a22f3e664994d234cb4"
        );
        let child_dh = p.child_keymat(sk_d, Some(&gir_new), &ni, &nr, 132).unwrap();
        assert_eq!(
            hex::encode(&*child_dh),
            "bb43244c1860ad65ee1e211ffe8bb3661750c8f89cb9f547df7f4fa61d37301628190e38c66232eab4b3ab14c400a5197dd3730ed4820a8a10394d51e1c0400052f63ebd36b0e7ef53aaed31eba4a5080d7d4b5666023a8bbb5ffb7857240f9a05884d1b7d2f933708450b7b3288f1fc863ab49fa901227cffc06e27899c7054d56fd74c"
        );
        let rekey = p.rekey_skeyseed(sk_d, &gir_new, &ni, &nr);
        assert_eq!(
            hex::encode(&*rekey),
            "63e81194946ebd05df7df5ebf5d8750056bf1f1d"
        );
    }

    #[test]
    fn prf_plus_stops_at_255_blocks() {
        let p = Prf::HmacSha256;
        assert!(p.prf_plus(b"k", &[b"s"], 255 * 32).is_some());
        assert!(p.prf_plus(b"k", &[b"s"], 255 * 32 + 1).is_none());
        // Blocks chain: the second block's first bytes differ from the first's.
        let two = p.prf_plus(b"k", &[b"s"], 64).unwrap();
        assert_eq!(&two[..32], &*p.prf(b"k", &[b"s", &[1]]));
        assert_eq!(&two[32..], &*p.prf(b"k", &[&two[..32], b"s", &[2]]));
    }
}
