//
// vineyard-csi: VolumeFS
//
// VolumeFSError.swift: errors of setting up or purging a volume.

import SharedMemoryStore

/// Why a volume could not be opened or purged. (Requests of a mounted file system fail with
/// an `Errno` instead.)
public struct VolumeFSError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The kind of failure.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Value: Hashable, Sendable {
            case invalidVolumeID
            case invalidQuota
            case store
        }

        private let value: Value

        private init(_ value: Value) {
            self.value = value
        }

        /// The volume ID cannot be a store name prefix (empty, too long, `/` or NUL inside,
        /// `.` or `..`).
        public static let invalidVolumeID = Code(.invalidVolumeID)
        /// The quota is negative.
        public static let invalidQuota = Code(.invalidQuota)
        /// The store refused an operation; see ``VolumeFSError/storeError``.
        public static let store = Code(.store)

        public var description: String {
            switch value {
            case .invalidVolumeID: return "invalid volume ID"
            case .invalidQuota: return "invalid quota"
            case .store: return "store error"
            }
        }
    }

    /// The kind of failure.
    public var code: Code
    /// What happened, for logs.
    public var message: String
    /// The store's error, for ``Code/store``.
    public var storeError: StoreError?

    /// Creates an error.
    public init(code: Code, message: String, storeError: StoreError? = nil) {
        self.code = code
        self.message = message
        self.storeError = storeError
    }

    public var description: String {
        if let storeError { return "\(code): \(message): \(storeError)" }
        return "\(code): \(message)"
    }
}
