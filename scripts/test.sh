#!/usr/bin/env bash
# The test command (README; CI runs it through .ci/run).
# On a fresh Debian 12 machine it installs everything it needs, builds, and runs:
#   1. the Swift unit and integration tests (swift test), real sockets, real FUSE, real shm;
#   2. the end-to-end suite (pytest): the real binaries driven by an independent Python client,
#      the deploy checks (Tests/e2e/test_deploy.py: deploy/ manifests, vctl rendering and errors,
#      the pipeline examples), and the image built by scripts/build-image.sh run in containers as
#      the DaemonSet runs it (Tests/e2e/test_image.py).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh

echo "==> swift build"
swift build --quiet
echo "==> swift test"
set +e
# Serially: several suites time real servers and mounts, and a 2-core machine running them all
# at once starves the tasks that answer calls.
swift test --no-parallel 2>&1 | tee .build/swift-test.log
status=${PIPESTATUS[0]}
set -e
if [ "$status" -ne 0 ]; then
    echo "swift test failed (exit $status); full log in .build/swift-test.log"
    exit "$status"
fi

# The driver's image, which Tests/e2e/test_image.py runs as the DaemonSet does. Its base is cached
# in the machine's container storage; the release build in .build-release.
if [ "$(id -u)" -eq 0 ] && command -v buildah >/dev/null && command -v debootstrap >/dev/null; then
    echo "==> image (scripts/build-image.sh)"
    export VINEYARD_CSI_IMAGE="${VINEYARD_CSI_IMAGE:-localhost/vineyard-csi:test}"
    IMAGE="$VINEYARD_CSI_IMAGE" SWIFT_SCRATCH_PATH="${SWIFT_RELEASE_SCRATCH_PATH:-.build-release}" bash scripts/build-image.sh
fi

echo "==> end-to-end tests (pytest)"
VINEYARD_CSI_BIN_DIR="$(swift build --show-bin-path)" .venv/bin/python -m pytest -q Tests/e2e "$@"
