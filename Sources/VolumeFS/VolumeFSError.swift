//
// vineyard-csi: VolumeFS
//
// VolumeFSError.swift: errors of setting up or purging a volume.

public import SharedMemoryStore
public import StoreBackend

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
        /// The backend refused an operation; see ``VolumeFSError/storeError`` and
        /// ``VolumeFSError/cause``.
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
    /// The backend's failure, for logs (a vineyardd's, or the store's).
    public var cause: String?

    /// Creates an error.
    public init(code: Code, message: String, storeError: StoreError? = nil) {
        self.code = code
        self.message = message
        self.storeError = storeError
        self.cause = storeError.map { "\($0)" }
    }

    /// An error of a backend operation.
    public init(code: Code, message: String, backendError: BackendError) {
        self.code = code
        self.message = message
        self.storeError = backendError.underlying as? StoreError
        self.cause = backendError.description
    }

    public var description: String {
        if let cause { return "\(code): \(message): \(cause)" }
        return "\(code): \(message)"
    }
}
