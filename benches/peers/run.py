#!/usr/bin/env python3
"""optout against the tools a data team would otherwise use, side by side.

    bash scripts/peers.sh [ws|wm|wc|wx|wsx] [--objecting N] [--reps K] [--smoke]
    bash scripts/peers.sh wm --cold [--scale DIV] [--reps K] [--drop-caches]

With --cold: whole processes instead, alternating, median of K: a fresh
`optout manifest` on a snapshotted ledger of the workload (built once with
`peers ledger`, kept under OUT) against a fresh Python process running
DuckDB's semi-join over the Parquet files (T2). --scale divides records and
subjects (wm --scale 50: 2M records; --scale 5: 20M).

(scripts/peers.sh sets up the venv and builds the Rust side, then runs this.)

One run, one machine, one workload (PERF.md: generated deterministically by
optout's splitmix generator and dumped as raw arrays, then written once as
Parquet for the peers). Every peer runs in its own process, so its peak RSS
(``wait4``'s ru_maxrss) is its own. Each peer reports the median of REPS
runs of the exclusion query (setup such as loading tables or building
per-subject bitmaps is reported separately, not timed in the query), the
number of excluded records, and an order-independent checksum of the
excluded record numbers; the harness fails unless every peer computed the
same set. Results go to OUT/results-WORKLOAD.json and a Markdown table on
stdout, with the ratio peer time / optout time (how many times faster
optout is).

The query, per PERF.md: records(record_id, subject_id) semi-join
objections(subject_id) -> sorted excluded record ids. Under W-X also the
three provenance rules (consent-basis records need every subject's
consent, the `telemetry` category is excluded, one source opted out),
expressed for the SQL/dataframe peers as attribute columns.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def splitmix64_np(x):
    import numpy as np

    with np.errstate(over="ignore"):
        z = x + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def checksum(ids) -> int:
    """The same order-independent checksum as examples/peers.rs."""
    import numpy as np

    ids = np.asarray(ids, dtype=np.uint64)
    with np.errstate(over="ignore"):
        return int(splitmix64_np(ids).sum(dtype=np.uint64))


def median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2], xs[0]


# --------------------------------------------------------------------------
# Peers: each runs in a child process (`run.py --peer NAME DIR REPS`).
# --------------------------------------------------------------------------


def load(d: Path):
    import numpy as np

    meta = json.loads((d / "meta.json").read_text())
    rid = np.fromfile(d / "link_record.u32", dtype=np.uint32)
    sid = np.fromfile(d / "link_subject.u32", dtype=np.uint32)
    obj = np.fromfile(d / "objectors.u32", dtype=np.uint32)
    return meta, rid, sid, obj


def sql_query(meta, records: str, links: str, objections: str, consenting: str) -> str:
    if not meta["mixed"]:
        return (
            f"SELECT record_id FROM {links} WHERE subject_id IN "
            f"(SELECT subject_id FROM {objections}) ORDER BY record_id"
        )
    return f"""
        SELECT record_id FROM {links} WHERE subject_id IN (SELECT subject_id FROM {objections})
        UNION
        SELECT l.record_id FROM {links} l JOIN {records} r USING (record_id)
          WHERE r.basis = 'consent'
            AND l.subject_id NOT IN (SELECT subject_id FROM {consenting})
        UNION
        SELECT record_id FROM {records}
          WHERE category = 'telemetry' OR source = 'src3.example'
        ORDER BY record_id"""


def peer_duckdb(d: Path, reps: int, memory: bool):
    import duckdb

    meta = json.loads((d / "meta.json").read_text())
    con = duckdb.connect()
    con.execute(f"SET threads TO {os.cpu_count() or 1}")
    t = time.perf_counter()
    names = {}
    for name in ["records", "links", "objections", "consenting"]:
        p = d / f"{name}.parquet"
        if not p.exists():
            names[name] = "(SELECT NULL::UINTEGER AS subject_id WHERE false)"
            continue
        if memory:
            con.execute(f"CREATE TABLE {name} AS SELECT * FROM read_parquet('{p}')")
            names[name] = name
        else:
            names[name] = f"read_parquet('{p}')"
    setup = (time.perf_counter() - t) * 1e3
    q = sql_query(meta, names["records"], names["links"], names["objections"], names["consenting"])
    times, out = [], None
    for _ in range(reps):
        t = time.perf_counter()
        out = con.execute(q).fetchnumpy()["record_id"]
        times.append((time.perf_counter() - t) * 1e3)
    return times, setup, out


def peer_polars(d: Path, reps: int):
    import polars as pl

    meta = json.loads((d / "meta.json").read_text())
    links = pl.scan_parquet(d / "links.parquet")
    obj = pl.scan_parquet(d / "objections.parquet")
    q = links.join(obj, on="subject_id", how="semi").select("record_id")
    if meta["mixed"]:
        recs = pl.scan_parquet(d / "records.parquet")
        cons = pl.scan_parquet(d / "consenting.parquet")
        consent_missing = (
            links.join(recs.filter(pl.col("basis") == "consent"), on="record_id", how="semi")
            .join(cons, on="subject_id", how="anti")
            .select("record_id")
        )
        rules = recs.filter(
            (pl.col("category") == "telemetry") | (pl.col("source") == "src3.example")
        ).select("record_id")
        q = pl.concat([q, consent_missing, rules]).unique()
    q = q.sort("record_id")
    times, out = [], None
    for _ in range(reps):
        t = time.perf_counter()
        out = q.collect()["record_id"].to_numpy()
        times.append((time.perf_counter() - t) * 1e3)
    return times, 0.0, out


def peer_numpy(d: Path, reps: int):
    import numpy as np

    t = time.perf_counter()
    meta, rid, sid, obj = load(d)
    setup = (time.perf_counter() - t) * 1e3
    if meta["mixed"]:
        raise SystemExit("numpy: W-X rules not expressed")
    times, out = [], None
    for _ in range(reps):
        t = time.perf_counter()
        mask = np.zeros(meta["subjects"], dtype=bool)
        mask[obj] = True
        out = rid[mask[sid]]  # rid ascends, one subject per record: sorted, unique
        times.append((time.perf_counter() - t) * 1e3)
    return times, setup, out


def peer_pyroaring(d: Path, reps: int):
    import numpy as np
    from pyroaring import BitMap

    t = time.perf_counter()
    meta, rid, sid, obj = load(d)
    if meta["mixed"]:
        raise SystemExit("pyroaring: W-X rules not expressed")
    order = np.argsort(sid, kind="stable")
    sid_sorted = sid[order]
    rid_sorted = rid[order]
    del order
    bounds = np.searchsorted(sid_sorted, np.arange(meta["subjects"] + 1, dtype=np.uint32))
    per = [BitMap(rid_sorted[bounds[s] : bounds[s + 1]]) for s in range(meta["subjects"])]
    del sid_sorted, rid_sorted, rid, sid
    setup = (time.perf_counter() - t) * 1e3
    times, out = [], None
    for _ in range(reps):
        t = time.perf_counter()
        u = BitMap.union(*[per[s] for s in obj])
        times.append((time.perf_counter() - t) * 1e3)
        out = u
    return times, setup, np.array(out.to_array(), dtype=np.uint64)


PY_PEERS = {
    "duckdb-memory": lambda d, r: peer_duckdb(d, r, memory=True),
    "duckdb-parquet": lambda d, r: peer_duckdb(d, r, memory=False),
    "polars": peer_polars,
    "numpy": peer_numpy,
    "pyroaring": peer_pyroaring,
}


def vm_hwm_mb() -> int:
    """This process's peak RSS (VmHWM: unlike ru_maxrss, not floored by the
    parent's RSS at fork)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) // 1024
    return 0


