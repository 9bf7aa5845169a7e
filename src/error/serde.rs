//! Serde's messages as [`InputError`]s: the field to blame, and the
//! message with the input's own values taken out.

use super::InputError;

impl InputError {
    /// A serde error on `text` (line `line` of `file`): the field named
    /// where serde names one, the message with no value of the input.
    pub(crate) fn from_serde(
        file: &str,
        line: u64,
        e: &serde_json::Error,
        text: Option<&str>,
    ) -> Self {
        let msg = e.to_string();
        InputError::new(file, line, field_of(&msg, text).as_deref(), redact(&msg))
    }
}

/// Pulls the field name out of a serde message such as "missing field `at`".
/// For an unknown variant (a value outside a closed vocabulary) the field is
/// the one of `line` holding that value: `type`, `method`, `visibility`,
/// `require_visibility`, ... (`None` if no line is given).
pub(crate) fn field_of(msg: &str, line: Option<&str>) -> Option<String> {
    for pat in ["missing field `", "unknown field `", "duplicate field `"] {
        if let Some(i) = msg.find(pat) {
            let rest = &msg[i + pat.len()..];
            return rest
                .find('`')
                .map(|j| rest[..j].to_string())
                .filter(|f| is_field_name(f));
        }
    }
    let i = msg.find("unknown variant `")?;
    let rest = &msg[i + "unknown variant `".len()..];
    let value = &rest[..rest.find('`')?];
    let obj: serde_json::Value = serde_json::from_str(line?).ok()?;
    // The (first) field whose string value is the unknown one, searched
    // in nested objects too; `type` first, as the tag of an event.
    fn find(v: &serde_json::Value, value: &str, path: &str) -> Option<String> {
        let o = v.as_object()?;
        if o.get("type").and_then(|t| t.as_str()) == Some(value) {
            return Some(format!("{path}type"));
        }
        for (k, x) in o {
            if x.as_str() == Some(value) {
                return Some(format!("{path}{k}"));
            }
            if let Some(f) = find(x, value, &format!("{path}{k}.")) {
                return Some(f);
            }
        }
        None
    }
    find(&obj, value, "")
}

/// Whether `s` looks like a field name of ours (echoing it cannot leak a
/// value: an unknown "field" may be anything a user typed as a key).
fn is_field_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 40
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.')
}

/// A serde message with the input's own values taken out: subject ids,
/// and anything else a user typed, never appear in an error. Field names
/// and the expected values stay.
pub(crate) fn redact(msg: &str) -> String {
    let msg = msg.split(" at line ").next().unwrap_or(msg);
    let mut out = String::with_capacity(msg.len());
    let mut rest = msg;
    // `invalid type: string "..."`, `invalid value: string "..."`: the
    // quoted text is the input's; so is the first `...` of an unknown
    // variant, and an unknown field that is not a plain name.
    loop {
        let cut = ["string \"", "unknown variant `", "unknown field `"]
            .iter()
            .filter_map(|p| rest.find(p).map(|i| (i, *p)))
            .min();
        let Some((i, pat)) = cut else {
            out.push_str(rest);
            return out;
        };
        out.push_str(&rest[..i]);
        let after = &rest[i + pat.len()..];
        let close = if pat.starts_with("string") { '"' } else { '`' };
        // A string value may hold escaped quotes: take the last quote
        // before the next ", expected" (or the end).
        let end = match pat {
            "string \"" => {
                let stop = after.find(", expected").unwrap_or(after.len());
                after[..stop].rfind(close)
            }
            _ => after.find(close),
        };
        let Some(j) = end else {
            out.push_str(&rest[i..]);
            return out;
        };
        let value = &after[..j];
        match pat {
            "string \"" => out.push_str("a string"),
            "unknown variant `" => out.push_str("unknown value"),
            _ if is_field_name(value) => {
                out.push_str(pat);
                out.push_str(value);
                out.push('`');
            }
            _ => out.push_str("an unknown field"),
        }
        rest = &after[j + 1..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_keeps_names_and_expectations() {
        assert_eq!(
            redact("unknown variant `x@y`, expected one of `a`, `b` at line 1 column 9"),
            "unknown value, expected one of `a`, `b`"
        );
        assert_eq!(
            redact(r#"invalid type: string "a\"b", expected u32"#),
            "invalid type: a string, expected u32"
        );
        assert_eq!(
            redact("unknown field `row`, expected x"),
            "unknown field `row`, expected x"
        );
        assert_eq!(
            redact("unknown field `a@b`, expected x"),
            "an unknown field, expected x"
        );
    }
}
