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

async fn events(app: Arc<App>, caller: Caller, req: Request) -> Result<Response, ApiError> {
    let (headers, query, bytes) = read_body(&app, req).await?;
    let meta = meta(&caller, &headers, "/v1/events", &query, &bytes)?;
    let a = Arc::clone(&app);
    let evs = blocking(move || {
        let jsonl = body::as_jsonl(&bytes)?;
        Ok(jsonl::parse_events(&*jsonl, BODY, a.ledger.keyer())?)
    })
    .await?;
    if evs.is_empty() {
        return Err(empty_body());
    }
    Ok(write_answer(
        app.ledger.write(WriteOp::Events(evs), meta).await?,
    ))
}

async fn records(app: Arc<App>, caller: Caller, req: Request) -> Result<Response, ApiError> {
    let (headers, query, bytes) = read_body(&app, req).await?;
    let meta = meta(&caller, &headers, "/v1/records", &query, &bytes)?;
    let a = Arc::clone(&app);
    let batch = blocking(move || {
        let jsonl = body::as_jsonl(&bytes)?;
        if body::is_blank(&jsonl) {
            return Err(empty_body());
        }
        Ok(jsonl::parse_records(&*jsonl, BODY, a.ledger.keyer())?)
    })
    .await?;
    Ok(write_answer(
        app.ledger.write(WriteOp::Records(batch), meta).await?,
    ))
}

async fn signals(app: Arc<App>, caller: Caller, req: Request) -> Result<Response, ApiError> {
    let (headers, query, bytes) = read_body(&app, req).await?;
    let meta = meta(&caller, &headers, "/v1/signals", &query, &bytes)?;
    // `?agent=A&agent=B&purpose=P&dry_run=true`, as `optout signals`' flags.
    let pairs: Vec<(String, String)> = axum::extract::Query::<Vec<(String, String)>>::try_from_uri(
        &format!("/?{query}")
            .parse()
            .map_err(|_| ApiError::bad_request("bad query string"))?,
    )
    .map_err(|e| ApiError::bad_request(format!("query string: {e}")))?
    .0;
    let mut config = crate::signals::Config::default();
    let mut purposes = Vec::new();
    let mut agents = Vec::new();
    let mut dry_run = false;
    for (k, v) in pairs {
        match k.as_str() {
            "agent" => agents.push(v),
            "purpose" => purposes.push(v),
            "dry_run" => dry_run = matches!(v.as_str(), "true" | "1" | ""),
            other => {
                return Err(ApiError::bad_request(format!(
                    "unknown query parameter {other:?} (agent, purpose, dry_run)"
                )))
            }
        }
    }
    if !agents.is_empty() {
        config.agents = agents;
    }
    if !purposes.is_empty() {
        config.purposes = crate::Purposes::parse(&purposes)
            .map_err(|m| ApiError::bad_request(format!("purpose: {m}")))?;
    }
    let crawl = blocking(move || {
        let jsonl = body::as_jsonl(&bytes)?;
        Ok(crate::signals::parse_crawl(&*jsonl, BODY)?)
    })
    .await?;
    if crawl.is_empty() {
        return Err(empty_body());
    }
    let op = WriteOp::Signals {
        crawl,
        config,
        dry_run,
    };
    Ok(write_answer(app.ledger.write(op, meta).await?))
}

fn parse_json<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| {
        let msg = e.to_string();
        let field = crate::error::serde::field_of(&msg, std::str::from_utf8(bytes).ok());
        crate::InputError::new(
            BODY,
            0,
            field.as_deref(),
            msg.split(" at line ").next().unwrap_or(&msg),
        )
        .into()
    })
}

fn time_or_now(field: &str, v: Option<&str>) -> Result<Timestamp, ApiError> {
    match v {
        None => Ok(Timestamp::now()),
        Some(s) => {
            Timestamp::parse(s).map_err(|m| crate::InputError::new(BODY, 0, Some(field), m).into())
        }
    }
}

fn manifest_answer(s: Sealed) -> Response {
    let mut r = (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/octet-stream"),
        )],
        s.bytes,
    )
        .into_response();
    let h = r.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&s.digest) {
        h.insert(DIGEST_HEADER, v.clone());
        if let Ok(e) = HeaderValue::from_str(&format!("\"{}\"", s.digest)) {
            h.insert(header::ETAG, e);
        }
    }
    h.insert(SEQ_HEADER, HeaderValue::from(s.seq));
    r
}

async fn manifest(app: Arc<App>, _caller: Caller, req: Request) -> Result<Response, ApiError> {
    let (_, _, bytes) = read_body(&app, req).await?;
    let r: ManifestRequest = if body::is_blank(&bytes) {
        ManifestRequest::default()
    } else {
        parse_json(&bytes)?
    };
    let s = blocking(move || app.ledger.manifest(r)).await?;
    Ok(manifest_answer(s))
}

async fn manifest_get(app: Arc<App>, _caller: Caller, req: Request) -> Result<Response, ApiError> {
    let digest = req
        .uri()
        .path()
        .rsplit('/')
        .next()
        .unwrap_or("")
        .to_ascii_lowercase();
    if digest.len() != 64 || !digest.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ApiError::bad_request("a manifest digest is 64 hex digits"));
    }
    let s = blocking(move || app.ledger.manifest_by_digest(&digest)).await?;
    Ok(manifest_answer(s))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RunRequest {
    model: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    started_at: Option<String>,
    /// A manifest this server computed.
    #[serde(default)]
    manifest_digest: Option<String>,
    /// Or the sealed bytes, base64 (standard alphabet).
    #[serde(default)]
    manifest: Option<String>,
}

