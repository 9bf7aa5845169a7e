//! The routes: one table ([`ROUTES`]) that builds the router, decides each
//! route's scope, and that the OpenAPI test compares with
//! `docs/openapi.json` both ways.
//!
//! Every handler authenticates first (before reading a body), then holds a
//! per-token concurrency permit for the whole request.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{on, MethodFilter};
use axum::Router;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::backend::{LedgerService, ManifestRequest, Sealed};
use super::body::{self, BODY};
use super::error::ApiError;
use super::fides;
use super::journal;
use super::metrics::Metrics;
use super::tokens::{Scope, Tokens};
use super::writer::{Answer, WriteMeta, WriteOp};
use crate::jsonl;
use crate::time::Timestamp;

mod handlers;

use handlers::*;

/// The header carrying a manifest's seal on manifest answers.
pub const DIGEST_HEADER: &str = "optout-manifest-digest";
/// The header carrying the ledger clock a manifest was computed at.
pub const SEQ_HEADER: &str = "optout-manifest-seq";
/// Set on an answer repeated for a retried `Idempotency-Key`.
pub const REPLAYED_HEADER: &str = "idempotent-replayed";
/// The longest `Idempotency-Key` accepted.
const MAX_KEY: usize = 200;

/// Who is asking: the token's name, and its concurrency permit.
pub struct Caller {
    /// The token's name (the actor of what it writes).
    pub name: String,
    _permit: Option<OwnedSemaphorePermit>,
}

/// Limits and shared state of a running service.
pub struct App {
    /// The ledger seam.
    pub ledger: LedgerService,
    /// The tokens accepted.
    pub tokens: Tokens,
    /// Per token name: its concurrent requests.
    pub permits: HashMap<String, Arc<Semaphore>>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Largest body read, bytes.
    pub max_body: usize,
    /// Longest a request may take.
    pub timeout: Duration,
}

type Handler = fn(
    Arc<App>,
    Caller,
    Request,
) -> Pin<Box<dyn Future<Output = Result<Response, ApiError>> + Send>>;

/// One route.
pub struct Route {
    /// `GET` or `POST`.
    pub method: &'static str,
    /// The path pattern (axum syntax: `{digest}`).
    pub path: &'static str,
    /// `None`: no token needed; `Some(None)`: any valid token; `Some(Some(s))`: scope `s`.
    pub auth: Option<Option<Scope>>,
    handler: Handler,
}

macro_rules! route {
    ($m:literal, $p:literal, $auth:expr, $h:ident) => {
        Route {
            method: $m,
            path: $p,
            auth: $auth,
            handler: |a, c, r| Box::pin($h(a, c, r)),
        }
    };
}

/// Every route the service serves.
pub const ROUTES: &[Route] = &[
    route!("POST", "/v1/events", Some(Some(Scope::EventsWrite)), events),
    route!(
        "POST",
        "/v1/records",
        Some(Some(Scope::RecordsWrite)),
        records
    ),
    route!(
        "POST",
        "/v1/signals",
        Some(Some(Scope::EventsWrite)),
        signals
    ),
    route!(
        "POST",
        "/v1/derive",
        Some(Some(Scope::RecordsWrite)),
        derive
    ),
    route!(
        "POST",
        "/v1/manifests",
        Some(Some(Scope::ManifestsRead)),
        manifest
    ),
    route!(
        "GET",
        "/v1/manifests/{digest}",
        Some(Some(Scope::ManifestsRead)),
        manifest_get
    ),
    route!("POST", "/v1/runs", Some(Some(Scope::RunsWrite)), runs_add),
    route!("GET", "/v1/runs", Some(Some(Scope::AuditRead)), runs_list),
    route!(
        "POST",
        "/v1/subjects/affected",
        Some(Some(Scope::AuditRead)),
        affected
    ),
    route!(
        "POST",
        "/v1/subjects/report",
        Some(Some(Scope::AuditRead)),
        report
    ),
    route!("GET", "/v1/head", Some(None), head),
    route!(
        "POST",
        "/v1/integrations/fides",
        Some(Some(Scope::EventsWrite)),
        fides_intake
    ),
    route!("GET", "/healthz", None, healthz),
    route!("GET", "/metrics", None, metrics),
];