def child(name: str, d: Path, reps: int) -> None:
    times, setup, out = PY_PEERS[name](d, reps)
    med, mn = median(times)
    print(
        json.dumps(
            {
                "peer": name,
                "median_ms": med,
                "min_ms": mn,
                "setup_ms": setup,
                "excluded": int(len(out)),
                "checksum": checksum(out),
                "peak_rss_mb": vm_hwm_mb(),
            }
        )
    )


# --------------------------------------------------------------------------
# The driver.
# --------------------------------------------------------------------------


def run_child(cmd, env=None):
    """Runs `cmd`, returns (its last JSON line, its peak RSS in MiB)."""
    t = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env)
    out = p.stdout.read()
    _, status, ru = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        raise RuntimeError(f"{cmd} exited with {p.returncode}:\n{out}")
    line = [l for l in out.splitlines() if l.startswith("{")][-1]
    res = json.loads(line)
    # Children report their own VmHWM; ru_maxrss would include the RSS
    # the parent had when it forked them.
    res.setdefault("peak_rss_mb", ru.ru_maxrss // 1024)
    res["wall_s"] = time.perf_counter() - t
    return res


def prepare(peers_bin: Path, workload: str, objecting: int, d: Path) -> dict:
    """Dumps the workload and writes the Parquet files (once per DIR)."""
    meta_path = d / "meta.json"
    if meta_path.exists():
        return json.loads(meta_path.read_text())
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    d.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    res = subprocess.run(
        [str(peers_bin), "dump", workload, str(objecting), str(d)],
        check=True,
        capture_output=True,
        text=True,
    )
    meta = json.loads(res.stdout.strip().splitlines()[-1])
    rid = np.fromfile(d / "link_record.u32", dtype=np.uint32)
    sid = np.fromfile(d / "link_subject.u32", dtype=np.uint32)
    pq.write_table(
        pa.table({"record_id": rid, "subject_id": sid}), d / "links.parquet", row_group_size=1 << 20
    )
    del rid, sid
    obj = np.fromfile(d / "objectors.u32", dtype=np.uint32)
    pq.write_table(pa.table({"subject_id": obj}), d / "objections.parquet")
    if meta["mixed"]:
        cons = np.fromfile(d / "consenting.u32", dtype=np.uint32)
        pq.write_table(pa.table({"subject_id": cons}), d / "consenting.parquet")
        # Per-record attributes, as a data team would keep them
        # (workload::profile_of: shard s's source, basis and category).
        n, rows = meta["records"], meta["rows"]
        rec = np.arange(n, dtype=np.uint32)
        shard = rec // np.uint32(rows)
        source = pa.DictionaryArray.from_arrays(
            pa.array(shard % 10, pa.int32()),
            pa.array([f"src{i}.example" for i in range(10)]),
        )
        basis = pa.DictionaryArray.from_arrays(
            pa.array((shard % 10 == 1).astype(np.int32)),
            pa.array(["legitimate_interest", "consent"]),
        )
        category = pa.DictionaryArray.from_arrays(
            pa.array((shard % 20 == 7).astype(np.int32)), pa.array(["text", "telemetry"])
        )
        pq.write_table(
            pa.table({"record_id": rec, "source": source, "basis": basis, "category": category}),
            d / "records.parquet",
            row_group_size=1 << 20,
        )
    meta["prepare_s"] = time.perf_counter() - t
    meta_path.write_text(json.dumps(meta))
    return meta


def timed(cmd):
    """Runs `cmd` as a whole process; returns (wall seconds, stdout)."""
    t = time.perf_counter()
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    wall = time.perf_counter() - t
    if p.returncode != 0:
        raise RuntimeError(f"{cmd} exited with {p.returncode}:\n{p.stdout}")
    return wall, p.stdout


def cold(a, d: Path, meta: dict, name: str) -> int:
    """Whole processes, alternating: `optout manifest` on a snapshotted ledger
    (a fresh process: open, map the snapshot, evaluate, seal, write) against a
    fresh Python process running DuckDB's semi-join over the Parquet files
    (start, import, query, fetch). Page cache warm unless --drop-caches."""
    if meta["mixed"]:
        print("--cold runs the objection workloads (ws, wm, wc) only", file=sys.stderr)
        return 2
    c = d / "cold"
    info_path = c / "ledger.json"
    if not info_path.exists():
        res = subprocess.run([str(a.bin), "ledger", name, str(a.objecting), str(c)],
                             check=True, capture_output=True, text=True)
        info_path.write_text(res.stdout.strip().splitlines()[-1])
    info = json.loads(info_path.read_text())
    print(f"  ledger: built in {info['build_s']} s, snapshot {info['snapshot_bytes'] / 1e6:.0f} MB "
          f"written in {info['snapshot_s']} s", file=sys.stderr)
    optout = [str(a.optout), "manifest", str(c / "ledger"), "--purpose", "ai-training",
              "--at", "2027-01-15T08:00:00Z", "-o", str(c / "out.manifest")]
    duck = [sys.executable, __file__, "--peer", "duckdb-parquet", str(d), "1"]

    def drop():
        if a.drop_caches:
            os.sync()
            Path("/proc/sys/vm/drop_caches").write_text("3\n")

    times = {"optout manifest": [], "duckdb-parquet process": []}
    counts = {}
    timed(optout)  # warm the page cache (and check it runs) before timing
    timed(duck)
    for _ in range(a.reps):
        drop()
        w, out = timed(optout)
        times["optout manifest"].append(w * 1e3)
        m = re.search(r"excluded ([0-9,]+) of", out)
        counts["optout manifest"] = int(m.group(1).replace(",", "")) if m else -1
        drop()
        w, out = timed(duck)
        times["duckdb-parquet process"].append(w * 1e3)
        counts["duckdb-parquet process"] = json.loads(out.strip().splitlines()[-1])["excluded"]
    if len(set(counts.values())) != 1:
        print(f"DISAGREEMENT: {counts}", file=sys.stderr)
        return 1
    base = median(times["optout manifest"])[0]
    cache = "page cache dropped before each run" if a.drop_caches else "page cache warm"
    print(f"\n{name}: {meta['records']:,} records, {meta['subjects']:,} subjects, "
          f"{a.objecting / 100:g}% objecting; whole processes, alternating, median of {a.reps}, {cache}; "
          f"{counts['optout manifest']:,} excluded by both\n")
    print("| process | wall (median) | min | ratio |")
    print("|---|---:|---:|---:|")
    for k, v in times.items():
        med, mn = median(v)
        print(f"| {k} | {med:.0f} ms | {mn:.0f} ms | {'—' if k.startswith('optout') else f'{med / base:.2f}×'} |")
    (d / f"results-cold{'-dropped' if a.drop_caches else ''}.json").write_text(
        json.dumps({"meta": meta, "ledger": info, "times_ms": times, "excluded": counts}, indent=1))
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("workload", nargs="?", default="ws", choices=["ws", "wm", "wc", "wx", "wsx"])
    ap.add_argument("--objecting", type=int, default=100, help="objecting subjects per 10,000 (100 = 1%%)")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--out", type=Path, default=ROOT / "target" / "peers")
    ap.add_argument("--peers", default="optout,duckdb-memory,duckdb-parquet,polars,numpy,pyroaring,roaring-rs")
    ap.add_argument("--smoke", action="store_true", help="check agreement only; print no table")
    ap.add_argument("--bin", type=Path, default=ROOT / "target" / "release" / "examples" / "peers")
    ap.add_argument("--peer", nargs=3, metavar=("NAME", "DIR", "REPS"), help=argparse.SUPPRESS)
    ap.add_argument("--scale", type=int, default=1, help="divide records and subjects by this (wm --scale 50: 2M records)")
    ap.add_argument("--cold", action="store_true",
                    help="whole processes: `optout manifest` on a snapshotted ledger against a fresh DuckDB process over Parquet, alternating")
    ap.add_argument("--drop-caches", action="store_true", help="with --cold: drop the page cache before each run (root)")
    ap.add_argument("--optout", type=Path, default=ROOT / "target" / "release" / "optout")
    a = ap.parse_args()
    if a.peer:
        child(a.peer[0], Path(a.peer[1]), int(a.peer[2]))
        return 0

    wname = a.workload if a.scale == 1 else f"{a.workload}/{a.scale}"
    d = a.out / (f"{a.workload}-{a.objecting}" + ("" if a.scale == 1 else f"-div{a.scale}"))
    meta = prepare(a.bin, wname, a.objecting, d)
    print(f"workload {a.workload}: {meta['records']:,} records, {meta['links']:,} links, "
          f"{meta['subjects']:,} subjects, {meta['objectors']:,} objecting; reps {a.reps}", file=sys.stderr)
    if a.cold:
        return cold(a, d, meta, wname)
    env = dict(os.environ, OPTOUT_WORKLOAD_CACHE=str(d))
    results = []
    for name in a.peers.split(","):
        if meta["mixed"] and name in ("numpy", "pyroaring", "roaring-rs"):
            continue  # they answer objections only
        if name == "optout":
            cmd = [str(a.bin), "optout", wname, str(a.objecting), str(a.reps)]
        elif name == "roaring-rs":
            cmd = [str(a.bin), "roaring", wname, str(a.objecting), str(a.reps)]
        else:
            cmd = [sys.executable, __file__, "--peer", name, str(d), str(a.reps)]
        r = run_child(cmd, env=env)
        print(f"  {name:15} {r['median_ms']:10.2f} ms  (setup {r['setup_ms'] / 1e3:7.1f} s{' ' + r['setup_kind'] if 'setup_kind' in r else ''}, "
              f"peak RSS {r['peak_rss_mb']:6} MiB, excluded {r['excluded']:,})", file=sys.stderr)
        results.append(r)

    base = next((r for r in results if r["peer"] == "optout"), results[0])
    bad = [r["peer"] for r in results if (r["excluded"], r["checksum"]) != (base["excluded"], base["checksum"])]
    (d / f"results-{a.workload}.json").write_text(json.dumps({"meta": meta, "results": results}, indent=1))
    if bad:
        print(f"DISAGREEMENT: {bad} excluded a different set than {base['peer']}", file=sys.stderr)
        return 1
    if a.smoke:
        print(f"peers smoke: {len(results)} peers agree on {base['excluded']:,} excluded records")
        return 0
    print(f"\n{a.workload}, {a.objecting / 100:g}% objecting, median of {a.reps}; "
          f"ratio = peer time / optout time\n")
    print("| peer | query (median) | min | ratio | setup | peak RSS |")
    print("|---|---:|---:|---:|---:|---:|")
    for r in results:
        ratio = r["median_ms"] / base["median_ms"] if base["median_ms"] > 0 else float("nan")
        print(f"| {r['peer']} | {r['median_ms']:.1f} ms | {r['min_ms']:.1f} ms | "
              f"{'—' if r is base else f'{ratio:.1f}×'} | {r['setup_ms'] / 1e3:.1f} s | {r['peak_rss_mb']:,} MiB |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
