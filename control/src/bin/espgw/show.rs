//! What each `show` command prints, from the REST port's JSON, in Junos' layouts.

use super::{ike, index_detail, policies, s, table, Ike, Ipsec, Security, Show};
use serde_json::Value;

/// What the SA has left of its hard lifetime, as Junos's `Life` column: seconds (an SA IKE
/// negotiated), then packets/kB; `unlim` for none.
fn life(sa: &Value) -> String {
    let rest = life_volume(sa);
    match sa["expires_in_s"].as_u64() {
        Some(s) => format!("{s}/{rest}"),
        None => rest,
    }
}

/// The packets/kB part of `life`.
fn life_volume(sa: &Value) -> String {
    let h = &sa["hard_lifetime"];
    let left = |limit: &Value, used: &Value, div: u64| match limit.as_u64() {
        Some(l) => (l.saturating_sub(used.as_u64().unwrap_or(0)) / div).to_string(),
        None => "unlim".into(),
    };
    let p = left(&h["packets"], &sa["packets"], 1);
    let b = left(&h["bytes"], &sa["bytes"], 1024);
    if p == "unlim" && b == "unlim" {
        "unlim".into()
    } else {
        format!("{p}/{b}")
    }
}

pub fn render(what: &Show, v: &Value) -> Result<String, String> {
    let list = || v.as_array().cloned().unwrap_or_default();
    Ok(match what {
        Show::Security {
            what:
                Security::Ipsec {
                    what: Ipsec::SecurityAssociations { words },
                },
        } => {
            let (index, detail) = index_detail(words)?;
            let sas: Vec<Value> = list()
                .into_iter()
                .filter(|x| index.is_none() || x["index"].as_u64() == index)
                .collect();
            let tunnels: std::collections::BTreeSet<String> =
                sas.iter().map(|x| s(x, "tunnel")).collect();
            let mut out = format!(
                "  Total active tunnels: {}     Total IPsec SAs: {}\n",
                tunnels.len(),
                sas.len()
            );
            let mut rows = Vec::new();
            for x in &sas {
                let dir = if s(x, "direction") == "in" { "<" } else { ">" };
                let spi =
                    u32::from_str_radix(s(x, "spi").trim_start_matches("0x"), 16).unwrap_or(0);
                let port = x["udp_encap"]
                    .as_array()
                    .and_then(|p| p.get(1))
                    .map_or("-".to_string(), |p| p.to_string());
                let mut row = vec![
                    format!("{dir}{}", s(x, "index")),
                    s(x, "tunnel"),
                    format!(
                        "ESP:{}{}",
                        s(x, "algorithm"),
                        if x["esn"] == Value::Bool(true) {
                            "/ESN"
                        } else {
                            ""
                        }
                    ),
                    format!("{spi:08x}"),
                    life(x),
                    port,
                    s(x, "remote"),
                    s(x, "worker"),
                ];
                if detail {
                    for k in ["packets", "bytes", "auth_failures", "replay_errors"] {
                        row.push(s(x, k));
                    }
                }
                rows.push(row);
            }
            let mut header = vec![
                "ID",
                "Tunnel",
                "Algorithm",
                "SPI",
                "Life:sec/pkts/kB",
                "Port",
                "Gateway",
                "Worker",
            ];
            if detail {
                header.extend(["Packets", "Bytes", "Auth failures", "Replay errors"]);
            }
            out.push_str(&table(&header, rows));
            out
        }
        Show::Security {
            what: Security::Ipsec {
                what: Ipsec::Statistics { words },
            },
        } => {
            if let (Some(i), _) = index_detail(words)? {
                // One tunnel: its SAs' counters (Junos `statistics index N`).
                let sas: Vec<Value> = list()
                    .into_iter()
                    .filter(|x| x["index"].as_u64() == Some(i))
                    .collect();
                if sas.is_empty() {
                    return Err(format!("no tunnel with index {i}"));
                }
                let sum = |dir: &str, k: &str| -> u64 {
                    sas.iter()
                        .filter(|x| x["direction"] == dir)
                        .map(|x| x[k].as_u64().unwrap_or(0))
                        .sum()
                };
                return Ok(format!(
                    "ESP Statistics (index {i}, tunnel {}):\n  Encrypted bytes:      {:>14}\n  Decrypted bytes:      {:>14}\n  Encrypted packets:    {:>14}\n  Decrypted packets:    {:>14}\nErrors:\n  ESP authentication failures: {}, Replay errors: {}",
                    s(&sas[0], "tunnel"),
                    sum("out", "bytes"),
                    sum("in", "bytes"),
                    sum("out", "packets"),
                    sum("in", "packets"),
                    sum("in", "auth_failures"),
                    sum("in", "replay_errors"),
                ));
            }
            let g = &v["global"];
            let n = |k: &str| g[k].as_u64().unwrap_or(0);
            let mut out = String::from("ESP Statistics:\n");
            for (label, k) in [
                ("Encrypted bytes", "encrypted_bytes"),
                ("Decrypted bytes", "decrypted_bytes"),
                ("Encrypted packets", "encrypted_packets"),
                ("Decrypted packets", "decrypted_packets"),
            ] {
                out.push_str(&format!("  {:<22}{:>14}\n", format!("{label}:"), n(k)));
            }
            out.push_str("Errors:\n");
            out.push_str(&format!(
                "  ESP authentication failures: {}, Replay errors: {}\n  Bad headers: {}, Bad trailers: {}\n  Invalid SPI: {}, TS check fail: {}\n  Exceeds tunnel MTU: {}, Sequence exhausted: {}",
                n("esp_auth_failures"), n("replay_errors"), n("bad_headers"), n("bad_trailers"),
                n("invalid_spi"), n("ts_check_fail"), n("exceeds_tunnel_mtu"), n("seq_exhausted")
            ));
            out.push_str(&format!(
                "\nPolicies:\n  Tunneled: {}, Permitted: {}, Denied: {}, Unmatched: {}",
                n("policy_tunneled"),
                n("policy_permitted"),
                n("policy_denied"),
                n("policy_unmatched")
            ));
            out
        }
        Show::Security {
            what: Security::Policies,
        } => policies::list(v),
        Show::Security {
            what:
                Security::Ike {
                    what: Ike::SecurityAssociations { words },
                },
        } => {
            let (index, detail) = index_detail(words)?;
            ike::security_associations(v, index, detail)
        }
        Show::Security {
            what: Security::Ike {
                what: Ike::TunnelMap,
            },
        } => {
            let mut rows = Vec::new();
            for g in list() {
                for w in g["workers"].as_array().into_iter().flatten() {
                    rows.push(vec![
                        s(&g, "group"),
                        s(w, "lcore"),
                        format!("{:.2}", g["load_factor"].as_f64().unwrap_or(0.0)),
                        s(w, "tunnels"),
                        s(w, "sas"),
                        s(w, "packets"),
                        s(w, "bytes"),
                    ]);
                }
            }
            table(
                &[
                    "Group",
                    "Worker",
                    "Load factor",
                    "Tunnels",
                    "SAs",
                    "Packets",
                    "Bytes",
                ],
                rows,
            )
        }
        Show::Configuration => {
            serde_json::to_string_pretty(v.get("config").unwrap_or(v)).unwrap_or_default()
        }
        Show::Interfaces => table(
            &["Interface", "Port", "Address", "MAC", "MTU"],
            list()
                .iter()
                .map(|i| {
                    vec![
                        s(i, "name"),
                        s(i, "port"),
                        s(i, "address"),
                        s(i, "mac"),
                        s(i, "mtu"),
                    ]
                })
                .collect(),
        ),
        Show::Route => table(
            &["Destination", "Next hop"],
            list()
                .iter()
                .map(|r| {
                    let via = match (r.get("tunnel"), r.get("via")) {
                        (Some(Value::String(t)), _) => t.clone(),
                        (_, Some(Value::String(g))) => format!("to {g}"),
                        _ => "-".into(),
                    };
                    vec![s(r, "prefix"), via]
                })
                .collect(),
        ),
        Show::Commits => table(
            &["Rollback", "Commit", "Time (Unix)"],
            list()
                .iter()
                .map(|c| vec![s(c, "rollback"), s(c, "sequence"), s(c, "time")])
                .collect(),
        ),
        Show::Status => {
            let d = v.get("dataplane").cloned().unwrap_or_default();
            let l = v.get("link").cloned().unwrap_or_default();
            format!(
                "Dataplane: {} (channel {}, generation {}, pid {}, heartbeat {} ms ago)\n\
                 Commits: {}  Resyncs: {}  Changes sent: {}  Refused: {}  Notices: {}",
                if d.get("alive") == Some(&Value::Bool(true)) {
                    "up"
                } else if d.get("attached") == Some(&Value::Bool(true)) {
                    "attached, no heartbeat"
                } else {
                    "not attached"
                },
                s(&d, "channel"),
                d.get("generation")
                    .and_then(Value::as_u64)
                    .map_or("-".into(), |g| format!("{g:#x}")),
                s(&d, "dataplane_pid"),
                s(&d, "heartbeat_age_ms"),
                s(v, "commits"),
                s(v, "resyncs"),
                s(&l, "changes_sent"),
                s(&l, "refused"),
                s(&l, "notices"),
            )
        }
    })
}
