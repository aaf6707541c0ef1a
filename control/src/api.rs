//! The REST port (axum): configuration (running, check, commit, rollback, commits), what is
//! configured (interfaces, routes, tunnels), the control's status, Prometheus `/metrics`, and
//! the OpenAPI document generated from this code (`/openapi.json`), so that it cannot drift.
//!
//! Every endpoint but `/v1/health` wants `Authorization: Bearer <token>`. A client's mistake
//! (bad JSON, a field out of range, a body too large, an unknown path) gets a 4xx with a JSON
//! error naming the problem; keys are never in a response.

use crate::daemon::{CommitError, CommitReport, Request, Status};
use crate::link::LinkError;
use crate::store::CommitInfo;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Serialize;
use std::sync::{mpsc, Arc, Mutex};
use utoipa::{OpenApi, ToSchema};
use zeroize::Zeroizing;

/// The largest configuration a commit takes (100 000 tunnels with their SAs fit).
pub const MAX_BODY: usize = 64 << 20;

pub struct Api {
    requests: Mutex<mpsc::Sender<Request>>,
    token: Zeroizing<String>,
}

/// An error, as every endpoint returns it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong, for a person.
    pub error: String,
    /// The configuration field at fault, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

pub(crate) fn error(status: StatusCode, msg: impl Into<String>) -> Response {
    (
        status,
        Json(ErrorBody {
            error: msg.into(),
            field: None,
        }),
    )
        .into_response()
}

impl IntoResponse for CommitError {
    fn into_response(self) -> Response {
        let status = match &self {
            CommitError::Invalid { field, reason } => {
                return (
                    StatusCode::BAD_REQUEST,
                    Json(ErrorBody {
                        error: reason.clone(),
                        field: Some(field.clone()),
                    }),
                )
                    .into_response()
            }
            CommitError::Refused { .. } | CommitError::Rejected(_) => StatusCode::CONFLICT,
            CommitError::Link(LinkError::Timeout(_) | LinkError::Restarted) => {
                StatusCode::GATEWAY_TIMEOUT
            }
            CommitError::Link(_) => StatusCode::SERVICE_UNAVAILABLE,
            CommitError::Store(crate::store::StoreError::NoSuchCommit(..))
            | CommitError::NoCandidate => StatusCode::NOT_FOUND,
            CommitError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        error(status, self.to_string())
    }
}

impl Api {
    pub fn new(requests: mpsc::Sender<Request>, token: Zeroizing<String>) -> Arc<Api> {
        Arc::new(Api {
            requests: Mutex::new(requests),
            token,
        })
    }

    /// The dataplane's latest stats snapshot (503 without a dataplane).
    pub async fn snapshot(&self) -> Result<serde_json::Value, Response> {
        self.ask(|reply| Request::Stats { reply })
            .await?
            .map_err(|e| error(StatusCode::SERVICE_UNAVAILABLE, e))
    }

    pub async fn status(&self) -> Result<Status, Response> {
        self.ask(|reply| Request::Status { reply }).await
    }

    /// Asks the core and waits for its answer.
    pub(crate) async fn ask<T>(
        &self,
        make: impl FnOnce(tokio::sync::oneshot::Sender<T>) -> Request,
    ) -> Result<T, Response> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let sent = self
            .requests
            .lock()
            .map_err(|_| error(StatusCode::INTERNAL_SERVER_ERROR, "core lock poisoned"))?
            .send(make(tx));
        if sent.is_err() {
            return Err(error(
                StatusCode::SERVICE_UNAVAILABLE,
                "the control core stopped",
            ));
        }
        rx.await
            .map_err(|_| error(StatusCode::SERVICE_UNAVAILABLE, "the control core stopped"))
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "espgw control API", description = "Configuration and state of an espgw IPsec gateway."),
    paths(health, status, running, commits, candidate, put_candidate, check, commit, rollback,
          interfaces, neighbors, routes, tunnels, ports,
          statistics, clear_statistics, sas, sa, clear_sa, tunnel_map, workers),
    components(schemas(ErrorBody, CommitReport, CommitInfo, Status, Health, Running)),
    modifiers(&Bearer)
)]
pub struct ApiDoc;

