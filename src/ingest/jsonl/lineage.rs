//! Lineage lines (`derive`): one derived row and its parents per line,
//! `{"shard":"train-00000.mds","row":17,"parents":[{"dataset":"forum",
//! "shard":"part-0.parquet","row":3},{"key":"post/9"},{"content_hash":"…"}]}`.

use std::collections::HashMap;
use std::io::BufRead;

use serde_json::{Map, Value};

use super::for_lines;
use crate::error::{DeriveError, InputError};
use crate::event::{ContentHash, Derivation, DerivedRow, DerivedShard, ParentRef};

/// Builds a [`Derivation`] from lineage lines of one or more inputs,
/// remembering where each row came from so a refusal can name its line.
#[derive(Debug)]
pub struct DerivationBuilder {
    d: Derivation,
    shard_pos: HashMap<String, usize>,
    lines: HashMap<(String, u32), (String, u64)>,
}

impl DerivationBuilder {
    /// A derivation of `dataset` from the `sources` datasets.
    pub fn new(dataset: &str, sources: &[String], allow_missing: bool) -> Self {
        DerivationBuilder {
            d: Derivation {
                dataset: dataset.to_string(),
                sources: sources.to_vec(),
                allow_missing,
                shards: Vec::new(),
            },
            shard_pos: HashMap::new(),
            lines: HashMap::new(),
        }
    }

    /// Adds one derived row, read at `file:line`.
    pub fn push(&mut self, shard: &str, row: DerivedRow, file: &str, line: u64) {
        let i = *self.shard_pos.entry(shard.to_string()).or_insert_with(|| {
            self.d.shards.push(DerivedShard {
                shard: shard.to_string(),
                rows: Vec::new(),
            });
            self.d.shards.len() - 1
        });
        // The first line of a row named twice: the refusal names the second.
        self.lines
            .entry((shard.to_string(), row.row))
            .and_modify(|l| *l = (file.to_string(), line))
            .or_insert((file.to_string(), line));
        self.d.shards[i].rows.push(row);
    }

    /// Parses lineage lines of `input` (named `file`) into the derivation.
    pub fn parse(&mut self, input: impl BufRead, file: &str) -> Result<(), InputError> {
        for_lines(input, file, |n, line| self.parse_line(line, file, n))
    }

    /// Parses one lineage line, read at `file:line`, into the derivation.
    pub fn parse_line(&mut self, text: &str, file: &str, line: u64) -> Result<(), InputError> {
        let (shard, row) = parse_lineage_line(text)
            .map_err(|(f, m)| InputError::new(file, line, f.as_deref(), m))?;
        self.push(&shard, row, file, line);
        Ok(())
    }

    /// The `(file, line)` a refused row was read at.
    pub fn locate(&self, e: &DeriveError) -> Option<(&str, u64)> {
        self.lines
            .get(&(e.shard.clone(), e.row))
            .map(|(f, l)| (f.as_str(), *l))
    }

    /// A refusal of the ledger as an input error at the refused row's file
    /// and line (when this builder read it), naming the field.
    pub fn located(&self, e: DeriveError) -> crate::Error {
        match self.locate(&e) {
            Some((file, line)) => {
                let what = format!(
                    "derived row {}/{}#{}: {}",
                    e.dataset, e.shard, e.row, e.what
                );
                InputError::new(file, line, Some(&e.field), what).into()
            }
            None => e.into(),
        }
    }

    /// The derivation so far.
    pub fn derivation(&self) -> &Derivation {
        &self.d
    }

    /// The derivation, taken (the builder still locates its rows).
    pub fn take(&mut self) -> Derivation {
        Derivation {
            dataset: self.d.dataset.clone(),
            sources: self.d.sources.clone(),
            allow_missing: self.d.allow_missing,
            shards: std::mem::take(&mut self.d.shards),
        }
    }
}

type LineError = (Option<String>, String);

fn field_err(field: &str, m: impl Into<String>) -> LineError {
    (Some(field.to_string()), m.into())
}

fn string<'a>(o: &'a Map<String, Value>, name: &str, field: &str) -> Result<&'a str, LineError> {
    match o.get(name) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s),
        Some(Value::String(_)) => Err(field_err(field, "must not be empty")),
        Some(_) => Err(field_err(field, "must be a string")),
        None => Err(field_err(field, "is required")),
    }
}

fn row_of(o: &Map<String, Value>, field: &str) -> Result<u32, LineError> {
    match o.get("row") {
        Some(v) => v
            .as_u64()
            .filter(|&r| r < u32::MAX as u64)
            .map(|r| r as u32)
            .ok_or_else(|| field_err(field, "must be an integer in 0..4294967295")),
        None => Err(field_err(field, "is required")),
    }
}

