#!/usr/bin/env bash
# Cluster mode vs embedded vs tmpfs, in one run: sequential write/read through a volume mounted
# by the driver with the vineyardd backend (a real vineyardd from the vineyard wheel, with etcd
# metadata when etcd is installed), through one with the embedded backend, and on /dev/shm.
# Usage: scripts/bench-cluster.sh [bench_cluster.py options, e.g. --sizes 64M,512M --repeats 3]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-bench-deps.sh >/dev/null
if [ -z "${BIN_DIR:-}" ]; then
    swift build -c release --quiet --product vineyard-csi
    BIN_DIR="$(swift build -c release --show-bin-path)"
fi
VINEYARDD="$(ls .venv/lib/python3*/site-packages/vineyard/bdist/vineyardd | head -1)"
WORK="$(mktemp -d /tmp/vineyard-csi-cluster-bench.XXXXXX)"
TMPFS="$(mktemp -d /dev/shm/vineyard-csi-baseline.XXXXXX)"
STORE="/dev/shm/vineyard-csi-cluster-bench-store.$$"
SIZE="${STORE_SIZE:-3Gi}"
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill -INT "$pid" 2>/dev/null; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    grep -o " $WORK[^ ]*" /proc/self/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
    rm -rf "$WORK" "$TMPFS" "$STORE"
}
trap cleanup EXIT

SOCKET_ROOT="$WORK/sockets"
mkdir -p "$SOCKET_ROOT/vineyard-system/vineyardd-sample"
META=(--meta local)
if command -v etcd >/dev/null; then
    PORT=$((23000 + RANDOM % 2000))
    etcd --data-dir "$WORK/etcd" --listen-client-urls "http://127.0.0.1:$PORT" --advertise-client-urls "http://127.0.0.1:$PORT" \
        --listen-peer-urls "http://127.0.0.1:$((PORT + 1))" --initial-advertise-peer-urls "http://127.0.0.1:$((PORT + 1))" \
        --initial-cluster "default=http://127.0.0.1:$((PORT + 1))" >"$WORK/etcd.log" 2>&1 &
    PIDS+=($!)
    META=(--meta etcd --etcd_endpoint "http://127.0.0.1:$PORT" --etcd_prefix "/bench-$$")
    sleep 2
fi
"$VINEYARDD" --socket "$SOCKET_ROOT/vineyard-system/vineyardd-sample/vineyard.sock" --size "$SIZE" "${META[@]}" \
    --rpc_socket_port $((25000 + RANDOM % 2000)) >"$WORK/vineyardd.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 200); do [ -S "$SOCKET_ROOT/vineyard-system/vineyardd-sample/vineyard.sock" ] && break; sleep 0.1; done

start_driver() {  # name backend
    mkdir -p "$WORK/$1"
    "$BIN_DIR/vineyard-csi" --mode all --endpoint "unix://$WORK/$1/csi.sock" --nodeid bench --state-dir "$WORK/$1/state" \
        --store-dir "$STORE" --store-size "$SIZE" --default-volume-size "$SIZE" --backend "$2" \
        --vineyard-socket-root "$SOCKET_ROOT" --local-volume "$WORK/$1/mount" >"$WORK/$1/driver.log" 2>&1 &
    PIDS+=($!)
    for _ in $(seq 400); do grep -qs " $WORK/$1/mount " /proc/self/mounts && return; sleep 0.05; done
    cat "$WORK/$1/driver.log"
    exit 1
}
start_driver embedded embedded
start_driver vineyardd vineyardd
echo "vineyardd metadata: ${META[*]:0:2}; store/vineyardd size $SIZE; commit $(git rev-parse --short HEAD)"
python3 scripts/bench_cluster.py "$TMPFS" "$WORK/embedded/mount" "$WORK/vineyardd/mount" "$@"
