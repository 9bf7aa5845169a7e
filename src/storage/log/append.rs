//! The write path of a [`Log`]: appending atomic groups, buffered
//! durability and sync, rotation to a new segment, and the durable head
//! written after each fsync and before each acknowledgement.

use super::*;

impl<I: Io> Log<I> {
    /// `(seq, chain)` placed at the end of the written part of the active
    /// segment: what the head file says once everything written is synced.
    pub(super) fn position(&self, (seq, chain): (Seq, ChainHash)) -> DurableHead {
        let (segment, end) = self
            .segments
            .last()
            .map_or((1, segment::HEADER_LEN), |s| (s.number, s.end));
        DurableHead {
            seq,
            chain,
            segment,
            end,
        }
    }

    /// Writes `h` into the head file's next slot and fdatasyncs it (the
    /// file never changes length). Any failure poisons the handle.
    pub(super) fn write_head(&mut self, h: DurableHead) -> Result<()> {
        let Some(f) = &self.head_file else {
            return Ok(());
        };
        let (offset, bytes) = f.next_slot(&self.ledger, &h);
        let path = f.path.clone();
        let r = self.io.write_at(&path, offset, &bytes);
        self.step("write", &path, r)?;
        let r = self.io.sync_data(&path);
        self.step("sync", &path, r)?;
        if let Some(f) = &mut self.head_file {
            f.generation += 1;
        }
        Ok(())
    }

    /// Refuses (and poisons the handle) if the ledger directory is no
    /// longer the one this handle locked, e.g. it was moved away and
    /// another ledger created at its path: writes by path would go there.
    pub(in crate::storage) fn check_root(&mut self) -> Result<()> {
        let Some(lock) = &self.dir_lock else {
            return Ok(());
        };
        let r = self.io.lock_is_current(lock, &self.root);
        if !self.step("stat", &self.root.clone(), r)? {
            self.poisoned = true;
            return Err(StorageError::Replaced {
                path: self.root.clone(),
                what: "the ledger directory was moved, removed or replaced under this writer"
                    .into(),
            });
        }
        Ok(())
    }

    /// Refuses (and poisons the handle) unless `path` is still the file
    /// this handle wrote, `expect_len` bytes long (when given): a segment
    /// or head file replaced, or written by another process, is never
    /// written over or acknowledged.
    fn check_file(&mut self, path: &Path, expect_len: Option<u64>) -> Result<()> {
        let r = self.io.is_current(path);
        let same = self.step("stat", path, r)?;
        let len_ok = match expect_len {
            None => true,
            Some(n) => {
                let r = self.io.file_len(path);
                self.step("stat", path, r)? == n
            }
        };
        if !same || !len_ok {
            self.poisoned = true;
            return Err(StorageError::Replaced {
                path: path.to_path_buf(),
                what: if same {
                    "the file changed length under this writer (another process wrote to the log)"
                        .into()
                } else {
                    "the file was removed or replaced under this writer".into()
                },
            });
        }
        Ok(())
    }