pub(crate) struct Bearer;

impl utoipa::Modify for Bearer {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let c = openapi.components.get_or_insert_with(Default::default);
        c.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        openapi.security = Some(vec![utoipa::openapi::security::SecurityRequirement::new(
            "bearer",
            Vec::<String>::new(),
        )]);
        // Every operation but the open ones answers 401 without the token.
        let unauthorized = utoipa::openapi::ResponseBuilder::new()
            .description("No valid bearer token")
            .content(
                "application/json",
                utoipa::openapi::ContentBuilder::new()
                    .schema(Some(utoipa::openapi::Ref::from_schema_name("ErrorBody")))
                    .build(),
            )
            .build();
        for item in openapi.paths.paths.values_mut() {
            for op in [
                &mut item.get,
                &mut item.post,
                &mut item.put,
                &mut item.delete,
            ]
            .into_iter()
            .flatten()
            {
                let open = op.security.as_ref().is_some_and(|s| {
                    s.iter()
                        .all(|r| serde_json::to_value(r).is_ok_and(|v| v == serde_json::json!({})))
                });
                if !open {
                    op.responses
                        .responses
                        .entry("401".into())
                        .or_insert_with(|| unauthorized.clone().into());
                }
            }
        }
    }
}

/// The router, with the token check on everything but `/v1/health`.
pub fn router(api: Arc<Api>) -> Router {
    let open = Router::new().route("/v1/health", get(health));
    let guarded = Router::new()
        .route("/openapi.json", get(openapi))
        .route("/metrics", get(crate::metrics::metrics))
        .route("/v1/status", get(status))
        .route("/v1/config", get(running))
        .route("/v1/config/commits", get(commits))
        .route("/v1/config/candidate", get(candidate).put(put_candidate))
        .route("/v1/neighbors", get(neighbors))
        .route("/v1/ports", get(ports))
        .route("/v1/config/check", post(check))
        .route("/v1/config/commit", post(commit))
        .route("/v1/config/rollback/{n}", post(rollback))
        .route("/v1/interfaces", get(interfaces))
        .route("/v1/statistics", get(statistics))
        .route("/v1/statistics/clear", post(clear_statistics))
        .route("/v1/sas", get(sas))
        .route("/v1/sas/{spi}", get(sa).delete(clear_sa))
        .route("/v1/tunnel-map", get(tunnel_map))
        .route("/v1/workers", get(workers))
        .route("/v1/routes", get(routes))
        .route("/v1/tunnels", get(tunnels))
        .merge(crate::api_ike::routes())
        .layer(middleware::from_fn_with_state(api.clone(), authorize));
    open.merge(guarded)
        .fallback(|| async { error(StatusCode::NOT_FOUND, "no such endpoint") })
        .layer(middleware::from_fn(json_errors))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(api)
}

/// Whatever answers a client's mistake (axum's own rejections too: a body over the limit, a
/// method not allowed) does so in JSON, as every endpoint does.
async fn json_errors(req: axum::extract::Request, next: Next) -> Response {
    let r = next.run(req).await;
    let json = r
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !r.status().is_client_error() || json {
        return r;
    }
    let status = r.status();
    let allow = r.headers().get(header::ALLOW).cloned();
    let text = axum::body::to_bytes(r.into_body(), 4096)
        .await
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    let text = if text.is_empty() {
        status
            .canonical_reason()
            .unwrap_or("bad request")
            .to_string()
    } else {
        text
    };
    let mut out = error(status, text);
    if let Some(a) = allow {
        out.headers_mut().insert(header::ALLOW, a);
    }
    out
}

