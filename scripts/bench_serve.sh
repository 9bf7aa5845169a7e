#!/usr/bin/env bash
# Load benchmark of `optout serve` (PERF.md T11; not a test, no timing is
# asserted): 64 concurrent clients posting single objections for 30 s,
# durable events/s and latency percentiles, beside the CLI's `apply` of one
# event per process in the same run.
#
#   bash scripts/bench_serve.sh [CLIENTS] [SECONDS] [CLI_SECONDS]
#
# Runs the load twice: without and with an Idempotency-Key per request
# (keys cost a journal fsync per group). Prints one JSON line per run.
# Honours CARGO_TARGET_DIR.
set -euo pipefail
cd "$(dirname "$0")/.."
CLIENTS="${1:-64}"
SECS="${2:-30}"
CLI_SECS="${3:-10}"
TARGET="${CARGO_TARGET_DIR:-target}"
cargo build -q --release --features cli,server --bin optout --example serve_load
BIN="$TARGET/release/optout"
LOAD="$TARGET/release/examples/serve_load"
WORK="$(mktemp -d)"
PID=""
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null; wait 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT

"$BIN" -q init "$WORK/L"
SECRET="$("$BIN" token add "$WORK/tokens.json" --name load --scope events:write | head -1)"

serve() {
  "$BIN" serve "$WORK/L" --tokens "$WORK/tokens.json" --listen 127.0.0.1:0 --max-concurrent 1024 \
    > "$WORK/out" 2> "$WORK/err" &
  PID=$!
  for _ in $(seq 100); do grep -q listening "$WORK/out" 2>/dev/null && break; sleep 0.1; done
  ADDR="$(sed 's|listening on http://||' "$WORK/out")"
}
stop() { kill -TERM "$PID"; wait "$PID" || true; PID=""; }

for keys in "" "--keys"; do
  serve
  "$LOAD" "$ADDR" "$SECRET" "$CLIENTS" "$SECS" $keys
  stop
done

# The CLI: one `optout apply` process per event (open, append + fsync, exit).
python3 - "$BIN" "$WORK/L" "$CLI_SECS" <<'PY'
import json, subprocess, sys, time
bin, ledger, secs = sys.argv[1], sys.argv[2], float(sys.argv[3])
lat = []
t0 = time.perf_counter()
i = 0
while time.perf_counter() - t0 < secs:
    ev = json.dumps({"type": "objection", "subject": f"cli-{i}@example.com", "at": "2025-02-01T00:00:00Z", "purposes": ["ai-training"]})
    t = time.perf_counter()
    subprocess.run([bin, "-q", "apply", ledger, "-"], input=ev.encode(), check=True)
    lat.append(time.perf_counter() - t)
    i += 1
el = time.perf_counter() - t0
lat.sort()
q = lambda p: lat[min(int(len(lat) * p), len(lat) - 1)] * 1e3
print(json.dumps({"what": "cli apply, one event per process", "seconds": round(el, 2), "acknowledged": len(lat),
                  "events_per_s": round(len(lat) / el), "p50_ms": round(q(0.5), 2), "p99_ms": round(q(0.99), 2)}))
PY
"$BIN" verify "$WORK/L" | head -1
