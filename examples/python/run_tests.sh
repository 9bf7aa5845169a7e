#!/usr/bin/env bash
# Builds the optout Python bindings and runs their tests.
#
#   bash examples/python/run_tests.sh [pytest args...]     (from the repo root)
#
# Creates .venv at the repo root if missing, installs what the tests need
# (maturin, pytest, numpy, pandas, pyroaring, pyarrow, polars, duckdb,
# datasets, deltalake, pyiceberg, webdataset, blake3, and the engines the readers are
# tested on for real: pyspark (needs Java 17) and ray[data]), builds the
# bindings in release mode into the venv, builds the `optout` binary with the
# service (for the optout.Client test), and runs pytest. Fails if an
# engine does not install or pytest collects no test (exit 5). torch is not
# installed (too large); its reader is tested without it.
# Cargo builds into $CARGO_TARGET_DIR, else target/python under the repo.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
HERE="$ROOT/examples/python"
VENV="$ROOT/.venv"
# The optout binary for test_client.py (`optout serve`) goes where the main
# build puts it (scripts/test.sh's `cargo test --all-features` already built it).
BIN_TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target/python}"

step() { printf '\n== %s (%ss)\n' "$1" "$SECONDS"; }
die() { echo "run_tests.sh: $*" >&2; exit 1; }

if [ ! -x "$VENV/bin/python" ]; then
  step "creating $VENV"
  PY="${PYTHON:-}"
  if [ -z "$PY" ]; then
    if command -v python3.11 >/dev/null 2>&1; then PY=python3.11; else PY=python3; fi
  fi
  "$PY" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip install -q --disable-pip-version-check)

step "installing test dependencies"
"${PIP[@]}" maturin pytest numpy pandas pyroaring pyarrow polars duckdb datasets deltalake pyiceberg webdataset blake3

step "installing the engines: pyspark, ray[data] (required)"
# aiohttp: Ray Data's file listing imports fsspec's HTTP filesystem.
timeout 900 "${PIP[@]}" pyspark "ray[data]" aiohttp \
  || die "pyspark / ray[data] did not install: the Spark and Ray readers cannot be tested"
java -version >/dev/null 2>&1 || die "no java on PATH: Spark needs Java 17 (apt-get install openjdk-17-jre-headless)"

step "building the bindings (maturin develop --release)"
(cd "$HERE" && VIRTUAL_ENV="$VENV" PATH="$VENV/bin:$PATH" \
  "$VENV/bin/maturin" develop --release --quiet)

step "building the optout binary with the service (tests/test_client.py)"
(cd "$ROOT" && CARGO_TARGET_DIR="$BIN_TARGET" cargo build --quiet --features cli,server --bin optout)
export OPTOUT_BIN="${OPTOUT_BIN:-$BIN_TARGET/debug/optout}"

step "running pytest"
set +e
(cd "$HERE" && "$VENV/bin/python" -m pytest tests -q "$@")
rc=$?
set -e
if [ "$rc" -eq 5 ]; then
  echo "run_tests.sh: pytest collected no tests: failing" >&2
  exit 1
fi
step "done (pytest exit $rc)"
exit "$rc"
