//! `/metrics` in the Prometheus text format (prometheus-client): the control process's own
//! counters and its view of the dataplane. Built fresh at every scrape from one status
//! snapshot, so that the values are consistent with each other.

use crate::api::Api;
use crate::daemon::Status;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::sync::Arc;

pub async fn metrics(State(api): State<Arc<Api>>) -> Response {
    let s = match api.status().await {
        Ok(s) => s,
        Err(r) => return r,
    };
    match render(&s) {
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

pub fn render(s: &Status) -> Result<String, std::fmt::Error> {
    let mut r = Registry::with_prefix("espgw_control");
    let d = &s.dataplane;
    gauge(
        &mut r,
        "dataplane_attached",
        "A dataplane's channel is attached",
        d.attached.into(),
    );
    gauge(
        &mut r,
        "dataplane_alive",
        "The dataplane's heartbeat moved in the last 3 s",
        d.alive.into(),
    );
    gauge(
        &mut r,
        "dataplane_heartbeat_age_milliseconds",
        "Time since the dataplane's heartbeat last moved",
        d.heartbeat_age_ms.map_or(-1, |a| a as i64),
    );
    counter(
        &mut r,
        "commits",
        "Commits since the control process started",
        s.commits,
    );
    counter(
        &mut r,
        "resyncs",
        "Whole-state resyncs sent to a dataplane",
        s.resyncs,
    );
    counter(
        &mut r,
        "attaches",
        "Times a dataplane was attached",
        s.link.attaches,
    );
    counter(
        &mut r,
        "changes_sent",
        "Changes sent to the dataplane",
        s.link.changes_sent,
    );
    counter(
        &mut r,
        "changes_refused",
        "Changes the dataplane refused",
        s.link.refused,
    );
    counter(
        &mut r,
        "dataplane_notices",
        "SA limits and ACQUIREs the dataplane reported",
        s.link.notices,
    );
    let mut out = String::new();
    encode(&mut out, &r)?;
    Ok(out)
}
