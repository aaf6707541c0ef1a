//! The AEAD backends against published vectors.

use super::*;

fn h(s: &str) -> Vec<u8> {
    hex::decode(s).unwrap()
}

/// One operation with no AAD through the batch interface.
fn one(c: &impl Aead, iv: &[u8; NONCE_LEN], buf: &mut [u8]) -> bool {
    let mut ops = AeadOps::new();
    assert_eq!(ops.push(buf, iv, &[0; MAX_AAD_LEN], 0), Some(0));
    c.process(&mut ops);
    ops.ok(0)
}

/// McGrew & Viega, "The Galois/Counter Mode of Operation", test cases 3 (AES-128) and
/// 15 (AES-256): 64-byte plaintext, no AAD, 96-bit IV; run through the batch interface
/// both ways, and a flipped bit must fail to open.
#[test]
fn gcm_spec_test_vectors() {
    let pt = h("d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b391aafd255");
    let iv: [u8; 12] = h("cafebabefacedbaddecaf888").try_into().unwrap();
    let cases = [
        (
            Algorithm::Aes128Gcm,
            "feffe9928665731c6d6a8f9467308308",
            "42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091473f5985",
            "4d5c2af327cd64a62cf35abd2ba6fab4",
        ),
        (
            Algorithm::Aes256Gcm,
            "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308",
            "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662898015ad",
            "b094dac5d93471bdec1a502270e3cc6c",
        ),
    ];
    for (alg, key, ct, tag) in cases {
        let sealer = RingGcm::new(alg, &h(key), Op::Seal).unwrap();
        let opener = RingGcm::new(alg, &h(key), Op::Open).unwrap();
        let mut buf = pt.clone();
        buf.extend_from_slice(&[0; TAG_LEN]);
        assert!(one(&sealer, &iv, &mut buf));
        assert_eq!(buf[..64], h(ct)[..], "{alg:?} ciphertext");
        assert_eq!(buf[64..], h(tag)[..], "{alg:?} tag");
        assert!(one(&opener, &iv, &mut buf));
        assert_eq!(&buf[..64], &pt[..]);
        buf[..64].copy_from_slice(&h(ct));
        buf[3] ^= 0x80;
        assert!(
            !one(&opener, &iv, &mut buf),
            "{alg:?}: a flipped bit must not open"
        );
        let mut short = [0u8; TAG_LEN - 1];
        let mut ops = AeadOps::new();
        let aad = [0; MAX_AAD_LEN];
        assert_eq!(
            ops.push(&mut short, &iv, &aad, 0),
            None,
            "shorter than a tag"
        );
    }
}

#[test]
fn ring_refuses_a_key_of_the_wrong_length() {
    assert!(RingGcm::new(Algorithm::Aes128Gcm, &[0; 32], Op::Seal).is_err());
    assert!(RingGcm::new(Algorithm::Aes256Gcm, &[0; 16], Op::Open).is_err());
}
