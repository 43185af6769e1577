#!/usr/bin/env bash
# Snapshot and clone cost (time and store memory) for volumes holding 10 MiB, 1 GiB and 4 GiB,
# against copying the same files into tmpfs, in one run. Needs root and /dev/fuse.
#   scripts/bench-snapshot.sh [--sizes 10M,1G,4G] [--repeats 5]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-bench-deps.sh >/dev/null
swift build -c release --quiet --product vineyard-csi
VINEYARD_CSI_BIN_DIR="$(swift build -c release --show-bin-path)" .venv/bin/python scripts/bench_snapshot.py "$@"
