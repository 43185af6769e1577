#!/usr/bin/env bash
# Installs what building, running and testing vineyard-csi needs on a fresh Debian 12 machine:
# the C/C++ libraries behind the shims, FUSE, etcd for the cluster-mode tests, and a Python venv
# with the end-to-end and deploy tests' requirements. Nothing only a benchmark needs: the
# benchmarks add theirs with scripts/install-bench-deps.sh.
# Idempotent: packages already present are not reinstalled.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
    pkg-config
    libgrpc++-dev libprotobuf-dev protobuf-compiler   # gRPC shim (CGRPCShim)
    libfuse3-dev fuse3                                  # FUSE volumes (CFUSE)
    util-linux                                          # mount/umount for bind mounts
    etcd-server                                         # cluster-mode tests: vineyardd metadata (Tests/e2e/test_cluster.py)
    buildah podman runc debootstrap fuse-overlayfs uidmap  # the image: scripts/build-image.sh, Tests/e2e/test_image.py
    binutils                                            # strip, for the image's binaries (scripts/build-image.sh)
)
bash scripts/apt-install.sh "${APT_PACKAGES[@]}"

VENV="${VENV:-.venv}"
if [ ! -x "$VENV/bin/python" ]; then
    echo "==> creating Python venv in $VENV"
    python3 -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install -q --disable-pip-version-check -r Tests/e2e/requirements.txt

# Kedro 0.18 needs pluggy<1.3 and pytest 8 needs pluggy>=1.5, so kedro and the vineyard-kedro
# plugin get a venv of their own. It sees the e2e venv's packages (pandas, numpy, pyarrow)
# behind its own, and holds its own vineyard: the plugin installs into vineyard's package
# directory (vineyard/contrib/kedro), which must be the one that is imported.
KEDRO_VENV="${KEDRO_VENV:-.venv-kedro}"
if [ ! -x "$KEDRO_VENV/bin/kedro" ]; then
    echo "==> creating the Kedro venv in $KEDRO_VENV"
    "$VENV/bin/python" -m venv "$KEDRO_VENV"
    purelib='import sysconfig; print(sysconfig.get_paths()["purelib"])'
    "$VENV/bin/python" -c "$purelib" > "$("$KEDRO_VENV/bin/python" -c "$purelib")/zz-e2e-venv.pth"
fi
"$KEDRO_VENV/bin/python" -m pip install -q --disable-pip-version-check -r Tests/e2e/requirements-kedro.txt
"$KEDRO_VENV/bin/python" -m pip install -q --disable-pip-version-check --no-deps --ignore-installed \
    "$(grep -E '^vineyard==' Tests/e2e/requirements.txt)"
