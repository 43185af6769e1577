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
    nfs-ganesha nfs-ganesha-vfs rpcbind libnfs13        # the pipeline's NFS variant: a user-space server and client
    buildah podman runc debootstrap fuse-overlayfs uidmap  # the image: scripts/build-image.sh, Tests/e2e/test_image.py
)

missing=()
for package in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if ((${#missing[@]})); then
    echo "==> apt-get install ${missing[*]}"
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    # Packages with services (nfs-ganesha, rpcbind, dbus) must not start them: the pipeline runs
    # its own ganesha per run. A policy-rc.d answering 101 tells invoke-rc.d to start nothing;
    # one is put in place for the install only, unless the machine has its own.
    POLICY=/usr/sbin/policy-rc.d
    OWN_POLICY=""
    if [ ! -e "$POLICY" ]; then
        printf '#!/bin/sh\n# scripts/install-deps.sh: start no services while installing.\nexit 101\n' | $SUDO tee "$POLICY" >/dev/null
        $SUDO chmod 755 "$POLICY"
        OWN_POLICY=1
    fi
    status=0
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || status=$?
    [ -z "$OWN_POLICY" ] || $SUDO rm -f "$POLICY"
    [ "$status" -eq 0 ] || exit "$status"
fi
# Even so, stop a ganesha an install may have started (by its pid file; never by name).
pid_file=/var/run/ganesha/ganesha.pid
if [ -s "$pid_file" ] && [ "$(cat /proc/"$(cat "$pid_file")"/comm 2>/dev/null)" = "ganesha.nfsd" ]; then
    echo "==> stopping the ganesha.nfsd the package started (pid $(cat "$pid_file"))"
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO kill "$(cat "$pid_file")"
fi

VENV="${VENV:-.venv}"
if [ ! -x "$VENV/bin/python" ]; then
    echo "==> creating Python venv in $VENV"
    python3 -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install -q --disable-pip-version-check -r Tests/e2e/requirements.txt
