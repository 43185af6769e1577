//
// vineyard-csi: VolumeFS
//
// FileName.swift: a path component compared byte for byte.

/// One path component, compared and hashed by its UTF-8 bytes.
///
/// `String` equality is Unicode canonical equivalence (`"é"` equals `"e\u{301}"`), but a file
/// system, like the store's names, must treat those as two different files.
struct FileName: Hashable, Sendable, CustomStringConvertible {
    /// The component, always native contiguous UTF-8.
    let string: String

    init(_ string: String) {
        var copy = string
        copy.makeContiguousUTF8()
        self.string = copy
    }

    var description: String { string }

    /// The UTF-8 byte count.
    var byteCount: Int { string.utf8.count }

    static func == (lhs: FileName, rhs: FileName) -> Bool {
        lhs.string.utf8.count == rhs.string.utf8.count && lhs.string.utf8.elementsEqual(rhs.string.utf8)
    }

    func hash(into hasher: inout Hasher) {
        let hashed: Void? = string.utf8.withContiguousStorageIfAvailable { bytes in
            hasher.combine(bytes: UnsafeRawBufferPointer(bytes))
        }
        if hashed == nil {
            for byte in string.utf8 { hasher.combine(byte) }
        }
    }
}
