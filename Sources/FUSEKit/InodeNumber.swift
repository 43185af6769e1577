//
// vineyard-csi: FUSEKit
//

/// A FUSE node id. The root directory is always ``root`` (1); 0 is never a valid node.
public struct InodeNumber: RawRepresentable, Hashable, Comparable, Sendable, ExpressibleByIntegerLiteral,
    CustomStringConvertible
{
    public var rawValue: UInt64

    public init(rawValue: UInt64) {
        self.rawValue = rawValue
    }

    public init(_ rawValue: UInt64) {
        self.rawValue = rawValue
    }

    public init(integerLiteral value: UInt64) {
        self.rawValue = value
    }

    /// The root directory's node id (`FUSE_ROOT_ID`).
    public static let root = InodeNumber(rawValue: 1)

    public static func < (lhs: InodeNumber, rhs: InodeNumber) -> Bool {
        lhs.rawValue < rhs.rawValue
    }

    public var description: String {
        "inode \(rawValue)"
    }
}
