//! The snapshot half of [`Log`]: writing a snapshot (temp → fsync →
//! rename → fsync dir, pruning to [`KEEP_SNAPSHOTS`]) and finding the
//! newest one an open may use.

use super::*;

impl<I: Io> Log<I> {
    /// Whether `(seq, chain_head)` is a state of this log.
    pub(crate) fn check_pin(&self, file: &Path, seq: Seq, chain_head: &ChainHash) -> Result<()> {
        let mismatch = |what: &str| StorageError::SnapshotMismatch {
            file: file.to_path_buf(),
            seq,
            what: what.to_owned(),
        };
        if seq > self.head {
            return Err(mismatch("seq is beyond the log's head"));
        }
        if self.chain_at(seq)? != *chain_head {
            return Err(mismatch("chain head differs from the log's chain at seq"));
        }
        Ok(())
    }

    /// Writes a snapshot of the state at `seq` (whose chain value must be
    /// `chain_head`) atomically, authenticated with the snapshot key of the
    /// log's options ([`LogOptions::snapshot_key`](super::LogOptions::snapshot_key);
    /// [`StorageError::NoSnapshotKey`] without one), then deletes all but
    /// the newest [`KEEP_SNAPSHOTS`]. Syncs the log first, so a snapshot
    /// never refers to frames that are not durable. Returns the snapshot's
    /// path. Any I/O failure poisons the handle; the temp file is removed.
    pub fn write_snapshot(
        &mut self,
        seq: Seq,
        chain_head: ChainHash,
        payload: &[u8],
    ) -> Result<PathBuf> {
        self.check_writable()?;
        let Some(key) = self.opts.snapshot_key else {
            return Err(StorageError::NoSnapshotKey);
        };
        let header = encode_header(&self.ledger, seq, &chain_head, payload.len() as u64);
        let digest = mac(&key, &header, payload);
        let pieces: [(u64, &[u8]); 3] = [
            (0, &header),
            (HEADER_LEN as u64, payload),
            ((HEADER_LEN + payload.len()) as u64, &digest),
        ];
        self.write_snapshot_file(seq, &chain_head, &pieces, None)
    }

    /// [`Log::write_snapshot`] for a payload in sections, as format 3
    /// (docs/FORMAT.md, "Snapshot format 3"): each section starts at a
    /// multiple of [`SECTION_ALIGN`] bytes so that a reader maps the file
    /// and views fixed-width little-endian arrays in place; each 1 MiB
    /// chunk of a section has a blake3 hash, and the MAC covers the header,
    /// the section lengths and those hashes.
    pub fn write_snapshot_sections(
        &mut self,
        seq: Seq,
        chain_head: ChainHash,
        sections: &[&[u8]],
    ) -> Result<PathBuf> {
        self.check_writable()?;
        let Some(key) = self.opts.snapshot_key else {
            return Err(StorageError::NoSnapshotKey);
        };
        let (meta, lay) = encode3(&key, &self.ledger, seq, &chain_head, sections)?;
        let mut pieces: Vec<(u64, &[u8])> = vec![(0, &meta)];
        pieces.extend(
            lay.ranges
                .iter()
                .zip(sections)
                .map(|(r, s)| (r.start as u64, *s)),
        );
        self.write_snapshot_file(seq, &chain_head, &pieces, Some(lay.file_len as u64))
    }

    /// Writes `pieces` (at their offsets; `len` pads the file to a length)
    /// to a temp file, renames it into place and prunes old snapshots.
    fn write_snapshot_file(
        &mut self,
        seq: Seq,
        chain_head: &ChainHash,
        pieces: &[(u64, &[u8])],
        len: Option<u64>,
    ) -> Result<PathBuf> {
        self.sync()?;
        let dir = self.root.join(SNAP_DIR);
        let fin = dir.join(format!("{:020}{SUFFIX}", seq.0));
        self.check_pin(&fin, seq, chain_head)?;
        let tmp = dir.join(format!("{:020}{TEMP_SUFFIX}", seq.0));
        self.check_root()?;
        let written = self.write_temp(&tmp, pieces, len);
        if written.is_err() {
            // Best effort: the next read-write open removes it otherwise.
            let _ = self.io.remove_file(&tmp);
        }
        written?;
        let r = self.io.rename(&tmp, &fin);
        self.step("rename", &tmp, r)?;
        let r = self.io.sync_dir(&dir);
        self.step("sync dir", &dir, r)?;

        // Prune only after the new one is durable.
        let all = list(&self.io, &dir)?;
        let mut pruned = false;
        // Never the one just written (it may be older than the kept ones).
        for (_, old) in all.iter().skip(KEEP_SNAPSHOTS).filter(|(_, p)| *p != fin) {
            let r = self.io.remove_file(old);
            self.step("remove", old, r)?;
            pruned = true;
        }
        if pruned {
            let r = self.io.sync_dir(&dir);
            self.step("sync dir", &dir, r)?;
        }
        Ok(fin)
    }

    fn write_temp(&mut self, tmp: &Path, pieces: &[(u64, &[u8])], len: Option<u64>) -> Result<()> {
        let r = self.io.create_file(tmp);
        self.step("create", tmp, r)?;
        for (off, data) in pieces {
            let r = self.io.write_at(tmp, *off, data);
            self.step("write", tmp, r)?;
        }
        if let Some(len) = len {
            let r = self.io.truncate(tmp, len);
            self.step("truncate", tmp, r)?;
        }
        let r = self.io.sync_file(tmp);
        self.step("sync", tmp, r)
    }

    /// The newest snapshot that is authenticated by the options' snapshot
    /// key and matches this log's chain at its seq; newer files that do not
    /// (without a key: every file) are skipped and listed in
    /// [`SnapshotLoad::rejected`]. `snapshot: None` means: replay the whole log.
    pub fn latest_valid_snapshot(&self) -> Result<SnapshotLoad> {
        self.snapshot_search(false)
    }

    /// The newest snapshot that matches this log's chain at its seq, read
    /// without authentication when the options carry no key. Never trust
    /// its payload: it is for `verify`, which compares it with a replay.
    pub fn latest_snapshot_to_compare(&self) -> Result<SnapshotLoad> {
        self.snapshot_search(true)
    }

    fn snapshot_search(&self, allow_unauthenticated: bool) -> Result<SnapshotLoad> {
        self.check_readable()?;
        let mut load = SnapshotLoad::default();
        let key = self.opts.snapshot_key.as_ref();
        for (name_seq, path) in list(&self.io, &self.root.join(SNAP_DIR))? {
            match read(
                &self.io,
                &path,
                name_seq,
                &self.ledger,
                key,
                allow_unauthenticated,
                Check::All,
            )
            .and_then(|s| self.check_pin(&path, s.seq, &s.chain_head).map(|()| s))
            {
                Ok(s) => {
                    load.snapshot = Some(s);
                    break;
                }
                Err(error) => load.rejected.push(RejectedSnapshot { path, error }),
            }
        }
        Ok(load)
    }
}