/// One lineage line: the derived row's shard and the row with its parents.
pub fn parse_lineage_line(line: &str) -> Result<(String, DerivedRow), LineError> {
    let v: Value =
        serde_json::from_str(line).map_err(|e| (None, format!("not a JSON object: {e}")))?;
    let Value::Object(o) = v else {
        return Err((None, "not a JSON object".into()));
    };
    if let Some(k) = o
        .keys()
        .find(|k| !["shard", "row", "parents"].contains(&k.as_str()))
    {
        return Err(field_err(k, "is not a lineage field (shard, row, parents)"));
    }
    let shard = string(&o, "shard", "shard")?.to_string();
    let row = row_of(&o, "row")?;
    let list = match o.get("parents") {
        Some(Value::Array(a)) if !a.is_empty() => a,
        Some(Value::Array(_)) => return Err(field_err("parents", "must name at least one parent")),
        Some(_) => return Err(field_err("parents", "must be an array")),
        None => return Err(field_err("parents", "is required")),
    };
    let mut parents = Vec::with_capacity(list.len());
    for (i, p) in list.iter().enumerate() {
        let at = |f: &str| format!("parents[{i}]{f}");
        let Value::Object(p) = p else {
            return Err(field_err(&at(""), "must be an object"));
        };
        let forms = ["dataset", "key", "content_hash"];
        let given: Vec<&str> = forms
            .iter()
            .copied()
            .filter(|f| p.contains_key(*f))
            .collect();
        let allowed: &[&str] = match given.as_slice() {
            ["dataset"] => &["dataset", "shard", "row"],
            ["key"] => &["key"],
            ["content_hash"] => &["content_hash"],
            [] => {
                return Err(field_err(
                    &at(""),
                    "needs one of dataset (with shard and row), key or content_hash",
                ))
            }
            _ => {
                return Err(field_err(
                    &at(""),
                    "names a parent in more than one way (dataset, key, content_hash)",
                ))
            }
        };
        if let Some(k) = p.keys().find(|k| !allowed.contains(&k.as_str())) {
            return Err(field_err(
                &at(&format!(".{k}")),
                "is not a field of this parent form",
            ));
        }
        parents.push(match given[0] {
            "dataset" => ParentRef::Record {
                dataset: string(p, "dataset", &at(".dataset"))?.to_string(),
                shard: string(p, "shard", &at(".shard"))?.to_string(),
                row: row_of(p, &at(".row"))?,
            },
            "key" => ParentRef::Key(string(p, "key", &at(".key"))?.to_string()),
            _ => ParentRef::ContentHash(
                ContentHash::from_hex(string(p, "content_hash", &at(".content_hash"))?)
                    .map_err(|m| field_err(&at(".content_hash"), m))?,
            ),
        });
    }
    Ok((shard, DerivedRow { row, parents }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lineage_lines_parse_and_refuse_with_the_field() {
        let (s, r) = parse_lineage_line(
            r#"{"shard":"t0","row":17,"parents":[{"dataset":"forum","shard":"p0","row":3},{"key":"post/9"}]}"#,
        )
        .unwrap();
        assert_eq!((s.as_str(), r.row, r.parents.len()), ("t0", 17, 2));
        assert_eq!(r.parents[1], ParentRef::Key("post/9".into()));
        for (line, field) in [
            (r#"{"shard":"t0","row":1,"parents":[]}"#, "parents"),
            (r#"{"shard":"t0","parents":[{"key":"k"}]}"#, "row"),
            (
                r#"{"shard":"t0","row":1,"parents":[{"dataset":"f","row":1}]}"#,
                "parents[0].shard",
            ),
            (
                r#"{"shard":"t0","row":1,"parents":[{"key":"k"},{"content_hash":"ab"}]}"#,
                "parents[1].content_hash",
            ),
            (
                r#"{"shard":"t0","row":1,"parents":[{"key":"k","row":2}]}"#,
                "parents[0].row",
            ),
            (
                r#"{"shard":"t0","row":1,"parents":[{"key":"k","dataset":"f"}]}"#,
                "parents[0]",
            ),
            (
                r#"{"shard":"t0","row":1,"parents":[{"key":"k"}],"x":1}"#,
                "x",
            ),
        ] {
            let (f, _) = parse_lineage_line(line).unwrap_err();
            assert_eq!(f.as_deref(), Some(field), "{line}");
        }
    }
}
