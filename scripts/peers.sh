#!/usr/bin/env bash
# The peer comparison (issue 7, BENCHMARKS.md): optout against DuckDB
# (in-memory and over Parquet), Polars, numpy, pyroaring and roaring-rs on
# the same generated workload, in one run.
#
#   bash scripts/peers.sh [ws|wm|wc|wx|wsx] [--objecting N] [--reps K] [--smoke]
#   bash scripts/peers.sh wm --cold [--scale DIV] [--reps K]   # whole processes (T2)
#
# Creates .venv at the repo root if missing, installs the peers, builds the
# Rust side (examples/peers.rs) in release mode, then runs
# benches/peers/run.py. Data and results go to target/peers/.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
if [ ! -x "$VENV/bin/python" ]; then
  PY="${PYTHON:-}"
  if [ -z "$PY" ]; then
    if command -v python3.11 >/dev/null 2>&1; then PY=python3.11; else PY=python3; fi
  fi
  "$PY" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install -q --disable-pip-version-check numpy pyarrow polars pyroaring duckdb
# One build, one feature set: the example and `optout` (for --cold) share the library build.
(cd "$ROOT" && cargo build -q --release --features cli --example peers --bin optout)
exec "$VENV/bin/python" "$ROOT/benches/peers/run.py" "$@"