    /// Appends `payloads` as one atomic group with consecutive sequence
    /// numbers; after a crash either all of them are in the log or none.
    ///
    /// Returns when the group is durable ([`Durability::Fsync`]) or buffered
    /// ([`Durability::Buffered`]). Any I/O failure poisons the handle: the
    /// group is not acknowledged, and every later call returns
    /// [`StorageError::Poisoned`] until the log is reopened.
    pub fn append_group(&mut self, payloads: &[&[u8]]) -> Result<SeqRange> {
        self.check_writable()?;
        if payloads.is_empty() {
            return Err(StorageError::EmptyGroup);
        }
        let mut total = 0usize;
        for p in payloads {
            if p.len() > self.opts.max_payload as usize {
                return Err(StorageError::TooLarge {
                    what: "payload",
                    len: p.len() as u64,
                    max: u64::from(self.opts.max_payload),
                });
            }
            total = total.saturating_add(p.len() + frame::OVERHEAD);
        }
        let first = Seq(self.head.0 + 1);
        let mut group = Vec::with_capacity(total);
        let mut rel = Vec::with_capacity(payloads.len());
        let mut chain_v = self.chain;
        for (i, p) in payloads.iter().enumerate() {
            let seq = Seq(first.0 + i as u64);
            let flags = if i + 1 == payloads.len() {
                FLAG_COMMIT
            } else {
                0
            };
            chain_v = chain::step(&self.key, &chain_v, seq, flags, p);
            rel.push(group.len() as u64);
            frame::encode(&mut group, seq, flags, p, &chain_v);
        }

        // A group never spans segments: rotate first if it would overflow a
        // segment that already holds frames.
        let used = self.active_end() + self.buffer.len() as u64;
        if used > segment::HEADER_LEN && used + group.len() as u64 > self.opts.segment_size {
            self.flush()?;
            self.durable_head = self.head;
            let next = self.segments.last().map_or(1, |s| s.number + 1);
            self.start_segment(next)?;
        }
        let base = self.active_end() + self.buffer.len() as u64;
        if self.buffer.is_empty() && self.opts.durability == Durability::Fsync {
            self.buffer = group;
        } else {
            self.buffer.extend_from_slice(&group);
        }
        let last = Seq(first.0 + payloads.len() as u64 - 1);
        self.buffer_head = (last, chain_v);
        if self.opts.durability == Durability::Fsync || self.buffer.len() >= self.opts.buffer_limit
        {
            self.flush()?;
        }
        // Acknowledge.
        self.offsets.extend(rel.into_iter().map(|r| base + r));
        self.head = last;
        self.chain = chain_v;
        if self.buffer.is_empty() {
            self.durable_head = last;
        }
        Ok(SeqRange { first, last })
    }

    /// Makes every appended group durable (writes and fsyncs the buffer).
    pub fn sync(&mut self) -> Result<()> {
        self.check_writable()?;
        self.flush()?;
        self.durable_head = self.head;
        Ok(())
    }

    pub(in crate::storage) fn active_end(&self) -> u64 {
        self.segments.last().map_or(0, |s| s.end)
    }

    /// Writes the buffer to the active segment with one write and one
    /// fsync, then the head file (one write, one fdatasync): only then is
    /// anything in the buffer acknowledged. First checks that the directory,
    /// the segment and the head file are still the ones this handle owns.
    fn flush(&mut self) -> Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let Some(active) = self.segments.last() else {
            return Err(StorageError::NoLedger {
                path: self.root.clone(),
            });
        };
        let (path, end) = (active.path.clone(), active.end);
        self.check_root()?;
        self.check_file(&path, Some(end))?;
        if let Some(hp) = self.head_file.as_ref().map(|f| f.path.clone()) {
            self.check_file(&hp, None)?;
        }
        let r = self.io.write_at(&path, end, &self.buffer);
        self.step("write", &path, r)?;
        let r = self.io.sync_file(&path);
        self.step("sync", &path, r)?;
        let n = self.buffer.len() as u64;
        if let Some(active) = self.segments.last_mut() {
            active.end += n;
        }
        self.buffer.clear();
        let h = self.position(self.buffer_head);
        self.write_head(h)?;
        // Still ours after the writes: only then acknowledge them.
        self.check_root()
    }

    /// Creates segment `number` (starting after `head`) durably: file,
    /// header, fsync, directory fsync. Only then may frames in it be
    /// acknowledged.
    pub(super) fn start_segment(&mut self, number: u64) -> Result<()> {
        self.check_root()?;
        let log_dir = self.root.join(LOG_DIR);
        let path = segment::path(&log_dir, number);
        if let Some(prev) = self.segments.last() {
            self.io.release(&prev.path);
        }
        let header = SegmentHeader {
            version: segment::LOG_VERSION,
            ledger: self.ledger,
            number,
            first_seq: Seq(self.head.0 + 1),
            prev_chain: self.chain,
        };
        let r = self.io.create_file(&path);
        self.step("create", &path, r)?;
        let r = self.io.write_at(&path, 0, &header.encode());
        self.step("write", &path, r)?;
        let r = self.io.sync_file(&path);
        self.step("sync", &path, r)?;
        let r = self.io.sync_dir(&log_dir);
        self.step("sync dir", &log_dir, r)?;
        self.segments.push(SegmentMeta {
            number,
            version: header.version,
            path,
            first_seq: header.first_seq,
            end: segment::HEADER_LEN,
            lazy_offsets: None,
        });
        Ok(())
    }
}
