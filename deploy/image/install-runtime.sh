#!/bin/sh
# Installs the image's runtime packages (deploy/image/runtime-packages) into the running Debian
# root file system and removes what a container never reads. Run as root inside the image's root:
# by deploy/Dockerfile (RUN) and by scripts/build-image.sh (chroot), so both images are the same.
#
# Removed after installing: documentation (/usr/share/doc except the copyright files, man and info
# pages), translations and locales other than C, apt's package lists and downloaded archives,
# debconf's and dpkg's backup copies, and glibc's iconv modules (gconv: conversions between legacy
# character sets; the binaries use UTF-8 only, which glibc converts without them).
# Nothing the driver loads lives there.
set -eu
LIST="${1:-$(dirname "$0")/runtime-packages}"
packages=$(sed -e 's/#.*//' -e '/^[[:space:]]*$/d' "$LIST")
export DEBIAN_FRONTEND=noninteractive
# A later apt-get in a derived image must not bring the removed files back.
cat > /etc/dpkg/dpkg.cfg.d/01-vineyard-csi-slim <<'CFG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/lintian/*
path-exclude /usr/lib/*-linux-gnu/gconv/*
CFG
apt-get update -qq
# shellcheck disable=SC2086 # one word per package
apt-get install -y -qq --no-install-recommends $packages >/dev/null
apt-get clean
rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/cache/debconf/*-old /var/lib/dpkg/*-old \
    /var/log/apt/* /var/log/dpkg.log /var/log/alternatives.log
find /usr/share/doc -mindepth 1 ! -name copyright ! -type d -delete 2>/dev/null || true
find /usr/share/doc -mindepth 1 -type d -empty -delete 2>/dev/null || true
rm -rf /usr/share/man/* /usr/share/info/* /usr/share/lintian/*
rm -rf /usr/lib/*-linux-gnu/gconv
find /usr/share/locale -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} + 2>/dev/null || true
