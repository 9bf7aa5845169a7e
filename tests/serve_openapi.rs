//! docs/openapi.json and the served routes agree, both ways: every route
//! of the table the router is built from is documented with its method
//! and scope, every documented operation is a route, and a live server
//! answers each documented operation from a route (never `no_route` or 405).
#![cfg(all(feature = "cli", feature = "server"))]

mod serve_common;

use std::collections::BTreeSet;

use optout::service::ROUTES;
use serde_json::Value;
use serve_common::*;

fn document() -> Value {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/openapi.json");
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

/// (METHOD, path, scope) as documented: scope `none` for public routes.
fn documented(doc: &Value) -> BTreeSet<(String, String, String)> {
    let mut out = BTreeSet::new();
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            let scope = match (op.get("security"), op.get("x-optout-scope")) {
                (Some(s), None) if s.as_array().is_some_and(Vec::is_empty) => "none".to_string(),
                (None, Some(s)) => s.as_str().unwrap().to_string(),
                other => panic!(
                    "{method} {path}: say either `security: []` or `x-optout-scope`: {other:?}"
                ),
            };
            out.insert((method.to_uppercase(), path.clone(), scope));
        }
    }
    out
}

fn served() -> BTreeSet<(String, String, String)> {
    ROUTES
        .iter()
        .map(|r| {
            let scope = match r.auth {
                None => "none".to_string(),
                Some(None) => "any".to_string(),
                Some(Some(s)) => s.name().to_string(),
            };
            (r.method.to_string(), r.path.to_string(), scope)
        })
        .collect()
}

#[test]
fn the_document_and_the_route_table_agree_both_ways() {
    let doc = document();
    assert_eq!(doc["openapi"].as_str().map(|v| &v[..2]), Some("3."));
    let d = documented(&doc);
    let s = served();
    let missing: Vec<_> = s.difference(&d).collect();
    let extra: Vec<_> = d.difference(&s).collect();
    assert!(
        missing.is_empty(),
        "served but not documented (or another scope): {missing:?}"
    );
    assert!(
        extra.is_empty(),
        "documented but not served (or another scope): {extra:?}"
    );
    // Every $ref resolves.
    let text = doc.to_string();
    for part in text.split("\"$ref\":\"#/").skip(1) {
        let path = &part[..part.find('"').unwrap()];
        let mut v = &doc;
        for seg in path.split('/') {
            v = v
                .get(seg)
                .unwrap_or_else(|| panic!("dangling $ref #/{path}"));
        }
    }
}

#[test]
fn a_live_server_serves_every_documented_operation() {
    let f = Fixture::new();
    let s = f.start(&[]);
    for (method, path, _) in documented(&document()) {
        let p = path.replace("{digest}", &"0".repeat(64));
        let r = s.req(&method, &p, Some(f.secret("admin")), b"{}");
        let code = serde_json::from_slice::<Value>(&r.body)
            .ok()
            .and_then(|j| j["code"].as_str().map(str::to_string));
        assert_ne!(r.status, 405, "{method} {path}: method not allowed");
        assert_ne!(
            code.as_deref(),
            Some("no_route"),
            "{method} {path}: not routed"
        );
    }
    let r = s.req("GET", "/v1/not-documented", Some(f.secret("admin")), b"");
    assert_eq!(r.json()["code"], "no_route");
}