async fn authorize(
    State(api): State<Arc<Api>>,
    headers: HeaderMap,
    req: axum::extract::Request,
    next: Next,
) -> Response {
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match given {
        Some(t) if constant_time_eq(t.as_bytes(), api.token.as_bytes()) => next.run(req).await,
        _ => {
            let mut r = error(StatusCode::UNAUTHORIZED, "a valid bearer token is required");
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
            r
        }
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |d, (x, y)| d | (x ^ y)) == 0
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    pub status: &'static str,
    pub dataplane: crate::link::LinkStatus,
}

/// Liveness, and whether a dataplane is attached; needs no token.
#[utoipa::path(get, path = "/v1/health", security(()), responses((status = 200, body = Health)))]
async fn health(State(api): State<Arc<Api>>) -> Response {
    match api.status().await {
        Ok(s) => Json(Health {
            status: "ok",
            dataplane: s.dataplane,
        })
        .into_response(),
        Err(r) => r,
    }
}

/// The control process: the dataplane link and its counters.
#[utoipa::path(get, path = "/v1/status", responses((status = 200, body = Status), (status = 401, body = ErrorBody)))]
async fn status(State(api): State<Arc<Api>>) -> Response {
    match api.status().await {
        Ok(s) => Json(s).into_response(),
        Err(r) => r,
    }
}

