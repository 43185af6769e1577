// vineyard-csi: SharedMemoryStore
// IDGenerator.swift: unique, vineyard-shaped object identifiers.

import Glibc

/// Generates identifiers in vineyard's layout — `[blob:1][milliseconds:41][instance:10][sequence:12]`
/// — but strictly increasing: when the clock has not moved past the last identifier (many per
/// millisecond, or a clock step backwards) the next value is simply the last plus one.
///
/// The last value is recorded in every log header and observed from every recovered object,
/// so identifiers are never reused across restarts, even for deleted objects.
struct IDGenerator: Sendable {
    private static let valueMask: UInt64 = ~ObjectID.blobBit
    /// The highest value handed out, without the blob bit.
    private(set) var last: UInt64
    let instanceID: UInt64

    init(last: UInt64, instanceID: UInt64) {
        self.last = last & IDGenerator.valueMask
        self.instanceID = instanceID
    }

    /// A new identifier; `blob` sets bit 63.
    mutating func next(blob: Bool) -> ObjectID {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        let millis = UInt64(now.tv_sec) &* 1000 &+ UInt64(now.tv_nsec / 1_000_000)
        var candidate = (millis & ((1 << 41) - 1)) << 22 | (instanceID & 0x3FF) << 12
        if candidate <= last { candidate = last + 1 }
        if candidate == 0 || candidate == IDGenerator.valueMask { candidate = last + 1 }
        last = candidate & IDGenerator.valueMask
        return ObjectID(blob ? last | ObjectID.blobBit : last)
    }

    /// Makes sure later identifiers are above `id`.
    mutating func observe(_ id: ObjectID) {
        last = max(last, id.rawValue & IDGenerator.valueMask)
    }
}
