//! One test per situation in the seed articles (shared/seeds), written the
//! way a privacy officer would feed them: JSONL records and events.

use std::collections::BTreeMap;

use optout::{
    engine, jsonl, Entry, Index, Policy, Purpose, Query, Reason, Seq, SubjectKeyer, Timestamp,
};

struct Scenario {
    keyer: SubjectKeyer,
    index: Index,
}

impl Scenario {
    fn new() -> Self {
        Scenario {
            keyer: SubjectKeyer::from_secret([5; 32]),
            index: Index::new(),
        }
    }
    fn next(&self) -> Seq {
        Seq(self.index.seq().0 + 1)
    }
    fn records(&mut self, text: &str) -> Seq {
        let b = jsonl::parse_records(text.as_bytes(), "records", &self.keyer).unwrap();
        let s = self.next();
        self.index.apply(s, &Entry::Records(b)).unwrap();
        s
    }
    fn events(&mut self, text: &str) -> Seq {
        for e in jsonl::parse_events(text.as_bytes(), "events", &self.keyer).unwrap() {
            let s = self.next();
            self.index.apply(s, &Entry::Event(e)).unwrap();
        }
        self.index.seq()
    }
    /// Excluded `(shard, row) -> reasons` at `(seq, at)`.
    fn excluded(
        &self,
        policy: &Policy,
        seq: Seq,
        at: &str,
    ) -> BTreeMap<(String, u32), Vec<Reason>> {
        let q = Query {
            policy: policy.clone(),
            seq,
            at: Timestamp::parse(at).unwrap(),
            datasets: vec![],
        };
        let ex = engine::evaluate(&self.index, &q);
        let mut out = BTreeMap::new();
        for (&sh, e) in &ex.shards {
            for row in e.excluded.iter() {
                let (_, name) = self.index.names_of(optout::RecordId::new(sh, row)).unwrap();
                let reasons = Reason::ALL
                    .iter()
                    .copied()
                    .filter(|r| e.reasons[*r as usize].contains(row))
                    .collect();
                out.insert((name.to_string(), row), reasons);
            }
        }
        out
    }
}

fn ai() -> Policy {
    Policy::default_for(Purpose::new("ai-training").unwrap())
}

fn rec(shard: &str, row: u32, subjects: &[&str], source: &str, basis: &str, extra: &str) -> String {
    let subjects: Vec<String> = subjects.iter().map(|s| format!("{s:?}")).collect();
    format!(
        r#"{{"dataset":"d","shard":"{shard}","row":{row},"subjects":[{}],"source":"{source}","collected_at":"2024-03-01T12:00:00Z","basis":"{basis}"{extra}}}"#,
        subjects.join(",")
    ) + "\n"
}

