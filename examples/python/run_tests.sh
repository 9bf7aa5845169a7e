#!/usr/bin/env bash
# Builds the optout Python bindings and runs their tests.
#
#   bash examples/python/run_tests.sh [pytest args...]     (from the repo root)
#
# Creates .venv at the repo root if missing, installs what the tests need
# (maturin, pytest, numpy, pyroaring, pyarrow, polars, datasets, deltalake,
# pyiceberg, blake3; ray[data] unless OPTOUT_SKIP_RAY=1), builds the bindings in release mode into the
# venv, and runs pytest. Fails if pytest collects no test (exit 5).
# Cargo builds into $CARGO_TARGET_DIR, else target/python under the repo.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
HERE="$ROOT/examples/python"
VENV="$ROOT/.venv"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target/python}"

step() { printf '\n== %s (%ss)\n' "$1" "$SECONDS"; }

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
"${PIP[@]}" maturin pytest numpy pyroaring pyarrow polars datasets deltalake pyiceberg blake3

if [ "${OPTOUT_SKIP_RAY:-0}" != "1" ]; then
  step "installing ray[data] (optional; the Ray test is skipped without it)"
  # aiohttp: Ray Data's file listing imports fsspec's HTTP filesystem.
  if ! timeout 300 "${PIP[@]}" "ray[data]" aiohttp; then
    echo "ray[data] did not install: test_ray_data_map_batches will be skipped;" \
         "test_map_batches_fallback_without_ray runs the same batch function without Ray"
  fi
fi

step "building the bindings (maturin develop --release)"
(cd "$HERE" && VIRTUAL_ENV="$VENV" PATH="$VENV/bin:$PATH" \
  "$VENV/bin/maturin" develop --release --quiet)

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
