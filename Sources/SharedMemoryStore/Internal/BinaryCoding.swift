// vineyard-csi: SharedMemoryStore
// BinaryCoding.swift: little-endian encoding of metadata log records.

/// Appends little-endian fields to a byte array.
struct BinaryWriter {
    var bytes: [UInt8] = []

    mutating func write(_ value: UInt8) { bytes.append(value) }

    mutating func write(_ value: UInt32) {
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }

    mutating func write(_ value: UInt64) {
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }

    mutating func write(_ value: Int) { write(UInt64(bitPattern: Int64(value))) }

    /// A length-prefixed byte string.
    mutating func write(bytes value: [UInt8]) {
        write(UInt32(value.count))
        bytes.append(contentsOf: value)
    }

    /// A length-prefixed UTF-8 string.
    mutating func write(string value: String) {
        write(UInt32(value.utf8.count))
        bytes.append(contentsOf: value.utf8)
    }
}

/// Reads little-endian fields with bounds checks.
struct BinaryReader {
    /// The input ran out or held an impossible value.
    struct Malformed: Error {}

    let bytes: UnsafeRawBufferPointer
    var position = 0

    init(_ bytes: UnsafeRawBufferPointer) {
        self.bytes = bytes
    }

    var isAtEnd: Bool { position >= bytes.count }

    mutating func need(_ count: Int) throws(Malformed) {
        guard count >= 0, bytes.count - position >= count else { throw Malformed() }
    }

    mutating func readByte() throws(Malformed) -> UInt8 {
        try need(1)
        defer { position += 1 }
        return bytes[position]
    }

    mutating func readUInt32() throws(Malformed) -> UInt32 {
        try need(4)
        defer { position += 4 }
        return UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: position, as: UInt32.self))
    }

    mutating func readUInt64() throws(Malformed) -> UInt64 {
        try need(8)
        defer { position += 8 }
        return UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: position, as: UInt64.self))
    }

    mutating func readInt() throws(Malformed) -> Int {
        let value = Int64(bitPattern: try readUInt64())
        guard value >= Int64(Int.min), value <= Int64(Int.max) else { throw Malformed() }
        return Int(value)
    }

    mutating func readBytes() throws(Malformed) -> [UInt8] {
        let count = Int(try readUInt32())
        try need(count)
        defer { position += count }
        return Array(bytes[position..<position + count])
    }

    mutating func readString() throws(Malformed) -> String {
        let count = Int(try readUInt32())
        try need(count)
        defer { position += count }
        return String(decoding: UnsafeRawBufferPointer(rebasing: bytes[position..<position + count]), as: UTF8.self)
    }
}
