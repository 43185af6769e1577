#!/usr/bin/env bash
# FUSE volume throughput vs tmpfs (/dev/shm), measured in the same run: sequential write/read
# of 64 MiB, 1 GiB, 4 GiB files (cold and warm), 10,000 small files, readdir of 10,000 entries.
# The volume is published by the real driver in local mode (CreateVolume, NodeStage, NodePublish).
# Small-file operations also run on `vineyard-csi-bench fuse-floor`, a FUSE mount that keeps no
# data: the cost of the kernel's FUSE round trips alone on this machine.
# Usage: scripts/bench-fuse.sh [bench_fs.py options, e.g. --sizes 64M,1G --repeats 3]
#        scripts/bench-fuse.sh fio [bench_fio.py options, e.g. --size 1G --repeats 3]
#        (the data path with fio: sequential, random and mapped I/O and 4 KiB creates, against
#        tmpfs in the same run, and the memory a mapping of a sealed file adds; needs fio)
# READ_MODE=direct runs the driver with --read-mode direct (default page-cache); DRIVER_ARGS adds
# driver flags (e.g. DRIVER_ARGS=--no-passthrough for files served by the driver only).
set -euo pipefail
cd "$(dirname "$0")/.."
swift build -c release --quiet --product vineyard-csi
swift build -c release --quiet --product vineyard-csi-bench
BIN="$(swift build -c release --show-bin-path)"
WORK="$(mktemp -d /tmp/vineyard-csi-fuse-bench.XXXXXX)"
BASELINE="$(mktemp -d /dev/shm/vineyard-csi-baseline.XXXXXX)"
STORE="/dev/shm/vineyard-csi-bench-store.$$"
DRIVER_PID=""
FLOOR_PID=""
cleanup() {
    if [ -n "$DRIVER_PID" ]; then kill -INT "$DRIVER_PID" 2>/dev/null; wait "$DRIVER_PID" 2>/dev/null || true; fi
    if [ -n "$FLOOR_PID" ]; then kill -INT "$FLOOR_PID" 2>/dev/null; wait "$FLOOR_PID" 2>/dev/null || true; fi
    grep -o " $WORK[^ ]*" /proc/self/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
    rm -rf "$WORK" "$BASELINE" "$STORE"
}
trap cleanup EXIT

"$BIN/vineyard-csi" --mode all --endpoint "unix://$WORK/csi.sock" --nodeid bench --state-dir "$WORK/state" \
    --store-dir "$STORE" --store-size "${STORE_SIZE:-6Gi}" --default-volume-size "${STORE_SIZE:-6Gi}" \
    --read-mode "${READ_MODE:-page-cache}" ${DRIVER_ARGS:-} --local-volume "$WORK/vineyard" >"$WORK/driver.log" 2>&1 &
DRIVER_PID=$!
for _ in $(seq 400); do grep -qs " $WORK/vineyard " /proc/self/mounts && break; sleep 0.05; done
grep -qs " $WORK/vineyard " /proc/self/mounts || { cat "$WORK/driver.log"; exit 1; }
if [ "${1:-}" = fio ]; then
    shift
    python3 scripts/bench_fio.py "$BASELINE" "$WORK/vineyard" "$@"
    exit
fi
mkdir -p "$WORK/floor"
"$BIN/vineyard-csi-bench" fuse-floor "$WORK/floor" >"$WORK/floor.log" 2>&1 &
FLOOR_PID=$!
for _ in $(seq 200); do grep -qs " $WORK/floor " /proc/self/mounts && break; sleep 0.05; done
grep -qs " $WORK/floor " /proc/self/mounts || { cat "$WORK/floor.log"; exit 1; }
python3 scripts/bench_fs.py "$BASELINE" "$WORK/vineyard" --floor "$WORK/floor" "$@"