async fn runs_add(app: Arc<App>, caller: Caller, req: Request) -> Result<Response, ApiError> {
    let (headers, query, bytes) = read_body(&app, req).await?;
    let meta = meta(&caller, &headers, "/v1/runs", &query, &bytes)?;
    let r: RunRequest = parse_json(&bytes)?;
    let started_at = time_or_now("started_at", r.started_at.as_deref())?;
    let a = Arc::clone(&app);
    let manifest = blocking(move || {
        let bytes = match (&r.manifest, &r.manifest_digest) {
            (Some(b64), _) => {
                use base64::Engine;
                base64::engine::general_purpose::STANDARD
                    .decode(b64.trim())
                    .map_err(|e| crate::InputError::new(BODY, 0, Some("manifest"), format!("not base64: {e}")))?
            }
            (None, Some(d)) => a.ledger.manifest_by_digest(&d.to_ascii_lowercase())?.bytes,
            (None, None) => {
                return Err(ApiError::bad_request("a run needs `manifest_digest` (computed by this server) or `manifest` (its bytes, base64)"))
            }
        };
        let m = crate::Manifest::from_bytes(&bytes).map_err(crate::Error::Manifest)?;
        Ok((m, r.name, r.model))
    })
    .await?;
    let (m, name, model) = manifest;
    let op = WriteOp::Run {
        name,
        model,
        manifest: Box::new(m),
        started_at,
    };
    Ok(write_answer(app.ledger.write(op, meta).await?))
}

async fn runs_list(app: Arc<App>, _caller: Caller, _req: Request) -> Result<Response, ApiError> {
    let v = blocking(move || app.ledger.runs()).await?;
    Ok(json_answer(StatusCode::OK, v))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SubjectRequest {
    subject: String,
    #[serde(default)]
    at: Option<String>,
}

async fn subject_request(app: &App, req: Request) -> Result<(String, Timestamp), ApiError> {
    let (_, _, bytes) = read_body(app, req).await?;
    let r: SubjectRequest = parse_json(&bytes)?;
    if r.subject.trim().is_empty() {
        return Err(crate::InputError::new(BODY, 0, Some("subject"), "must not be empty").into());
    }
    Ok((r.subject, time_or_now("at", r.at.as_deref())?))
}

async fn affected(app: Arc<App>, _caller: Caller, req: Request) -> Result<Response, ApiError> {
    let (subject, at) = subject_request(&app, req).await?;
    let v = blocking(move || app.ledger.affected(&subject, at)).await?;
    Ok(json_answer(StatusCode::OK, v))
}

async fn report(app: Arc<App>, _caller: Caller, req: Request) -> Result<Response, ApiError> {
    let (subject, at) = subject_request(&app, req).await?;
    let v = blocking(move || app.ledger.report(&subject, at)).await?;
    Ok(json_answer(StatusCode::OK, v))
}

async fn head(app: Arc<App>, _caller: Caller, _req: Request) -> Result<Response, ApiError> {
    let v = blocking(move || app.ledger.head()).await?;
    Ok(json_answer(StatusCode::OK, v))
}

async fn fides_intake(app: Arc<App>, caller: Caller, req: Request) -> Result<Response, ApiError> {
    let (_, _, bytes) = read_body(&app, req).await?;
    let plan = fides::map(&bytes)?;
    if plan.events.is_empty() {
        return Ok(json_answer(
            StatusCode::OK,
            fides::answer(&plan, &Value::Null),
        ));
    }
    let mut lines = Vec::new();
    for e in &plan.events {
        serde_json::to_writer(&mut lines, e).map_err(|e| ApiError::internal(e.to_string()))?;
        lines.push(b'\n');
    }
    // Idempotent by privacy request id: Fides calls pre- and post-execution
    // webhooks (and retries) for one request; the events they map to are
    // the fingerprint, so each request is recorded once.
    let meta = WriteMeta {
        actor: caller.name.clone(),
        key: Some(format!("fides:{}", plan.privacy_request_id)),
        fp: journal::fingerprint("/v1/integrations/fides", "", &lines),
    };
    let a = Arc::clone(&app);
    let evs =
        blocking(move || Ok(jsonl::parse_events(&lines[..], BODY, a.ledger.keyer())?)).await?;
    let answer = app.ledger.write(WriteOp::Events(evs), meta).await?;
    let mut r = json_answer(StatusCode::OK, fides::answer(&plan, &answer.body));
    if answer.replayed {
        r.headers_mut()
            .insert(REPLAYED_HEADER, HeaderValue::from_static("true"));
    }
    Ok(r)
}

async fn healthz(app: Arc<App>, _caller: Caller, _req: Request) -> Result<Response, ApiError> {
    Ok(match app.ledger.writer_failure() {
        None => json_answer(StatusCode::OK, json!({"ok": true})),
        Some(why) => json_answer(
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"ok": false, "error": why}),
        ),
    })
}

async fn metrics(app: Arc<App>, _caller: Caller, _req: Request) -> Result<Response, ApiError> {
    Ok((
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4"),
        )],
        app.metrics.render(),
    )
        .into_response())
}
