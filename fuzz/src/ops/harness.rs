//! Runs operations on a ledger and on the reference evaluator and checks
//! that they agree (manifests, subject records, lineage).

use super::*;

/// A manifest as a reference verdict: every excluded row with its reasons,
/// every shard with its registered count.
pub fn verdict_of_manifest(m: &Manifest) -> reference::Verdict {
    let mut v = reference::Verdict::default();
    for s in &m.shards {
        v.shards
            .insert((s.dataset.clone(), s.shard.clone()), s.registered);
        for r in s.excluded.iter() {
            v.excluded.insert(
                (s.dataset.clone(), s.shard.clone(), r),
                s.reasons_of(r).into_iter().collect(),
            );
        }
    }
    v
}

/// Records (by name) whose newest version at `seq` links `subject`, in
/// `scope`: the naive counterpart of `Index::subject_records`.
pub(crate) fn ref_subject_records(
    log: &[(Seq, Entry)],
    seq: Seq,
    subject: SubjectKey,
    scope: &[String],
) -> BTreeSet<reference::RecordName> {
    let mut newest: BTreeMap<reference::RecordName, &[SubjectKey]> = BTreeMap::new();
    for (s, e) in log {
        if *s > seq {
            continue;
        }
        if let Entry::Records(b) = e {
            for g in &b.shards {
                for r in &g.rows {
                    newest.insert((g.dataset.clone(), g.shard.clone(), r.row), &r.subjects);
                }
            }
        }
    }
    newest
        .into_iter()
        .filter(|(n, subs)| subs.contains(&subject) && (scope.is_empty() || scope.contains(&n.0)))
        .map(|(n, _)| n)
        .collect()
}

/// Lineage by name: run → record → (status, reasons).
pub(crate) type Lineage =
    BTreeMap<String, BTreeMap<reference::RecordName, (Use, BTreeSet<Reason>)>>;

pub(crate) fn lineage_of(impacts: &[lineage::RunImpact]) -> Lineage {
    impacts
        .iter()
        .map(|i| {
            let recs = i
                .records
                .iter()
                .map(|r| {
                    (
                        (r.dataset.clone(), r.shard.clone(), r.row),
                        (r.status, r.reasons.iter().copied().collect()),
                    )
                })
                .collect();
            (i.run.clone(), recs)
        })
        .collect()
}

// ------------------------------------------------------ ops: the harness

/// The ledger under test, on a `MemIo`, and its mirror: an `Index` fed the
/// same entries, with the entries kept for the naive reference evaluator.
pub(crate) struct Harness {
    io: MemIo,
    /// The ledger under test (`None` only while it is reopened).
    l: Option<Ledger<MemIo>>,
    mirror: Index,
    log: Vec<(Seq, Entry)>,
    /// False once the ledger and the mirror disagreed on accepting a call.
    lockstep: bool,
    /// Ledger seq -> mirror seq of equivalent states, recorded after every
    /// op while in lockstep (both histories are append-only, so a
    /// checkpoint stays valid after a later divergence).
    map: BTreeMap<Seq, Seq>,
    /// The same checkpoints in the order they were taken.
    points: Vec<(Seq, Seq)>,
    stats: OpsStats,
}

