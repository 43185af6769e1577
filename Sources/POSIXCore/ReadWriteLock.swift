//
// vineyard-csi: POSIXCore
//
// ReadWriteLock.swift: the package's one readers-writer lock.

import Glibc

/// A readers-writer lock: many readers, or one writer.
///
/// `Synchronization` has no readers-writer lock, so this wraps `pthread_rwlock_t`; every other
/// lock of the package is a `Synchronization.Mutex`.
///
/// glibc's default kind prefers readers, so a reader never waits behind a queued writer and
/// nested read locks cannot deadlock; writers (directory renames) are rare.
public final class ReadWriteLock: @unchecked Sendable {
    private let rwlock: UnsafeMutablePointer<pthread_rwlock_t>

    public init() {
        rwlock = UnsafeMutablePointer<pthread_rwlock_t>.allocate(capacity: 1)
        rwlock.initialize(to: pthread_rwlock_t())
        pthread_rwlock_init(rwlock, nil)
    }

    deinit {
        pthread_rwlock_destroy(rwlock)
        rwlock.deinitialize(count: 1)
        rwlock.deallocate()
    }

    /// Runs `body` holding the lock shared.
    @inline(__always)
    public func withReadLock<R, E: Error>(_ body: () throws(E) -> R) throws(E) -> R {
        pthread_rwlock_rdlock(rwlock)
        defer { pthread_rwlock_unlock(rwlock) }
        return try body()
    }

    /// Runs `body` holding the lock exclusively.
    @inline(__always)
    public func withWriteLock<R, E: Error>(_ body: () throws(E) -> R) throws(E) -> R {
        pthread_rwlock_wrlock(rwlock)
        defer { pthread_rwlock_unlock(rwlock) }
        return try body()
    }
}
