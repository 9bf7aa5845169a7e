//! Deterministic demo data: three datasets about one population of people
//! (by columns, written as Parquet by `files.rs`), and the privacy events that arrive over two quarters.
//!
//! * `forum`: public (and some private) posts, legitimate interest, EU/UK/US.
//! * `meetings`: transcript segments with 2-5 participants on a consent basis,
//!   plus service-generated `telemetry` rows (the Zoom case: telemetry
//!   claimed without consent; an admin consenting for every participant).
//! * `crm`: customer profiles, some `obtained_from` a DMP (the Oracle /
//!   Salesforce case), later opted out as a whole.

/// splitmix64: small, fast, deterministic.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    pub fn pct(&mut self, p: u64) -> bool {
        self.below(100) < p
    }
}

pub const PEOPLE: usize = 3_000;
pub const FORUM_SHARDS: u32 = 4;
pub const FORUM_ROWS: u32 = 5_000;
pub const MEETING_SHARDS: u32 = 4;
pub const MEETING_ROWS: u32 = 1_500;
pub const CRM_SHARDS: u32 = 3;
pub const CRM_ROWS: u32 = 3_000;

/// The people the story follows (indexes 0..5 of the population).
pub const ALICE: &str = "alice.martin@example.com";
pub const BRAM: &str = "bram.dejong@example.nl";
pub const CAROL: &str = "carol.smith@example.co.uk";
pub const DAVE: &str = "dave.kowalski@example.pl";
pub const EVE: &str = "eve.rossi@example.it";
pub const FRANK: &str = "frank.weber@example.de";
pub const ADMIN: &str = "admin@acme-corp.example";
pub const DMP: &str = "dmp:acme-dmp";

const FIRST: &[&str] = &[
    "anna", "ben", "chloe", "daan", "emma", "finn", "greta", "hugo", "iris", "jan", "kim", "lars",
    "mila", "noah", "olga", "piet", "quinn", "rosa", "sven", "tess", "ugo", "vera", "wim", "xena",
    "yara", "zoe", "lucas", "sofia", "mateo", "elif",
];
const LAST: &[&str] = &[
    "jansen",
    "garcia",
    "novak",
    "rossi",
    "schmidt",
    "dubois",
    "nowak",
    "silva",
    "berg",
    "murphy",
    "visser",
    "bakker",
    "moreau",
    "costa",
    "horvat",
    "lindqvist",
    "kaya",
    "papadopoulos",
    "meyer",
    "olsen",
];
const DOMAINS: &[&str] = &["example.com", "example.org", "example.net", "example.eu"];

/// The population's email addresses; the first six are the story's people.
pub fn people() -> Vec<String> {
    let mut out: Vec<String> = [ALICE, BRAM, CAROL, DAVE, EVE, FRANK]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let mut i = 0usize;
    while out.len() < PEOPLE {
        let f = FIRST[i % FIRST.len()];
        let l = LAST[(i / FIRST.len()) % LAST.len()];
        let d = DOMAINS[i % DOMAINS.len()];
        out.push(format!("{f}.{l}{}@{d}", i / (FIRST.len() * LAST.len())));
        i += 1;
    }
    out
}

fn unix(days_after_2023: u64, secs: u64) -> i64 {
    // 2023-01-01T00:00:00Z = 1672531200.
    (1_672_531_200 + days_after_2023 * 86_400 + secs % 86_400) as i64
}

fn date(days_after_2023: u64, secs: u64) -> String {
    optout::Timestamp::from_unix_seconds(unix(days_after_2023, secs)).to_rfc3339()
}

fn micros(days_after_2023: u64, secs: u64) -> i64 {
    unix(days_after_2023, secs) * 1_000_000
}

fn jurisdiction(r: &mut Rng) -> &'static str {
    match r.below(100) {
        0..=59 => "EU",
        60..=74 => "UK",
        _ => "US",
    }
}

