//! Unit tests of the in-memory file system model.
use super::*;

#[test]
fn unsynced_write_is_lost_by_durable_image() {
    let io = MemIo::new();
    io.create_dir(Path::new("/d")).unwrap();
    io.sync_dir(Path::new("/")).unwrap();
    io.create_file(Path::new("/d/f")).unwrap();
    io.write_at(Path::new("/d/f"), 0, b"abc").unwrap();
    io.sync_file(Path::new("/d/f")).unwrap();
    // The file's entry is not durable: the durable image has no file.
    let img = io.crash_image(CrashKind::DurableOnly, 1);
    assert!(!img.exists(Path::new("/d/f")).unwrap());
    io.sync_dir(Path::new("/d")).unwrap();
    io.write_at(Path::new("/d/f"), 3, b"def").unwrap();
    let img = io.crash_image(CrashKind::DurableOnly, 1);
    assert_eq!(img.read_all(Path::new("/d/f")).unwrap(), b"abc");
    let img = io.crash_image(CrashKind::KeepAll, 1);
    assert_eq!(img.read_all(Path::new("/d/f")).unwrap(), b"abcdef");
}

#[test]
fn random_images_reorder_and_tear_unsynced_writes() {
    let io = MemIo::new();
    let f = Path::new("/f");
    io.create_file(f).unwrap();
    io.sync_dir(Path::new("/")).unwrap();
    io.write_at(f, 0, b"AAAA").unwrap();
    io.write_at(f, 4, b"BBBB").unwrap();
    let (mut reordered, mut torn, mut both, mut none) = (false, false, false, false);
    for seed in 0..200 {
        let b = io.crash_image(CrashKind::Random, seed).read_all(f).unwrap();
        match &b[..] {
            b"\0\0\0\0BBBB" => reordered = true,
            b"AAAABBBB" => both = true,
            b"" => none = true,
            _ if b.len() < 8 || b[..4] != *b"AAAA" || b[4..] != *b"BBBB" => torn = true,
            _ => {}
        }
    }
    assert!(reordered && torn && both && none);
}

#[test]
fn faults_once_and_from() {
    let io = MemIo::new();
    io.set_fault(Some(Fault::Once(1)));
    assert!(io.create_dir(Path::new("/a")).is_ok());
    assert!(io.create_dir(Path::new("/b")).is_err());
    assert!(io.create_dir(Path::new("/b")).is_ok());
    io.set_fault(Some(Fault::From(3)));
    assert!(io.exists(Path::new("/a")).is_err());
    assert!(io.exists(Path::new("/a")).is_err());
    assert_eq!(io.faults_fired(), 3);
}

#[test]
fn lock_is_exclusive_until_dropped() {
    let io = MemIo::new();
    let l = io.try_lock(Path::new("/LOCK")).unwrap();
    assert!(l.is_some());
    assert!(io.try_lock(Path::new("/LOCK")).unwrap().is_none());
    drop(l);
    assert!(io.try_lock(Path::new("/LOCK")).unwrap().is_some());
}
