// vineyard-csi: SharedMemoryStore
// NameKey.swift: names compared as bytes, like paths.

import Glibc

/// A name compared, ordered and hashed by its UTF-8 bytes.
///
/// Swift's `String` equality is Unicode canonical equivalence, so `"é"` (one scalar) equals
/// `"e\u{301}"` (two). Names are paths handed over by a filesystem, which treats those as two
/// different files, so names must compare byte for byte. Byte order also makes prefix ranges
/// contiguous, which prefix listing depends on.
struct NameKey: Comparable, Hashable, Sendable {
    /// The name, always native UTF-8 (so byte access is contiguous).
    let string: String

    init(_ string: String) {
        var copy = string
        copy.makeContiguousUTF8()
        self.string = copy
    }

    /// The UTF-8 byte count.
    var byteCount: Int { string.utf8.count }

    /// Runs `body` on the name's bytes.
    @inline(__always)
    func withBytes<R>(_ body: (UnsafeRawBufferPointer) -> R) -> R {
        if let result = string.utf8.withContiguousStorageIfAvailable({ body(UnsafeRawBufferPointer($0)) }) {
            return result
        }
        let bytes = Array(string.utf8)
        return bytes.withUnsafeBytes(body)
    }

    static func < (lhs: NameKey, rhs: NameKey) -> Bool {
        compare(lhs, rhs) < 0
    }

    static func == (lhs: NameKey, rhs: NameKey) -> Bool {
        lhs.byteCount == rhs.byteCount && compare(lhs, rhs) == 0
    }

    func hash(into hasher: inout Hasher) {
        withBytes { hasher.combine(bytes: $0) }
    }

    /// `memcmp` order, shorter first on a common prefix.
    static func compare(_ lhs: NameKey, _ rhs: NameKey) -> Int {
        lhs.withBytes { a in
            rhs.withBytes { b in
                let common = min(a.count, b.count)
                if common > 0 {
                    let result = memcmp(a.baseAddress!, b.baseAddress!, common)
                    if result != 0 { return Int(result) }
                }
                return a.count - b.count
            }
        }
    }

    /// Whether the name starts with `prefix`, bytewise.
    func hasPrefix(_ prefix: NameKey) -> Bool {
        let prefixCount = prefix.byteCount
        guard prefixCount <= byteCount else { return false }
        if prefixCount == 0 { return true }
        return withBytes { a in prefix.withBytes { b in memcmp(a.baseAddress!, b.baseAddress!, prefixCount) == 0 } }
    }
}
