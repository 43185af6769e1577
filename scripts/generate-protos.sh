#!/usr/bin/env bash
# Regenerates Sources/CSIProto/Generated/csi.pb.swift from Protos/csi.proto.
#
# The generated Swift code is committed to the repository: building the
# protoc-gen-swift plugin takes ~10 minutes, and normal builds should not need
# protoc at all. Run this script only after changing Protos/csi.proto or after
# bumping the swift-protobuf dependency in Package.swift.
#
# Environment:
#   PROTOC_GEN_SWIFT  path to an already built protoc-gen-swift (skips the clone/build)
#   CACHE_DIR         where swift-protobuf is cloned and built (default: .build-protoc)
#   PROTOC            protoc binary to use (default: protoc from PATH)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

CACHE_DIR="${CACHE_DIR:-$ROOT/.build-protoc}"
OUT_DIR="Sources/CSIProto/Generated"

# The swift-protobuf version Package.swift depends on; plugin and runtime must match.
SWIFT_PROTOBUF_VERSION="$(sed -n 's|.*apple/swift-protobuf\.git", from: "\([0-9.]*\)".*|\1|p' Package.swift | head -n1)"
if [[ -z "$SWIFT_PROTOBUF_VERSION" ]]; then
    echo "error: cannot find the swift-protobuf version in Package.swift" >&2
    exit 1
fi

# protoc itself.
PROTOC="${PROTOC:-protoc}"
if ! command -v "$PROTOC" >/dev/null 2>&1; then
    echo "protoc not found; installing protobuf-compiler" >&2
    SUDO=""
    if [[ "$(id -u)" -ne 0 ]]; then SUDO="sudo"; fi
    $SUDO apt-get update
    $SUDO apt-get install -y --no-install-recommends protobuf-compiler libprotobuf-dev
    PROTOC=protoc
fi

# protoc-gen-swift, built from the same swift-protobuf version.
if [[ -z "${PROTOC_GEN_SWIFT:-}" ]]; then
    SRC="$CACHE_DIR/swift-protobuf-$SWIFT_PROTOBUF_VERSION"
    PROTOC_GEN_SWIFT="$SRC/.build/release/protoc-gen-swift"
    if [[ ! -x "$PROTOC_GEN_SWIFT" ]]; then
        if [[ ! -d "$SRC/.git" ]]; then
            mkdir -p "$CACHE_DIR"
            git clone --depth 1 --branch "$SWIFT_PROTOBUF_VERSION" \
                https://github.com/apple/swift-protobuf.git "$SRC"
        fi
        echo "building protoc-gen-swift $SWIFT_PROTOBUF_VERSION (takes ~10 minutes)" >&2
        (cd "$SRC" && swift build -c release --product protoc-gen-swift)
    fi
fi
if [[ ! -x "$PROTOC_GEN_SWIFT" ]]; then
    echo "error: protoc-gen-swift not executable: $PROTOC_GEN_SWIFT" >&2
    exit 1
fi

# Well-known types (descriptor, timestamp, wrappers) ship with protoc's includes.
INCLUDES=(-I Protos)
for dir in /usr/include /usr/local/include; do
    if [[ -f "$dir/google/protobuf/descriptor.proto" ]]; then
        INCLUDES+=(-I "$dir")
        break
    fi
done

mkdir -p "$OUT_DIR"
"$PROTOC" "${INCLUDES[@]}" \
    --plugin=protoc-gen-swift="$PROTOC_GEN_SWIFT" \
    --swift_opt=Visibility=Public \
    --swift_out="$OUT_DIR" \
    csi.proto

echo "wrote $OUT_DIR/csi.pb.swift ($("$PROTOC" --version), swift-protobuf $SWIFT_PROTOBUF_VERSION)"
