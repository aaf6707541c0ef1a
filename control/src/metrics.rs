//! `/metrics` in the Prometheus text format (prometheus-client): the control process's own
//! counters and its view of the dataplane. Built fresh at every scrape from one status
//! snapshot, so that the values are consistent with each other.

use crate::api::Api;
use crate::daemon::Status;
use crate::ike_manager::{GatewayStats, IkeState};
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use serde_json::Value;
use std::sync::Arc;

pub async fn metrics(State(api): State<Arc<Api>>) -> Response {
    let s = match api.status().await {
        Ok(s) => s,
        Err(r) => return r,
    };
    // Without a dataplane, only the control's own metrics.
    let snap = api.snapshot().await.ok();
    let ike = api
        .ask(|reply| crate::daemon::Request::Ike { reply })
        .await
        .ok();
    match render(&s, snap.as_ref(), ike.as_ref()) {
        Ok(text) => (
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

fn gauge(r: &mut Registry, name: &str, help: &str, v: i64) {
    let g: Gauge = Gauge::default();
    g.set(v);
    r.register(name, help, g);
}

fn counter(r: &mut Registry, name: &str, help: &str, v: u64) {
    let c: Counter = Counter::default();
    c.inc_by(v);
    r.register(name, help, c);
}

type Labels = Vec<(String, String)>;

fn family(r: &mut Registry, name: &str, help: &str, rows: Vec<(Labels, u64)>) {
    let f: Family<Labels, Counter> = Family::default();
    for (l, v) in rows {
        f.get_or_create(&l).inc_by(v);
    }
    r.register(name, help, f);
}

fn num(v: &Value) -> u64 {
    v.as_u64().unwrap_or(0)
}

fn label(k: &str, v: &Value) -> (String, String) {
    let s = match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    (k.to_string(), s)
}

/// IKE: SAs by state, and per gateway the exchanges' outcomes and failures by reason.
fn ike(r: &mut Registry, i: &IkeState) {
    let mut by_state: std::collections::BTreeMap<&str, i64> = Default::default();
    for sa in &i.security_associations {
        *by_state.entry(sa.state.as_str()).or_default() += 1;
    }
    let f: Family<Labels, Gauge> = Family::default();
    for (state, n) in by_state {
        f.get_or_create(&vec![("state".to_string(), state.to_string())])
            .set(n);
    }
    r.register("security_associations", "IKE SAs by state", f);
    let gw = |g: &GatewayStats| vec![("gateway".to_string(), g.gateway.clone())];
    let per = |name: &str, help: &str, v: fn(&GatewayStats) -> u64, r: &mut Registry| {
        family(
            r,
            name,
            help,
            i.gateways.iter().map(|g| (gw(g), v(g))).collect(),
        );
    };
    per("established", "IKE SAs established", |g| g.established, r);
    per("initiated", "IKE SAs we initiated", |g| g.initiated, r);
    per(
        "responded",
        "IKE SAs the peer initiated",
        |g| g.responded,
        r,
    );
    per(
        "dpd_timeouts",
        "Peers found dead by DPD",
        |g| g.dpd_timeouts,
        r,
    );
    per(
        "deleted_by_peer",
        "IKE SAs the peer deleted",
        |g| g.deleted_by_peer,
        r,
    );
    family(
        r,
        "failures",
        "Negotiations that failed, by reason (the notification, or timeout)",
        i.gateways
            .iter()
            .flat_map(|g| {
                g.failures.iter().map(move |(reason, n)| {
                    let mut l = gw(g);
                    l.push(("reason".to_string(), reason.clone()));
                    (l, *n)
                })
            })
            .collect(),
    );
    counter(
        r,
        "dropped",
        "IKE datagrams dropped (unparsable, no VPN, half-open table full)",
        i.dropped,
    );
    counter(
        r,
        "cookies_sent",
        "IKE_SA_INIT requests answered with a COOKIE",
        i.cookies_sent,
    );
}

/// The dataplane's counters from its stats snapshot.
fn dataplane(r: &mut Registry, doc: &Value) {
    let d = &doc["dataplane"];
    if let Some(g) = d["global"].as_object() {
        for (k, v) in g {
            counter(r, k, &format!("{k}, summed over the workers"), num(v));
        }
    }
    let workers = d["workers"].as_array().cloned().unwrap_or_default();
    for k in [
        "rx_packets",
        "tx_packets",
        "encrypted_packets",
        "decrypted_packets",
        "handoff_sent",
        "handoff_received",
    ] {
        let rows = workers
            .iter()
            .map(|w| (vec![label("lcore", &w["lcore"])], num(&w["counters"][k])))
            .collect();
        family(r, &format!("worker_{k}"), &format!("{k} by worker"), rows);
    }
    let mut sent = Vec::new();
    let mut drops = Vec::new();
    for w in &workers {
        for (to, v) in w["handoff"]["sent"].as_object().into_iter().flatten() {
            sent.push((
                vec![label("from", &w["lcore"]), ("to".into(), to.clone())],
                num(v),
            ));
        }
        for (to, v) in w["handoff"]["congestion_drops"]
            .as_object()
            .into_iter()
            .flatten()
        {
            drops.push((
                vec![label("from", &w["lcore"]), ("to".into(), to.clone())],
                num(v),
            ));
        }
    }
    family(
        r,
        "handoff_packets",
        "Packets handed from one worker to another",
        sent,
    );
    family(
        r,
        "handoff_congestion_drops",
        "Handoffs dropped on a full ring",
        drops,
    );
    let sas = d["sas"].as_array().cloned().unwrap_or_default();
    let sa_labels = |s: &Value| {
        vec![
            label("spi", &s["spi"]),
            label("direction", &s["direction"]),
            label("tunnel", &s["tunnel"]),
        ]
    };
    for (k, help) in [
        ("packets", "Packets through the SA"),
        ("bytes", "Inner bytes through the SA"),
        ("auth_failures", "ICV failures on the SA"),
        ("replay_errors", "Replayed or too old packets on the SA"),
    ] {
        let rows = sas.iter().map(|s| (sa_labels(s), num(&s[k]))).collect();
        family(r, &format!("sa_{k}"), help, rows);
    }
    let tunnels = d["tunnels"].as_array().cloned().unwrap_or_default();
    for (what, help) in [
        ("packets", "Packets through the tunnel's SAs past and present (the count goes on across rekeys), by direction"),
        (
            "bytes",
            "Inner bytes through the tunnel's SAs, by direction",
        ),
    ] {
        let mut rows = Vec::new();
        for t in &tunnels {
            for dir in ["out", "in"] {
                let l = vec![
                    label("tunnel", &t["name"]),
                    ("direction".into(), dir.into()),
                ];
                rows.push((l, num(&t[format!("{what}_{dir}").as_str()])));
            }
        }
        family(r, &format!("tunnel_{what}"), help, rows);
    }
    let ports = d["ports"].as_array().cloned().unwrap_or_default();
    for k in [
        "rx_packets",
        "tx_packets",
        "rx_bytes",
        "tx_bytes",
        "rx_missed",
        "rx_errors",
        "tx_errors",
        "rx_nombuf",
    ] {
        let rows = ports
            .iter()
            .map(|p| {
                (
                    vec![
                        label("interface", &p["interface"]),
                        label("port", &p["port"]),
                    ],
                    num(&p[k]),
                )
            })
            .collect();
        family(
            r,
            &format!("port_{k}"),
            &format!("Port {k} (PMD counters)"),
            rows,
        );
    }
    let groups = d["tunnel_map"].as_array().cloned().unwrap_or_default();
    let lf: Family<Labels, Gauge<f64, std::sync::atomic::AtomicU64>> = Family::default();
    let tun: Family<Labels, Gauge> = Family::default();
    for g in &groups {
        lf.get_or_create(&vec![label("group", &g["group"])])
            .set(g["load_factor"].as_f64().unwrap_or(0.0));
        for w in g["workers"].as_array().into_iter().flatten() {
            tun.get_or_create(&vec![
                label("group", &g["group"]),
                label("lcore", &w["lcore"]),
            ])
            .set(num(&w["tunnels"]) as i64);
        }
    }
    r.register(
        "anchor_group_load_factor",
        "Tunnels anchored on the group per worker",
        lf,
    );
    r.register("worker_tunnels", "Tunnels anchored on the worker", tun);
}

pub fn render(
    s: &Status,
    snap: Option<&Value>,
    ike_state: Option<&IkeState>,
) -> Result<String, std::fmt::Error> {
    let mut root = Registry::with_prefix("espgw");
    if let Some(doc) = snap {
        dataplane(&mut root, doc);
    }
    if let Some(i) = ike_state {
        ike(root.sub_registry_with_prefix("ike"), i);
    }
    let r = root.sub_registry_with_prefix("control");
    let d = &s.dataplane;
    gauge(
        r,
        "dataplane_attached",
        "A dataplane's channel is attached",
        d.attached.into(),
    );
    gauge(
        r,
        "dataplane_alive",
        "The dataplane's heartbeat moved in the last 3 s",
        d.alive.into(),
    );
    gauge(
        r,
        "dataplane_heartbeat_age_milliseconds",
        "Time since the dataplane's heartbeat last moved",
        d.heartbeat_age_ms.map_or(-1, |a| a as i64),
    );
    counter(
        r,
        "commits",
        "Commits since the control process started",
        s.commits,
    );
    counter(
        r,
        "resyncs",
        "Whole-state resyncs sent to a dataplane",
        s.resyncs,
    );
    counter(
        r,
        "attaches",
        "Times a dataplane was attached",
        s.link.attaches,
    );
    counter(
        r,
        "changes_sent",
        "Changes sent to the dataplane",
        s.link.changes_sent,
    );
    counter(
        r,
        "changes_refused",
        "Changes the dataplane refused",
        s.link.refused,
    );
    counter(
        r,
        "dataplane_notices",
        "SA limits and ACQUIREs the dataplane reported",
        s.link.notices,
    );
    let mut out = String::new();
    encode(&mut out, &root)?;
    Ok(out)
}
