#!/usr/bin/env bash
# Benchmark of a volume's vineyard.sock against the real vineyardd, in the same run: put and
# get of 1 MiB .. 1 GiB numpy arrays with the unmodified vineyard Python client (see
# scripts/bench_ipc.py for what is timed). Needs root and /dev/fuse (the socket is served in a
# published volume, through the driver's own CSI calls in local mode).
#   scripts/bench-ipc.sh [--sizes 1,4,16,64,256,1024] [--repeat 5] [--rounds 3] [--against-itself]
# STORE_SIZE (default 6Gi) sizes both stores. STORE_HUGE=1 puts the driver's store on a tmpfs of
# its own mounted huge=within_size, so the arena gets transparent huge pages in the driver and in
# every client's mapping (what an operator can do for the store directory; see
# docs/benchmarks.md); vineyardd's memfd follows /sys/kernel/mm/transparent_hugepage/shmem_enabled.
set -euo pipefail
cd "$(dirname "$0")/.."

[ -e /dev/fuse ] || { echo "error: /dev/fuse is missing" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || { echo "error: run as root (the volume is FUSE-mounted)" >&2; exit 1; }

bash scripts/install-bench-deps.sh
swift build -c release --quiet --product vineyard-csi
BIN="$(swift build -c release --show-bin-path)"
PY=.venv/bin/python
VINEYARDD="$($PY -c 'import os, vineyard; print(os.path.join(os.path.dirname(vineyard.__file__), "bdist", "vineyardd"))')"
SIZE="${STORE_SIZE:-6Gi}"

WORK="$(mktemp -d /tmp/bench-ipc-XXXXXX)"
STORE="$(mktemp -d /dev/shm/bench-ipc-XXXXXX)"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    # (No match is the normal case: the driver unmounted everything when it stopped.)
    { grep -o " $WORK[^ ]*" /proc/self/mounts || true; } | sort -r | while read -r point; do umount -l "$point" || true; done
    if mountpoint -q "$STORE"; then umount "$STORE" || true; fi
    rm -rf "$WORK" "$STORE"
}
trap cleanup EXIT
if [ "${STORE_HUGE:-0}" = 1 ]; then
    mount -t tmpfs -o mode=0700,huge=within_size bench-ipc-huge "$STORE"
fi

"$BIN/vineyard-csi" --mode all --nodeid bench --endpoint "unix://$WORK/csi.sock" --state-dir "$WORK/state" \
    --store-dir "$STORE" --store-size "$SIZE" --local-volume "$WORK/vol" >"$WORK/driver.log" 2>&1 &
pids+=($!)
"$VINEYARDD" --socket="$WORK/vineyardd.sock" --meta=local --rpc=false --size="$SIZE" >"$WORK/vineyardd.log" 2>&1 &
pids+=($!)

for _ in $(seq 300); do
    [ -S "$WORK/vol/vineyard.sock" ] && [ -S "$WORK/vineyardd.sock" ] && break
    sleep 0.1
done
[ -S "$WORK/vol/vineyard.sock" ] || { cat "$WORK/driver.log"; echo "error: the volume's socket did not appear" >&2; exit 1; }
[ -S "$WORK/vineyardd.sock" ] || { cat "$WORK/vineyardd.log"; echo "error: vineyardd did not start" >&2; exit 1; }

$PY scripts/bench_ipc.py "$WORK/vol/vineyard.sock" "$WORK/vineyardd.sock" "$@"