/// The router over [`ROUTES`], with timeouts and metrics around every request.
pub fn router(app: Arc<App>) -> Router {
    let mut r: Router<Arc<App>> = Router::new();
    for route in ROUTES {
        let filter = if route.method == "GET" {
            MethodFilter::GET
        } else {
            MethodFilter::POST
        };
        let h = move |State(app): State<Arc<App>>, req: Request| async move {
            match authorize(&app, route, req.headers()) {
                Ok(caller) => (route.handler)(app, caller, req)
                    .await
                    .unwrap_or_else(|e| e.into_response()),
                Err(e) => e.into_response(),
            }
        };
        r = r.route(route.path, on(filter, h));
    }
    r.fallback(|| async {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "no_route",
            "no such route (see docs/openapi.json)",
        )
    })
    .layer(axum::middleware::from_fn_with_state(
        Arc::clone(&app),
        track,
    ))
    .with_state(app)
}

/// Timeout and metrics, around every request.
async fn track(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    let t = Instant::now();
    let pattern = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string());
    let route = ROUTES
        .iter()
        .find(|r| pattern.as_deref() == Some(r.path))
        .map_or("unmatched", |r| r.path);
    let method: &'static str = match *req.method() {
        Method::GET => "GET",
        Method::POST => "POST",
        _ => "other",
    };
    let resp = match tokio::time::timeout(app.timeout, next.run(req)).await {
        Ok(r) => r,
        Err(_) => {
            let mut e = ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "timeout",
                format!(
                    "the request took longer than {} s; a write may still be recorded: retry with the same Idempotency-Key",
                    app.timeout.as_secs_f64()
                ),
            );
            e.retry_after = Some(1);
            e.into_response()
        }
    };
    let status = resp.status().as_u16();
    if status >= 500 {
        // Never the body or the message of a 4xx: they may quote the
        // caller's input (subject ids). Server errors name files and seqs.
        eprintln!("optout serve: {method} {route} {status}");
    }
    app.metrics.request(route, method, status, t.elapsed());
    resp
}

fn authorize(app: &App, route: &Route, headers: &HeaderMap) -> Result<Caller, ApiError> {
    let Some(need) = route.auth else {
        return Ok(Caller {
            name: String::new(),
            _permit: None,
        });
    };
    let unauthorized = |m: &str| {
        let mut r = ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", m.to_string());
        r.retry_after = None;
        r
    };
    let secret = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .ok_or_else(|| unauthorized("an `Authorization: Bearer <token>` header is required"))?;
    let token = app
        .tokens
        .authenticate(secret)
        .ok_or_else(|| unauthorized("the token is not valid"))?;
    if let Some(scope) = need {
        if !token.allows(scope) {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                format!(
                    "token {:?} lacks the scope {scope} that {} {} needs",
                    token.name, route.method, route.path
                ),
            ));
        }
    }
    let permit = app
        .permits
        .get(&token.name)
        .and_then(|s| Arc::clone(s).try_acquire_owned().ok())
        .ok_or_else(|| {
            let mut e = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_requests",
                format!(
                    "token {:?} has as many requests in flight as it may (--max-concurrent)",
                    token.name
                ),
            );
            e.retry_after = Some(1);
            e
        })?;
    Ok(Caller {
        name: token.name.clone(),
        _permit: Some(permit),
    })
}

/// The request's `Idempotency-Key`, checked.
fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(v) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let k = v
        .to_str()
        .ok()
        .map(|s| s.trim().trim_matches('"').to_string())
        .filter(|s| !s.is_empty() && s.len() <= MAX_KEY)
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "Idempotency-Key must be 1 to {MAX_KEY} visible ASCII characters"
            ))
        })?;
    Ok(Some(k))
}

/// Reads the body under the cap.
async fn read_body(app: &App, req: Request) -> Result<(HeaderMap, String, Vec<u8>), ApiError> {
    let (parts, b) = req.into_parts();
    let len = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    let bytes = body::read(b, len, app.max_body).await?;
    Ok((
        parts.headers,
        parts.uri.query().unwrap_or("").to_string(),
        bytes,
    ))
}

/// Runs CPU-bound or blocking work (parsing, reads under the lock) off the async workers.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::internal(format!("a worker failed: {e}")))?
}

fn json_answer(status: StatusCode, v: Value) -> Response {
    (status, axum::Json(v)).into_response()
}

fn write_answer(a: Answer) -> Response {
    let mut r = json_answer(StatusCode::OK, a.body);
    if a.replayed {
        r.headers_mut()
            .insert(REPLAYED_HEADER, HeaderValue::from_static("true"));
    }
    r
}

fn meta(
    caller: &Caller,
    headers: &HeaderMap,
    route: &str,
    query: &str,
    body: &[u8],
) -> Result<WriteMeta, ApiError> {
    Ok(WriteMeta {
        actor: caller.name.clone(),
        key: idempotency_key(headers)?,
        fp: journal::fingerprint(route, query, body),
    })
}

fn empty_body() -> ApiError {
    crate::InputError::new(BODY, 0, None, "the body holds no line: nothing to record").into()
}
