//! The REST port's IKE endpoints: the IKE SAs and per-gateway counters, deleting IKE SAs
//! (with their children), and starting a VPN's negotiation (Junos `show|clear security ike
//! security-associations`, `request security ike initiate`).

use crate::api::{error, Api, Bearer, ErrorBody};
use crate::daemon::Request;
use crate::ike_manager::{ChildView, GatewayStats, IkeSaView, IkeState, Initiate};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::Serialize;
use std::sync::Arc;
use utoipa::{OpenApi, ToSchema};

#[derive(OpenApi)]
#[openapi(
    paths(ike, clear_one, clear_all, rekey, initiate),
    components(schemas(IkeState, IkeSaView, ChildView, GatewayStats, Cleared, Initiated, Rekeying, ErrorBody)),
    modifiers(&Bearer)
)]
pub struct IkeDoc;

pub fn routes() -> Router<Arc<Api>> {
    Router::new()
        .route("/v1/ike", get(ike))
        .route("/v1/ike/security-associations/{index}", delete(clear_one))
        .route("/v1/ike/clear", post(clear_all))
        .route("/v1/ike/security-associations/{index}/rekey", post(rekey))
        .route("/v1/ike/initiate/{vpn}", post(initiate))
}

/// The IKE SAs (with their child SAs) and every gateway's counters.
#[utoipa::path(get, path = "/v1/ike", responses((status = 200, body = IkeState)))]
async fn ike(State(api): State<Arc<Api>>) -> Response {
    match api.ask(|reply| Request::Ike { reply }).await {
        Ok(s) => Json(s).into_response(),
        Err(r) => r,
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Cleared {
    /// IKE SAs deleted (the peer is told; their child SAs leave the dataplane).
    pub deleted: usize,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Rekeying {
    /// The IKE SA being rekeyed; its successor gets a new index.
    pub index: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Initiated {
    /// The VPN whose IKE SA is being negotiated (see `GET /v1/ike`).
    pub vpn: String,
}

async fn clear(api: &Api, index: Option<u64>) -> Response {
    match api.ask(|reply| Request::IkeClear { index, reply }).await {
        Ok(0) if index.is_some() => error(StatusCode::NOT_FOUND, "no such IKE SA"),
        Ok(n) => Json(Cleared { deleted: n }).into_response(),
        Err(r) => r,
    }
}

/// Deletes IKE SA `index` and its child SAs.
#[utoipa::path(delete, path = "/v1/ike/security-associations/{index}", params(("index" = u64, Path, description = "The IKE SA's index")),
    responses((status = 200, body = Cleared), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn clear_one(State(api): State<Arc<Api>>, Path(index): Path<String>) -> Response {
    match index.parse::<u64>() {
        Ok(i) => clear(&api, Some(i)).await,
        Err(_) => error(
            StatusCode::BAD_REQUEST,
            format!("{index:?} is not an IKE SA index"),
        ),
    }
}

/// Deletes every IKE SA and its child SAs.
#[utoipa::path(post, path = "/v1/ike/clear", responses((status = 200, body = Cleared)))]
async fn clear_all(State(api): State<Arc<Api>>) -> Response {
    clear(&api, None).await
}

/// Rekeys IKE SA `index` now (its children move to the new IKE SA unchanged).
#[utoipa::path(post, path = "/v1/ike/security-associations/{index}/rekey", params(("index" = u64, Path, description = "The IKE SA's index")),
    responses((status = 202, body = Rekeying), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn rekey(State(api): State<Arc<Api>>, Path(index): Path<String>) -> Response {
    let Ok(index) = index.parse::<u64>() else {
        return error(
            StatusCode::BAD_REQUEST,
            format!("{index:?} is not an IKE SA index"),
        );
    };
    match api.ask(|reply| Request::IkeRekey { index, reply }).await {
        Ok(true) => (StatusCode::ACCEPTED, Json(Rekeying { index })).into_response(),
        Ok(false) => error(
            StatusCode::CONFLICT,
            "no such IKE SA up, or an exchange of it is under way",
        ),
        Err(r) => r,
    }
}

/// Starts the negotiation of VPN `vpn` now.
#[utoipa::path(post, path = "/v1/ike/initiate/{vpn}", params(("vpn" = String, Path, description = "A VPN's name (ike.vpns[].name)")),
    responses((status = 202, body = Initiated), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn initiate(State(api): State<Arc<Api>>, Path(vpn): Path<String>) -> Response {
    let name = vpn.clone();
    match api.ask(|reply| Request::IkeInitiate { vpn, reply }).await {
        Ok(Initiate::Started) => {
            (StatusCode::ACCEPTED, Json(Initiated { vpn: name })).into_response()
        }
        Ok(Initiate::Busy) => error(
            StatusCode::CONFLICT,
            format!("{name} has an IKE SA up or being negotiated"),
        ),
        Ok(Initiate::DialUp) => error(
            StatusCode::CONFLICT,
            format!("{name}'s peer is a dial-up one (%any): it calls in"),
        ),
        Ok(Initiate::NoSuchVpn) => error(StatusCode::NOT_FOUND, "no such VPN"),
        Err(r) => r,
    }
}
