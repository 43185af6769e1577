//
// vineyard-csi: FUSEKit
//

internal import CFUSE
import Glibc

/// A point in time with nanosecond resolution, as stored in `struct stat`.
public struct Timespec: Hashable, Comparable, Sendable, CustomStringConvertible {
    /// Seconds since the Unix epoch.
    public var seconds: Int64
    /// Nanoseconds within the second, `0..<1_000_000_000`.
    public var nanoseconds: Int64

    public init(seconds: Int64, nanoseconds: Int64 = 0) {
        self.seconds = seconds
        self.nanoseconds = nanoseconds
    }

    /// The Unix epoch.
    public static let zero = Timespec(seconds: 0)

    /// The current wall-clock time (`CLOCK_REALTIME`).
    public static var now: Timespec {
        var ts = Glibc.timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Timespec(ts)
    }

    public static func < (lhs: Timespec, rhs: Timespec) -> Bool {
        (lhs.seconds, lhs.nanoseconds) < (rhs.seconds, rhs.nanoseconds)
    }

    public var description: String {
        let nanos = String(nanoseconds)
        return "\(seconds).\(String(repeating: "0", count: max(0, 9 - nanos.count)))\(nanos)"
    }

    init(_ ts: timespec) {
        self.init(seconds: Int64(ts.tv_sec), nanoseconds: Int64(ts.tv_nsec))
    }

    var timespec: Glibc.timespec {
        Glibc.timespec(tv_sec: Int(seconds), tv_nsec: Int(nanoseconds))
    }
}
