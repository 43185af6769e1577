//
// vineyard-csi: POSIXCore
//
// PathHash.swift: a short, stable name for a path.

/// The 64-bit FNV-1a hash of a path's UTF-8 bytes, for file names derived from paths (a socket
/// path must fit 107 bytes; a record per mount target needs a safe file name).
///
/// Unlike `Hasher`, the value is the same in every process and every build, so names derived
/// from it find the files an earlier run of the driver wrote.
public struct PathHash: Hashable, Sendable, CustomStringConvertible {
    public let value: UInt64

    public init(_ path: String) {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in path.utf8 {
            hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01b3
        }
        value = hash
    }

    /// Sixteen lower-case hexadecimal digits, zero-padded.
    public var description: String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }
}
