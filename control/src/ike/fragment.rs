//! IKE fragmentation (RFC 7383): a message too big for the path leaves as several, each with
//! one Encrypted Fragment payload (SKF) sealed on its own, so that no IP fragment is needed
//! (NATs and firewalls drop them). The receiver checks each fragment before it keeps it and
//! opens the message once all are in. Both ends must have said IKE_FRAGMENTATION_SUPPORTED
//! in IKE_SA_INIT, which itself is never fragmented.

use super::sk::{self, Part, SkError, SkKey};
use super::wire::{emit_chain, parse_chain, payload_type, Header, Message, Payload, WireError};
use ring::rand::SystemRandom;

/// IKE_FRAGMENTATION_SUPPORTED (RFC 7383 section 2.3).
pub const IKE_FRAGMENTATION_SUPPORTED: u16 = 16430;
/// Fragments of one message at most: more, and the message is dropped.
pub const MAX_FRAGMENTS: u16 = 64;
/// The reassembled payloads of one message at most.
pub const MAX_MESSAGE: usize = 64 * 1024;
/// UDP header and the non-ESP marker on port 4500: what the path adds to an IKE message
/// besides the IP header (20 bytes for IPv4, 40 for IPv6).
pub const UDP_MARKER: usize = 8 + 4;

/// `inner` sealed under `key`: one message if it fits in `max` bytes (or `max` is `None`),
/// else fragments of at most `max` bytes each. Each message takes the next GCM IV from
/// `counter` (RFC 5282: never twice under one key).
pub fn seal(
    header: &Header,
    inner: &[Payload],
    key: &SkKey,
    counter: &mut u64,
    rng: &SystemRandom,
    max: Option<usize>,
) -> Result<Vec<Vec<u8>>, SkError> {
    let first = inner.first().map_or(payload_type::NONE, Payload::kind);
    let mut chain = Vec::with_capacity(256);
    emit_chain(inner, &mut chain);
    let whole = sk::overhead(key, Part::Whole, chain.len()) + chain.len();
    let Some(max) = max.filter(|&m| whole > m) else {
        *counter += 1;
        return Ok(vec![sk::seal_part(
            header,
            first,
            Part::Whole,
            &chain,
            key,
            *counter,
            rng,
        )?]);
    };
    // The most payload bytes a fragment of `max` bytes holds (CBC pads to its block).
    let probe = Part::Fragment {
        number: 1,
        total: 1,
    };
    let mut room = max.saturating_sub(sk::overhead(key, probe, 0));
    while room > 0 && sk::overhead(key, probe, room) + room > max {
        room -= 1;
    }
    if room == 0 {
        return Err(WireError::Malformed("fragment size too small").into());
    }
    let pieces: Vec<&[u8]> = chain.chunks(room).collect();
    let total = u16::try_from(pieces.len())
        .ok()
        .filter(|&t| t <= MAX_FRAGMENTS)
        .ok_or(WireError::Malformed("too many fragments"))?;
    let mut out = Vec::with_capacity(pieces.len());
    for (i, piece) in pieces.iter().enumerate() {
        // Only the first fragment names the first payload inside (RFC 7383 section 2.5).
        let kind = if i == 0 { first } else { payload_type::NONE };
        let part = Part::Fragment {
            number: i as u16 + 1,
            total,
        };
        *counter += 1;
        out.push(sk::seal_part(
            header, kind, part, piece, key, *counter, rng,
        )?);
    }
    Ok(out)
}

/// The fragments of one message as they come in (RFC 7383 section 2.6).
#[derive(Debug)]
pub struct Reassembly {
    message_id: u32,
    response: bool,
    first: u8,
    parts: Vec<Option<Vec<u8>>>,
    size: usize,
}

