#!/usr/bin/env bash
# Runs every test of the project: the one command for a fresh machine with
# only the Rust toolchain and Python 3.11.
#
#   bash scripts/test.sh
#
# Honours CARGO_TARGET_DIR. Exits non-zero on the first failure.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== cargo test --all-features (unit, integration, CLI, doc tests)"
cargo test --all-features

# Python binding tests (examples/python): run_tests.sh creates .venv at the
# repo root, installs maturin, pytest, numpy, pandas, pyroaring, pyarrow,
# polars, duckdb, datasets, deltalake, pyiceberg, webdataset, blake3 and the engines
# the readers run on for real (pyspark with Java 17, ray[data]; required),
# builds the bindings into it and runs pytest, failing when pytest collects
# no test (exit 5).
echo "== Python binding tests (examples/python)"
bash examples/python/run_tests.sh

# The peer comparison harness on W-S (benches/peers, scripts/peers.sh):
# optout, DuckDB, Polars, numpy, pyroaring and roaring-rs must compute the
# same excluded set (count and checksum). No timing is asserted.
echo "== peer comparison smoke (W-S)"
bash scripts/peers.sh ws --reps 1 --smoke

echo "== all tests passed"