/// Runs an op sequence against a fresh ledger and checks, at every step:
///
/// * the engine on the mirror equals `reference::evaluate` on its log, at
///   the head and at a past seq, for the op's policy, time and scope;
/// * the ledger's manifest (at the head, or at a past checkpoint) equals the
///   reference verdict at the equivalent mirror state: every excluded row
///   with its reasons, every shard with its registered count; it
///   round-trips through its bytes and verifies;
/// * a manifest scoped to a dataset the ledger does not know is refused;
/// * a run registers on a fresh name and not on a taken one, and an altered
///   manifest never registers;
/// * `lineage::affected` equals a naive recomputation from the reference;
/// * a reopen (replay, or snapshot + replay) keeps manifests, runs and
///   lineage identical;
/// * the mirror survives its snapshot round trip.
pub fn run_ops(ops: &[Op]) -> OpsStats {
    let io = MemIo::new();
    let mut l = Ledger::create_with(io.clone(), Path::new(ROOT), keyer(), ledger_opts(false))
        .expect("create");
    // Events and manifests name both purposes: both declared (the mirror,
    // an index, has no notion of declarations).
    l.add_purpose("ads", None).expect("declare ads");
    let start = (l.index().seq(), Seq(0));
    let mut h = Harness {
        io,
        l: Some(l),
        mirror: Index::new(),
        log: Vec::new(),
        lockstep: true,
        map: BTreeMap::from([start]),
        points: vec![start],
        stats: OpsStats::default(),
    };
    for op in ops.iter().take(MAX_OPS) {
        h.stats.ops += 1;
        h.step(op);
        if h.lockstep {
            let p = (h.led().index().seq(), h.mirror.seq());
            if h.points.last() != Some(&p) {
                h.map.insert(p.0, p.1);
                h.points.push(p);
            }
        }
    }
    h.stats
}

impl Harness {
    fn led(&self) -> &Ledger<MemIo> {
        self.l.as_ref().expect("ledger open")
    }

    fn led_mut(&mut self) -> &mut Ledger<MemIo> {
        self.l.as_mut().expect("ledger open")
    }

    fn step(&mut self, op: &Op) {
        match op {
            Op::Ingest(shards) => {
                let batch = batch_of(&shards.0);
                let led = self.led_mut().ingest(batch.clone()).is_ok();
                let e = Entry::Records(batch);
                let seq = Seq(self.mirror.seq().0 + 1);
                let mir = self.mirror.apply(seq, &e).is_ok();
                if mir {
                    self.log.push((seq, e));
                }
                self.lockstep &= led == mir;
            }
            Op::Events(evs) => {
                let evs: Vec<Event> = evs.0.iter().map(event_of).collect();
                let led = self.led_mut().apply(evs.clone()).is_ok();
                let mut mir = true;
                for ev in evs {
                    // An event identical to a recorded one is a no-op
                    // (`unchanged`): the mirror skips it too.
                    if self.mirror.events().iter().any(|(_, x)| *x == ev) {
                        continue;
                    }
                    let e = Entry::Event(ev);
                    let seq = Seq(self.mirror.seq().0 + 1);
                    if self.mirror.apply(seq, &e).is_ok() {
                        self.log.push((seq, e));
                    } else {
                        mir = false;
                    }
                }
                self.lockstep &= led == mir;
            }
            Op::Manifest(q) => {
                self.engine_vs_reference(q);
                self.manifest(q, true);
                if let SeqOp::Past(_) = q.seq {
                    // The head too, so a past query never hides the head.
                    self.manifest(
                        &QueryOp {
                            seq: SeqOp::Head,
                            ..*q
                        },
                        true,
                    );
                }
            }
            Op::Snapshot => {
                let _ = self.led_mut().snapshot();
            }
            Op::Reopen(q) => self.reopen(q),
            Op::IndexRoundTrip => {
                let before = self.mirror.seq();
                let bytes = self.mirror.to_snapshot_bytes().unwrap();
                let mut back = Index::from_snapshot_bytes(&bytes).expect("snapshot round trip");
                assert_eq!(back.seq(), before);
                assert_eq!(
                    back.to_snapshot_bytes().unwrap(),
                    bytes,
                    "index snapshot bytes are canonical"
                );
                self.mirror = back;
            }
            Op::RegisterRun {
                name,
                query,
                started,
            } => self.register_run(*name, query, *started),
            Op::Affected { subject: s, at } => {
                self.affected(subject(s.0), day(u64::from(at.0)));
            }
        }
    }

