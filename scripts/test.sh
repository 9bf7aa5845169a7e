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

# ---------------------------------------------------------------------------
# Python binding tests (examples/python).
# Filled in by the Python bindings work: create a venv under .venv,
# `pip install maturin pytest numpy`, build the extension into it, run pytest.
# pytest exit code 5 ("no tests collected") must count as a failure.
# ---------------------------------------------------------------------------
if [ -d examples/python ]; then
    echo "== Python binding tests (examples/python)"
    # TODO(python bindings): venv, maturin build, pytest; treat exit code 5 as failure.
    :
fi

echo "== all tests passed"
