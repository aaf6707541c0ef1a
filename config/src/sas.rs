//! The `manual_sas` section: statically keyed SAs, for benchmarks and offline runs (as DPDK's
//! ipsec-secgw takes them).

use super::file::{LifetimeFile, ManualSaFile, SpiFile};
use super::{err, ConfigError, ManualSa, Tunnel};
use channel::Direction;
use channel::{KeyMaterial, Lifetime};
use channel::{DEFAULT_REPLAY_WINDOW as DEFAULT_WINDOW, MAX_REPLAY_WINDOW as MAX_WINDOW};
use std::collections::{HashMap, HashSet};

pub(super) fn manual_sas(
    list: &[ManualSaFile],
    tunnels: &[Tunnel],
) -> Result<Vec<ManualSa>, ConfigError> {
    let tunnel_names: HashMap<&str, channel::Name> =
        tunnels.iter().map(|t| (t.name.as_str(), t.name)).collect();
    let mut manual_sas: Vec<ManualSa> = Vec::with_capacity(list.len());
    let mut in_spis = HashSet::new();
    let mut out_tunnels = HashSet::new();
    for (i, s) in list.iter().enumerate() {
        let field = |x: &str| format!("manual_sas[{i}].{x}");
        let Some(&tunnel) = tunnel_names.get(s.tunnel.as_str()) else {
            return err(field("tunnel"), format!("no tunnel named {:?}", s.tunnel));
        };
        let spi = parse_spi(&field("spi"), &s.spi)?;
        match s.direction {
            Direction::In if !in_spis.insert(spi) => {
                return err(field("spi"), format!("inbound SPI {spi:#x} is used twice"));
            }
            Direction::Out if !out_tunnels.insert(tunnel) => {
                return err(
                    field("tunnel"),
                    format!("{} already has an outbound SA", s.tunnel),
                );
            }
            _ => {}
        }
        let keys = match &s.key.0 {
            Ok(k) => {
                KeyMaterial::new(s.algorithm, k).or_else(|e| err(field("key"), e.to_string()))?
            }
            Err(e) => return err(field("key"), *e),
        };
        let replay_window = match (s.direction, s.replay_window) {
            (Direction::Out, Some(_)) => {
                return err(field("replay_window"), "applies to inbound SAs only")
            }
            (_, Some(w)) if w > MAX_WINDOW => {
                return err(field("replay_window"), format!("{w} is above {MAX_WINDOW}"))
            }
            (_, Some(w)) => w,
            (_, None) => DEFAULT_WINDOW,
        };
        if let Some(q) = s.initial_seq {
            if !s.esn && q > u64::from(u32::MAX) {
                return err(field("initial_seq"), "above 2^32 - 1 without ESN");
            }
            if q == 0 && s.direction == Direction::Out {
                return err(
                    field("initial_seq"),
                    "the first sequence number is 1 or more",
                );
            }
        }
        let soft = lifetime(&field("soft_limit"), s.soft_limit.as_ref())?;
        let hard = lifetime(&field("hard_limit"), s.hard_limit.as_ref())?;
        for (kind, soft, hard) in [
            ("packets", soft.packets, hard.packets),
            ("bytes", soft.bytes, hard.bytes),
        ] {
            if soft.zip(hard).is_some_and(|(s, h)| s > h) {
                return err(
                    field("soft_limit"),
                    format!("{kind} above the hard limit's"),
                );
            }
        }
        manual_sas.push(ManualSa {
            tunnel,
            direction: s.direction,
            spi,
            keys,
            esn: s.esn,
            replay_window,
            initial_seq: s.initial_seq,
            soft,
            hard,
        });
    }
    Ok(manual_sas)
}

fn lifetime(field: &str, l: Option<&LifetimeFile>) -> Result<Lifetime, ConfigError> {
    let Some(l) = l else {
        return Ok(Lifetime::default());
    };
    if l.packets == Some(0) || l.bytes == Some(0) {
        return err(
            field,
            "a limit of 0 would end the SA before its first packet",
        );
    }
    if l.packets.is_none() && l.bytes.is_none() {
        return err(field, "give packets, bytes or both");
    }
    Ok(Lifetime {
        packets: l.packets,
        bytes: l.bytes,
    })
}

fn parse_spi(field: &str, s: &SpiFile) -> Result<u32, ConfigError> {
    let v = match s {
        SpiFile::Number(n) => *n,
        SpiFile::Text(t) => {
            let t = t.trim();
            let r = match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
                Some(h) => u64::from_str_radix(h, 16),
                None => t.parse(),
            };
            r.or_else(|_| err(field, format!("{t:?} is not a number or a 0x hex string")))?
        }
    };
    // RFC 4303 section 2.1: 0 is never sent and 1-255 are reserved by IANA.
    if !(256..=u64::from(u32::MAX)).contains(&v) {
        return err(
            field,
            format!("{v:#x} is outside 0x100..0xffffffff (0-255 are reserved)"),
        );
    }
    Ok(v as u32)
}
