#!/usr/bin/env bash
# Installs the given Debian packages that are not installed yet, starting none of their services.
#   scripts/apt-install.sh PACKAGE...
# Packages with services (etcd-server, nfs-ganesha, rpcbind, dbus) would start them: the tests and
# benchmarks start their own servers per run. A policy-rc.d answering 101 tells invoke-rc.d to start
# nothing; one is put in place for the install only, unless the machine has its own.
set -euo pipefail

missing=()
for package in "$@"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
((${#missing[@]})) || exit 0

echo "==> apt-get install ${missing[*]}"
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
$SUDO apt-get update -qq
POLICY=/usr/sbin/policy-rc.d
OWN_POLICY=""
if [ ! -e "$POLICY" ]; then
    printf '#!/bin/sh\n# scripts/apt-install.sh: start no services while installing.\nexit 101\n' | $SUDO tee "$POLICY" >/dev/null
    $SUDO chmod 755 "$POLICY"
    OWN_POLICY=1
fi
status=0
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || status=$?
[ -z "$OWN_POLICY" ] || $SUDO rm -f "$POLICY"
exit "$status"
