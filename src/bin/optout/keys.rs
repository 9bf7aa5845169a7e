//! Record keys (URLs, `__key__`) of the rows a manifest excludes, read back
//! from the ledger's log, for `check` (`{"key"}` lines) and `export --ledger`.
//!
//! The library keeps its key index private, so this replays the log once up
//! to the manifest's sequence number N (after pinning the manifest to this
//! ledger: same ledger id, same chain head at N). The last registration of a
//! row at or before N is the one the manifest judged.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{bail, Result};
use optout::event::Entry;
use optout::storage::{FsIo, Log, LogOptions, StorageError};
use optout::{Manifest, Seq};

/// `(dataset, shard, row)`.
pub type RowName = (String, String, u32);

enum Stop {
    Done,
    Storage(StorageError),
    Decode(String),
}

impl From<StorageError> for Stop {
    fn from(e: StorageError) -> Self {
        Stop::Storage(e)
    }
}

/// The keys of the rows `m` excludes, as registered at or before its N.
pub fn excluded_keys(ledger: &Path, m: &Manifest) -> Result<HashMap<RowName, String>> {
    let log = Log::open(FsIo::new(), ledger, LogOptions::new().read_only(true))?;
    let h = &m.header;
    if log.ledger_id().to_hex() != h.ledger_id {
        bail!(
            "the manifest is from ledger {}, not {} ({})",
            h.ledger_id,
            ledger.display(),
            log.ledger_id().to_hex()
        );
    }
    let n = Seq(h.seq);
    if n > log.head().0 {
        bail!(
            "the manifest pins seq {n} but {} ends at {}: it was rolled back or truncated",
            ledger.display(),
            log.head().0
        );
    }
    if log.chain_at(n)?.to_hex() != h.chain_head {
        bail!(
            "the manifest pins chain head {} at seq {n}, but {} differs there: its history was rewritten",
            h.chain_head,
            ledger.display()
        );
    }
    let mut keys: HashMap<RowName, Option<String>> = HashMap::new();
    let r = log.replay(Seq(1), |seq, payload| -> Result<(), Stop> {
        if seq > n {
            return Err(Stop::Done);
        }
        let entry: Entry = optout::codec::decode(payload)
            .map_err(|e| Stop::Decode(format!("log entry at seq {seq} does not decode: {e}")))?;
        let Entry::Records(b) = entry else {
            return Ok(());
        };
        for g in b.shards {
            let Some(sh) = m.shard(&g.dataset, &g.shard) else {
                continue;
            };
            for r in g.rows {
                if sh.excluded.contains(r.row) {
                    keys.insert((g.dataset.clone(), g.shard.clone(), r.row), r.key);
                }
            }
        }
        Ok(())
    });
    match r {
        Ok(()) | Err(Stop::Done) => {}
        Err(Stop::Storage(e)) => return Err(e.into()),
        Err(Stop::Decode(m)) => bail!("{}: {m}", ledger.display()),
    }
    Ok(keys
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k, v)))
        .collect())
}