/// One generated dataset, by columns: `rows` rows per shard, the shards
/// one after the other. Text columns are `None` where the value is null.
#[derive(Default)]
pub struct Columns {
    /// The shard file names, relative to the dataset's directory.
    pub shards: Vec<String>,
    pub rows: u32,
    /// (column name, values): string columns.
    pub text: Vec<(&'static str, Vec<Option<String>>)>,
    /// (column name, values): `list<string>` columns.
    pub lists: Vec<(&'static str, Vec<Vec<String>>)>,
    /// (column name, microseconds since 1970 UTC): timestamp columns.
    pub times: Vec<(&'static str, Vec<i64>)>,
}

impl Columns {
    fn text(&mut self, col: usize, v: Option<String>) {
        self.text[col].1.push(v);
    }
}

/// Everything the demo writes and feeds.
pub struct Data {
    pub forum: Columns,
    pub meetings: Columns,
    pub crm: Columns,
    pub events_q1: String,
    pub events_q2: String,
    /// Forum keys of alice's posts (to show `check` by key).
    pub alice_forum_keys: Vec<String>,
    pub counts: Counts,
}

/// What was generated, for the narrative.
#[derive(Default)]
pub struct Counts {
    pub records: u64,
    pub shards: u64,
    pub objections_q1: u64,
    pub objections_q2: u64,
    pub consents: u64,
    pub delegated: u64,
    pub unconfirmed: u64,
}

fn columns(
    text: &[&'static str],
    lists: &[&'static str],
    times: &[&'static str],
    rows: u32,
) -> Columns {
    Columns {
        shards: Vec::new(),
        rows,
        text: text.iter().map(|c| (*c, Vec::new())).collect(),
        lists: lists.iter().map(|c| (*c, Vec::new())).collect(),
        times: times.iter().map(|c| (*c, Vec::new())).collect(),
    }
}

fn some(s: &str) -> Option<String> {
    Some(s.to_string())
}

pub fn generate() -> Data {
    let people = people();
    let mut r = Rng::new(0x0970_0757);
    let mut c = Counts::default();
    let mut alice_forum_keys = Vec::new();

    // The forum: one author per post, mostly public; two crawls, in
    // directories of their own.
    let mut forum = columns(
        &[
            "url",
            "author_email",
            "visibility",
            "jurisdiction",
            "license",
            "text",
            "content_hash",
        ],
        &[],
        &["created_at"],
        FORUM_ROWS,
    );
    for s in 0..FORUM_SHARDS {
        forum
            .shards
            .push(format!("crawl={}/posts-{s:04}.parquet", 1 + s / 2));
        for row in 0..FORUM_ROWS {
            let author = &people[r.below(PEOPLE as u64) as usize];
            let public = r.pct(92);
            let key = format!("https://forum.example.com/p/{}", s * FORUM_ROWS + row);
            let text = format!("forum post {s}/{row}");
            let hash = blake3::hash(text.as_bytes()).to_hex().to_string();
            forum.times[0].1.push(micros(r.below(700), r.next()));
            let j = jurisdiction(&mut r);
            if author == ALICE {
                alice_forum_keys.push(key.clone());
            }
            forum.text(0, Some(key));
            forum.text(1, Some(author.clone()));
            forum.text(2, some(if public { "public" } else { "private" }));
            forum.text(3, some(j));
            forum.text(4, public.then(|| "CC-BY-4.0".to_string()));
            forum.text(5, Some(text));
            forum.text(6, Some(hash));
            c.records += 1;
        }
        c.shards += 1;
    }

    // Meetings: transcripts with several participants (consent basis), and
    // telemetry rows about one participant (claimed as legitimate interest).
    let mut meetings = columns(
        &["meeting_id", "basis"],
        &["participants", "categories"],
        &["started_at"],
        MEETING_ROWS,
    );
    let mut in_meetings = vec![false; PEOPLE];
    for s in 0..MEETING_SHARDS {
        meetings
            .shards
            .push(format!("meetings-2024-q{}.parquet", s + 1));
        for row in 0..MEETING_ROWS {
            // Alice, Carol and Eve each spoke in a meeting the story follows.
            let forced = match (s, row) {
                (1, 7) => Some(0),
                (2, 3) => Some(2),
                (0, 11) => Some(4),
                _ => None,
            };
            let telemetry = forced.is_none() && r.pct(30);
            let n = if telemetry {
                1
            } else {
                2 + r.below(4) as usize
            };
            let mut who: Vec<usize> = (0..n).map(|_| r.below(PEOPLE as u64) as usize).collect();
            if let Some(f) = forced {
                who[0] = f;
            }
            who.sort_unstable();
            who.dedup();
            for &w in &who {
                in_meetings[w] = true;
            }
            let (basis, cats): (&str, &[&str]) = if telemetry {
                ("legitimate_interest", &["telemetry"])
            } else {
                ("consent", &["audio", "text"])
            };
            meetings.text(0, Some(format!("meeting-{s}-{row}")));
            meetings.text(1, some(basis));
            meetings.lists[0]
                .1
                .push(who.iter().map(|&w| people[w].clone()).collect());
            meetings.lists[1]
                .1
                .push(cats.iter().map(|c| c.to_string()).collect());
            meetings.times[0]
                .1
                .push(micros(365 + s as u64 * 91 + r.below(90), r.next()));
            c.records += 1;
        }
        c.shards += 1;
    }

    // CRM / ads profiles, a third of them bought from a DMP.
    let mut crm = columns(
        &[
            "customer_id",
            "email",
            "basis",
            "jurisdiction",
            "obtained_from",
        ],
        &["segments"],
        &["updated_at"],
        CRM_ROWS,
    );
    for s in 0..CRM_SHARDS {
        crm.shards.push(format!("crm-profiles-{s:02}.parquet"));
        for row in 0..CRM_ROWS {
            let who = &people[r.below(PEOPLE as u64) as usize];
            let from_dmp = r.pct(35);
            crm.times[0].1.push(micros(r.below(700), r.next()));
            let basis = if r.pct(50) {
                "contract"
            } else {
                "legitimate_interest"
            };
            let segments: &[&str] = if from_dmp {
                &["profile", "behavioural"]
            } else {
                &["profile"]
            };
            let j = if r.pct(80) { "EU" } else { "UK" };
            crm.text(0, Some(format!("crm:{}", s * CRM_ROWS + row)));
            crm.text(1, Some(who.clone()));
            crm.text(2, some(basis));
            crm.text(3, some(j));
            crm.text(4, from_dmp.then(|| DMP.to_string()));
            crm.lists[0]
                .1
                .push(segments.iter().map(|c| c.to_string()).collect());
            c.records += 1;
        }
        c.shards += 1;
    }

    // Q1 2025: consents (dated 2024), objections, a consent lifecycle, an
    // erasure, a restriction, the DMP opt-out, a takedown.
    let mut q1 = String::new();
    for (i, p) in people.iter().enumerate() {
        if !in_meetings[i] || i == 2 {
            continue;
        }
        let at = date(400 + r.below(60), r.next());
        let line = match r.below(100) {
            0..=74 => format!(
                r#"{{"type":"consent","subject":"{p}","at":"{at}","purposes":["ai-training"],"method":"double_opt_in","confirmed":true}}"#
            ),
            75..=82 => format!(
                r#"{{"type":"consent","subject":"{p}","at":"{at}","purposes":["ai-training"],"method":"single_opt_in","confirmed":true}}"#
            ),
            83..=91 => {
                c.delegated += 1;
                format!(
                    r#"{{"type":"consent","subject":"{p}","at":"{at}","purposes":["*"],"method":"delegated","confirmed":true,"granted_by":"{ADMIN}"}}"#
                )
            }
            92..=96 => {
                c.unconfirmed += 1;
                format!(
                    r#"{{"type":"consent","subject":"{p}","at":"{at}","purposes":["ai-training"],"method":"double_opt_in","confirmed":false}}"#
                )
            }
            _ => continue,
        };
        q1.push_str(&line);
        q1.push('\n');
        c.consents += 1;
    }
    // Carol: single opt-in, confirmed by double opt-in, then withdrawn.
    q1.push_str(&format!(
        r#"{{"type":"consent","subject":"{CAROL}","at":"2024-02-01T10:00:00Z","purposes":["ai-training"],"method":"single_opt_in","confirmed":false}}
{{"type":"consent","subject":"{CAROL}","at":"2024-02-01T10:05:00Z","purposes":["ai-training"],"method":"double_opt_in","confirmed":true}}
{{"type":"consent_withdrawn","subject":"{CAROL}","at":"2025-02-10T08:30:00Z","purposes":["ai-training"],"ref":"unsubscribe-8812"}}
"#
    ));
    c.consents += 2;
    // Objections to AI training from 40 people (Bram among them), three
    // to ads only, and Eve's objection scoped to meeting audio.
    let mut objectors = vec![1usize];
    while objectors.len() < 40 {
        let i = 6 + r.below(PEOPLE as u64 - 6) as usize;
        if !objectors.contains(&i) {
            objectors.push(i);
        }
    }
    for (k, &i) in objectors.iter().enumerate() {
        q1.push_str(&format!(
            r#"{{"type":"objection","subject":"{}","at":"{}","purposes":["ai-training"],"ref":"dsr-2025-{:04}"}}"#,
            people[i],
            date(735 + r.below(50), r.next()),
            100 + k
        ));
        q1.push('\n');
        c.objections_q1 += 1;
    }
    for k in 0..3 {
        let i = 6 + r.below(PEOPLE as u64 - 6) as usize;
        q1.push_str(&format!(
            r#"{{"type":"objection","subject":"{}","at":"2025-01-20T12:00:00Z","purposes":["ads-personalisation"],"ref":"dsr-2025-{:04}"}}"#,
            people[i],
            200 + k
        ));
        q1.push('\n');
    }
    q1.push_str(&format!(
        r#"{{"type":"objection","subject":"{EVE}","at":"2025-01-25T09:00:00Z","purposes":["ai-training"],"categories":["audio"],"sources":["meet.example.com"],"ref":"dsr-2025-0300"}}
{{"type":"erasure","subject":"{DAVE}","at":"2025-02-01T00:00:00Z","ref":"dsr-2025-0301"}}
{{"type":"restriction","subject":"{FRANK}","at":"2025-02-05T00:00:00Z","until":"2025-08-01T00:00:00Z","ref":"dsr-2025-0302"}}
{{"type":"source_optout","source":"{DMP}","at":"2025-02-15T00:00:00Z","purposes":["*"],"signal":"dmp-consent-basis-revoked","ref":"legal-2025-07"}}
{{"type":"takedown","at":"2025-02-20T00:00:00Z","reason":"copyright","key":"https://forum.example.com/p/4242","ref":"dmca-5521"}}
"#
    ));
    c.objections_q1 += 1;

    // Q2 2025: 25 more objections, Alice's among them; Bram withdraws his.
    let mut q2 = String::new();
    q2.push_str(&format!(
        r#"{{"type":"objection","subject":"{ALICE}","at":"2025-03-20T14:12:00Z","purposes":["ai-training"],"ref":"dsr-2025-0412"}}
{{"type":"objection_withdrawn","subject":"{BRAM}","at":"2025-04-02T10:00:00Z","purposes":["ai-training"],"ref":"dsr-2025-0101"}}
"#
    ));
    c.objections_q2 += 1;
    while c.objections_q2 < 25 {
        let i = 6 + r.below(PEOPLE as u64 - 6) as usize;
        if objectors.contains(&i) {
            continue;
        }
        objectors.push(i);
        q2.push_str(&format!(
            r#"{{"type":"objection","subject":"{}","at":"{}","purposes":["*"],"ref":"dsr-2025-{:04}"}}"#,
            people[i],
            date(799 + r.below(40), r.next()),
            500 + c.objections_q2
        ));
        q2.push('\n');
        c.objections_q2 += 1;
    }

    Data {
        forum,
        meetings,
        crm,
        events_q1: q1,
        events_q2: q2,
        alice_forum_keys,
        counts: c,
    }
}
