// vineyard-csi: VineyardObjects
// ObjectID.swift: vineyard's 64-bit object identifier.

/// A vineyard object identifier: an unsigned 64-bit value.
///
/// Vineyard prints identifiers as `o` followed by 16 lowercase, zero-padded hexadecimal digits
/// (`o6882062ef7c00002`), and that is this type's ``description``. ``init(_:)`` parses the same
/// form back, so the type is `LosslessStringConvertible`.
///
/// Bit 63 distinguishes blobs (raw byte ranges, ``isBlob``) from metadata objects. The store
/// generates identifiers in vineyard's layout, `[blob:1][milliseconds:41][instance:10][sequence:12]`,
/// but never relies on it: identifiers are opaque and unique within one store, including across
/// restarts.
public struct ObjectID: RawRepresentable, Hashable, Sendable, Comparable, CustomStringConvertible,
    LosslessStringConvertible
{
    /// The identifier's bits.
    public var rawValue: UInt64

    /// Wraps raw identifier bits.
    ///
    /// - Parameter rawValue: the 64-bit value, as it appears on vineyard's wire (a JSON integer).
    public init(rawValue: UInt64) {
        self.rawValue = rawValue
    }

    /// Wraps raw identifier bits.
    ///
    /// - Parameter rawValue: the 64-bit value.
    public init(_ rawValue: UInt64) {
        self.rawValue = rawValue
    }

    /// Parses vineyard's string form: `o` followed by 1 to 16 hexadecimal digits (either case).
    ///
    /// - Parameter description: a string such as `o6882062ef7c00002`.
    /// - Returns: `nil` if the string is not in that form.
    public init?(_ description: String) {
        let utf8 = description.utf8
        guard utf8.count >= 2, utf8.count <= 17, utf8.first == UInt8(ascii: "o") else { return nil }
        var value: UInt64 = 0
        for byte in utf8.dropFirst() {
            let digit: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte &- UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte &- UInt8(ascii: "a") &+ 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte &- UInt8(ascii: "A") &+ 10
            default: return nil
            }
            value = value << 4 | UInt64(digit)
        }
        self.rawValue = value
    }

    /// `o` followed by 16 lowercase hexadecimal digits, exactly as vineyard prints identifiers.
    public var description: String {
        let digits: [UInt8] = Array("0123456789abcdef".utf8)
        return String(unsafeUninitializedCapacity: 17) { buffer in
            buffer[0] = UInt8(ascii: "o")
            for index in 0..<16 {
                let shift = UInt64(60 - 4 * index)
                buffer[1 + index] = digits[Int((rawValue >> shift) & 0xF)]
            }
            return 17
        }
    }

    /// Whether bit 63 is set, which vineyard uses to mark blob identifiers.
    public var isBlob: Bool {
        rawValue & ObjectID.blobBit != 0
    }

    /// Orders identifiers by their numeric value.
    public static func < (lhs: ObjectID, rhs: ObjectID) -> Bool {
        lhs.rawValue < rhs.rawValue
    }

    /// The bit that marks blob identifiers.
    public static let blobBit: UInt64 = 1 << 63

    /// Vineyard's empty blob, `o8000000000000000`: the blob that zero-length buffers refer to.
    /// The store never hands this identifier out for an object of its own.
    public static let emptyBlob = ObjectID(blobBit)

    /// Vineyard's invalid identifier, `offffffffffffffff`. The store never hands it out.
    public static let invalid = ObjectID(UInt64.max)
}