async fn openapi() -> Response {
    let mut doc = ApiDoc::openapi();
    doc.merge(crate::api_ike::IkeDoc::openapi());
    Json(doc).into_response()
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Running {
    /// The running configuration, every key replaced by `<redacted>`.
    #[schema(value_type = Object)]
    pub config: serde_json::Value,
    pub commit: Option<CommitInfo>,
}

async fn running_text(api: &Api) -> Result<(Option<String>, Vec<CommitInfo>), Response> {
    api.ask(|reply| Request::Running { reply })
        .await?
        .map_err(|e| error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
}

/// The running configuration, keys redacted.
#[utoipa::path(get, path = "/v1/config", responses((status = 200, body = Running), (status = 404, body = ErrorBody)))]
async fn running(State(api): State<Arc<Api>>) -> Response {
    let (text, list) = match running_text(&api).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let Some(text) = text.map(Zeroizing::new) else {
        return error(StatusCode::NOT_FOUND, "nothing committed yet");
    };
    match crate::redact::redact(&text) {
        Ok(config) => Json(Running {
            config,
            commit: list.into_iter().next(),
        })
        .into_response(),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// Commits kept, newest first (`rollback` numbers).
#[utoipa::path(get, path = "/v1/config/commits", responses((status = 200, body = [CommitInfo])))]
async fn commits(State(api): State<Arc<Api>>) -> Response {
    match running_text(&api).await {
        Ok((_, list)) => Json(list).into_response(),
        Err(r) => r,
    }
}

fn body_text(body: Bytes) -> Result<Zeroizing<String>, Response> {
    String::from_utf8(body.to_vec())
        .map(Zeroizing::new)
        .map_err(|_| error(StatusCode::BAD_REQUEST, "the body is not UTF-8"))
}

async fn commit_request(api: &Api, body: Bytes, check: bool) -> Response {
    // An empty body: the candidate.
    let text = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        match body_text(body) {
            Ok(t) => Some(t.to_string()),
            Err(r) => return r,
        }
    };
    match api
        .ask(|reply| Request::Commit { text, check, reply })
        .await
    {
        Ok(Ok(report)) => Json(report).into_response(),
        Ok(Err(e)) => e.into_response(),
        Err(r) => r,
    }
}

/// `commit check`: validates a configuration completely (the body, or the candidate when the
/// body is empty); changes nothing.
#[utoipa::path(post, path = "/v1/config/check", request_body(content = Object, description = "A whole configuration (the JSON file's format); empty: the candidate"),
    responses((status = 200, body = CommitReport), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn check(State(api): State<Arc<Api>>, body: Bytes) -> Response {
    commit_request(&api, body, true).await
}

/// `commit`: validates the configuration (the body, or the candidate when the body is empty),
/// applies its difference from the running configuration, stores it.
#[utoipa::path(post, path = "/v1/config/commit", request_body(content = Object, description = "A whole configuration (the JSON file's format); empty: the candidate"),
    responses((status = 200, body = CommitReport), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn commit(State(api): State<Arc<Api>>, body: Bytes) -> Response {
    commit_request(&api, body, false).await
}

/// `rollback N`: commits the N-th previous configuration again (0 is the running one).
#[utoipa::path(post, path = "/v1/config/rollback/{n}", params(("n" = u32, Path, description = "0 is the running configuration, 1 the one before")),
    responses((status = 200, body = CommitReport), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn rollback(State(api): State<Arc<Api>>, Path(n): Path<String>) -> Response {
    let Ok(n) = n.parse::<usize>() else {
        return error(
            StatusCode::BAD_REQUEST,
            format!("{n:?} is not a rollback number"),
        );
    };
    match api.ask(|reply| Request::Rollback { n, reply }).await {
        Ok(Ok(report)) => Json(report).into_response(),
        Ok(Err(e)) => e.into_response(),
        Err(r) => r,
    }
}

/// One section of the running configuration, keys redacted.
async fn section(api: &Api, name: &str) -> Response {
    let (text, _) = match running_text(api).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let Some(text) = text.map(Zeroizing::new) else {
        return Json(serde_json::Value::Array(Vec::new())).into_response();
    };
    match crate::redact::redact(&text) {
        Ok(v) => Json(
            v.get(name)
                .cloned()
                .unwrap_or(serde_json::Value::Array(Vec::new())),
        )
        .into_response(),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// Interfaces, as configured.
#[utoipa::path(get, path = "/v1/interfaces", responses((status = 200, body = [Object])))]
async fn interfaces(State(api): State<Arc<Api>>) -> Response {
    section(&api, "interfaces").await
}

/// Static routes, as configured.
#[utoipa::path(get, path = "/v1/routes", responses((status = 200, body = [Object])))]
async fn routes(State(api): State<Arc<Api>>) -> Response {
    section(&api, "routes").await
}

/// The candidate configuration, keys redacted (404 if there is none).
#[utoipa::path(get, path = "/v1/config/candidate", responses((status = 200, body = Object), (status = 404, body = ErrorBody)))]
async fn candidate(State(api): State<Arc<Api>>) -> Response {
    match api.ask(|reply| Request::Candidate { reply }).await {
        Ok(Some(t)) => match crate::redact::redact(&Zeroizing::new(t)) {
            Ok(v) => Json(v).into_response(),
            Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        },
        Ok(None) => error(StatusCode::NOT_FOUND, "no candidate configuration"),
        Err(r) => r,
    }
}

/// Keeps a candidate configuration (any JSON object) for `check` and `commit` with an empty
/// body; it is validated when it is checked or committed.
#[utoipa::path(put, path = "/v1/config/candidate", request_body(content = Object, description = "A whole configuration (the JSON file's format)"),
    responses((status = 204), (status = 400, body = ErrorBody)))]
async fn put_candidate(State(api): State<Arc<Api>>, body: Bytes) -> Response {
    let text = match body_text(body) {
        Ok(t) => t,
        Err(r) => return r,
    };
    if !serde_json::from_str::<serde_json::Value>(&text).is_ok_and(|v| v.is_object()) {
        return error(
            StatusCode::BAD_REQUEST,
            "the candidate must be a JSON object",
        );
    }
    let text = text.to_string();
    match api.ask(|reply| Request::SetCandidate { text, reply }).await {
        Ok(Ok(())) => StatusCode::NO_CONTENT.into_response(),
        Ok(Err(e)) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        Err(r) => r,
    }
}

/// Static neighbors, as configured.
#[utoipa::path(get, path = "/v1/neighbors", responses((status = 200, body = [Object])))]
async fn neighbors(State(api): State<Arc<Api>>) -> Response {
    section(&api, "neighbors").await
}

/// Ports: the PMDs' counters, by interface.
#[utoipa::path(get, path = "/v1/ports", responses((status = 200, body = [Object]), (status = 503, body = ErrorBody)))]
async fn ports(State(api): State<Arc<Api>>) -> Response {
    part(&api, "ports").await
}

/// Tunnels as the dataplane holds them: index, gateways, anchor (worker, group), and the
/// traffic of their SAs by direction.
#[utoipa::path(get, path = "/v1/tunnels", responses((status = 200, body = [Object]), (status = 503, body = ErrorBody)))]
async fn tunnels(State(api): State<Arc<Api>>) -> Response {
    part(&api, "tunnels").await
}

/// The dataplane's latest snapshot, or why there is none (503: no dataplane).
async fn snapshot(api: &Api) -> Result<serde_json::Value, Response> {
    api.snapshot().await
}

/// One part of the snapshot's `dataplane` document.
async fn part(api: &Api, name: &str) -> Response {
    match snapshot(api).await {
        Ok(v) => Json(v["dataplane"][name].clone()).into_response(),
        Err(r) => r,
    }
}

/// Counters: global (Junos `show security ipsec statistics`), per worker, main lcore, SA
/// events, ports, and the channel's.
#[utoipa::path(get, path = "/v1/statistics", responses((status = 200, body = Object), (status = 503, body = ErrorBody)))]
async fn statistics(State(api): State<Arc<Api>>) -> Response {
    match snapshot(&api).await {
        Ok(mut v) => {
            let d = v["dataplane"].take();
            let mut out = serde_json::Map::new();
            for k in [
                "crypto",
                "run_seconds",
                "active_seconds",
                "global",
                "main",
                "events",
                "ports",
            ] {
                out.insert(k.into(), d[k].clone());
            }
            out.insert("channel".into(), v["channel"].take());
            Json(serde_json::Value::Object(out)).into_response()
        }
        Err(r) => r,
    }
}

/// Zeroes every counter as the operator sees them (`clear security ipsec statistics`).
#[utoipa::path(post, path = "/v1/statistics/clear", responses((status = 204), (status = 503, body = ErrorBody)))]
async fn clear_statistics(State(api): State<Arc<Api>>) -> Response {
    clear(
        &api,
        vec![channel::Change::ClearCounters(channel::ClearScope::All)],
    )
    .await
}

async fn clear(api: &Api, changes: Vec<channel::Change>) -> Response {
    match api.ask(|reply| Request::Clear { changes, reply }).await {
        Ok(Ok(())) => StatusCode::NO_CONTENT.into_response(),
        Ok(Err(e)) => e.into_response(),
        Err(r) => r,
    }
}

/// IPsec SAs: settings, owner worker and counters, never keys. An SA IKE negotiated also
/// has `ike_sa` (its IKE SA's index), `rekey_in_s` and `expires_in_s` (its lifetime by time).
#[utoipa::path(get, path = "/v1/sas", responses((status = 200, body = [Object]), (status = 503, body = ErrorBody)))]
async fn sas(State(api): State<Arc<Api>>) -> Response {
    let mut v = match snapshot(&api).await {
        Ok(mut v) => v["dataplane"]["sas"].take(),
        Err(r) => return r,
    };
    let ike = match api.ask(|reply| Request::Ike { reply }).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    // (direction, SPI) -> what IKE knows of it.
    let mut times = std::collections::HashMap::new();
    for sa in &ike.security_associations {
        for c in &sa.children {
            let t = (sa.index, c.rekey_in_s, c.expires_in_s);
            for (dir, spi) in [("in", &c.inbound_spi), ("out", &c.outbound_spi)] {
                if let Ok(spi) = u32::from_str_radix(spi, 16) {
                    times.insert((dir, spi), t);
                }
            }
        }
    }
    for x in v.as_array_mut().into_iter().flatten() {
        let dir = if x["direction"] == "in" { "in" } else { "out" };
        let spi = x["spi"]
            .as_str()
            .and_then(|s| u32::from_str_radix(s.trim_start_matches("0x"), 16).ok());
        if let (Some(&(index, rekey, expires)), Some(o)) = (
            spi.and_then(|spi| times.get(&(dir, spi))),
            x.as_object_mut(),
        ) {
            o.insert("ike_sa".into(), index.into());
            o.insert("rekey_in_s".into(), rekey.into());
            o.insert("expires_in_s".into(), expires.into());
        }
    }
    Json(v).into_response()
}

/// An SPI as written in a path: `0x1001` or `4097`.
fn parse_spi(s: &str) -> Option<u32> {
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(h) => u32::from_str_radix(h, 16).ok(),
        None => s.parse().ok(),
    }
}

/// The SAs with this SPI (an inbound and an outbound SA may share one).
async fn sas_by_spi(api: &Api, spi: &str) -> Result<Vec<serde_json::Value>, Response> {
    let Some(n) = parse_spi(spi) else {
        return Err(error(
            StatusCode::BAD_REQUEST,
            format!("{spi:?} is not an SPI"),
        ));
    };
    let v = snapshot(api).await?;
    let want = format!("{n:#x}");
    let found: Vec<serde_json::Value> = v["dataplane"]["sas"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|s| s["spi"] == want.as_str())
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    if found.is_empty() {
        return Err(error(
            StatusCode::NOT_FOUND,
            format!("no SA with SPI {want}"),
        ));
    }
    Ok(found)
}

/// The SAs with one SPI.
#[utoipa::path(get, path = "/v1/sas/{spi}", params(("spi" = String, Path, description = "0x1001 or 4097")),
    responses((status = 200, body = [Object]), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn sa(State(api): State<Arc<Api>>, Path(spi): Path<String>) -> Response {
    match sas_by_spi(&api, &spi).await {
        Ok(v) => Json(v).into_response(),
        Err(r) => r,
    }
}

/// Clears the SAs with this SPI (Junos `clear security ipsec security-associations`): they
/// are removed from the dataplane, and their traffic is dropped and counted until the next
/// commit or resync installs them again.
#[utoipa::path(delete, path = "/v1/sas/{spi}", params(("spi" = String, Path, description = "0x1001 or 4097")),
    responses((status = 204), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn clear_sa(State(api): State<Arc<Api>>, Path(spi): Path<String>) -> Response {
    let found = match sas_by_spi(&api, &spi).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let mut changes = Vec::new();
    for s in found {
        let n = parse_spi(s["spi"].as_str().unwrap_or_default()).unwrap_or_default();
        match (
            s["direction"].as_str(),
            s["tunnel"].as_str().map(channel::Name::new),
        ) {
            (Some("in"), _) => changes.push(channel::Change::DeleteInboundSa { spi: n }),
            (Some("out"), Some(Ok(tunnel))) => {
                changes.push(channel::Change::DeleteOutboundSa { tunnel })
            }
            _ => {}
        }
    }
    clear(&api, changes).await
}

/// The tunnel map (Junos `show security ike tunnel-map`): anchor groups, load factors,
/// workers, tunnels and SAs.
#[utoipa::path(get, path = "/v1/tunnel-map", responses((status = 200, body = [Object]), (status = 503, body = ErrorBody)))]
async fn tunnel_map(State(api): State<Arc<Api>>) -> Response {
    part(&api, "tunnel_map").await
}

/// Workers: counters, busy time, handoffs.
#[utoipa::path(get, path = "/v1/workers", responses((status = 200, body = [Object]), (status = 503, body = ErrorBody)))]
async fn workers(State(api): State<Arc<Api>>) -> Response {
    part(&api, "workers").await
}
