//! The handlers of [`super::ROUTES`]: each parses its request, asks the
//! [`LedgerService`] (writes through the writer task, reads under the
//! ledger's read lock) and shapes the answer.

use super::*;

pub(super) async fn events(
    app: Arc<App>,
    caller: Caller,
    req: Request,
) -> Result<Response, ApiError> {
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

pub(super) async fn records(
    app: Arc<App>,
    caller: Caller,
    req: Request,
) -> Result<Response, ApiError> {
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

pub(super) async fn signals(
    app: Arc<App>,
    caller: Caller,
    req: Request,
) -> Result<Response, ApiError> {
    let (headers, query, bytes) = read_body(&app, req).await?;
    let meta = meta(&caller, &headers, "/v1/signals", &query, &bytes)?;
    // `?agent=A&agent=B&purpose=P&dry_run=true`, as `optout signals`' flags.
    let pairs = query_pairs(&query)?;
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

/// The query string's `key=value` pairs, in order (a key may repeat).
fn query_pairs(query: &str) -> Result<Vec<(String, String)>, ApiError> {
    Ok(axum::extract::Query::<Vec<(String, String)>>::try_from_uri(
        &format!("/?{query}")
            .parse()
            .map_err(|_| ApiError::bad_request("bad query string"))?,
    )
    .map_err(|e| ApiError::bad_request(format!("query string: {e}")))?
    .0)
}

/// `POST /v1/derive?dataset=D&from=S[&from=T][&allow_missing_parents=true]`:
/// lineage lines (JSONL or a JSON array of them), as `optout derive`.
pub(super) async fn derive(
    app: Arc<App>,
    caller: Caller,
    req: Request,
) -> Result<Response, ApiError> {
    let (headers, query, bytes) = read_body(&app, req).await?;
    let meta = meta(&caller, &headers, "/v1/derive", &query, &bytes)?;
    let mut dataset = None;
    let mut from = Vec::new();
    let mut allow_missing = false;
    for (k, v) in query_pairs(&query)? {
        match k.as_str() {
            "dataset" => dataset = Some(v),
            "from" => from.push(v),
            "allow_missing_parents" => allow_missing = matches!(v.as_str(), "true" | "1" | ""),
            other => {
                return Err(ApiError::bad_request(format!(
                    "unknown query parameter {other:?} (dataset, from, allow_missing_parents)"
                )))
            }
        }
    }
    let dataset = dataset
        .filter(|d| !d.is_empty())
        .ok_or_else(|| ApiError::bad_request("the query parameter `dataset` is required"))?;
    if from.is_empty() {
        return Err(ApiError::bad_request(
            "at least one query parameter `from` (a source dataset) is required",
        ));
    }
    let b = blocking(move || {
        let jsonl = body::as_jsonl(&bytes)?;
        let mut b = crate::jsonl::DerivationBuilder::new(&dataset, &from, allow_missing);
        b.parse(&*jsonl, BODY)?;
        Ok(b)
    })
    .await?;
    if b.derivation().is_empty() {
        return Err(empty_body());
    }
    Ok(write_answer(
        app.ledger.write(WriteOp::Derive(Box::new(b)), meta).await?,
    ))
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

pub(super) async fn manifest(
    app: Arc<App>,
    _caller: Caller,
    req: Request,
) -> Result<Response, ApiError> {
    let (_, _, bytes) = read_body(&app, req).await?;
    let r: ManifestRequest = if body::is_blank(&bytes) {
        ManifestRequest::default()
    } else {
        parse_json(&bytes)?
    };
    let s = blocking(move || app.ledger.manifest(r)).await?;
    Ok(manifest_answer(s))
}

pub(super) async fn manifest_get(
    app: Arc<App>,
    _caller: Caller,
    req: Request,
) -> Result<Response, ApiError> {
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

pub(super) async fn runs_add(
    app: Arc<App>,
    caller: Caller,
    req: Request,
) -> Result<Response, ApiError> {
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

pub(super) async fn runs_list(
    app: Arc<App>,
    _caller: Caller,
    _req: Request,
) -> Result<Response, ApiError> {
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

pub(super) async fn subject_request(
    app: &App,
    req: Request,
) -> Result<(String, Timestamp), ApiError> {
    let (_, _, bytes) = read_body(app, req).await?;
    let r: SubjectRequest = parse_json(&bytes)?;
    if r.subject.trim().is_empty() {
        return Err(crate::InputError::new(BODY, 0, Some("subject"), "must not be empty").into());
    }
    Ok((r.subject, time_or_now("at", r.at.as_deref())?))
}

pub(super) async fn affected(
    app: Arc<App>,
    _caller: Caller,
    req: Request,
) -> Result<Response, ApiError> {
    let (subject, at) = subject_request(&app, req).await?;
    let v = blocking(move || app.ledger.affected(&subject, at)).await?;
    Ok(json_answer(StatusCode::OK, v))
}

pub(super) async fn report(
    app: Arc<App>,
    _caller: Caller,
    req: Request,
) -> Result<Response, ApiError> {
    let (subject, at) = subject_request(&app, req).await?;
    let v = blocking(move || app.ledger.report(&subject, at)).await?;
    Ok(json_answer(StatusCode::OK, v))
}

pub(super) async fn head(
    app: Arc<App>,
    _caller: Caller,
    _req: Request,
) -> Result<Response, ApiError> {
    let v = blocking(move || app.ledger.head()).await?;
    Ok(json_answer(StatusCode::OK, v))
}

pub(super) async fn fides_intake(
    app: Arc<App>,
    caller: Caller,
    req: Request,
) -> Result<Response, ApiError> {
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

pub(super) async fn healthz(
    app: Arc<App>,
    _caller: Caller,
    _req: Request,
) -> Result<Response, ApiError> {
    Ok(match app.ledger.writer_failure() {
        None => json_answer(StatusCode::OK, json!({"ok": true})),
        Some(why) => json_answer(
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"ok": false, "error": why}),
        ),
    })
}

pub(super) async fn metrics(
    app: Arc<App>,
    _caller: Caller,
    _req: Request,
) -> Result<Response, ApiError> {
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
