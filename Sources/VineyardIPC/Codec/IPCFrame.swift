// vineyard-csi: VineyardIPC
// IPCFrame.swift: the length-prefixed framing of vineyard's socket protocol.

import VineyardObjects

/// Vineyard's framing: an 8-byte length (the sender's `size_t`, little-endian on every
/// platform vineyard runs on) followed by exactly that many bytes of UTF-8 JSON, with no
/// terminator. Both directions use it.
public enum IPCFrame {
    /// Bytes in the length prefix.
    public static let headerSize = 8

    /// The largest frame a server accepts by default. vineyardd allows 256 MiB; metadata
    /// trees are kilobytes, so 64 MiB leaves ample room while bounding what a hostile client
    /// can make the server allocate per connection.
    public static let defaultMaximumLength = 64 << 20

    /// The length prefix for a body of `length` bytes.
    public static func header(length: Int) -> [UInt8] {
        withUnsafeBytes(of: UInt64(length).littleEndian) { Array($0) }
    }

    /// Reads a length prefix.
    ///
    /// - Parameter bytes: exactly ``headerSize`` bytes.
    /// - Returns: the announced body length.
    public static func length(header bytes: some Collection<UInt8>) -> UInt64 {
        precondition(bytes.count == headerSize, "a frame header is 8 bytes")
        var value: UInt64 = 0
        for (shift, byte) in bytes.enumerated() { value |= UInt64(byte) << (8 * UInt64(shift)) }
        return value
    }

    /// A whole frame (prefix and body) for a JSON value.
    public static func encode(_ json: JSONValue) -> [UInt8] {
        let body = json.serializedBytes()
        return header(length: body.count) + body
    }

    /// Parses a frame body.
    ///
    /// - Throws: ``IPCError`` with ``IPCStatusCode/invalid`` when the body is not JSON.
    public static func decode(body: [UInt8]) throws(IPCError) -> JSONValue {
        do throws(JSONParseError) {
            return try JSONValue(parsing: body)
        } catch {
            throw IPCError(.invalid, "the message is not valid JSON: \(error)")
        }
    }
}