/// Adds the fragment `bytes` (a message the caller expects: its ID is the one due) to
/// `slot`, checked under the peer's `key` first: a fragment that does not verify changes
/// nothing. The whole message, opened, once the last fragment is in.
pub fn reassemble(
    slot: &mut Option<Reassembly>,
    bytes: &[u8],
    key: &SkKey,
) -> Result<Option<Message>, SkError> {
    let (outer, first, part, chain) = sk::open_part(bytes, key)?;
    let Part::Fragment { number, total } = part else {
        return Err(SkError::NotEncrypted);
    };
    if total > MAX_FRAGMENTS {
        return Err(WireError::Malformed("too many fragments").into());
    }
    let h = outer.header;
    let total = usize::from(total);
    // Another message, or this one sent again in more (smaller) fragments after a lost
    // one (RFC 7383 section 2.6.2): start over. Fewer: an older send, dropped.
    let fresh = match slot {
        Some(r) => {
            r.message_id != h.message_id || r.response != h.flags.response || total > r.parts.len()
        }
        None => true,
    };
    if fresh {
        *slot = Some(Reassembly {
            message_id: h.message_id,
            response: h.flags.response,
            first: payload_type::NONE,
            parts: vec![None; total],
            size: 0,
        });
    }
    let Some(r) = slot.as_mut() else {
        return Ok(None);
    };
    let i = usize::from(number) - 1;
    if total != r.parts.len() || r.parts.get(i).is_none_or(Option::is_some) {
        return Ok(None);
    }
    r.size += chain.len();
    if r.size > MAX_MESSAGE {
        *slot = None;
        return Err(WireError::Malformed("reassembled message too big").into());
    }
    if number == 1 {
        r.first = first;
    }
    r.parts[i] = Some(chain);
    if r.parts.iter().any(Option::is_none) {
        return Ok(None);
    }
    let Some(r) = slot.take() else {
        return Ok(None);
    };
    let chain: Vec<u8> = r.parts.into_iter().flatten().flatten().collect();
    Ok(Some(Message {
        header: h,
        payloads: parse_chain(r.first, &chain)?,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ike::wire::{Exchange, Flags, Id, Notify};

    fn header() -> Header {
        Header {
            initiator_spi: 0x1111,
            responder_spi: 0x2222,
            exchange: Exchange::IkeAuth,
            flags: Flags {
                initiator: true,
                ..Default::default()
            },
            message_id: 1,
        }
    }

    fn inner() -> Vec<Payload> {
        vec![
            Payload::IdI(Id {
                kind: 2,
                data: b"a-rather-long-name.gw1.example".to_vec(),
            }),
            Payload::Notify(Notify {
                protocol: 0,
                kind: 16384,
                spi: Vec::new(),
                data: vec![0xab; 700],
            }),
            Payload::Auth {
                method: 2,
                data: vec![0x5a; 32],
            },
        ]
    }

    fn keys() -> Vec<SkKey> {
        vec![
            SkKey::new(&[7u8; 36]).unwrap(),
            SkKey::cbc(&[9u8; 32], sk::Integrity::HmacSha256_128, &[3u8; 32]).unwrap(),
        ]
    }

    #[test]
    fn a_big_message_leaves_in_fragments_that_fit_and_comes_back_whole_in_any_order() {
        let rng = SystemRandom::new();
        for key in keys() {
            let mut iv = 0;
            let frags = seal(&header(), &inner(), &key, &mut iv, &rng, Some(300)).unwrap();
            assert!(frags.len() >= 3, "{}", frags.len());
            assert!(frags.iter().all(|f| f.len() <= 300));
            assert_eq!(iv, frags.len() as u64, "one IV each");
            // Reversed, with a copy of one: whole only at the last, the same payloads.
            let mut slot = None;
            let mut order: Vec<&Vec<u8>> = frags.iter().rev().collect();
            order.insert(1, &frags[frags.len() - 1]);
            let mut whole = None;
            for (n, f) in order.iter().enumerate() {
                let got = reassemble(&mut slot, f, &key).unwrap();
                assert_eq!(got.is_some(), n == order.len() - 1);
                whole = whole.or(got);
            }
            let m = whole.unwrap();
            assert_eq!(m.payloads, inner());
            assert_eq!(m.header.message_id, 1);
            // Small enough: one ordinary message.
            let one = seal(&header(), &inner()[..1], &key, &mut iv, &rng, Some(300)).unwrap();
            assert_eq!(one.len(), 1);
            assert_eq!(sk::open(&one[0], &key).unwrap().payloads, inner()[..1]);
        }
    }

    #[test]
    fn a_forged_or_foreign_fragment_changes_nothing() {
        let rng = SystemRandom::new();
        let key = SkKey::new(&[7u8; 36]).unwrap();
        let other = SkKey::new(&[8u8; 36]).unwrap();
        let mut iv = 0;
        let frags = seal(&header(), &inner(), &key, &mut iv, &rng, Some(400)).unwrap();
        let mut slot = None;
        let mut bad = frags[1].clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert!(reassemble(&mut slot, &bad, &key).is_err());
        assert!(slot.is_none());
        assert!(reassemble(&mut slot, &frags[0], &other).is_err());
        assert!(slot.is_none());
        let mut got = None;
        for f in &frags {
            got = reassemble(&mut slot, f, &key).unwrap();
        }
        assert_eq!(got.unwrap().payloads, inner());
    }

    #[test]
    fn a_resend_in_more_fragments_starts_over_and_an_older_one_is_ignored() {
        let rng = SystemRandom::new();
        let key = SkKey::new(&[7u8; 36]).unwrap();
        let mut iv = 0;
        let big = seal(&header(), &inner(), &key, &mut iv, &rng, Some(600)).unwrap();
        let small = seal(&header(), &inner(), &key, &mut iv, &rng, Some(250)).unwrap();
        assert!(small.len() > big.len());
        let mut slot = None;
        assert!(reassemble(&mut slot, &big[0], &key).unwrap().is_none());
        let mut got = None;
        for (n, f) in small.iter().enumerate() {
            got = reassemble(&mut slot, f, &key).unwrap();
            if n == 0 {
                // The older, larger fragments are not taken any more.
                assert!(reassemble(&mut slot, &big[1], &key).unwrap().is_none());
            }
        }
        assert_eq!(got.unwrap().payloads, inner());
    }

    #[test]
    fn too_many_fragments_are_refused_both_ways() {
        let rng = SystemRandom::new();
        let key = SkKey::new(&[7u8; 36]).unwrap();
        let mut iv = 0;
        let huge = vec![Payload::Notify(Notify {
            protocol: 0,
            kind: 16384,
            spi: Vec::new(),
            data: vec![1; 20_000],
        })];
        assert!(seal(&header(), &huge, &key, &mut iv, &rng, Some(200)).is_err());
        assert!(seal(&header(), &huge, &key, &mut iv, &rng, Some(40)).is_err());
    }
}
