#!/usr/bin/env bash
# Installs what building and testing vineyard-csi needs on a fresh Debian 12 machine:
# the C/C++ libraries behind the shims, FUSE, and a Python venv for the end-to-end tests.
# Idempotent: packages already present are not reinstalled.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
    pkg-config
    libgrpc++-dev libprotobuf-dev protobuf-compiler   # gRPC shim (CGRPCShim)
    libfuse3-dev fuse3                                  # FUSE volumes (CFUSE)
    util-linux                                          # mount/umount for bind mounts
    etcd-server                                         # cluster-mode tests: vineyardd metadata (Tests/e2e/test_cluster.py)
)

missing=()
for package in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if ((${#missing[@]})); then
    echo "==> apt-get install ${missing[*]}"
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

VENV="${VENV:-.venv}"
if [ ! -x "$VENV/bin/python" ]; then
    echo "==> creating Python venv in $VENV"
    python3 -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install -q --disable-pip-version-check -r Tests/e2e/requirements.txt
