// vineyard-csi: StoreBackend
// BackendUsage.swift: a backend's memory, as a whole.

/// How much memory a backend has and uses (all volumes together).
public struct BackendUsage: Sendable, Equatable {
    /// Bytes the backend may hold.
    public var capacity: Int
    /// Bytes in use.
    public var bytesUsed: Int

    public init(capacity: Int, bytesUsed: Int) {
        self.capacity = capacity
        self.bytesUsed = bytesUsed
    }

    /// Bytes still free.
    public var bytesFree: Int { max(0, capacity - bytesUsed) }
}
