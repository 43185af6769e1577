#!/usr/bin/env bash
# Builds the vineyard-csi image on a Debian machine without a registry or a Docker engine:
#   1. a base image: a debootstrap (minbase) root file system from Debian's mirror (the one in
#      /etc/apt/sources.list*) with the runtime packages of deploy/image/runtime-packages installed
#      by deploy/image/install-runtime.sh, the same script deploy/Dockerfile runs. The base is kept
#      as a local image named after a hash of its inputs, so later builds reuse it;
#   2. the release binaries (vineyard-csi, vineyard-csi-fdholder, vctl) with the static Swift
#      standard library, stripped;
#   3. the image: the base plus the binaries, committed with buildah as $IMAGE, and exported as an
#      OCI archive ($OUT_DIR/vineyard-csi.oci.tar).
# Prints the image's size. Needs root (debootstrap, chroot, buildah) and buildah + debootstrap
# (scripts/install-deps.sh installs them).
#
# Environment:
#   IMAGE          the image's name (default localhost/vineyard-csi:dev)
#   OUT_DIR        where the archive and the work files go (default .build/image)
#   SUITE          the Debian release of the base (default bookworm, the build machine's)
#   MIRROR         the Debian mirror (default: the first one in /etc/apt/sources.list*)
#   SWIFT_SCRATCH_PATH  the release build's scratch directory (default: SwiftPM's .build)
#   SKIP_SWIFT_BUILD=1  take the binaries already built in the scratch directory
set -euo pipefail
cd "$(dirname "$0")/.."

IMAGE="${IMAGE:-localhost/vineyard-csi:dev}"
OUT_DIR="${OUT_DIR:-.build/image}"
SUITE="${SUITE:-bookworm}"
PRODUCTS=(vineyard-csi vineyard-csi-fdholder vctl)
RUNTIME_DIR=deploy/image

[ "$(id -u)" -eq 0 ] || { echo "build-image.sh: run as root (debootstrap, chroot and buildah need it)" >&2; exit 1; }
for tool in buildah debootstrap; do
    command -v "$tool" >/dev/null || { echo "build-image.sh: $tool is missing (bash scripts/install-deps.sh)" >&2; exit 1; }
done

# The first Debian mirror apt uses, from one-line or deb822 sources.
debian_mirror() {
    local uri
    uri=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null \
        | awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^(https?|file):/) { print $i; exit } }')
    if [ -z "$uri" ]; then
        uri=$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '$1 == "URIs:" { print $2 }' \
            | grep -v -- '-security' | head -n 1)
    fi
    echo "${uri:-http://deb.debian.org/debian}"
}
MIRROR="${MIRROR:-$(debian_mirror)}"
mkdir -p "$OUT_DIR"
OUT_DIR="$(cd "$OUT_DIR" && pwd)"
started=$SECONDS

# ---- 1. base image (cached by the hash of what goes into it) ---------------------------------
base_hash=$( (echo "$SUITE $MIRROR"; cat "$RUNTIME_DIR/runtime-packages" "$RUNTIME_DIR/install-runtime.sh") \
    | sha256sum | cut -c1-16)
BASE="localhost/vineyard-csi-base:$SUITE-$base_hash"
if buildah inspect --type image "$BASE" >/dev/null 2>&1; then
    echo "==> base image $BASE (cached)"