    /// The checkpoint a query names: (ledger seq, mirror seq).
    fn point(&self, s: SeqOp) -> Option<(Seq, Seq)> {
        match s {
            SeqOp::Head if self.lockstep => Some((self.led().index().seq(), self.mirror.seq())),
            SeqOp::Head => None,
            SeqOp::Past(n) => Some(self.points[usize::from(n) % self.points.len()]),
        }
    }

    fn ledger_query(&self, q: &QueryOp) -> Query {
        Query {
            policy: policy_of(q.policy),
            seq: self
                .point(q.seq)
                .map(|p| p.0)
                .unwrap_or(self.led().index().seq()),
            at: day(u64::from(q.at.0)),
            datasets: scope_of(q.scope),
        }
    }

    /// Whether the mirror's log registered a record of `dataset`.
    fn mirror_knows(&self, dataset: &str) -> bool {
        self.log.iter().any(|(_, e)| match e {
            Entry::Records(b) => b.shards.iter().any(|g| g.dataset == dataset),
            _ => false,
        })
    }

    /// Engine on the mirror vs the reference, at the mirror's head and at a
    /// past seq of the mirror (any, not only checkpoints).
    fn engine_vs_reference(&mut self, q: &QueryOp) {
        let head = self.mirror.seq();
        let past = match q.seq {
            SeqOp::Past(n) => Seq(u64::from(n) % (head.0 + 1)),
            SeqOp::Head => head,
        };
        for seq in [head, past] {
            let mq = Query {
                policy: policy_of(q.policy),
                seq,
                at: day(u64::from(q.at.0)),
                datasets: scope_of(q.scope),
            };
            let got = reference::from_engine(&self.mirror, &engine::evaluate(&self.mirror, &mq));
            let want = reference::evaluate(&self.log, &mq);
            assert_eq!(got, want, "engine differs from reference at {seq:?}");
            self.stats.engine_vs_reference += 1;
        }
    }

    /// The ledger's manifest for `q`, checked; `None` when the ledger
    /// refused it (a scope naming a dataset it does not know).
    fn manifest(&mut self, q: &QueryOp, compare: bool) -> Option<Manifest> {
        let lq = self.ledger_query(q);
        let r = self.led().manifest(&lq);
        if self.lockstep {
            let known = lq.datasets.iter().all(|d| self.mirror_knows(d));
            assert_eq!(r.is_ok(), known, "scope {:?}: manifest {r:?}", lq.datasets);
        }
        let m = r.ok()?;
        assert_eq!(m.header.seq.0, lq.seq.0);
        let bytes = m.to_bytes();
        assert_eq!(Manifest::from_bytes(&bytes).expect("decodes"), m);
        self.led()
            .verify_manifest(&m)
            .expect("own manifest verifies");
        if compare {
            match self.point(q.seq) {
                Some((_, mseq)) => {
                    let want = reference::evaluate(
                        &self.log,
                        &Query {
                            seq: mseq,
                            ..lq.clone()
                        },
                    );
                    assert_eq!(
                        verdict_of_manifest(&m),
                        want,
                        "ledger manifest at {:?} differs from the reference at mirror {mseq:?}",
                        lq.seq
                    );
                    self.stats.ledger_vs_reference += 1;
                    if matches!(q.seq, SeqOp::Past(_)) {
                        self.stats.past += 1;
                    }
                }
                None => self.stats.diverged += 1,
            }
        }
        Some(m)
    }

