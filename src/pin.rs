//! Pinned heads: a `(seq, chain hash)` of a ledger that someone wrote down
//! (`optout head`, a manifest's header) so that a later ledger can be
//! required to extend it: the same history up to that seq. Rolled back
//! (the seq is gone), forked or rewritten (another chain value there) logs
//! fail.

use std::path::Path;

use crate::error::{Error, InputError, Result};
use crate::ids::{LedgerId, Seq};
use crate::manifest::Manifest;
use crate::storage::{ChainHash, FsIo, Io, Log, LogOptions};

/// Largest pinned-head file read (`--expect-head FILE`).
pub const MAX_PIN_FILE: u64 = 64 << 10;

/// A `(seq, chain hash)` a ledger must extend, and the ledger it is of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PinnedHead {
    /// The ledger's id, when the pin names it.
    pub ledger_id: Option<LedgerId>,
    /// The pinned sequence number.
    pub seq: Seq,
    /// The chain value after `seq`.
    pub chain: ChainHash,
}

fn parse_hex<const N: usize>(s: &str) -> Option<[u8; N]> {
    if s.len() != 2 * N || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let mut out = [0u8; N];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

impl PinnedHead {
    /// Parses `SEQ:HASH` (a decimal seq, 64 hex digits), else reads the
    /// file `arg` names: the JSON `optout head` prints (`seq`,
    /// `chain_head`, optionally `ledger_id`), at most [`MAX_PIN_FILE`] bytes.
    ///
    /// ```
    /// use optout::PinnedHead;
    /// let h = "ab".repeat(32);
    /// let p = PinnedHead::parse(&format!("12:{h}")).unwrap();
    /// assert_eq!((p.seq.0, p.chain.to_hex()), (12, h));
    /// ```
    pub fn parse(arg: &str) -> Result<Self> {
        if let Some((seq, hash)) = arg.split_once(':') {
            if let (Ok(seq), Some(chain)) = (seq.parse::<u64>(), parse_hex::<32>(hash)) {
                return Ok(PinnedHead {
                    ledger_id: None,
                    seq: Seq(seq),
                    chain: ChainHash::from_bytes(chain),
                });
            }
        }
        let path = Path::new(arg);
        let bytes = crate::fsutil::read_bounded(path, MAX_PIN_FILE, "a pinned head file")?;
        let name = path.display().to_string();
        let bad = |field: &str, what: &str| -> Error {
            InputError::new(&name, 0, Some(field), what).into()
        };
        let v: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| {
            InputError::new(
                &name,
                e.line() as u64,
                None,
                "not SEQ:HASH, nor the JSON `optout head` prints",
            )
        })?;
        let seq = v["seq"]
            .as_u64()
            .ok_or_else(|| bad("seq", "expected an unsigned integer"))?;
        let chain = v["chain_head"]
            .as_str()
            .and_then(parse_hex::<32>)
            .ok_or_else(|| bad("chain_head", "expected 64 hex digits"))?;
        let ledger_id = match &v["ledger_id"] {
            serde_json::Value::Null => None,
            id => Some(
                id.as_str()
                    .and_then(parse_hex::<16>)
                    .map(LedgerId::from_bytes)
                    .ok_or_else(|| bad("ledger_id", "expected 32 hex digits"))?,
            ),
        };
        Ok(PinnedHead {
            ledger_id,
            seq: Seq(seq),
            chain: ChainHash::from_bytes(chain),
        })
    }

    /// The head of the ledger at `path`: its log verified up to the last
    /// acknowledged commit, without folding the index (fast on any size).
    pub fn of_ledger(path: &Path) -> Result<Self> {
        Self::of_ledger_with(&FsIo::new(), path)
    }

    /// [`PinnedHead::of_ledger`] on any [`Io`].
    pub fn of_ledger_with<I: Io>(io: &I, path: &Path) -> Result<Self> {
        let log = Log::open(io, path, LogOptions::new().read_only(true))?;
        let (seq, chain) = log.head();
        Ok(PinnedHead {
            ledger_id: Some(log.ledger_id()),
            seq,
            chain,
        })
    }

    /// Checks what `m`'s header alone shows about this pin
    /// ([`Error::HeadMismatch`] otherwise): the same ledger, not older than
    /// the pin, the same chain head when at the pinned seq. A manifest
    /// computed later than the pin proves nothing by itself: it passes only
    /// with `later_ok` (its ledger then shows the rest:
    /// [`crate::Ledger::check_pinned_manifest`]). A manifest older than the
    /// pin is refused: it ignores what the pin says was recorded.
    pub fn check_manifest_header(&self, m: &Manifest, later_ok: bool) -> Result<()> {
        let h = &m.header;
        let fail = |s: String| Err(Error::HeadMismatch(s));
        if let Some(id) = self.ledger_id.filter(|id| *id != h.ledger_id) {
            return fail(format!(
                "the manifest is from ledger {}, the pinned head of ledger {id}",
                h.ledger_id
            ));
        }
        if h.seq < self.seq {
            return fail(format!(
                "the manifest is at seq {}, before the pinned seq {}: computed from an older (or rolled-back) ledger",
                h.seq, self.seq
            ));
        }
        if h.seq == self.seq && h.chain_head != self.chain {
            return fail(format!(
                "the manifest pins chain head {} at seq {}, the pinned head is {}: another history",
                h.chain_head, h.seq, self.chain
            ));
        }
        if h.seq > self.seq && !later_ok {
            return fail(format!(
                "the manifest is at seq {}, after the pinned seq {}: only its ledger can show that it \
                 extends the pinned head (pass the ledger)",
                h.seq, self.seq
            ));
        }
        Ok(())
    }

    /// Whether a log whose chain value at `self.seq` is `chain_at` (and
    /// whose head is `head`, of ledger `id`) extends this pin; the error
    /// says how it does not.
    pub(crate) fn check(
        &self,
        id: LedgerId,
        head: Seq,
        chain_at: impl FnOnce(Seq) -> Result<ChainHash>,
    ) -> std::result::Result<(), String> {
        if let Some(p) = self.ledger_id.filter(|p| *p != id) {
            return Err(format!(
                "the pinned head is of ledger {p}, not this one ({id})"
            ));
        }
        if self.seq > head {
            return Err(format!(
                "the ledger ends at seq {head}, before the pinned seq {}: it was rolled back or truncated",
                self.seq
            ));
        }
        match chain_at(self.seq) {
            Ok(c) if c == self.chain => Ok(()),
            Ok(c) => Err(format!(
                "the chain at the pinned seq {} is {c}, not the pinned {}: the history was forked or rewritten",
                self.seq, self.chain
            )),
            Err(e) => Err(format!("the chain at the pinned seq {}: {e}", self.seq)),
        }
    }
}
