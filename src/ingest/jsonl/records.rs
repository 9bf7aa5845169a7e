//! Record registrations (`ingest`): one JSON object a line, into a
//! [`RecordBatch`] (profiles stored once, rows grouped by shard).

use super::*;
use crate::fingerprint::ShardEnd;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RecordLine {
    dataset: String,
    shard: String,
    row: u32,
    subjects: Vec<String>,
    source: String,
    collected_at: String,
    basis: String,
    #[serde(default)]
    categories: Vec<String>,
    visibility: Option<Visibility>,
    jurisdiction: Option<String>,
    license: Option<String>,
    obtained_from: Option<String>,
    key: Option<String>,
    content_hash: Option<String>,
    #[serde(default)]
    replace: bool,
}

const RECORD_TYPES: &[(&str, &str)] = &[
    ("dataset", "string"),
    ("shard", "string"),
    ("row", "u32"),
    ("subjects", "string list"),
    ("source", "string"),
    ("collected_at", "string"),
    ("basis", "string"),
    ("categories", "string list"),
    ("visibility", "\"public\" or \"private\""),
    ("jurisdiction", "string"),
    ("license", "string"),
    ("obtained_from", "string"),
    ("key", "string"),
    ("content_hash", "string"),
    ("replace", "bool"),
];

/// A shard end line (issue 14): `{"dataset", "shard", "end"}`, every row
/// of the shard at or past `end` is gone once the batch is registered.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EndLine {
    dataset: String,
    shard: String,
    end: u32,
}

/// Builds a [`RecordBatch`] (profiles stored once, rows grouped by shard).
#[derive(Default)]
pub struct BatchBuilder {
    batch: RecordBatch,
    profiles: HashMap<Profile, u32>,
    shards: HashMap<(String, String), usize>,
    /// Shard end lines, with their line numbers.
    ends: Vec<(u64, ShardEnd)>,
}

impl BatchBuilder {
    /// Adds one row.
    pub fn push(&mut self, dataset: &str, shard: &str, profile: Profile, row: RowEntry) {
        let pid = self.intern(profile);
        let gi = self.group(dataset, shard);
        self.batch.shards[gi].rows.push(RowEntry {
            profile: pid,
            ..row
        });
    }

    /// Adds rows of one shard whose `profile` fields index `profiles`, as
    /// many [`BatchBuilder::push`] calls would (each profile stored once,
    /// rows after those added before), without hashing a profile per row.
    pub fn push_rows(
        &mut self,
        dataset: &str,
        shard: &str,
        profiles: &[Profile],
        mut rows: Vec<RowEntry>,
    ) {
        let remap: Vec<u32> = profiles.iter().map(|p| self.intern(p.clone())).collect();
        if remap.iter().enumerate().any(|(i, &p)| p as usize != i) {
            for r in &mut rows {
                r.profile = remap[r.profile as usize];
            }
        }
        let gi = self.group(dataset, shard);
        let group = &mut self.batch.shards[gi].rows;
        if group.is_empty() {
            *group = rows;
        } else {
            group.append(&mut rows);
        }
    }

    fn intern(&mut self, profile: Profile) -> u32 {
        match self.profiles.get(&profile) {
            Some(&p) => p,
            None => {
                let p = self.batch.profiles.len() as u32;
                self.batch.profiles.push(profile.clone());
                self.profiles.insert(profile, p);
                p
            }
        }
    }

    fn group(&mut self, dataset: &str, shard: &str) -> usize {
        match self.shards.get(&(dataset.to_string(), shard.to_string())) {
            Some(&g) => g,
            None => {
                self.batch.shards.push(ShardRecords {
                    dataset: dataset.to_string(),
                    shard: shard.to_string(),
                    rows: Vec::new(),
                });
                let g = self.batch.shards.len() - 1;
                self.shards
                    .insert((dataset.to_string(), shard.to_string()), g);
                g
            }
        }
    }

    /// Rows added so far.
    pub fn len(&self) -> usize {
        self.batch.len()
    }

    /// Whether no row was added.
    pub fn is_empty(&self) -> bool {
        self.batch.is_empty()
    }

    /// The batch, without the shard ends ([`BatchBuilder::finish_all`]).
    pub fn finish(self) -> RecordBatch {
        self.batch
    }

    /// The batch and the shard end lines read (with their line numbers).
    pub fn finish_all(self) -> (RecordBatch, Vec<(u64, ShardEnd)>) {
        (self.batch, self.ends)
    }
}

/// The profile of a record from its provenance fields as given: the rule
/// every intake path shares (JSONL lines, Parquet and Arrow tables,
/// WebDataset samples). `source` and `basis` must not be blank and `basis`
/// must be a known one or a candidate extension
/// ([`crate::provenance::basis::parse_open`]; the ledger refuses an
/// undeclared one when the batch is registered); sources,
/// categories and third parties are normalised ([`norm`]). An error names
/// the field and says what is wrong.
pub(crate) fn record_profile<'a>(
    source: &str,
    basis: &str,
    categories: impl IntoIterator<Item = &'a str>,
    visibility: Option<Visibility>,
    jurisdiction: Option<String>,
    license: Option<String>,
    obtained_from: Option<&str>,
) -> Result<Profile, (&'static str, String)> {
    if source.trim().is_empty() {
        return Err(("source", "must not be empty".into()));
    }
    if basis.trim().is_empty() {
        return Err(("basis", "must not be empty".into()));
    }
    let basis = crate::provenance::basis::parse_open(basis).map_err(|m| ("basis", m))?;
    let mut profile = Profile {
        source: norm(source),
        basis,
        categories: categories.into_iter().map(norm).collect(),
        visibility,
        jurisdiction,
        license,
        obtained_from: obtained_from.map(norm),
    };
    profile.normalise();
    Ok(profile)
}