/// Meta (seeds 002, 003): objections were honoured only if made before
/// training began. Here an objection after collection *and* after a
/// training run still reaches the next evaluation, and only from its time on.
#[test]
fn late_objection_is_honoured_at_the_next_evaluation() {
    let mut s = Scenario::new();
    let mut text = String::new();
    for row in 0..4 {
        text += &rec(
            "posts-0",
            row,
            &["alice@example.com"],
            "facebook.com",
            "legitimate_interest",
            r#","visibility":"public""#,
        );
        text += &rec(
            "posts-0",
            row + 4,
            &["bob@example.com"],
            "facebook.com",
            "legitimate_interest",
            r#","visibility":"public""#,
        );
    }
    s.records(&text);
    let before = s.index.seq();
    assert!(s.excluded(&ai(), before, "2025-05-01T00:00:00Z").is_empty());
    // Alice objects in June, after training began in May.
    s.events(r#"{"type":"objection","subject":"Alice@Example.com","at":"2025-06-01T00:00:00Z","purposes":["ai-training"],"ref":"ticket-42"}"#);
    let now = s.index.seq();
    let ex = s.excluded(&ai(), now, "2025-07-01T00:00:00Z");
    assert_eq!(ex.keys().map(|k| k.1).collect::<Vec<_>>(), vec![0, 1, 2, 3]);
    assert!(ex.values().all(|r| r == &vec![Reason::Objection]));
    // What the ledger knew before the objection, or a valid time before it took effect: nothing.
    assert!(s.excluded(&ai(), before, "2025-07-01T00:00:00Z").is_empty());
    assert!(s.excluded(&ai(), now, "2025-05-31T23:59:59Z").is_empty());
    // The objection is for AI training only.
    let ads = Policy::default_for(Purpose::new("ads-personalisation").unwrap());
    assert!(s.excluded(&ads, now, "2025-07-01T00:00:00Z").is_empty());
}

/// Zoom (seed 004): a meeting admin consents on behalf of every participant;
/// a participant objects herself; telemetry ("service generated data") is
/// excluded by policy.
#[test]
fn meeting_with_delegated_consent_and_an_objecting_participant() {
    let mut s = Scenario::new();
    let people = ["admin@corp.com", "ann@corp.com", "ben@corp.com"];
    let mut text = rec(
        "meetings-0",
        0,
        &people,
        "zoom",
        "consent",
        r#","categories":["audio","video"],"visibility":"private""#,
    );
    text += &rec(
        "meetings-0",
        1,
        &people[..2],
        "zoom",
        "consent",
        r#","categories":["chat"],"visibility":"private""#,
    );
    text += &rec(
        "telemetry-0",
        0,
        &["ben@corp.com"],
        "zoom",
        "legitimate_interest",
        r#","categories":["telemetry"]"#,
    );
    s.records(&text);
    let mut ev = String::new();
    for p in &people {
        ev += &format!(
            r#"{{"type":"consent","subject":"{p}","at":"2025-01-01T00:00:00Z","purposes":["*"],"method":"delegated","confirmed":true,"granted_by":"admin@corp.com"}}"#
        );
        ev += "\n";
    }
    s.events(&ev);
    let mut policy = ai();
    policy.accept_delegated_consent = true;
    policy.exclude_categories = vec!["telemetry".into()];
    let at = "2025-03-01T00:00:00Z";
    let ex = s.excluded(&policy, s.index.seq(), at);
    assert_eq!(ex.len(), 1, "only telemetry is out: {ex:?}");
    assert_eq!(ex[&("telemetry-0".to_string(), 0)], vec![Reason::Filtered]);
    // Without accepting delegated consent, the meetings lack consent.
    let strict = s.excluded(
        &{
            let mut p = policy.clone();
            p.accept_delegated_consent = false;
            p
        },
        s.index.seq(),
        at,
    );
    assert_eq!(
        strict[&("meetings-0".to_string(), 0)],
        vec![Reason::ConsentMissing]
    );
    // Ann objects: both meetings she is in are out, the admin's consent notwithstanding.
    s.events(r#"{"type":"objection","subject":"ann@corp.com","at":"2025-02-01T00:00:00Z","purposes":["ai-training"]}"#);
    let ex = s.excluded(&policy, s.index.seq(), at);
    assert_eq!(ex[&("meetings-0".to_string(), 0)], vec![Reason::Objection]);
    assert_eq!(ex[&("meetings-0".to_string(), 1)], vec![Reason::Objection]);
    // Ben withdraws; a fresh delegated consent by the admin does not bring him back.
    s.events(
        "{\"type\":\"consent_withdrawn\",\"subject\":\"ben@corp.com\",\"at\":\"2025-02-02T00:00:00Z\",\"purposes\":[\"ai-training\"]}\n\
         {\"type\":\"consent\",\"subject\":\"ben@corp.com\",\"at\":\"2025-02-03T00:00:00Z\",\"purposes\":[\"*\"],\"method\":\"delegated\",\"confirmed\":true}",
    );
    let ex = s.excluded(&policy, s.index.seq(), at);
    assert_eq!(
        ex[&("meetings-0".to_string(), 0)],
        vec![Reason::Objection, Reason::ConsentWithdrawn]
    );
}

/// Marketing practice (seed 001): single opt-in not confirmed, then
/// confirmed, then withdrawn, then erased.
#[test]
fn consent_lifecycle_then_erasure() {
    let mut s = Scenario::new();
    s.records(&rec(
        "crm-0",
        0,
        &["carol@example.com"],
        "newsletter",
        "consent",
        r#","categories":["text"]"#,
    ));
    let p = ai();
    let ev = |t: &str, extra: &str| {
        format!(r#"{{"type":"{t}","subject":"carol@example.com","at":"2025-0{extra}"#)
    };
    let steps = [
        (
            ev(
                "consent",
                r#"1-01T00:00:00Z","purposes":["ai-training"],"method":"single_opt_in","confirmed":false}"#,
            ),
            Some(Reason::ConsentMissing),
        ),
        (
            ev(
                "consent",
                r#"2-01T00:00:00Z","purposes":["ai-training"],"method":"single_opt_in","confirmed":true}"#,
            ),
            None,
        ),
        (
            ev(
                "consent_withdrawn",
                r#"3-01T00:00:00Z","purposes":["ai-training"]}"#,
            ),
            Some(Reason::ConsentWithdrawn),
        ),
        (ev("erasure", r#"4-01T00:00:00Z"}"#), Some(Reason::Erasure)),
    ];
    let mut seqs = vec![];
    for (line, _) in &steps {
        seqs.push(s.events(line));
    }
    for (i, (_, want)) in steps.iter().enumerate() {
        let at = format!("2025-0{}-15T00:00:00Z", i + 1);
        let ex = s.excluded(&p, seqs[i], &at);
        let got = ex
            .get(&("crm-0".to_string(), 0))
            .cloned()
            .unwrap_or_default();
        match want {
            None => assert!(got.is_empty(), "step {i}: {got:?}"),
            Some(Reason::Erasure) => assert!(got.contains(&Reason::Erasure), "step {i}: {got:?}"),
            Some(r) => assert_eq!(&got, &vec![*r], "step {i}"),
        }
    }
    // Requiring double opt-in: the confirmed single opt-in does not count.
    let mut strict = p.clone();
    strict.require_double_opt_in = true;
    let ex = s.excluded(&strict, seqs[1], "2025-02-15T00:00:00Z");
    assert_eq!(ex[&("crm-0".to_string(), 0)], vec![Reason::ConsentMissing]);
}

/// Oracle / Salesforce DMPs (seed 000): profiles bought from a data broker.
/// A source opt-out for the broker removes all of them, and one person's
/// objection reaches their records in every dataset.
#[test]
fn data_broker_records_and_cross_dataset_objection() {
    let mut s = Scenario::new();
    let mut text = String::new();
    for row in 0..3 {
        text += &rec(
            "ads-0",
            row,
            &[&format!("p{row}@x.org")],
            "crm.example.com",
            "legitimate_interest",
            r#","obtained_from":"dmp:acme""#,
        );
    }
    text += &rec(
        "ads-0",
        3,
        &["dave@x.org"],
        "crm.example.com",
        "legitimate_interest",
        "",
    );
    text += r#"{"dataset":"forum","shard":"f-0","row":9,"subjects":["dave@x.org"],"source":"forum.x.org","collected_at":"2023-01-01T00:00:00Z","basis":"legitimate_interest"}"#;
    s.records(&text);
    s.events(r#"{"type":"source_optout","source":"dmp:acme","at":"2025-01-01T00:00:00Z","purposes":["*"],"signal":"consent-basis-revoked"}
{"type":"objection","subject":"dave@x.org","at":"2025-01-01T00:00:00Z","purposes":["*"]}"#);
    let ex = s.excluded(&ai(), s.index.seq(), "2025-02-01T00:00:00Z");
    for row in 0..3 {
        assert_eq!(ex[&("ads-0".to_string(), row)], vec![Reason::SourceOptout]);
    }
    assert_eq!(ex[&("ads-0".to_string(), 3)], vec![Reason::Objection]);
    assert_eq!(ex[&("f-0".to_string(), 9)], vec![Reason::Objection]);
    assert_eq!(ex.len(), 5);
}

/// A public-only policy: private and unknown-visibility records are filtered.
#[test]
fn public_only_policy() {
    let mut s = Scenario::new();
    let text = rec(
        "s",
        0,
        &["a@x.org"],
        "x.org",
        "legitimate_interest",
        r#","visibility":"public""#,
    ) + &rec(
        "s",
        1,
        &["a@x.org"],
        "x.org",
        "legitimate_interest",
        r#","visibility":"private""#,
    ) + &rec("s", 2, &["a@x.org"], "x.org", "legitimate_interest", "")
        + &rec(
            "s",
            3,
            &[],
            "x.org",
            "legitimate_interest",
            r#","visibility":"public","jurisdiction":"US""#,
        );
    s.records(&text);
    let policy = Policy::from_json(
        r#"{"purpose":"ai-training","require_visibility":"public"}"#,
        "p.json",
    )
    .unwrap();
    let ex = s.excluded(&policy, s.index.seq(), "2025-01-01T00:00:00Z");
    assert_eq!(ex.keys().map(|k| k.1).collect::<Vec<_>>(), vec![1, 2]);
    // Rules limited to EU records leave the US one alone, but govern the
    // records whose jurisdiction is unknown (fail closed): rows 0 and 2 are
    // not private, so they are filtered; row 1 is private; row 3 is US.
    let eu = Policy::from_json(
        r#"{"purpose":"ai-training","require_visibility":"private","jurisdictions":["EU"]}"#,
        "p.json",
    )
    .unwrap();
    let ex = s.excluded(&eu, s.index.seq(), "2025-01-01T00:00:00Z");
    assert_eq!(ex.keys().map(|k| k.1).collect::<Vec<_>>(), vec![0, 2]);
}

/// Takedowns by key and by content hash reach copies in every dataset.
#[test]
fn takedown_reaches_every_copy() {
    let mut s = Scenario::new();
    let h = "ab".repeat(32);
    let text = rec("a", 0, &[], "web", "legitimate_interest", &format!(r#","key":"https://x.org/p/1","content_hash":"{h}""#))
        + &r#"{"dataset":"other","shard":"b","row":5,"subjects":[],"source":"web","collected_at":"2024-01-01T00:00:00Z","basis":"licensed","content_hash":"HASH"}"#.replace("HASH", &h)
        + "\n"
        + &rec("a", 1, &[], "web", "legitimate_interest", r#","key":"https://x.org/p/2""#);
    s.records(&text);
    s.events(&format!(r#"{{"type":"takedown","at":"2025-01-01T00:00:00Z","reason":"copyright","content_hash":"{h}"}}"#));
    let ex = s.excluded(&ai(), s.index.seq(), "2025-02-01T00:00:00Z");
    assert_eq!(
        ex.keys().cloned().collect::<Vec<_>>(),
        vec![("a".into(), 0), ("b".into(), 5)]
    );
    s.events(r#"{"type":"takedown","at":"2025-01-01T00:00:00Z","key":"https://x.org/p/2"}"#);
    assert_eq!(
        s.excluded(&ai(), s.index.seq(), "2025-02-01T00:00:00Z")
            .len(),
        3
    );
}

/// Art. 7(3): withdrawing consent excludes a consent-basis record even when
/// the policy does not list `consent` among the bases needing consent, and
/// only a confirmed consent of the subject's own ends the withdrawal.
#[test]
fn consent_withdrawal_wins_whatever_the_policy() {
    let mut s = Scenario::new();
    s.records(&rec(
        "c",
        0,
        &["eve@x.org"],
        "app",
        "consent",
        r#","jurisdiction":"US""#,
    ));
    s.events(
        "{\"type\":\"consent\",\"subject\":\"eve@x.org\",\"at\":\"2025-01-01T00:00:00Z\",\"purposes\":[\"*\"],\"method\":\"single_opt_in\",\"confirmed\":true}\n\
         {\"type\":\"consent_withdrawn\",\"subject\":\"eve@x.org\",\"at\":\"2025-02-01T00:00:00Z\",\"purposes\":[\"ai-training\"]}\n\
         {\"type\":\"consent\",\"subject\":\"eve@x.org\",\"at\":\"2025-03-01T00:00:00Z\",\"purposes\":[\"*\"],\"method\":\"single_opt_in\",\"confirmed\":false}\n\
         {\"type\":\"consent\",\"subject\":\"eve@x.org\",\"at\":\"2025-03-02T00:00:00Z\",\"purposes\":[\"*\"],\"method\":\"delegated\",\"confirmed\":true}",
    );
    let mut lax = ai();
    lax.consent_required_for = vec![];
    lax.accept_delegated_consent = true;
    let eu_only = Policy::from_json(
        r#"{"purpose":"ai-training","jurisdictions":["EU"],"accept_delegated_consent":true}"#,
        "p",
    )
    .unwrap();
    for p in [&lax, &eu_only] {
        let ex = s.excluded(p, s.index.seq(), "2025-04-01T00:00:00Z");
        assert_eq!(
            ex[&("c".to_string(), 0)],
            vec![Reason::ConsentWithdrawn],
            "{p:?}"
        );
    }
    // A confirmed consent of her own ends it.
    s.events(r#"{"type":"consent","subject":"eve@x.org","at":"2025-03-03T00:00:00Z","purposes":["*"],"method":"single_opt_in","confirmed":true}"#);
    assert!(s
        .excluded(&lax, s.index.seq(), "2025-04-01T00:00:00Z")
        .is_empty());
}

/// Sources, third parties and categories match case-insensitively.
#[test]
fn names_match_whatever_their_case() {
    let mut s = Scenario::new();
    s.records(
        &(rec(
            "s",
            0,
            &["kim@x.org"],
            "Forum.Example.COM",
            "legitimate_interest",
            r#","categories":["Audio"]"#,
        ) + &rec(
            "s",
            1,
            &["lee@x.org"],
            "crm",
            "legitimate_interest",
            r#","obtained_from":"DMP:Acme""#,
        )),
    );
    s.events(
        "{\"type\":\"objection\",\"subject\":\"kim@x.org\",\"at\":\"2025-01-01T00:00:00Z\",\"purposes\":[\"*\"],\"categories\":[\"AUDIO\"],\"sources\":[\"example.com\"]}\n\
         {\"type\":\"source_optout\",\"source\":\" dmp:ACME \",\"at\":\"2025-01-01T00:00:00Z\",\"purposes\":[\"*\"]}",
    );
    let ex = s.excluded(&ai(), s.index.seq(), "2025-02-01T00:00:00Z");
    assert_eq!(ex[&("s".to_string(), 0)], vec![Reason::Objection]);
    assert_eq!(ex[&("s".to_string(), 1)], vec![Reason::SourceOptout]);
}
