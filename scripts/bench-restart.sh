#!/usr/bin/env bash
# How long pods' I/O stalls while the node plugin restarts (README "Restarts").
#
#   scripts/bench-restart.sh [RESTARTS]        (default 20; root and /dev/fuse needed)
#
# Builds release binaries, starts vineyard-csi-fdholder and the driver with --handover-dir,
# publishes one volume, and keeps a reader (streaming a 256 MiB file) and a writer (1 MiB
# writes) going through the pod target while the plugin is restarted RESTARTS times with
# SIGTERM, then RESTARTS times with SIGKILL. A stall is the longest single read(2)/write(2)
# around a restart, measured by the reader and the writer themselves (scripts/harness/restart_io.py);
# the table gives p50 and p99 over the restarts, with the time from the signal until the new
# plugin answers Probe for comparison. Both processes must end without an I/O error and the
# written file must be byte-identical, or the script fails.
set -euo pipefail
cd "$(dirname "$0")/.."
RESTARTS="${1:-20}"
bash scripts/install-bench-deps.sh
# BIN_DIR=<dir with vineyard-csi and vineyard-csi-fdholder> skips the release build.
if [ -z "${BIN_DIR:-}" ]; then
    swift build -c release --quiet --product vineyard-csi
    swift build -c release --quiet --product vineyard-csi-fdholder
    BIN_DIR="$(swift build -c release --show-bin-path)"
fi
VINEYARD_CSI_BIN_DIR="$BIN_DIR" exec .venv/bin/python scripts/bench_restart.py "$RESTARTS"
