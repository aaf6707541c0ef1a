//! Inbound SAs that asked to be watched (`InboundSaSpec::idle_after`, for IKE's dead peer
//! detection) are reported once nothing has arrived on them for that long, and again only
//! after traffic came back and stopped again. Checked on the main lcore from the SAs' packet
//! counters, about once a second: no worker does anything for it.

use super::view::SaKey;
use super::ControlState;
use std::time::{Duration, Instant};

/// How often the counters are looked at.
pub const CHECK_EVERY: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Copy)]
pub struct Watch {
    after: Duration,
    /// The SA's packet count when it last moved, and when that was (`None`: not looked yet).
    last: Option<(u64, Instant)>,
    reported: bool,
}

impl Watch {
    pub fn new(seconds: u32) -> Watch {
        Watch {
            after: Duration::from_secs(u64::from(seconds)),
            last: None,
            reported: false,
        }
    }
}

impl ControlState {
    /// Reports the watched inbound SAs that are idle at `now` (as notices for the control).
    pub fn check_idle(&mut self, now: Instant) {
        let packets: Vec<(u32, Option<u64>)> = {
            let v = self.lock_view();
            self.inbound
                .iter()
                .filter(|(_, r)| r.idle.is_some())
                .map(|(&spi, _)| {
                    let n = v.sas.get(&SaKey::In(spi)).map(|s| s.counters()[0].1);
                    (spi, n)
                })
                .collect()
        };
        let mut idle = Vec::new();
        for (spi, n) in packets {
            let (Some(r), Some(n)) = (self.inbound.get_mut(&spi), n) else {
                continue;
            };
            let Some(w) = r.idle.as_mut() else {
                continue;
            };
            match w.last {
                Some((seen, _)) if seen == n => {}
                _ => {
                    w.last = Some((n, now));
                    w.reported = false;
                }
            }
            if let Some((_, since)) = w.last {
                let quiet = now.saturating_duration_since(since);
                if !w.reported && quiet >= w.after {
                    w.reported = true;
                    idle.push((spi, r.tunnel, quiet.as_secs() as u32));
                }
            }
        }
        for (spi, tunnel, seconds) in idle {
            self.notice(channel::message::Event::Idle {
                spi,
                tunnel,
                seconds,
            });
        }
    }
}