else
    echo "==> base image $BASE: debootstrap --variant=minbase $SUITE from $MIRROR"
    ROOTFS="$OUT_DIR/rootfs"
    cleanup_rootfs() {
        umount -l "$ROOTFS/proc" 2>/dev/null || true
        rm -rf "$ROOTFS"
    }
    trap cleanup_rootfs EXIT
    cleanup_rootfs
    debootstrap --variant=minbase "$SUITE" "$ROOTFS" "$MIRROR" >"$OUT_DIR/debootstrap.log" 2>&1 || {
        tail -n 20 "$OUT_DIR/debootstrap.log" >&2
        exit 1
    }
    cp "$RUNTIME_DIR/runtime-packages" "$RUNTIME_DIR/install-runtime.sh" "$ROOTFS/tmp/"
    cp /etc/resolv.conf "$ROOTFS/etc/resolv.conf"
    mount -t proc proc "$ROOTFS/proc"
    chroot "$ROOTFS" /bin/sh /tmp/install-runtime.sh /tmp/runtime-packages
    umount -l "$ROOTFS/proc"
    rm -f "$ROOTFS/tmp/runtime-packages" "$ROOTFS/tmp/install-runtime.sh"
    : >"$ROOTFS/etc/resolv.conf"   # the runtime gives the container its own
    container=$(buildah from scratch)
    mountpoint=$(buildah mount "$container")
    cp -a "$ROOTFS/." "$mountpoint/"
    buildah umount "$container" >/dev/null
    buildah config --label "org.opencontainers.image.description=Debian $SUITE minbase with vineyard-csi's runtime packages" "$container"
    buildah commit --quiet --rm "$container" "$BASE" >/dev/null
    cleanup_rootfs
    trap - EXIT
fi

# ---- 2. binaries -------------------------------------------------------------------------------
SWIFT_ARGS=(-c release --static-swift-stdlib)
[ -n "${SWIFT_SCRATCH_PATH:-}" ] && SWIFT_ARGS+=(--scratch-path "$SWIFT_SCRATCH_PATH")
if [ -z "${SKIP_SWIFT_BUILD:-}" ]; then
    for product in "${PRODUCTS[@]}"; do
        echo "==> swift build ${SWIFT_ARGS[*]} --product $product"
        swift build "${SWIFT_ARGS[@]}" --product "$product" --quiet
    done
fi
BIN_DIR="$(swift build "${SWIFT_ARGS[@]}" --show-bin-path)"
STAGE="$OUT_DIR/bin"
rm -rf "$STAGE" && mkdir -p "$STAGE"
for product in "${PRODUCTS[@]}"; do
    [ -x "$BIN_DIR/$product" ] || { echo "build-image.sh: $BIN_DIR/$product is missing" >&2; exit 1; }
    # Symbols are for debugging the build tree; the image ships the code only.
    install -m 0755 -s "$BIN_DIR/$product" "$STAGE/$product"
done

# ---- 3. the image ------------------------------------------------------------------------------
echo "==> image $IMAGE"
container=$(buildah from --pull=never "$BASE")
trap 'buildah rm "$container" >/dev/null 2>&1 || true' EXIT
buildah copy --quiet "$container" "$STAGE/" /usr/local/bin/ >/dev/null
buildah config \
    --entrypoint '["/usr/local/bin/vineyard-csi"]' --cmd '--help' \
    --label "org.opencontainers.image.title=vineyard-csi" \
    --label "org.opencontainers.image.source=deploy/Dockerfile, scripts/build-image.sh" \
    "$container"
buildah commit --quiet --rm "$container" "$IMAGE" >/dev/null
trap - EXIT
ARCHIVE="$OUT_DIR/vineyard-csi.oci.tar"
rm -f "$ARCHIVE"
buildah push --quiet "$IMAGE" "oci-archive:$ARCHIVE:$IMAGE" >/dev/null

size=$(buildah images --noheading --format '{{.Size}}' "$IMAGE" | head -n 1)
mountpoint_size() {
    local ctr mnt bytes
    ctr=$(buildah from --pull=never "$IMAGE")
    mnt=$(buildah mount "$ctr")
    bytes=$(du -sb "$mnt" | cut -f1)
    buildah umount "$ctr" >/dev/null
    buildah rm "$ctr" >/dev/null
    echo "$bytes"
}
unpacked=$(mountpoint_size)
echo "==> built $IMAGE in $((SECONDS - started)) s"
echo "    image size: $size ($((unpacked / 1000000)) MB unpacked); OCI archive $ARCHIVE: $(( $(stat -c %s "$ARCHIVE") / 1000000 )) MB"
for product in "${PRODUCTS[@]}"; do
    echo "    /usr/local/bin/$product: $(( $(stat -c %s "$STAGE/$product") / 1000000 )) MB"
done
