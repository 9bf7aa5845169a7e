//! Issue 20 on the real binary: each finding of the adversarial review as
//! it was reproduced, now refused or reported. Each test here failed on
//! main at 215e372; run them against another build with
//! `OPTOUT_TEST_BIN=/path/to/optout cargo test --features cli --test cli_reliability`.
#![cfg(all(feature = "cli", unix))]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

mod common;
use common::copy_dir;

fn bin() -> PathBuf {
    std::env::var_os("OPTOUT_TEST_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_optout")))
}

fn cmd(args: &[&str]) -> Command {
    let mut c = Command::new(bin());
    c.args(args).env_remove("OPTOUT_KEY_FILE");
    c
}

fn run(args: &[&str]) -> Output {
    cmd(args).output().expect("run optout")
}

fn run_stdin(args: &[&str], input: &str) -> Output {
    let mut c = cmd(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A child that exits before reading all of its input (an error) closes
    // the pipe: its exit code and stderr, checked by the caller, say why.
    match c.stdin.take().unwrap().write_all(input.as_bytes()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
        r => r.unwrap(),
    }
    c.wait_with_output().unwrap()
}

fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[track_caller]
fn expect(o: &Output, want: i32, what: &str) {
    assert_eq!(
        code(o),
        want,
        "{what}: stdout {}\nstderr {}",
        out(o),
        err(o)
    );
}

#[track_caller]
fn ok(args: &[&str]) -> Output {
    let o = run(args);
    expect(&o, 0, &format!("{args:?}"));
    o
}

struct Fx {
    _dir: tempfile::TempDir,
    root: PathBuf,
    ledger: String,
}

impl Fx {
    fn path(&self, name: &str) -> String {
        self.root.join(name).display().to_string()
    }
    fn write(&self, name: &str, text: &str) -> String {
        let p = self.path(name);
        std::fs::write(&p, text).unwrap();
        p
    }
    fn segments(&self) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(Path::new(&self.ledger).join("log"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        v.sort();
        v
    }
    /// Appends `bytes` to the newest segment (a write cut short by a crash).
    fn tear(&self, bytes: &[u8]) {
        let seg = self.segments().pop().unwrap();
        let mut fh = std::fs::OpenOptions::new().append(true).open(&seg).unwrap();
        fh.write_all(bytes).unwrap();
    }
    /// Starts `optout apply LEDGER fifo` and waits until it holds the ledger.
    fn writer_on(&self, ledger: &str, fifo: &str) -> Writer {
        let child = cmd(&["apply", ledger, fifo])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut w = Writer(Some(child));
        wait_until_open(w.0.as_mut().unwrap(), ledger);
        w
    }
    fn manifest(&self, name: &str) -> Output {
        run(&[
            "manifest",
            &self.ledger,
            "--purpose",
            "ai-training",
            "--at",
            "2026-01-01T00:00:00Z",
            "-o",
            &self.path(name),
        ])
    }
}

fn records(n: u32, users: u32) -> String {
    (0..n)
        .map(|r| {
            format!(
                r#"{{"dataset":"d","shard":"p0","row":{r},"subjects":["u{}@x.org"],"source":"x.org","collected_at":"2024-01-01T00:00:00Z","basis":"legitimate_interest","key":"k/{r}"}}"#,
                r % users
            ) + "\n"
        })
        .collect()
}

fn erasure(user: u32) -> String {
    format!(r#"{{"type":"erasure","subject":"u{user}@x.org","at":"2025-01-01T00:00:00Z"}}"#)
}

fn objection(subject: &str) -> String {
    format!(
        r#"{{"type":"objection","subject":"{subject}","at":"2025-01-01T00:00:00Z","purposes":["ai-training"]}}"#
    )
}

/// A ledger with 1,000 records of 50 people.
fn fixture() -> Fx {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let f = Fx {
        ledger: root.join("L").display().to_string(),
        root,
        _dir: dir,
    };
    ok(&["-q", "init", &f.ledger]);
    let r = f.write("records.jsonl", &records(1000, 50));
    ok(&["-q", "ingest", &f.ledger, &r]);
    f
}

fn json(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", out(o)))
}

fn excluded(f: &Fx, name: &str) -> u64 {
    manifest_json(f, name)["header"]["excluded"]
        .as_u64()
        .unwrap()
}

/// The manifest's digest (the same digest: the same excluded rows).
fn digest(f: &Fx, name: &str) -> String {
    manifest_json(f, name)["digest"]
        .as_str()
        .unwrap()
        .to_string()
}

fn manifest_json(f: &Fx, name: &str) -> Value {
    let o = run(&[
        "--format",
        "json",
        "manifest",
        &f.ledger,
        "--purpose",
        "ai-training",
        "--at",
        "2026-01-01T00:00:00Z",
        "-o",
        &f.path(name),
    ]);
    expect(&o, 0, "manifest");
    json(&o)
}

/// Finding 1: one bit flipped 40 bytes before the end of the newest
/// segment, after an acknowledged erasure; then the whole segment zeroed.
/// Readers and writers refuse with file, byte offset and seq; the erasure
/// is never silently gone, its seq never reused.
#[test]
fn damage_to_an_acknowledged_frame_is_refused_never_dropped() {
    let f = fixture();
    let o = run_stdin(&["apply", &f.ledger, "-"], &erasure(7));
    expect(&o, 0, "the erasure is acknowledged");
    let seg = f.segments().pop().unwrap();
    let mut b = std::fs::read(&seg).unwrap();
    let n = b.len();
    b[n - 40] ^= 1;
    std::fs::write(&seg, &b).unwrap();
    for args in [
        vec![
            "manifest",
            &f.ledger,
            "--purpose",
            "ai-training",
            "-o",
            &f.path("m"),
        ],
        vec!["report", &f.ledger, "--subject", "u7@x.org"],
        vec!["runs", "list", &f.ledger],
    ] {
        let o = run(&args);
        expect(&o, 2, &format!("{args:?} on a damaged ledger"));
        let e = err(&o);
        assert!(
            e.contains("00000000000000000001.seg") && e.contains("at byte") && e.contains("seq 3"),
            "{args:?}: names file, offset and seq: {e}"
        );
    }
    let o = run_stdin(&["apply", &f.ledger, "-"], &erasure(8));
    expect(
        &o,
        2,
        "the next writer refuses (the lost seq is not reused)",
    );
    let o = run(&["verify", &f.ledger]);
    expect(&o, 1, "verify");
    assert!(out(&o).contains("corrupt"), "{}", out(&o));
    assert!(
        !Path::new(&f.ledger)
            .join("quarantine")
            .read_dir()
            .unwrap()
            .any(|_| true),
        "acknowledged bytes are not quarantined as a torn tail"
    );

    // The whole newest segment zeroed.
    let z = vec![0u8; b.len()];
    std::fs::write(&seg, z).unwrap();
    expect(&f.manifest("m2"), 2, "manifest on a zeroed segment");
    let o = run_stdin(&["apply", &f.ledger, "-"], &erasure(8));
    expect(&o, 2, "apply on a zeroed segment");
    expect(
        &run(&["verify", &f.ledger]),
        1,
        "verify on a zeroed segment",
    );
}

/// Finding 1 (the benign side) and finding 9: bytes after the last
/// acknowledged commit (a crash mid-write) are a torn tail: the next writer
/// moves them to quarantine/ and says so on stderr and in its JSON;
/// verify reports the quarantined file until it is acknowledged, in the log.
#[test]
fn a_torn_tail_is_reported_quarantined_and_acknowledged() {
    let f = fixture();
    let seg = f.segments().pop().unwrap();
    let len = std::fs::metadata(&seg).unwrap().len();
    f.tear(b"OOFR half a frame");
    let o = run(&["verify", &f.ledger]);
    expect(&o, 0, "unacknowledged bytes are not damage");
    let o = run_stdin(&["--format", "json", "apply", &f.ledger, "-"], &erasure(3));
    expect(&o, 0, "apply after a crash");
    let notes = json(&o)["notes"].to_string();
    assert!(
        notes.contains(&format!("at byte {len}")) && notes.contains("quarantine"),
        "{notes}"
    );
    assert!(err(&o).contains("torn tail"), "{}", err(&o));
    let o = run(&["verify", &f.ledger]);
    expect(&o, 1, "the quarantined tail is reported");
    assert!(out(&o).contains("quarantined"), "{}", out(&o));
    ok(&[
        "quarantine",
        "ack",
        &f.ledger,
        "--note",
        "crash on 2026-11-30, INC-7",
    ]);
    let o = run(&["--format", "json", "verify", &f.ledger]);
    expect(&o, 0, "acknowledged");
    let o = run(&["--format", "json", "quarantine", "list", &f.ledger]);
    expect(&o, 0, "list");
    assert!(json(&o)["files"][0]["acknowledged_at"].as_u64().is_some());
    // A new tail is reported again (only exactly the acknowledged files are not).
    f.tear(b"more torn bytes");
    ok(&["-q", "snapshot", &f.ledger]);
    expect(
        &run(&["verify", &f.ledger]),
        1,
        "a second, unacknowledged tail",
    );
}

/// Finding 2: `rm LOCK` under a live writer does not let a second writer
/// in, and a writer whose ledger directory was moved away (another ledger
/// created at its path) acknowledges nothing.
#[test]
fn one_writer_whatever_happens_to_the_lock_file() {
    let f = fixture();
    let fifo = f.path("events.fifo");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    // The first writer holds the ledger, blocked reading the FIFO.
    let first = f.writer_on(&f.ledger, &fifo);
    std::fs::remove_file(Path::new(&f.ledger).join("LOCK")).unwrap();
    let o = run_stdin(&["apply", &f.ledger, "-"], &erasure(9));
    expect(&o, 2, "a second writer after rm LOCK");
    assert!(err(&o).contains("locked"), "{}", err(&o));
    std::fs::write(&fifo, objection("u1@x.org") + "\n").unwrap();
    let o = first.finish();
    expect(&o, 0, "the first writer");
    let o = run(&["--format", "json", "verify", &f.ledger]);
    expect(&o, 0, "verify");
    assert_eq!(
        json(&o)["seq"],
        3,
        "init, records, the first writer's event"
    );

    // The directory moved away and a new ledger made at its path.
    let first = f.writer_on(&f.ledger, &fifo);
    let old = f.path("L.old");
    std::fs::rename(&f.ledger, &old).unwrap();
    let key = format!("{}.key", f.ledger);
    let signing = format!("{}.signing.key", f.ledger);
    ok(&[
        "-q",
        "init",
        &f.ledger,
        "--key-file",
        &key,
        "--signing-key",
        &signing,
    ]);
    std::fs::write(&fifo, erasure(2) + "\n").unwrap();
    let o = first.finish();
    expect(
        &o,
        2,
        "a writer whose directory was replaced acknowledges nothing",
    );
    assert!(err(&o).contains("moved"), "{}", err(&o));
    let o = run(&["--format", "json", "verify", &old]);
    expect(&o, 0, "the moved ledger");
    assert_eq!(json(&o)["seq"], 3, "nothing written into the moved ledger");
    let o = run(&["--format", "json", "verify", &f.ledger]);
    assert_eq!(json(&o)["seq"], 1, "nothing written into the new ledger");
}

/// A writer process, killed if the test fails before it finishes (a
/// writer blocked on its FIFO would otherwise outlive the test).
struct Writer(Option<std::process::Child>);

impl Writer {
    fn finish(mut self) -> Output {
        self.0.take().unwrap().wait_with_output().unwrap()
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Waits until `child` has opened `ledger` for writing (it holds a handle
/// of a segment), without touching the lock itself (a probe that took it
/// could make the child fail to).
fn wait_until_open(child: &mut std::process::Child, ledger: &str) {
    let fds = format!("/proc/{}/fd", child.id());
    let t0 = std::time::Instant::now();
    loop {
        let open = std::fs::read_dir(&fds)
            .into_iter()
            .flatten()
            .flatten()
            .any(|e| {
                std::fs::read_link(e.path()).is_ok_and(|t| {
                    t.to_string_lossy().contains(ledger) && t.to_string_lossy().ends_with(".seg")
                })
            });
        if open {
            return;
        }
        if let Ok(Some(st)) = child.try_wait() {
            panic!("the writer exited ({st}) before holding the ledger");
        }
        assert!(
            t0.elapsed().as_secs() < 30,
            "the writer never opened the ledger"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// Finding 3: the newest snapshot replaced by the state of a ledger
/// lacking the erasure (a copy taken before it, given another event at the
/// same seq), re-sealed the way main sealed snapshots (a key derived from
/// the public ledger id) with the real chain head: no command trusts it.
#[test]
fn a_forged_snapshot_is_not_trusted_by_manifest_or_report() {
    let f = fixture();
    let other = f.path("other");
    copy_dir(Path::new(&f.ledger), Path::new(&other));
    std::fs::copy(format!("{}.key", f.ledger), format!("{other}.key")).unwrap();
    expect(
        &run_stdin(&["apply", &f.ledger, "-"], &erasure(7)),
        0,
        "erasure",
    );
    ok(&["-q", "snapshot", &f.ledger]);
    expect(
        &run_stdin(&["apply", &other, "-"], &objection("u40@x.org")),
        0,
        "other",
    );
    ok(&["-q", "snapshot", &other]);
    assert_eq!(excluded(&f, "honest.optm"), 20, "u7's 20 records");
    let honest = digest(&f, "honest.optm");
    let newest = |l: &str| {
        let mut v: Vec<PathBuf> = std::fs::read_dir(Path::new(l).join("snap"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        v.sort();
        v.pop().unwrap()
    };
    let target = newest(&f.ledger);
    let real = std::fs::read(&target).unwrap();
    let theirs = std::fs::read(newest(&other)).unwrap();
    let mut forged = real[..80].to_vec();
    forged[8..12].copy_from_slice(&1u32.to_le_bytes()); // the format main wrote
    let payload = &theirs[80..theirs.len() - 32];
    forged[72..80].copy_from_slice(&(payload.len() as u64).to_le_bytes());
    forged.extend_from_slice(payload);
    let id: [u8; 16] = real[16..32].try_into().unwrap();
    let k = blake3::derive_key("optout 2026-11 snapshot v1", &id);
    let seal = *blake3::keyed_hash(&k, &forged).as_bytes();
    forged.extend_from_slice(&seal);
    std::fs::write(&target, &forged).unwrap();
    assert_eq!(
        digest(&f, "after.optm"),
        honest,
        "manifest trusted the forged snapshot"
    );
    // u40 never objected in this ledger: no report may say so.
    let o = run(&["report", &f.ledger, "--subject", "u40@x.org"]);
    expect(&o, 0, "report");
    assert_eq!(
        json(&o)["events"].as_array().map(Vec::len),
        Some(0),
        "{}",
        out(&o)
    );
    // Without the key (a read-only host) it is not trusted either.
    std::fs::rename(format!("{}.key", f.ledger), f.path("elsewhere.key")).unwrap();
    assert_eq!(digest(&f, "keyless.optm"), honest, "keyless manifest");
}

/// Finding 4: an old manifest (before an erasure) with the current seq and
/// chain head written into its header and re-sealed: check --ledger and
/// runs add refuse it (exit 2).
#[test]
fn a_resealed_manifest_is_refused_by_everything_that_has_the_ledger() {
    let f = fixture();
    assert_eq!(excluded(&f, "old.optm"), 0);
    let o = run_stdin(&["apply", &f.ledger, "-"], &erasure(7));
    expect(&o, 0, "erasure");
    let o = run(&["--format", "json", "head", &f.ledger]);
    let (seq, chain) = if code(&o) == 0 {
        let h = json(&o);
        (
            optout::Seq(h["seq"].as_u64().unwrap()),
            optout::ChainHash::from_hex(h["chain_head"].as_str().unwrap()).unwrap(),
        )
    } else {
        // A build without `optout head`: read it off a fresh manifest.
        excluded(&f, "new.optm");
        let m = optout::Manifest::load(Path::new(&f.path("new.optm"))).unwrap();
        (m.header.seq, m.header.chain_head)
    };
    let mut m = optout::Manifest::load(Path::new(&f.path("old.optm"))).unwrap();
    m.header.seq = seq;
    m.header.chain_head = chain;
    let forged = f.path("forged.optm");
    std::fs::write(&forged, m.to_bytes()).unwrap(); // to_bytes re-seals
    ok(&["show", &forged]);
    let used = f.write("used.jsonl", r#"{"dataset":"d","shard":"p0","row":7}"#);
    let o = run(&["check", &forged, &used, "--ledger", &f.ledger]);
    expect(&o, 2, "check --ledger with a re-sealed manifest");
    let o = run(&[
        "runs",
        "add",
        &f.ledger,
        "--model",
        "m",
        "--manifest",
        &forged,
    ]);
    expect(&o, 2, "runs add with a re-sealed manifest");
    // The honest one is accepted and finds row 7 (u7's) used.
    excluded(&f, "honest.optm");
    let o = run(&[
        "check",
        &f.path("honest.optm"),
        &used,
        "--ledger",
        &f.ledger,
    ]);
    expect(&o, 1, "the honest manifest excludes row 7");
}

/// Finding 5: truncating the newest segment at a group boundary, deleting
/// it with the newest snapshot, or replacing it with a fork is detected by
/// the ledger itself; a fork that replaced the head file too is caught by
/// `--expect-head` (a head pinned from outside, with `optout head`).
#[test]
fn rollback_and_fork_of_the_newest_segment_are_detected() {
    let base = fixture();
    let fork_src = base.path("fork-src");
    copy_dir(Path::new(&base.ledger), Path::new(&fork_src));
    std::fs::copy(format!("{}.key", base.ledger), format!("{fork_src}.key")).unwrap();
    let o = run_stdin(
        &["apply", &base.ledger, "-"],
        &(erasure(1) + "\n" + &erasure(2)),
    );
    expect(&o, 0, "two erasures (one group of two frames)");
    let o = run_stdin(
        &["apply", &fork_src, "-"],
        &(objection("u40@x.org") + "\n" + &objection("u41@x.org")),
    );
    expect(&o, 0, "the fork's own history");
    let seg = base.segments().pop().unwrap();
    let name = seg.file_name().unwrap().to_owned();
    let bytes = std::fs::read(&seg).unwrap();
    // Frame starts; the last group is the last two frames.
    let mut starts = vec![];
    let mut pos = 84;
    while pos < bytes.len() {
        starts.push(pos);
        pos += u32::from_le_bytes(bytes[pos + 4..pos + 8].try_into().unwrap()) as usize + 60;
    }
    let cut = starts[starts.len() - 2];
    let copy = |name: &str| {
        let d = base.path(name);
        copy_dir(Path::new(&base.ledger), Path::new(&d));
        std::fs::copy(format!("{}.key", base.ledger), format!("{d}.key")).unwrap();
        d
    };
    let truncated = copy("truncated");
    std::fs::write(Path::new(&truncated).join("log").join(&name), &bytes[..cut]).unwrap();
    let deleted = copy("deleted");
    std::fs::remove_file(Path::new(&deleted).join("log").join(&name)).unwrap();
    for s in std::fs::read_dir(Path::new(&deleted).join("snap")).unwrap() {
        std::fs::remove_file(s.unwrap().path()).unwrap();
    }
    let forked = copy("forked");
    std::fs::copy(
        Path::new(&fork_src).join("log").join(&name),
        Path::new(&forked).join("log").join(&name),
    )
    .unwrap();
    for (what, l) in [
        ("truncated at a group boundary", &truncated),
        ("newest segment and snapshots deleted", &deleted),
        ("newest segment replaced by a fork", &forked),
    ] {
        let o = run(&["verify", l]);
        expect(&o, 1, &format!("verify: {what}"));
        let o = run(&[
            "manifest",
            l,
            "--purpose",
            "ai-training",
            "-o",
            &base.path("x.optm"),
        ]);
        expect(&o, 2, &format!("manifest: {what}"));
        let o = run_stdin(&["apply", l, "-"], &erasure(5));
        expect(&o, 2, &format!("the next writer: {what}"));
    }

    // Pinning from outside.
    let pin = base.path("pin.json");
    let o = run(&["head", &base.ledger]);
    expect(&o, 0, "head");
    std::fs::write(&pin, &o.stdout).unwrap();
    let h = json(&o);
    let seq_hash = format!("{}:{}", h["seq"], h["chain_head"].as_str().unwrap());
    ok(&["verify", &base.ledger, "--expect-head", &pin]);
    ok(&["verify", &base.ledger, "--expect-head", &seq_hash]);
    let wrong = format!("{}:{}", h["seq"], "0".repeat(64));
    expect(
        &run(&["verify", &base.ledger, "--expect-head", &wrong]),
        1,
        "another chain value",
    );
    // A whole fork (segment and head file): consistent by itself, refused by the pin.
    let whole = copy("whole-fork");
    for f in ["HEAD", "log/00000000000000000001.seg"] {
        std::fs::copy(Path::new(&fork_src).join(f), Path::new(&whole).join(f)).unwrap();
    }
    let _ = std::fs::remove_dir_all(Path::new(&whole).join("snap"));
    ok(&["verify", &whole]);
    expect(
        &run(&["verify", &whole, "--expect-head", &pin]),
        1,
        "verify --expect-head of a fork",
    );
    let o = run(&[
        "manifest",
        &whole,
        "--purpose",
        "ai-training",
        "--expect-head",
        &pin,
        "-o",
        &base.path("y.optm"),
    ]);
    expect(&o, 2, "manifest --expect-head of a fork");
    // check: a manifest at the pinned head passes alone; an older one never.
    expect(&base.manifest("at-head.optm"), 0, "manifest at the head");
    let used = base.write("used.jsonl", r#"{"dataset":"d","shard":"p0","row":0}"#);
    ok(&[
        "check",
        &base.path("at-head.optm"),
        &used,
        "--expect-head",
        &pin,
    ]);
    let o = run(&[
        "manifest",
        &base.ledger,
        "--purpose",
        "ai-training",
        "--at-seq",
        "2",
        "-o",
        &base.path("old.optm"),
    ]);
    expect(&o, 0, "an older manifest");
    let o = run(&[
        "check",
        &base.path("old.optm"),
        &used,
        "--expect-head",
        &pin,
    ]);
    expect(
        &o,
        2,
        "check --expect-head with a manifest older than the pin",
    );
}

#[repr(C)]
struct Rlimit {
    cur: u64,
    max: u64,
}

extern "C" {
    fn setrlimit(resource: i32, rlim: *const Rlimit) -> i32;
}

/// Runs with a 2 GiB address-space limit (RLIMIT_AS = 9 on Linux).
#[cfg(target_os = "linux")]
fn run_limited(args: &[&str]) -> Output {
    use std::os::unix::process::CommandExt;
    let mut c = cmd(args);
    unsafe {
        c.pre_exec(|| {
            let l = Rlimit {
                cur: 2 << 30,
                max: 2 << 30,
            };
            if setrlimit(9, &l) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    c.output().unwrap()
}

/// Finding 6: every input path given /dev/zero and a sparse 2 GB file,
/// under a 2 GiB address-space limit: exit 2 naming the file and the cap
/// (or the line too long), no abort, no out-of-memory kill.
#[cfg(target_os = "linux")]
#[test]
fn every_input_is_bounded_under_an_address_space_limit() {
    let f = fixture();
    let sparse = f.path("sparse.bin");
    std::fs::File::create(&sparse)
        .unwrap()
        .set_len(2_000_000_000)
        .unwrap();
    assert_eq!(excluded(&f, "m.optm"), 0);
    let m = f.path("m.optm");
    let used = f.write("used.jsonl", r#"{"dataset":"d","shard":"p0","row":1}"#);
    let (new_ledger, out_m) = (f.path("new-ledger"), f.path("p.optm"));
    for bad in ["/dev/zero", sparse.as_str()] {
        let cases: Vec<Vec<&str>> = vec![
            vec!["init", &new_ledger, "--key-file", bad],
            vec!["ingest", &f.ledger, bad],
            vec!["apply", &f.ledger, bad],
            vec!["signals", &f.ledger, bad],
            vec!["manifest", &f.ledger, "--policy", bad, "-o", &out_m],
            vec![
                "manifest",
                &f.ledger,
                "--purpose",
                "ai-training",
                "--expect-head",
                bad,
                "-o",
                &out_m,
            ],
            vec!["show", bad],
            vec!["diff", bad, &m],
            vec!["diff", &m, bad],
            vec!["check", bad, &used],
            vec!["check", &m, bad],
            vec!["export", bad, "--to", "jsonl"],
            vec!["runs", "add", &f.ledger, "--model", "x", "--manifest", bad],
            vec![
                "affected",
                &f.ledger,
                "--subject",
                "u1@x.org",
                "--key-file",
                bad,
            ],
            vec![
                "report",
                &f.ledger,
                "--subject",
                "u1@x.org",
                "--key-file",
                bad,
            ],
            vec!["snapshot", &f.ledger, "--key-file", bad],
            vec!["verify", &f.ledger, "--expect-head", bad],
        ];
        for args in cases {
            let o = run_limited(&args);
            let e = err(&o);
            assert_eq!(code(&o), 2, "{args:?}: exit {:?}, stderr {e}", o.status);
            assert!(
                e.starts_with("optout: error:") && e.contains(bad),
                "{args:?}: names the file: {e}"
            );
            assert!(
                e.contains("may be at most") || e.contains("longer than"),
                "{args:?}: names the cap: {e}"
            );
        }
    }
}

/// Finding 8: `-o` never replaces a ledger's segment, writes through a
/// symlink (never replacing it), writes to a device or FIFO directly
/// (never replacing it), and leaves no temp file on a full disk.
#[test]
fn outputs_never_clobber_what_they_should_not() {
    let f = fixture();
    let seg = f.segments().pop().unwrap();
    let before = std::fs::read(&seg).unwrap();
    let o = run(&[
        "manifest",
        &f.ledger,
        "--purpose",
        "ai-training",
        "-o",
        seg.to_str().unwrap(),
    ]);
    expect(&o, 2, "-o a segment of the ledger");
    assert_eq!(
        std::fs::read(&seg).unwrap(),
        before,
        "the segment is intact"
    );
    let o = run(&[
        "manifest",
        &f.ledger,
        "--purpose",
        "ai-training",
        "-o",
        &format!("{}/x.optm", f.ledger),
    ]);
    expect(&o, 2, "-o inside the ledger directory");
    expect(&f.manifest("real.optm"), 0, "a manifest");
    let link = f.path("link.optm");
    std::os::unix::fs::symlink(f.path("real.optm"), &link).unwrap();
    expect(&f.manifest("link.optm"), 0, "through the link");
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink(),
        "the link stays"
    );
    let o = run(&[
        "manifest",
        &f.ledger,
        "--purpose",
        "ai-training",
        "-o",
        "/dev/full",
    ]);
    expect(&o, 2, "a full device");
    let m = std::fs::symlink_metadata("/dev/full").unwrap();
    assert!(
        std::os::unix::fs::FileTypeExt::is_char_device(&m.file_type()),
        "/dev/full is still a device"
    );
    let o = run(&[
        "export",
        &f.path("real.optm"),
        "--to",
        "jsonl",
        "-o",
        "/dev/null",
    ]);
    expect(&o, 0, "export to /dev/null");
    assert!(std::os::unix::fs::FileTypeExt::is_char_device(
        &std::fs::symlink_metadata("/dev/null").unwrap().file_type()
    ));
    // A full disk: a one-page tmpfs (needs root to mount; skipped otherwise).
    let small = f.path("small");
    std::fs::create_dir(&small).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=4k", "tmpfs", &small])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if mounted {
        struct Unmount(String);
        impl Drop for Unmount {
            fn drop(&mut self) {
                let _ = Command::new("umount").arg(&self.0).status();
            }
        }
        let _guard = Unmount(small.clone());
        let big = f.write(
            "big.jsonl",
            &records(20_000, 20_000).replace("legitimate_interest", "consent"),
        );
        let l2 = f.path("L2");
        ok(&["-q", "init", &l2]);
        ok(&["-q", "ingest", &l2, &big]);
        let o = run(&[
            "manifest",
            &l2,
            "--purpose",
            "ai-training",
            "-o",
            &format!("{small}/m.optm"),
        ]);
        expect(&o, 2, "a manifest onto a full disk");
        assert_eq!(
            std::fs::read_dir(&small).unwrap().count(),
            0,
            "no temp file left"
        );
    } else {
        eprintln!("outputs_never_clobber: not root, the full-disk case is not run");
    }
}

/// Finding 9: `verify` run 50 times beside a healthy writer (applies and
/// snapshots) never reports damage; nor after every step of a long mixed
/// workload that snapshots along the way.
#[test]
fn verify_beside_a_healthy_writer_reports_no_damage() {
    let f = fixture();
    let ledger = f.ledger.clone();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writing = stop.clone();
    let writer = std::thread::spawn(move || {
        let mut k = 0;
        while !writing.load(std::sync::atomic::Ordering::Relaxed) {
            let text: String = (0..50)
                .map(|i| objection(&format!("w{k}-{i}@y.org")) + "\n")
                .collect();
            let o = run_stdin(&["-q", "apply", &ledger, "-"], &text);
            assert_eq!(code(&o), 0, "writer: {}", err(&o));
            if k % 10 == 9 {
                let o = run(&["-q", "snapshot", &ledger]);
                assert_eq!(code(&o), 0, "snapshot: {}", err(&o));
            }
            k += 1;
        }
        k
    });
    for run_no in 0..50 {
        let o = run(&["--format", "json", "verify", &f.ledger]);
        assert_eq!(
            code(&o),
            0,
            "run {run_no}: verify beside a writer: {}{}",
            out(&o),
            err(&o)
        );
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let writes = writer.join().unwrap();
    assert!(
        writes > 5,
        "the writer ran beside verify ({writes} applies)"
    );
    ok(&["verify", &f.ledger]);

    // A long mixed workload, verified after every step.
    let g = fixture();
    for step in 0..24 {
        let o = match step % 6 {
            0 => run_stdin(&["-q", "apply", &g.ledger, "-"], &erasure(step)),
            1 => run_stdin(
                &["-q", "ingest", &g.ledger, "-"],
                &records(1000, 50).replace("\"p0\"", &format!("\"s{step}\"")),
            ),
            2 => run(&["-q", "snapshot", &g.ledger]),
            3 => run_stdin(
                &["-q", "apply", &g.ledger, "-"],
                &(0..300)
                    .map(|i| objection(&format!("dsr{step}-{i}@z.org")) + "\n")
                    .collect::<String>(),
            ),
            4 => {
                expect(&g.manifest(&format!("m{step}.optm")), 0, "manifest");
                run(&[
                    "-q",
                    "runs",
                    "add",
                    &g.ledger,
                    "--model",
                    "m",
                    "--manifest",
                    &g.path(&format!("m{step}.optm")),
                ])
            }
            _ => run(&["-q", "snapshot", &g.ledger]),
        };
        expect(&o, 0, &format!("step {step}"));
        let o = run(&["verify", &g.ledger]);
        expect(&o, 0, &format!("verify after step {step}"));
    }
}

/// Finding 11: a bulk DSR import (objections of people without records)
/// in three applies, each opening from the snapshot the previous open
/// wrote: verify stays clean.
#[test]
fn verify_is_clean_after_bulk_dsr_imports() {
    let f = fixture();
    for k in 0..3 {
        let text: String = (0..21_000)
            .map(|i| objection(&format!("dsr{k}-{i}@y.org")) + "\n")
            .collect();
        let file = f.write(&format!("dsr{k}.jsonl"), &text);
        ok(&["-q", "apply", &f.ledger, &file]);
    }
    let o = run(&["verify", &f.ledger]);
    expect(&o, 0, "verify after three bulk imports");
    assert!(
        out(&o).contains("matches the replay"),
        "a snapshot was compared: {}",
        out(&o)
    );
}

/// Finding 12: usage errors, repeated causes, subject ids on stderr, key
/// files in the wrong place, symlinked ledger parts.
#[test]
fn the_smaller_findings() {
    let f = fixture();
    for args in [vec!["--bogus"], vec!["manifest"], vec!["frobnicate"]] {
        let o = run(&args);
        expect(&o, 2, &format!("usage {args:?}"));
        assert!(err(&o).starts_with("optout: error:"), "{}", err(&o));
    }
    let o = run(&["ingest", &f.ledger, &f.path("missing.jsonl")]);
    expect(&o, 2, "missing input");
    assert_eq!(
        err(&o).matches("No such file").count(),
        1,
        "cause once: {}",
        err(&o)
    );
    // Subject ids never echoed.
    let canary = "canary-3c9d@example.com";
    for line in [
        format!(r#"{{"type":"erasure","subject":["{canary}",5],"at":"2025-01-01T00:00:00Z"}}"#),
        format!(
            r#"{{"type":"consent","subject":"a","at":"2025-01-01T00:00:00Z","purposes":["x"],"method":"{canary}"}}"#
        ),
        format!(r#"{{"type":"erasure","subject":"a","at":"{canary}"}}"#),
        format!(
            r#"{{"type":"objection","subject":"a","at":"2025-01-01T00:00:00Z","purposes":["{canary}"]}}"#
        ),
    ] {
        let o = run_stdin(&["apply", &f.ledger, "-"], &line);
        expect(&o, 2, &line);
        assert!(!err(&o).contains("canary"), "{line}: {}", err(&o));
    }
    let o = run_stdin(
        &["apply", &f.ledger, "-"],
        r#"{"type":"consent","subject":"a","at":"2025-01-01T00:00:00Z","purposes":["x"],"method":"opt_in_maybe"}"#,
    );
    assert!(err(&o).contains("field `method`"), "{}", err(&o));
    let o = run(&["affected", &f.ledger, "--subject", "u1@x.org"]);
    assert!(
        !out(&o).contains("u1@x.org") && !err(&o).contains("u1@x.org"),
        "{}",
        out(&o)
    );
    // Conflicting re-registration: file and line.
    let r = f.write("again.jsonl", &records(3, 50).replace("u1@", "zz@"));
    let o = run(&["ingest", &f.ledger, &r]);
    expect(&o, 2, "conflict");
    assert!(
        err(&o).contains("again.jsonl:2: field `row`"),
        "{}",
        err(&o)
    );
    // A key file inside the ledger directory, or readable by others.
    std::fs::create_dir(f.path("K")).unwrap();
    let o = run(&[
        "init",
        &f.path("K"),
        "--key-file",
        &format!("{}/K/key", f.root.display()),
    ]);
    expect(&o, 2, "a key inside the ledger directory");
    assert!(
        !Path::new(&f.path("K")).join("key").exists(),
        "no key written there"
    );
    let key = format!("{}.key", f.ledger);
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let o = run(&["report", &f.ledger, "--subject", "u1@x.org"]);
    expect(&o, 0, "report");
    assert!(
        err(&o).contains("warning") && err(&o).contains("0644"),
        "{}",
        err(&o)
    );
    // quarantine/ replaced by a symlink out of the ledger.
    let q = Path::new(&f.ledger).join("quarantine");
    std::fs::remove_dir(&q).unwrap();
    std::fs::create_dir(f.path("outside")).unwrap();
    std::os::unix::fs::symlink(f.path("outside"), &q).unwrap();
    let o = run_stdin(&["apply", &f.ledger, "-"], &erasure(1));
    expect(&o, 2, "a symlinked quarantine/");
    assert!(err(&o).contains("symbolic link"), "{}", err(&o));
    expect(
        &run(&["verify", &f.ledger]),
        1,
        "verify of a symlinked quarantine/",
    );
}

/// Issue 21, part 7: the "locked" error names the holder's PID and since
/// when; `--wait SECONDS` waits for the holder instead of failing.
#[test]
fn a_second_writer_names_the_holder_and_waits_with_wait() {
    let f = fixture();
    let fifo = f.path("events.fifo");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let first = f.writer_on(&f.ledger, &fifo);
    let pid = first.0.as_ref().unwrap().id();
    // The holder writes its name just after taking the lock.
    let lock = Path::new(&f.ledger).join("LOCK");
    let t0 = std::time::Instant::now();
    while !std::fs::read_to_string(&lock).is_ok_and(|t| t.starts_with(&format!("pid {pid} since ")))
    {
        assert!(t0.elapsed().as_secs() < 30, "the holder never wrote LOCK");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let o = run_stdin(&["apply", &f.ledger, "-"], &erasure(9));
    expect(&o, 2, "a second writer without --wait");
    assert!(
        err(&o).contains("locked by another writer")
            && err(&o).contains(&format!("(pid {pid} since ")),
        "{}",
        err(&o)
    );
    let mut second = Writer(Some(
        cmd(&["--wait", "60", "apply", &f.ledger, "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    ));
    let c = second.0.as_mut().unwrap();
    c.stdin
        .take()
        .unwrap()
        .write_all(erasure(8).as_bytes())
        .unwrap();
    // Still held: a writer without --wait is refused, the waiting one has
    // not given up.
    expect(
        &run_stdin(&["apply", &f.ledger, "-"], &erasure(7)),
        2,
        "still locked",
    );
    assert!(
        c.try_wait().unwrap().is_none(),
        "--wait gave up while the lock was held"
    );
    std::fs::write(&fifo, objection("u1@x.org") + "\n").unwrap();
    expect(&first.finish(), 0, "the first writer");
    expect(
        &second.finish(),
        0,
        "the waiting writer, once the lock was free",
    );
    let o = run(&["--format", "json", "verify", &f.ledger]);
    assert_eq!(json(&o)["seq"], 4, "init, records, both writers' events");
}
