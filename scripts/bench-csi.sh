#!/usr/bin/env bash
# CSI call latency over the real socket: 2,000 CreateVolume/DeleteVolume pairs (state fsync'd to
# the disk holding --state-dir) and 10,000 Probe calls, p50/p99 and calls/s.
# Usage: scripts/bench-csi.sh [STATE_PARENT_DIR]   (default: a directory under /var/tmp, on disk)
set -euo pipefail
cd "$(dirname "$0")/.."
swift build -c release --quiet --product vineyard-csi
swift build -c release --quiet --product vineyard-csi-bench
BIN="$(swift build -c release --show-bin-path)"
WORK="$(mktemp -d "${1:-/var/tmp}/vineyard-csi-bench.XXXXXX")"
DRIVER_PID=""
cleanup() { [ -n "$DRIVER_PID" ] && kill "$DRIVER_PID" 2>/dev/null; wait 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT

"$BIN/vineyard-csi" --endpoint "unix://$WORK/csi.sock" --nodeid bench --state-dir "$WORK/state" \
    --store-dir "$WORK/shm" --store-size 64Gi >"$WORK/driver.log" 2>&1 &
DRIVER_PID=$!
for _ in $(seq 200); do [ -S "$WORK/csi.sock" ] && break; sleep 0.05; done
echo "state on: $(df --output=source,fstype "$WORK" | tail -n 1)"
"$BIN/vineyard-csi-bench" csi --endpoint "unix://$WORK/csi.sock"
