// vineyard-csi: SharedMemoryStore
// Locked.swift: a value behind a pthread mutex.

import Glibc

/// A value guarded by a `pthread_mutex_t`.
///
/// This plays the role of `Synchronization.Mutex`, which the store used first. On Linux that
/// type locks with raw futex calls inside the uninstrumented Synchronization library, so
/// ThreadSanitizer cannot see its happens-before edges and reports every access to a guarded
/// value as a race (checked with a two-thread counter). A pthread mutex is intercepted by
/// ThreadSanitizer, so the sanitizer run stays meaningful; its uncontended cost is the same
/// (a futex fast path in glibc). Lock calls never fail for a default, non-robust mutex.
///
/// The lock is not recursive: `body` must not call back into anything that takes the same lock.
final class Locked<Value>: @unchecked Sendable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    // Only accessed while `mutex` is held, which is what makes the class Sendable.
    private var value: Value

    init(_ value: Value) {
        mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        pthread_mutex_init(mutex, nil)
        self.value = value
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deinitialize(count: 1)
        mutex.deallocate()
    }

    /// Runs `body` with exclusive access to the value.
    @inline(__always)
    func withLock<R, E: Error>(_ body: (inout Value) throws(E) -> R) throws(E) -> R {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body(&value)
    }
}
