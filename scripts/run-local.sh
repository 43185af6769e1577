#!/usr/bin/env bash
# The main job (README "Run the main job"): on a fresh Debian 12 machine, installs what is
# needed, builds the driver, and runs it in local mode: the embedded default store, CSI served
# on ./.local-run/csi.sock, and a volume published at ./vineyard (override with VOLUME_DIR).
# Use it from another shell:   cp data.pkl vineyard/   ls vineyard/   python3 -c "..."
# Ctrl-C unpublishes and unstages the volume and leaves no mount behind; the files stay in the
# store (/dev/shm/vineyard-csi-local) for the next run, until the machine reboots.
set -euo pipefail
cd "$(dirname "$0")/.."

[ -e /dev/fuse ] || { echo "error: /dev/fuse is missing: FUSE volumes need the fuse kernel module (modprobe fuse)" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || { echo "error: local mode mounts FUSE and bind mounts: run as root (e.g. sudo $0)" >&2; exit 1; }

bash scripts/install-deps.sh
echo "==> swift build -c release"
swift build -c release --quiet --product vineyard-csi
swift build -c release --quiet --product vctl
BIN="$(swift build -c release --show-bin-path)"

RUN_DIR="$PWD/.local-run"
VOLUME_DIR="${VOLUME_DIR:-$PWD/vineyard}"
mkdir -p "$RUN_DIR"
# A previous run that was killed (kill -9, power loss) may have left stale mounts: detach them.
for point in "$VOLUME_DIR" "$RUN_DIR/state/local-staging"; do
    if grep -qs " $point " /proc/self/mounts; then umount -l "$point" || true; fi
done

echo "==> CSI endpoint: unix://$RUN_DIR/csi.sock   volume: $VOLUME_DIR   (Ctrl-C to stop)"
echo "    try: $BIN/vctl csi list-volumes --endpoint unix://$RUN_DIR/csi.sock"
exec "$BIN/vineyard-csi" --mode all --nodeid "$(hostname)" --endpoint "unix://$RUN_DIR/csi.sock" \
    --state-dir "$RUN_DIR/state" --store-dir /dev/shm/vineyard-csi-local --store-size "${STORE_SIZE:-4Gi}" \
    --local-volume "$VOLUME_DIR" "$@"
