//! `show security policies` (Junos' policy list): the running configuration's policies in
//! order, what each matches and does.

use super::table;
use serde_json::Value;

/// The policies of `GET /v1/config`'s running configuration.
pub fn list(v: &Value) -> String {
    let words = |x: &Value, k: &str, any: &str| -> String {
        match x[k].as_array() {
            Some(l) if !l.is_empty() => l
                .iter()
                .map(|p| p.as_str().unwrap_or("?").to_string())
                .collect::<Vec<_>>()
                .join(" "),
            _ => any.to_string(),
        }
    };
    let text = |x: &Value, k: &str, any: &str| x[k].as_str().unwrap_or(any).to_string();
    let rows: Vec<Vec<String>> = v["config"]["policies"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
        .map(|(i, p)| {
            let then = match &p["then"] {
                Value::String(w) => w.clone(),
                t => format!("ipsec-vpn {}", text(t, "ipsec_vpn", "?")),
            };
            vec![
                (i + 1).to_string(),
                text(p, "name", "?"),
                words(p, "source", "any"),
                words(p, "destination", "any"),
                text(p, "protocol", "any"),
                text(p, "source_ports", "any"),
                text(p, "destination_ports", "any"),
                then,
            ]
        })
        .collect();
    if rows.is_empty() {
        return "No policies: every packet is routed.".into();
    }
    table(
        &[
            "Seq",
            "Policy",
            "Source",
            "Destination",
            "Protocol",
            "Src ports",
            "Dst ports",
            "Then",
        ],
        rows,
    )
}
