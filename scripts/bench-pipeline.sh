#!/usr/bin/env bash
# The housing-price ML pipeline benchmark (GitHub issue 9): the seeds' prepare/preprocess/train/test
# steps, each its own process, sharing data through
#   (a) NFS: an nfs-ganesha export on loopback, reached with libnfs (a user-space client: these
#   kernels have no NFS client), (a') a local-disk directory with fsync (the baseline when (a)
#   cannot run, labelled as such), (b) tmpfs, (c) vineyardd with vineyard.csi.write/read, (d) a vineyard-csi volume with plain
#   pickle files, (e) a vineyard-csi volume with vineyard.csi.write/read through its vineyard.sock
#   (skipped, with a note, while the driver serves no such socket).
# The vineyard-csi volume is created, staged and published per step through the release driver's
# real CSI gRPC socket. Writes docs/benchmarks.md, docs/pipeline.png and docs/pipeline-results.json.
# Usage: scripts/bench-pipeline.sh [--scales 0.5,1,2] [--repeats 3] [--variants nfs,local-disk,tmpfs,...]
#        [--bin-dir DIR]                        (a release build to use instead of building one)
#        scripts/bench-pipeline.sh --help       (python -m pipeline bench --help: all options)
#        scripts/bench-pipeline.sh report       (rewrite the report from docs/pipeline-results.json)
#        scripts/bench-pipeline.sh anatomy [--scale 2] [--probes 5]
#                                               (train's vineyard.csi reads on (c) and (e), its store on
#                                                4 KiB and 2 MiB pages, taken apart: docs/read-anatomy.md)
# Needs root and /dev/fuse. Runs at nice -n -20 when allowed.
set -euo pipefail
cd "$(dirname "$0")/.."

[ -e /dev/fuse ] || { echo "error: /dev/fuse is missing (modprobe fuse)" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || { echo "error: the benchmark mounts tmpfs, FUSE and bind mounts: run as root" >&2; exit 1; }

bash scripts/install-bench-deps.sh

if [ "${1:-}" = "report" ]; then
    shift
    PYTHONPATH=scripts exec .venv/bin/python -m pipeline report "$@"
fi

BUILD=(--bin-dir "$(swift build -c release --show-bin-path)")
for argument in "$@"; do
    case "$argument" in
        --bin-dir|--bin-dir=*|-h|--help) BUILD=() ;;
    esac
done
if ((${#BUILD[@]})); then
    echo "==> swift build -c release"
    swift build -c release --quiet --product vineyard-csi
fi

COMMAND=bench
if [ "${1:-}" = "anatomy" ]; then
    COMMAND=anatomy
    shift
fi
NICE=()
nice -n -20 true 2>/dev/null && NICE=(nice -n -20)
PYTHONPATH=scripts exec "${NICE[@]}" .venv/bin/python -m pipeline "$COMMAND" "${BUILD[@]}" "$@"
