//! `show security ike security-associations` in Junos' layout.

use super::{s, table};
use serde_json::Value;

/// The IKE SAs of `GET /v1/ike` (`index` only that one); `detail` adds each SA's children
/// and counters, and every gateway's counters.
pub fn security_associations(v: &Value, index: Option<u64>, detail: bool) -> String {
    let sas: Vec<&Value> = v["security_associations"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|x| index.is_none() || x["index"].as_u64() == index)
        .collect();
    let rows = sas
        .iter()
        .map(|x| {
            vec![
                s(x, "index"),
                match s(x, "state").as_str() {
                    "established" => "UP".to_string(),
                    other => other.to_uppercase(),
                },
                s(x, "initiator_spi"),
                s(x, "responder_spi"),
                "IKEv2".to_string(),
                s(x, "remote"),
            ]
        })
        .collect();
    let mut out = table(
        &[
            "Index",
            "State",
            "Initiator cookie",
            "Responder cookie",
            "Mode",
            "Remote Address",
        ],
        rows,
    );
    if !detail {
        return out;
    }
    for x in &sas {
        out.push_str(&format!(
            "\n\nIKE SA index {}: VPN {}, gateway {}, role {}, local {}, remote {}{}\n  local identity: {}\n  remote identity: {}\n  authentication: {}\n  established {} s, exchanges {}, retransmits {}, child rekeys {}\n",
            s(x, "index"),
            s(x, "vpn"),
            s(x, "gateway"),
            s(x, "role"),
            s(x, "local"),
            s(x, "remote"),
            if x["nat_t"] == Value::Bool(true) { ", NAT-T" } else { "" },
            s(x, "local_identity"),
            s(x, "remote_identity"),
            s(x, "authentication"),
            s(x, "established_s"),
            s(x, "exchanges"),
            s(x, "retransmits"),
            s(x, "child_rekeys"),
        ));
        let rows = x["children"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| {
                vec![
                    s(c, "tunnel"),
                    s(c, "inbound_spi"),
                    s(c, "outbound_spi"),
                    if c["outbound"] == Value::Bool(true) {
                        "yes"
                    } else {
                        "no"
                    }
                    .to_string(),
                    if c["esn"] == Value::Bool(true) {
                        "yes"
                    } else {
                        "no"
                    }
                    .to_string(),
                    join(&c["local_ts"]),
                    join(&c["remote_ts"]),
                    s(c, "age_s"),
                ]
            })
            .collect();
        out.push_str(&table(
            &[
                "Tunnel", "In SPI", "Out SPI", "Sending", "ESN", "Local", "Remote", "Age s",
            ],
            rows,
        ));
    }
    let rows = v["gateways"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|g| {
            let failures = g["failures"]
                .as_object()
                .map(|f| {
                    f.iter()
                        .map(|(k, n)| format!("{k} {n}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .unwrap_or_default();
            vec![
                s(g, "gateway"),
                s(g, "established"),
                s(g, "initiated"),
                s(g, "responded"),
                s(g, "dpd_timeouts"),
                s(g, "deleted_by_peer"),
                if failures.is_empty() {
                    "-".into()
                } else {
                    failures
                },
            ]
        })
        .collect();
    out.push_str("\n\n");
    out.push_str(&table(
        &[
            "Gateway",
            "Established",
            "Initiated",
            "Responded",
            "DPD timeouts",
            "Deleted by peer",
            "Failures",
        ],
        rows,
    ));
    out
}

fn join(v: &Value) -> String {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect::<Vec<_>>()
        .join(" ")
}
