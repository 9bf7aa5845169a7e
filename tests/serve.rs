//! `optout serve` on 127.0.0.1, started by the test on a free port: every
//! route and scope, bad bodies, limits, Idempotency-Key, manifests equal to
//! the CLI's, runs, subjects, TLS, graceful shutdown, log lines.
#![cfg(all(feature = "cli", feature = "server"))]

mod serve_common;

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use optout::service::ROUTES;
use serde_json::{json, Value};
use serve_common::*;

const OBJECTION_ALICE: &str = r#"{"type":"objection","subject":"alice@example.com","at":"2025-02-01T00:00:00Z","purposes":["ai-training"],"ref":"t-1"}"#;

const DERIVED_ROW: &str = r#"{"shard":"train-0.mds","row":0,"parents":[{"dataset":"forum","shard":"part-0.parquet","row":0}]}"#;

fn head(s: &Server, f: &Fixture) -> u64 {
    s.req("GET", "/v1/head", Some(f.secret("admin")), b"")
        .json()["seq"]
        .as_u64()
        .unwrap()
}

/// A request each route answers 200 to, given the right token.
fn valid_request(s: &Server, f: &Fixture, method: &str, path: &str) -> (String, Vec<u8>) {
    let body = match (method, path) {
        ("POST", "/v1/events") => OBJECTION_ALICE.to_string(),
        ("POST", "/v1/records") => r#"[{"dataset":"forum","shard":"part-1.parquet","row":0,"subjects":["erin@example.com"],"source":"forum.example.com","collected_at":"2024-03-01T12:00:00Z","basis":"legitimate_interest"}]"#.into(),
        ("POST", "/v1/signals") => r#"{"url":"https://forum.example.com/","fetched_at":"2025-01-01T00:00:00Z","robots_txt":"User-agent: GPTBot\nDisallow: /\n"}"#.into(),
        ("POST", "/v1/derive") => {
            return ("/v1/derive?dataset=train&from=forum".into(), DERIVED_ROW.as_bytes().to_vec());
        }
        ("POST", "/v1/manifests") => r#"{"purpose":"ai-training","at":"2025-06-01T00:00:00Z"}"#.into(),
        ("GET", "/v1/manifests/{digest}") => {
            let r = s.req("POST", "/v1/manifests", Some(f.secret("admin")), br#"{"purpose":"ai-training"}"#);
            assert_eq!(r.status, 200);
            return (format!("/v1/manifests/{}", r.header("optout-manifest-digest").unwrap()), vec![]);
        }
        ("POST", "/v1/runs") => {
            let r = s.req("POST", "/v1/manifests", Some(f.secret("admin")), br#"{"purpose":"ai-training"}"#);
            let d = r.header("optout-manifest-digest").unwrap().to_string();
            json!({"model": "m", "manifest_digest": d, "started_at": "2025-07-01T00:00:00Z"}).to_string()
        }
        ("POST", "/v1/subjects/affected") | ("POST", "/v1/subjects/report") => {
            r#"{"subject":"alice@example.com","at":"2025-06-01T00:00:00Z"}"#.into()
        }
        ("POST", "/v1/integrations/fides") => {
            String::from_utf8(std::fs::read(fixture("erasure_pre.json")).unwrap()).unwrap()
        }
        ("GET", _) => String::new(),
        other => panic!("no valid request for {other:?}: add one"),
    };
    (path.to_string(), body.into_bytes())
}

fn fixture(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/fides")
        .join(name)
}

#[test]
fn every_route_checks_its_token_and_scope() {
    let f = Fixture::new();
    let s = f.start(&[]);
    for route in ROUTES {
        let (path, body) = valid_request(&s, &f, route.method, route.path);
        let what = format!("{} {}", route.method, route.path);
        match route.auth {
            None => {
                let r = s.req(route.method, &path, None, &body);
                assert_eq!(r.status, 200, "{what} without a token");
            }
            Some(scope) => {
                let r = s.req(route.method, &path, None, &body);
                assert_eq!(
                    (r.status, r.json()["code"].as_str()),
                    (401, Some("unauthorized")),
                    "{what}"
                );
                let r = s.req(route.method, &path, Some("optout_0000"), &body);
                assert_eq!(r.status, 401, "{what} with a bad token");
                let r = s.req_h(
                    route.method,
                    &path,
                    None,
                    &[("Authorization", "Basic eDp5")],
                    &body,
                );
                assert_eq!(r.status, 401, "{what} with basic auth");
                if let Some(scope) = scope {
                    for other in SCOPES
                        .iter()
                        .filter(|x| **x != scope.name() && **x != "admin")
                    {
                        let r = s.req(route.method, &path, Some(f.secret(other)), &body);
                        assert_eq!(
                            (r.status, r.json()["code"].as_str()),
                            (403, Some("forbidden")),
                            "{what} with {other}"
                        );
                    }
                    let r = s.req(route.method, &path, Some(f.secret(scope.name())), &body);
                    assert_eq!(
                        r.status,
                        200,
                        "{what} with {scope}: {}",
                        String::from_utf8_lossy(&r.body)
                    );
                }
                let r = s.req(route.method, &path, Some(f.secret("admin")), &body);
                assert_eq!(
                    r.status,
                    200,
                    "{what} with admin: {}",
                    String::from_utf8_lossy(&r.body)
                );
            }
        }
    }
    let r = s.req("GET", "/v1/nothing", Some(f.secret("admin")), b"");
    assert_eq!(
        (r.status, r.json()["code"].as_str()),
        (404, Some("no_route"))
    );
    let r = s.req("DELETE", "/v1/events", Some(f.secret("admin")), b"");
    assert_eq!(r.status, 405);
    let log = s.stderr_text();
    assert!(
        !log.contains("@example.com") && !log.contains("erin"),
        "a subject id in the log: {log}"
    );
}

#[test]
fn bad_bodies_name_the_line_and_field_and_write_nothing() {
    let f = Fixture::new();
    let s = f.start(&["--max-body", "4096"]);
    let t = f.secret("admin");
    let before = head(&s, &f);
    // (path, body, status, code, line, field)
    type Case<'a> = (&'a str, String, u16, &'a str, Option<u64>, Option<&'a str>);
    let cases: Vec<Case> = vec![
        ("/v1/events", format!("{OBJECTION_ALICE}\n{{\"type\":\"objection\",\"subject\":\"bob@example.com\",\"purposes\":[\"ai-training\"]}}\n"), 400, "invalid_input", Some(2), Some("at")),
        ("/v1/events", format!("[{OBJECTION_ALICE},{OBJECTION_ALICE},{{\"type\":\"objektion\",\"subject\":\"x\",\"at\":\"2025-01-01T00:00:00Z\"}}]"), 400, "invalid_input", Some(3), Some("type")),
        ("/v1/events", format!("[{OBJECTION_ALICE}, 7]"), 400, "invalid_input", Some(2), None),
        ("/v1/events", "[{\"type\":".into(), 400, "invalid_input", None, None),
        ("/v1/events", " \n".into(), 400, "invalid_input", None, None),
        ("/v1/events", format!("{OBJECTION_ALICE}\n").repeat(40), 413, "payload_too_large", None, None),
        ("/v1/records", r#"{"dataset":"forum","shard":"p","row":"x","subjects":[],"source":"s","collected_at":"2024-03-01T12:00:00Z","basis":"consent"}"#.into(), 400, "invalid_input", Some(1), Some("row")),
        ("/v1/runs", r#"{"model":"m"}"#.into(), 400, "invalid_request", None, None),
        ("/v1/runs", r#"{"model":"m","manifest_digest":"00"}"#.into(), 404, "unknown_manifest", None, None),
        ("/v1/manifests", r#"{"purpose":"ai-training","datasets":["nope"]}"#.into(), 422, "rejected", None, None),
        ("/v1/manifests", r#"{"purpose":"ai-training","at":"soon"}"#.into(), 400, "invalid_input", None, Some("at")),
        ("/v1/manifests", r#"{"purpose":"ai-training","colour":"red"}"#.into(), 400, "invalid_input", None, Some("colour")),
        ("/v1/subjects/report", r#"{"subject":""}"#.into(), 400, "invalid_input", None, Some("subject")),
        ("/v1/integrations/fides", r#"{"policy_action":"erasure"}"#.into(), 400, "invalid_input", None, Some("privacy_request_id")),
        ("/v1/derive?dataset=train&from=forum", format!("{DERIVED_ROW}\n{{\"shard\":\"train-0.mds\",\"row\":1,\"parents\":[{{\"dataset\":\"forum\",\"shard\":\"part-0.parquet\",\"row\":99}}]}}\n"), 400, "invalid_input", Some(2), Some("parents[0]")),
        ("/v1/derive?dataset=train&from=forum", r#"[{"shard":"t","row":"x","parents":[]}]"#.into(), 400, "invalid_input", Some(1), Some("row")),
        ("/v1/derive?from=forum", DERIVED_ROW.into(), 400, "invalid_request", None, None),
        ("/v1/derive?dataset=train", DERIVED_ROW.into(), 400, "invalid_request", None, None),
        ("/v1/signals?agent=GPTBot&colour=red", r#"{"url":"https://a.example/","fetched_at":"2025-01-01T00:00:00Z"}"#.into(), 400, "invalid_request", None, None),
    ];
    for (path, body, status, code, line, field) in cases {
        let r = s.req("POST", path, Some(t), body.as_bytes());
        let j = r.json();
        assert_eq!(r.status, status, "{path} {body:.80}: {j}");
        assert_eq!(j["code"], code, "{path}: {j}");
        assert_eq!(j["line"].as_u64(), line, "{path}: {j}");
        assert_eq!(j["field"].as_str(), field, "{path}: {j}");
        if let (400, Some(n)) = (status, line) {
            // The CLI's text, with the body's name where the CLI names the file.
            let msg = j["error"].as_str().unwrap();
            assert!(msg.starts_with(&format!("body:{n}: ")), "{msg}");
        }
    }
    // An oversized body announced by Content-Length is refused before it is read.
    let mut c = s.conn();
    let r = c
        .send(
            "POST",
            "/v1/events",
            &[("Authorization", &format!("Bearer {t}"))],
            &vec![b' '; 5000],
        )
        .unwrap();
    assert_eq!(r.status, 413);
    assert_eq!(head(&s, &f), before, "a refused request wrote something");
    // The CLI's parser says the same after the input's name.
    let file = format!("{OBJECTION_ALICE}\n{{\"type\":\"objection\",\"subject\":\"bob@example.com\",\"purposes\":[\"ai-training\"]}}\n");
    let r = s.req("POST", "/v1/events", Some(t), file.as_bytes());
    let msg = r.json()["error"].as_str().unwrap().to_string();
    let tail = msg.strip_prefix("body:2: ").unwrap();
    let k = optout::SubjectKeyer::from_secret([0; 32]);
    let e = optout::jsonl::parse_events(file.as_bytes(), "ev.jsonl", &k).unwrap_err();
    assert_eq!(e.to_string(), format!("ev.jsonl:2: {tail}"));
}

#[test]
fn an_undeclared_purpose_is_refused_and_identical_events_are_unchanged() {
    let f = Fixture::new();
    let s = f.start(&[]);
    let t = f.secret("events:write");
    let before = head(&s, &f);
    let typo = format!(
        "{OBJECTION_ALICE}\n{}\n",
        OBJECTION_ALICE.replace("ai-training", "ai_training")
    );
    let r = s.req("POST", "/v1/events", Some(t), typo.as_bytes());
    assert_eq!(
        (
            r.status,
            r.json()["code"].as_str(),
            r.json()["line"].as_u64()
        ),
        (422, Some("undeclared_purpose"), Some(2)),
        "{:?}",
        r.json()
    );
    assert!(r.json()["error"]
        .as_str()
        .unwrap()
        .contains("did you mean `ai-training`?"));
    assert_eq!(head(&s, &f), before, "nothing of the batch written");
    let a = s.req("POST", "/v1/events", Some(t), OBJECTION_ALICE.as_bytes());
    assert_eq!((a.status, a.json()["events"].as_u64()), (200, Some(1)));
    let b = s.req("POST", "/v1/events", Some(t), OBJECTION_ALICE.as_bytes());
    assert_eq!(
        (
            b.status,
            b.json()["events"].as_u64(),
            b.json()["unchanged"].as_u64()
        ),
        (200, Some(0), Some(1)),
        "{:?}",
        b.json()
    );
    assert_eq!(head(&s, &f), before + 1, "the second post recorded nothing");
}

#[test]
fn an_idempotency_key_records_once_even_across_a_restart() {
    let f = Fixture::new();
    let s = f.start(&[]);
    let t = f.secret("events:write");
    let key = [("Idempotency-Key", "req-42")];
    let a = s.req_h(
        "POST",
        "/v1/events",
        Some(t),
        &key,
        OBJECTION_ALICE.as_bytes(),
    );
    assert_eq!(a.status, 200);
    assert!(a.header("idempotent-replayed").is_none());
    let b = s.req_h(
        "POST",
        "/v1/events",
        Some(t),
        &key,
        OBJECTION_ALICE.as_bytes(),
    );
    assert_eq!(
        (b.status, b.header("idempotent-replayed")),
        (200, Some("true"))
    );
    assert_eq!(a.json(), b.json());
    // The same key for another request is refused; another token's key is its own.
    let other = objection("bob@example.com", "t-2");
    let c = s.req_h("POST", "/v1/events", Some(t), &key, other.as_bytes());
    assert_eq!(
        (c.status, c.json()["code"].as_str()),
        (422, Some("idempotency_key_reused"))
    );
    let d = s.req_h(
        "POST",
        "/v1/events",
        Some(f.secret("admin")),
        &key,
        OBJECTION_ALICE.as_bytes(),
    );
    assert_eq!((d.status, d.header("idempotent-replayed")), (200, None));
    // Not a replay, but the event is identical to the recorded one: a
    // no-op (issue 21, idempotent intake), answered as unchanged.
    assert_eq!(
        (d.json()["events"].as_u64(), d.json()["unchanged"].as_u64()),
        (Some(0), Some(1)),
        "{:?}",
        d.json()
    );
    assert!(d.json()["first_seq"].is_null());
    // A new key records anew.
    let e = s.req_h(
        "POST",
        "/v1/events",
        Some(t),
        &[("Idempotency-Key", "req-43")],
        other.as_bytes(),
    );
    assert_eq!(e.status, 200);
    s.kill();
    let s = f.start(&[]);
    let again = s.req_h(
        "POST",
        "/v1/events",
        Some(t),
        &key,
        OBJECTION_ALICE.as_bytes(),
    );
    assert_eq!(
        (again.status, again.header("idempotent-replayed")),
        (200, Some("true"))
    );
    assert_eq!(again.json(), a.json());
    drop(s);
    let refs: Vec<Option<String>> = events_of(&f.ledger).into_iter().map(|e| e.2).collect();
    assert_eq!(refs, vec![Some("t-1".into()), Some("t-2".into())]);
}

#[test]
fn manifests_are_the_clis_bytes() {
    let f = Fixture::new();
    let s = f.start(&[]);
    let t = f.secret("admin");
    let evs = format!(
        "{OBJECTION_ALICE}\n{}\n",
        r#"{"type":"consent","subject":"bob@example.com","at":"2024-01-10T00:00:00Z","purposes":["ai-training"],"method":"double_opt_in","confirmed":true}"#
    );
    assert_eq!(
        s.req("POST", "/v1/events", Some(t), evs.as_bytes()).status,
        200
    );
    assert_eq!(
        s.req(
            "POST",
            "/v1/events",
            Some(t),
            objection("dave@example.com", "t-3").as_bytes()
        )
        .status,
        200
    );
    let policy = json!({"purpose":"ai-training","exclude_categories":["audio"]});
    let cases = [
        (
            json!({"purpose":"ai-training","at":"2025-03-01T00:00:00Z"}),
            vec!["--purpose", "ai-training", "--at", "2025-03-01T00:00:00Z"],
            None,
        ),
        (
            json!({"purpose":"ai-training","at":"2025-03-01T00:00:00Z","at_seq":3}),
            vec![
                "--purpose",
                "ai-training",
                "--at",
                "2025-03-01T00:00:00Z",
                "--at-seq",
                "3",
            ],
            None,
        ),
        (
            json!({"policy":policy,"at":"2025-03-01T00:00:00Z","datasets":["meetings"]}),
            vec!["--at", "2025-03-01T00:00:00Z", "--dataset", "meetings"],
            Some(policy.clone()),
        ),
    ];
    for (i, (req, args, pol)) in cases.into_iter().enumerate() {
        let r = s.req(
            "POST",
            "/v1/manifests",
            Some(f.secret("manifests:read")),
            req.to_string().as_bytes(),
        );
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        assert_eq!(r.header("content-type"), Some("application/octet-stream"));
        let out = f.path(&format!("m{i}.optm"));
        let mut a: Vec<String> = vec![
            "manifest".into(),
            f.ledger.to_str().unwrap().into(),
            "-o".into(),
            out.to_str().unwrap().into(),
        ];
        a.extend(args.iter().map(|s| s.to_string()));
        if let Some(p) = pol {
            let pf = f.path("policy.json");
            std::fs::write(&pf, p.to_string()).unwrap();
            a.extend(["--policy".to_string(), pf.to_str().unwrap().to_string()]);
        }
        // The CLI opens the ledger read-only beside the running server.
        cli(&a.iter().map(String::as_str).collect::<Vec<_>>());
        let cli_bytes = std::fs::read(&out).unwrap();
        assert_eq!(
            r.body, cli_bytes,
            "case {i}: the server's manifest differs from the CLI's"
        );
        let digest = r.header("optout-manifest-digest").unwrap().to_string();
        let shown: Value =
            serde_json::from_str(&cli(&["show", out.to_str().unwrap(), "--format", "json"]))
                .unwrap();
        assert_eq!(shown["digest"].as_str(), Some(digest.as_str()));
        let g = s.req("GET", &format!("/v1/manifests/{digest}"), Some(t), b"");
        assert_eq!((g.status, &g.body), (200, &cli_bytes));
    }
    // Known across a restart (the query is kept; manifests are reproducible).
    let r = s.req(
        "POST",
        "/v1/manifests",
        Some(t),
        br#"{"purpose":"ai-training","at":"2025-03-01T00:00:00Z"}"#,
    );
    let digest = r.header("optout-manifest-digest").unwrap().to_string();
    drop(s);
    let s = f.start(&[]);
    let g = s.req("GET", &format!("/v1/manifests/{digest}"), Some(t), b"");
    assert_eq!((g.status, g.body), (200, r.body));
    let g = s.req(
        "GET",
        &format!("/v1/manifests/{}", "ab".repeat(32)),
        Some(t),
        b"",
    );
    assert_eq!(
        (g.status, g.json()["code"].as_str()),
        (404, Some("unknown_manifest"))
    );
}

#[test]
fn runs_affected_and_report_through_the_service() {
    let f = Fixture::new();
    let s = f.start(&[]);
    let t = f.secret("admin");
    let m = s.req(
        "POST",
        "/v1/manifests",
        Some(t),
        br#"{"purpose":"ai-training","at":"2025-01-01T00:00:00Z"}"#,
    );
    let digest = m.header("optout-manifest-digest").unwrap().to_string();
    let run = json!({"model":"chat-v1","name":"run-1","manifest_digest":digest,"started_at":"2025-01-02T00:00:00Z"});
    let r = s.req(
        "POST",
        "/v1/runs",
        Some(f.secret("runs:write")),
        run.to_string().as_bytes(),
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(
        (
            r.json()["name"].as_str(),
            r.json()["manifest_digest"].as_str()
        ),
        (Some("run-1"), Some(digest.as_str()))
    );
    // The manifest's bytes instead of its digest (base64), default name.
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(&m.body);
    let r = s.req(
        "POST",
        "/v1/runs",
        Some(t),
        json!({"model":"chat-v1","manifest":b64})
            .to_string()
            .as_bytes(),
    );
    assert_eq!(
        (r.status, r.json()["name"].as_str()),
        (200, Some("chat-v1-run-2"))
    );
    // A name taken: refused, nothing written.
    let r = s.req("POST", "/v1/runs", Some(t), run.to_string().as_bytes());
    assert_eq!(
        (r.status, r.json()["code"].as_str()),
        (422, Some("rejected"))
    );
    // An altered manifest: refused.
    let mut bad = m.body.clone();
    let n = bad.len();
    bad[n - 40] ^= 1;
    let r = s.req(
        "POST",
        "/v1/runs",
        Some(t),
        json!({"model":"x","manifest":base64::engine::general_purpose::STANDARD.encode(&bad)})
            .to_string()
            .as_bytes(),
    );
    assert_eq!(
        (r.status, r.json()["code"].as_str()),
        (422, Some("invalid_manifest"))
    );
    let runs = s
        .req("GET", "/v1/runs", Some(f.secret("audit:read")), b"")
        .json();
    let names: Vec<&str> = runs["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["run-1", "chat-v1-run-2"]);
    // Alice objects after run 1: her record was used, excluded later.
    assert_eq!(
        s.req("POST", "/v1/events", Some(t), OBJECTION_ALICE.as_bytes())
            .status,
        200
    );
    let a = s
        .req(
            "POST",
            "/v1/subjects/affected",
            Some(f.secret("audit:read")),
            br#"{"subject":"Alice@Example.com","at":"2025-03-01T00:00:00Z"}"#,
        )
        .json();
    assert_eq!(a["records"], 1);
    assert_eq!(a["runs"][0]["run"], "run-1");
    assert_eq!(a["runs"][0]["status"], "after");
    assert!(a.get("subject").is_none(), "affected echoes no subject id");
    let rep = s
        .req(
            "POST",
            "/v1/subjects/report",
            Some(f.secret("audit:read")),
            br#"{"subject":"alice@example.com"}"#,
        )
        .json();
    assert_eq!(rep["records"][0]["key"], "post/1");
    assert_eq!(rep["events"][0]["type"], "objection");
    // The same as the CLI's report of the same ledger at the same time.
    let rep2 = s
        .req(
            "POST",
            "/v1/subjects/report",
            Some(t),
            br#"{"subject":"alice@example.com","at":"2025-03-01T00:00:00Z"}"#,
        )
        .json();
    let cli_rep: Value = serde_json::from_str(&cli(&[
        "report",
        f.ledger.to_str().unwrap(),
        "--subject",
        "alice@example.com",
        "--at",
        "2025-03-01T00:00:00Z",
    ]))
    .unwrap();
    assert_eq!(rep2, cli_rep);
}

#[test]
fn fides_webhooks_become_events_once() {
    let f = Fixture::new();
    let s = f.start(&[]);
    let t = f.secret("events:write");
    let post = |name: &str| {
        let r = s.req(
            "POST",
            "/v1/integrations/fides",
            Some(t),
            &std::fs::read(fixture(name)).unwrap(),
        );
        assert_eq!(
            r.status,
            200,
            "{name}: {}",
            String::from_utf8_lossy(&r.body)
        );
        r
    };
    let r = post("consent_opt_out_pre.json");
    let j = r.json();
    // The shape Fides' two-way webhooks read.
    assert_eq!(
        (j["halt"].as_bool(), j["derived_identity"].is_null()),
        (Some(false), true)
    );
    assert_eq!(j["optout"]["recorded"]["events"], 2);
    assert_eq!(
        j["optout"]["ignored_data_uses"],
        json!(["marketing.advertising"])
    );
    // Fides calls the post-execution webhook for the same request: nothing more.
    let again = post("consent_opt_out_pre.json");
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    post("erasure_pre.json");
    post("consent_opt_in_pre.json");
    let none = post("access_post.json").json();
    assert!(none["optout"]["recorded"].is_null() && none["optout"]["skipped"].is_string());
    post("erasure_pre_approval.json");
    let rep = s
        .req(
            "POST",
            "/v1/subjects/report",
            Some(f.secret("audit:read")),
            br#"{"subject":"alice@example.com","at":"2025-06-01T00:00:00Z"}"#,
        )
        .json();
    let st = rep["status"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["purpose"] == "ai-training")
        .unwrap()
        .clone();
    assert_eq!(st["objection"], true);
    assert_eq!(st["records_excluded"], 1);
    drop(s);
    let evs: Vec<(String, Option<String>)> = events_of(&f.ledger)
        .into_iter()
        .map(|e| (e.1, e.2))
        .collect();
    let r = |id: &str| Some(format!("fides:{id}"));
    assert_eq!(
        evs,
        vec![
            (
                "objection".into(),
                r("pri_6f1b3c8e-2f0a-4d7e-9a51-0c2d8e4b7a10")
            ),
            (
                "objection".into(),
                r("pri_6f1b3c8e-2f0a-4d7e-9a51-0c2d8e4b7a10")
            ),
            (
                "erasure".into(),
                r("pri_e7a5b3c1-0d2e-4f60-8a9b-c0d1e2f30415")
            ),
            (
                "objection_withdrawn".into(),
                r("pri_44d0e1f2-9999-4aaa-bbbb-123456789abc")
            ),
            (
                "consent".into(),
                r("pri_44d0e1f2-9999-4aaa-bbbb-123456789abc")
            ),
        ]
    );
}

#[test]
fn limits_concurrency_per_token_and_times_out_slow_requests() {
    let f = Fixture::new();
    let s = f.start(&["--max-concurrent", "1", "--request-timeout", "1"]);
    let t = f.secret("events:write");
    // A request whose body never finishes holds the token's only permit...
    let mut slow = s.conn();
    let auth = format!("Bearer {t}");
    let req = format!("POST /v1/events HTTP/1.1\r\nHost: t\r\nAuthorization: {auth}\r\nContent-Length: 100\r\n\r\n{{\"type\"");
    let mut raw = std::net::TcpStream::connect(&s.addr).unwrap();
    raw.write_all(req.as_bytes()).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    // ...so a second one of the same token is refused, another token's is not.
    let r = s.req("POST", "/v1/events", Some(t), OBJECTION_ALICE.as_bytes());
    assert_eq!(
        (r.status, r.json()["code"].as_str(), r.header("retry-after")),
        (429, Some("too_many_requests"), Some("1"))
    );
    assert_eq!(
        s.req(
            "POST",
            "/v1/events",
            Some(f.secret("admin")),
            OBJECTION_ALICE.as_bytes()
        )
        .status,
        200
    );
    // The slow one times out.
    let mut rd = std::io::BufReader::new(raw);
    let r = read_response(&mut rd).unwrap();
    assert_eq!(
        (r.status, r.json()["code"].as_str()),
        (503, Some("timeout"))
    );
    assert_eq!(slow.send("GET", "/healthz", &[], b"").unwrap().status, 200);
    assert_eq!(
        s.req("POST", "/v1/events", Some(t), OBJECTION_ALICE.as_bytes())
            .status,
        200
    );
    let m = s.req("GET", "/metrics", None, b"");
    let text = String::from_utf8(m.body).unwrap();
    assert!(
        text.contains(
            "optout_http_requests_total{route=\"/v1/events\",method=\"POST\",status=\"429\"} 1"
        ),
        "{text}"
    );
    assert!(text.contains("optout_commit_groups_total 2"));
}

#[test]
fn sigterm_lets_writes_in_flight_finish() {
    let f = Fixture::new();
    let s = f.start(&[]);
    let addr = s.addr.clone();
    let t = f.secret("events:write").to_string();
    let acked = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let threads: Vec<_> = (0..16)
        .map(|c| {
            let (addr, t, acked, stop) = (
                addr.clone(),
                t.clone(),
                Arc::clone(&acked),
                Arc::clone(&stop),
            );
            std::thread::spawn(move || {
                let auth = format!("Bearer {t}");
                let Ok(mut conn) = Conn::open(&addr) else {
                    return;
                };
                for i in 0.. {
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    let r = format!("c{c}-{i}");
                    let body = objection(&format!("user{c}-{i}@example.com"), &r);
                    match conn.send(
                        "POST",
                        "/v1/events",
                        &[("Authorization", &auth)],
                        body.as_bytes(),
                    ) {
                        Ok(resp) if resp.status == 200 => acked.lock().unwrap().push(r),
                        Ok(_) => {}
                        Err(_) => return,
                    }
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(400));
    let status = s.terminate();
    stop.store(true, Ordering::Relaxed);
    threads.into_iter().for_each(|h| h.join().unwrap());
    assert!(status.success(), "exit {status:?}");
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() > 16, "only {} writes acknowledged", acked.len());
    let refs: std::collections::HashSet<String> = events_of(&f.ledger)
        .into_iter()
        .filter_map(|e| e.2)
        .collect();
    let lost: Vec<&String> = acked.iter().filter(|r| !refs.contains(*r)).collect();
    assert!(
        lost.is_empty(),
        "acknowledged but not in the ledger: {lost:?}"
    );
    let v: Value = serde_json::from_str(&cli(&[
        "verify",
        f.ledger.to_str().unwrap(),
        "--format",
        "json",
    ]))
    .unwrap();
    assert_eq!(v["ok"], true);
}

#[test]
fn tls_with_a_certificate_and_key() {
    let f = Fixture::new();
    let (cert, key) = (f.path("cert.pem"), f.path("key.pem"));
    let st = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-days",
            "2",
        ])
        .args([
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ])
        .args([
            "-addext",
            "basicConstraints=critical,CA:FALSE",
            "-addext",
            "keyUsage=digitalSignature",
        ])
        .args(["-addext", "extendedKeyUsage=serverAuth"])
        .args([
            "-keyout",
            key.to_str().unwrap(),
            "-out",
            cert.to_str().unwrap(),
        ])
        .stderr(std::process::Stdio::null())
        .status()
        .expect("openssl (to make a test certificate)");
    assert!(st.success());
    let s = f.start(&[
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
    ]);
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls::pki_types::CertificateDer::from_pem_file(&cert).unwrap())
        .unwrap();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cfg = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let conn = rustls::ClientConnection::new(Arc::new(cfg), name).unwrap();
    let tcp = std::net::TcpStream::connect(&s.addr).unwrap();
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    let auth = format!("Bearer {}", f.secret("admin"));
    write!(
        tls,
        "GET /v1/head HTTP/1.1\r\nHost: t\r\nAuthorization: {auth}\r\n\r\n"
    )
    .unwrap();
    let r = read_response(&mut std::io::BufReader::new(tls)).unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["seq"], 2);
    // Plain HTTP on the TLS port gets no answer.
    assert!(s
        .conn()
        .send("GET", "/healthz", &[], b"")
        .map(|r| r.status != 200)
        .unwrap_or(true));
}

#[test]
fn derive_registers_lineage_all_or_nothing_and_a_derived_row_follows_its_parent() {
    let f = Fixture::new();
    let s = f.start(&[]);
    let t = f.secret("records:write");
    let before = head(&s, &f);
    let body = format!(
        "[{DERIVED_ROW},{}]",
        r#"{"shard":"train-0.mds","row":1,"parents":[{"key":"post/2"}]}"#
    );
    let r = s.req(
        "POST",
        "/v1/derive?dataset=train&from=forum",
        Some(t),
        body.as_bytes(),
    );
    let j = r.json();
    assert_eq!(r.status, 200, "{j}");
    assert_eq!(j["rows"], 2);
    assert_eq!(j["registered"], 2);
    assert_eq!(j["links"], 2);
    assert_eq!(j["first_seq"].as_u64(), Some(before + 1));
    assert_eq!(j["last_seq"].as_u64(), Some(before + 1));
    // The same lines again (as JSONL) are unchanged: nothing written.
    let again = format!(
        "{DERIVED_ROW}\n{}\n",
        r#"{"shard":"train-0.mds","row":1,"parents":[{"key":"post/2"}]}"#
    );
    let j = s
        .req(
            "POST",
            "/v1/derive?dataset=train&from=forum",
            Some(t),
            again.as_bytes(),
        )
        .json();
    assert_eq!(
        (j["registered"].as_u64(), j["unchanged"].as_u64()),
        (Some(0), Some(2)),
        "{j}"
    );
    assert_eq!(head(&s, &f), before + 1);
    // Alice (forum row 0) objects: the derived row 0 is excluded, row 1 is not.
    let ev = s.req(
        "POST",
        "/v1/events",
        Some(f.secret("admin")),
        OBJECTION_ALICE.as_bytes(),
    );
    assert_eq!(ev.status, 200);
    let r = s.req(
        "POST",
        "/v1/manifests",
        Some(f.secret("admin")),
        br#"{"purpose":"ai-training","at":"2025-06-01T00:00:00Z"}"#,
    );
    assert_eq!(r.status, 200);
    let m = optout::Manifest::from_bytes(&r.body).unwrap();
    assert!(m.is_excluded("train", "train-0.mds", 0));
    assert!(!m.is_excluded("train", "train-0.mds", 1));
}
