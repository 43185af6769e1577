//
// vineyard-csi: FDHandover
//
// FDHolderProtocol.swift: the messages between the node plugin and the descriptor holder.

/// The wire format of the descriptor holder's socket (`AF_UNIX`, `SOCK_SEQPACKET`, so every
/// message arrives whole).
///
/// A request is one message: an operation byte, a little-endian `UInt32` key length, the key
/// (UTF-8), then opaque data. `put` carries exactly one descriptor (`SCM_RIGHTS`).
///
/// | op | request | answer |
/// | --- | --- | --- |
/// | `P` | key, data, one descriptor | `K` |
/// | `D` | key | `K` (also when the key is unknown) |
/// | `L` | nothing | one `I` message per entry (key, data, its descriptor), then `Z` |
/// | `R` | nothing | `K` after writing `FUSE_NOTIFY_RESEND` to every held descriptor |
///
/// Failures are answered `E` followed by a UTF-8 message.
public enum FDHolderMessage: Equatable, Sendable {
    case put(key: String, data: [UInt8])
    case drop(key: String)
    case list
    case resend
    case ok
    case item(key: String, data: [UInt8])
    case end
    case failure(String)

    enum Operation: UInt8 {
        case put = 0x50  // P
        case drop = 0x44  // D
        case list = 0x4C  // L
        case resend = 0x52  // R
        case ok = 0x4B  // K
        case item = 0x49  // I
        case end = 0x5A  // Z
        case failure = 0x45  // E
    }

    /// The largest message either side sends or accepts.
    public static let maximumSize = 64 << 10

    /// The message's bytes.
    public var encoded: [UInt8] {
        switch self {
        case .put(let key, let data): return Self.keyed(.put, key, data)
        case .drop(let key): return Self.keyed(.drop, key, [])
        case .list: return [Operation.list.rawValue]
        case .resend: return [Operation.resend.rawValue]
        case .ok: return [Operation.ok.rawValue]
        case .item(let key, let data): return Self.keyed(.item, key, data)
        case .end: return [Operation.end.rawValue]
        case .failure(let message): return [Operation.failure.rawValue] + Array(message.utf8)
        }
    }

    /// Decodes a message; `nil` for anything malformed.
    public init?(decoding bytes: [UInt8]) {
        guard let first = bytes.first, let operation = Operation(rawValue: first) else { return nil }
        switch operation {
        case .list: self = .list
        case .resend: self = .resend
        case .ok: self = .ok
        case .end: self = .end
        case .failure: self = .failure(String(decoding: bytes.dropFirst(), as: UTF8.self))
        case .put, .drop, .item:
            guard bytes.count >= 5 else { return nil }
            let length = Int(bytes[1]) | Int(bytes[2]) << 8 | Int(bytes[3]) << 16 | Int(bytes[4]) << 24
            guard length > 0, 5 + length <= bytes.count else { return nil }
            let key = String(decoding: bytes[5..<(5 + length)], as: UTF8.self)
            let data = Array(bytes[(5 + length)...])
            switch operation {
            case .put: self = .put(key: key, data: data)
            case .drop: self = .drop(key: key)
            default: self = .item(key: key, data: data)
            }
        }
    }

    private static func keyed(_ operation: Operation, _ key: String, _ data: [UInt8]) -> [UInt8] {
        let keyBytes = Array(key.utf8)
        let length = UInt32(keyBytes.count)
        var out: [UInt8] = [operation.rawValue]
        out.reserveCapacity(5 + keyBytes.count + data.count)
        for shift in stride(from: 0, to: 32, by: 8) { out.append(UInt8(truncatingIfNeeded: length >> UInt32(shift))) }
        out.append(contentsOf: keyBytes)
        out.append(contentsOf: data)
        return out
    }
}

/// `FUSE_NOTIFY_RESEND` (kernel 6.9+, protocol 7.40): an unsolicited notification (unique 0)
/// that moves every request a server read but did not answer back to the pending queue, so the
/// next reader of the connection gets it again (with bit 63 of its unique set).
public enum FUSEResendNotification {
    /// `enum fuse_notify_code`: POLL 1, INVAL_INODE 2, INVAL_ENTRY 3, STORE 4, RETRIEVE 5,
    /// DELETE 6, RESEND 7.
    public static let code: Int32 = 7

    /// The 16-byte `struct fuse_out_header`: length, error (the notify code), unique 0.
    public static var message: [UInt8] {
        var bytes = [UInt8](repeating: 0, count: 16)
        bytes[0] = 16
        bytes[4] = UInt8(code)
        return bytes
    }
}