    fn reopen(&mut self, q: &QueryOp) {
        self.stats.reopens += 1;
        let before = self.manifest(q, false);
        let runs = self.led().index().runs().to_vec();
        let head = self.led().index().seq();
        let at = day(u64::from(q.at.0));
        let lineage_before: Vec<_> = (0..5)
            .map(|s| lineage::affected(self.led().index(), &subject(s), head, at))
            .collect();
        // The old ledger holds the lock: drop it first.
        self.l = None;
        self.l = Some(
            Ledger::open_with(
                self.io.clone(),
                Path::new(ROOT),
                Some(keyer()),
                ledger_opts(false),
            )
            .expect("reopen"),
        );
        assert_eq!(self.led().index().seq(), head, "reopen changed the head");
        let after = self.manifest(q, false);
        assert_eq!(
            before.map(|m| m.to_bytes()),
            after.map(|m| m.to_bytes()),
            "reopen changed a manifest"
        );
        assert_eq!(
            self.led().index().runs(),
            &runs[..],
            "reopen changed the runs"
        );
        for (s, b) in lineage_before.iter().enumerate() {
            let a = lineage::affected(self.led().index(), &subject(s as u8), head, at);
            assert_eq!(&a, b, "reopen changed the lineage");
        }
    }

    fn register_run(&mut self, name: Below<3>, q: &QueryOp, started: Below<13>) {
        let Some(m) = self.manifest(q, true) else {
            return;
        };
        let name = format!("run{}", name.0);
        let taken = self
            .led()
            .index()
            .runs()
            .iter()
            .any(|(_, r)| r.name == name);
        let started_at = day(u64::from(started.0));
        // An altered manifest, resealed: never registers.
        let mut bad = m.clone();
        bad.header.registered += 1;
        assert!(
            self.led_mut()
                .register_run("altered", "model", &bad, started_at)
                .is_err(),
            "an altered manifest registered"
        );
        let r = self.led_mut().register_run(&name, "model", &m, started_at);
        assert_eq!(r.is_ok(), !taken, "register {name}: {r:?}");
        if r.is_ok() {
            self.stats.runs += 1;
        }
    }

    /// `lineage::affected` against a naive recomputation from the mirror's
    /// log, when every state it needs maps to a mirror state.
    fn affected(&mut self, subject: SubjectKey, now: Timestamp) {
        let head = self.led().index().seq();
        let got = lineage::affected(self.led().index(), &subject, head, now);
        let Some(want) = self.ref_affected(subject, now) else {
            return;
        };
        assert_eq!(lineage_of(&got), want, "lineage differs from the reference");
        for i in &got {
            for r in &i.records {
                assert_eq!(r.reasons.is_empty(), r.status == Use::Used);
            }
        }
        self.stats.affected += 1;
        if !got.is_empty() {
            self.stats.affected_nonempty += 1;
        }
    }

    fn ref_affected(&self, subject: SubjectKey, now: Timestamp) -> Option<Lineage> {
        let head = *self.map.get(&self.led().index().seq())?;
        let mut out = Lineage::new();
        for (run_seq, run) in self.led().index().runs() {
            let trained_seq = *self.map.get(&run.manifest_seq)?;
            let before_seq = *self.map.get(&Seq(run_seq.0 - 1))?;
            let q = |seq: Seq, at: Timestamp| Query {
                policy: run.policy.clone(),
                seq,
                at,
                datasets: run.datasets.clone(),
            };
            let known = ref_subject_records(&self.log, trained_seq, subject, &run.datasets);
            let trained = reference::evaluate(&self.log, &q(trained_seq, run.manifest_at));
            let used: Vec<_> = known
                .into_iter()
                .filter(|n| !trained.excluded.contains_key(n))
                .collect();
            if used.is_empty() {
                continue;
            }
            let before = reference::evaluate(&self.log, &q(before_seq, run.started_at));
            let current = reference::evaluate(&self.log, &q(head, now));
            let recs = used
                .into_iter()
                .map(|n| {
                    let v = if let Some(r) = before.excluded.get(&n) {
                        (Use::Violation, r.clone())
                    } else if let Some(r) = current.excluded.get(&n) {
                        (Use::After, r.clone())
                    } else {
                        (Use::Used, BTreeSet::new())
                    };
                    (n, v)
                })
                .collect();
            out.insert(run.name.clone(), recs);
        }
        Some(out)
    }
}
