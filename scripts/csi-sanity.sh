#!/usr/bin/env bash
# Runs the CSI conformance suite (csi-sanity from kubernetes-csi/csi-test v5.3.0) against a
# freshly started vineyard-csi. csi-sanity is not built or shipped here: pass the path of a
# csi-sanity binary you have (CSI_SANITY=/path/to/csi-sanity); extra arguments go to it, e.g.
#   CSI_SANITY=~/bin/csi-sanity scripts/csi-sanity.sh --ginkgo.focus='Controller'
# DRIVER_ARGS adds flags to the driver, e.g. DRIVER_ARGS=--node-deployment (deploy/'s mode).
set -euo pipefail
cd "$(dirname "$0")/.."
: "${CSI_SANITY:?set CSI_SANITY to the path of a csi-sanity v5.3.0 binary}"

swift build --product vineyard-csi >/dev/null
BIN="$(swift build --show-bin-path)"
WORK="$(mktemp -d /tmp/vineyard-csi-sanity.XXXXXX)"
DRIVER_PID=""
cleanup() {
    [ -n "$DRIVER_PID" ] && kill "$DRIVER_PID" 2>/dev/null && wait "$DRIVER_PID" 2>/dev/null
    # Unmount anything the suite left under the work dir, innermost first, lazily.
    grep -o " $WORK[^ ]*" /proc/self/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

cat > "$WORK/parameters.yaml" <<YAML
k8s.v6d.io/vineyard/namespace: vineyard-system
k8s.v6d.io/vineyard/name: vineyardd-sample
YAML

"$BIN/vineyard-csi" --endpoint "unix://$WORK/csi.sock" --nodeid sanity-node --state-dir "$WORK/state" \
    --store-dir "$WORK/shm" --store-size 64Gi ${DRIVER_ARGS:-} >"$WORK/driver.log" 2>&1 &
DRIVER_PID=$!
for _ in $(seq 200); do [ -S "$WORK/csi.sock" ] && break; sleep 0.05; done

set +e
"$CSI_SANITY" --csi.endpoint "unix://$WORK/csi.sock" --csi.testvolumeparameters "$WORK/parameters.yaml" \
    --csi.stagingdir "$WORK/staging" --csi.mountdir "$WORK/mount" --csi.testvolumesize $((64 << 20)) "$@"
status=$?
set -e
[ "$status" -eq 0 ] || { echo "--- driver log (last 40 lines)"; tail -n 40 "$WORK/driver.log"; }
exit "$status"
