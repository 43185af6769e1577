// vineyard-csi: SharedMemoryStore
// Locked.swift: a value behind the package's one lock type.

import Synchronization

/// A value guarded by a `Synchronization.Mutex`, shared by reference.
///
/// The lock is not recursive: `body` must not call back into anything that takes the same lock.
final class Locked<Value>: Sendable {
    private let mutex: Mutex<Value>

    init(_ value: consuming sending Value) {
        mutex = Mutex(value)
    }

    /// Runs `body` with exclusive access to the value.
    @inline(__always)
    func withLock<R, E: Error>(_ body: (inout sending Value) throws(E) -> sending R) throws(E) -> sending R {
        try mutex.withLock(body)
    }
}