/// The pseudonyms of a record's subjects, sorted and without duplicates:
/// the stored form of [`RowEntry::subjects`], for every intake path.
pub(crate) fn subject_keys<'a>(
    keyer: &SubjectKeyer,
    ids: impl IntoIterator<Item = &'a str>,
) -> Vec<crate::ids::SubjectKey> {
    let mut subjects: Vec<_> = ids.into_iter().map(|s| keyer.pseudonym(s)).collect();
    subjects.sort_unstable();
    subjects.dedup();
    subjects
}

/// Parses one record line into the builder.
pub fn parse_record_line(
    b: &mut BatchBuilder,
    keyer: &SubjectKeyer,
    file: &str,
    n: u64,
    line: &str,
) -> Result<(), InputError> {
    let r: RecordLine = match serde_json::from_str(line) {
        Ok(r) => r,
        Err(e) => {
            // Not a record: a shard end line, or the record's error.
            let Ok(end) = serde_json::from_str::<EndLine>(line) else {
                return Err(json_error(file, n, line, e, RECORD_TYPES));
            };
            nonempty(file, n, "dataset", &end.dataset)?;
            nonempty(file, n, "shard", &end.shard)?;
            b.ends.push((
                n,
                ShardEnd {
                    dataset: end.dataset,
                    shard: end.shard,
                    end: end.end,
                },
            ));
            return Ok(());
        }
    };
    nonempty(file, n, "dataset", &r.dataset)?;
    nonempty(file, n, "shard", &r.shard)?;
    if r.row == u32::MAX {
        return Err(InputError::new(
            file,
            n,
            Some("row"),
            "row must be below 4294967295",
        ));
    }
    let profile = record_profile(
        &r.source,
        &r.basis,
        r.categories.iter().map(String::as_str),
        r.visibility,
        r.jurisdiction,
        r.license,
        r.obtained_from.as_deref(),
    )
    .map_err(|(f, m)| InputError::new(file, n, Some(f), m))?;
    for (i, s) in r.subjects.iter().enumerate() {
        if s.trim().is_empty() {
            return Err(InputError::new(
                file,
                n,
                Some(&format!("subjects[{i}]")),
                "must not be empty",
            ));
        }
    }
    let collected_at = time(file, n, "collected_at", &r.collected_at)?;
    let content_hash = match &r.content_hash {
        Some(h) => Some(
            ContentHash::from_hex(h)
                .map_err(|m| InputError::new(file, n, Some("content_hash"), m))?,
        ),
        None => None,
    };
    let subjects = subject_keys(keyer, r.subjects.iter().map(String::as_str));
    b.push(
        &r.dataset,
        &r.shard,
        profile,
        RowEntry {
            row: r.row,
            subjects,
            profile: 0,
            collected_at,
            key: r.key,
            content_hash,
            replace: r.replace,
        },
    );
    Ok(())
}

/// The line number of the `nth` (1-based) record line of `input` for
/// `(dataset, shard, row)`, or how many such lines there were: for
/// naming the file and line of a [`crate::Error::RecordConflict`], which
/// the ledger finds after parsing (lines that do not parse are skipped).
pub fn locate_record(
    input: impl BufRead,
    file: &str,
    dataset: &str,
    shard: &str,
    row: u32,
    nth: u64,
) -> Result<Result<u64, u64>, InputError> {
    #[derive(Deserialize)]
    struct Key<'a> {
        #[serde(borrow)]
        dataset: std::borrow::Cow<'a, str>,
        #[serde(borrow)]
        shard: std::borrow::Cow<'a, str>,
        row: u32,
    }
    let mut seen = 0;
    let mut found = None;
    for_lines(input, file, |n, line| {
        if found.is_none() {
            if let Ok(k) = serde_json::from_str::<Key>(line) {
                if k.dataset == dataset && k.shard == shard && k.row == row {
                    seen += 1;
                    if seen == nth {
                        found = Some(n);
                    }
                }
            }
        }
        Ok(())
    })?;
    Ok(found.ok_or(seen))
}

/// Parses a whole JSONL input of records.
///
/// ```
/// use optout::{jsonl, SubjectKeyer};
/// let k = SubjectKeyer::from_secret([1; 32]);
/// let text = r#"{"dataset":"forum","shard":"p0","row":0,"subjects":["a@x.org"],"source":"forum.x.org","collected_at":"2024-03-01T12:00:00Z","basis":"legitimate_interest"}
/// {"dataset":"forum","shard":"p0","row":1,"subjects":[],"source":"forum.x.org","collected_at":"not a time","basis":"consent"}"#;
/// let err = jsonl::parse_records(text.as_bytes(), "in.jsonl", &k).unwrap_err();
/// assert_eq!((err.line, err.field.as_deref()), (2, Some("collected_at")));
/// ```
pub fn parse_records(
    input: impl BufRead,
    file: &str,
    keyer: &SubjectKeyer,
) -> Result<RecordBatch, InputError> {
    let mut b = BatchBuilder::default();
    for_lines(input, file, |n, line| {
        parse_record_line(&mut b, keyer, file, n, line)
    })?;
    if let Some((n, _)) = b.ends.first() {
        return Err(InputError::new(
            file,
            *n,
            Some("end"),
            "a shard end line is read by `optout ingest` and `Ledger.ingest` only",
        ));
    }
    Ok(b.finish())
}
