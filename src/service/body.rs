//! Request bodies: read with a size cap, and a JSON array or JSONL brought
//! to one form, so the library's JSONL parsers (the CLI's) read every body.
//!
//! A JSON array becomes JSONL with item *i* on line *i*: an error in the
//! third item says `body:3: ...`, as an error on the third line of a JSONL
//! body does. The name in errors is `body`, where the CLI names the file.

use std::borrow::Cow;

use axum::body::Body;
use axum::http::StatusCode;
use http_body_util::{BodyExt, LengthLimitError, Limited};

use super::error::ApiError;
use crate::error::InputError;

/// The name bodies carry in input errors (where the CLI names the file).
pub const BODY: &str = "body";

/// Reads the whole body, refusing (413 `payload_too_large`) one over `cap`
/// bytes: at once when `Content-Length` says so, else as soon as the
/// stream passes the cap (nothing past it is buffered).
pub async fn read(
    body: Body,
    content_length: Option<u64>,
    cap: usize,
) -> Result<Vec<u8>, ApiError> {
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("the body is larger than the limit of {cap} bytes (--max-body); nothing was recorded"),
        )
    };
    if content_length.is_some_and(|n| n > cap as u64) {
        return Err(too_large());
    }
    match Limited::new(body, cap).collect().await {
        Ok(c) => Ok(c.to_bytes().to_vec()),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => Err(too_large()),
        Err(e) => Err(ApiError::bad_request(format!("reading the body: {e}"))),
    }
}

/// The body as JSONL: a JSONL body as it is, a JSON array one item per line.
pub fn as_jsonl(body: &[u8]) -> Result<Cow<'_, [u8]>, ApiError> {
    let start = body.iter().position(|b| !b.is_ascii_whitespace());
    if start.is_none_or(|i| body[i] != b'[') {
        return Ok(Cow::Borrowed(body));
    }
    let items: Vec<serde_json::Value> = serde_json::from_slice(body).map_err(|e| {
        InputError::new(
            BODY,
            0,
            None,
            format!("not a JSON array of objects (nor JSONL): {e}"),
        )
    })?;
    let mut out = Vec::with_capacity(body.len() + items.len());
    for (i, item) in items.iter().enumerate() {
        if !item.is_object() {
            return Err(InputError::new(BODY, i as u64 + 1, None, "expected a JSON object").into());
        }
        // Compact JSON has no raw newline: one item, one line.
        serde_json::to_writer(&mut out, item).map_err(|e| ApiError::internal(e.to_string()))?;
        out.push(b'\n');
    }
    Ok(Cow::Owned(out))
}

/// Whether a JSONL body has no line with content.
pub fn is_blank(jsonl: &[u8]) -> bool {
    jsonl.iter().all(|b| b.is_ascii_whitespace())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_array_becomes_one_item_per_line() {
        let j = as_jsonl(br#" [{"a":"x\ny"}, {"b":2}] "#).unwrap();
        assert_eq!(&*j, b"{\"a\":\"x\\ny\"}\n{\"b\":2}\n");
        let l = b"{\"a\":1}\n{\"b\":2}\n";
        assert!(matches!(as_jsonl(l).unwrap(), Cow::Borrowed(_)));
    }

    #[test]
    fn a_bad_array_names_the_item() {
        let e = as_jsonl(br#"[{"a":1}, 5]"#).unwrap_err();
        assert_eq!((e.code, e.line), ("invalid_input", Some(2)));
        assert!(e.message.starts_with("body:2: "), "{}", e.message);
        let e = as_jsonl(b"[{\"a\":1},").unwrap_err();
        assert_eq!(e.code, "invalid_input");
        assert!(is_blank(b" \n\t") && !is_blank(b" {}"));
    }
}
