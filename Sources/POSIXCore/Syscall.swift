//
// vineyard-csi: POSIXCore
//
// Syscall.swift: the one place that reads errno after a system call and retries what a signal
// interrupted.

import Glibc

/// Calls `call`, a system call that fails by returning `-1` and setting `errno`, until no signal
/// interrupts it, and throws any other failure as ``Errno``.
///
/// A signal delivered to a thread blocked in a system call makes the call fail with
/// ``Errno/interrupted`` unless the handler was installed with `SA_RESTART`, which the
/// process does not control for every handler (libfuse's, the Swift runtime's, a test's).
/// Retrying here means no caller handles it.
///
/// ```swift
/// let count = try syscall { read(fd, buffer.baseAddress, buffer.count) }
/// ```
@inlinable
@discardableResult
public func syscall<Result: FixedWidthInteger>(_ call: () -> Result) throws(Errno) -> Result {
    while true {
        let result = call()
        if result != -1 { return result }
        let error = Errno.current
        if error != .interrupted { throw error }
    }
}

/// ``syscall(_:)`` for a call that may have nothing to do yet: a non-blocking descriptor with no
/// data or no room, or a `LOCK_NB` lock that another process holds. That outcome
/// (``Errno/tryAgain``, which is also `EWOULDBLOCK` on Linux) is `nil` rather than an error.
@inlinable
public func nonBlockingSyscall<Result: FixedWidthInteger>(_ call: () -> Result) throws(Errno) -> Result? {
    do {
        return try syscall(call)
    } catch Errno.tryAgain {
        return nil
    }
}

/// ``syscall(_:)`` for the functions that return an error number instead of setting `errno`
/// (`posix_fallocate`, `posix_spawn`, the `pthread_` family): zero is success.
@inlinable
public func syscallReturningErrno(_ call: () -> Int32) throws(Errno) {
    while true {
        let result = call()
        if result == 0 { return }
        let error = Errno(rawValue: result)
        if error != .interrupted { throw error }
    }
}

/// ``syscall(_:)`` for `mmap`, which fails by returning `MAP_FAILED` and setting `errno`.
@inlinable
public func syscallMapping(_ call: () -> UnsafeMutableRawPointer?) throws(Errno) -> UnsafeMutableRawPointer {
    while true {
        if let address = call(), address != MAP_FAILED { return address }
        let error = Errno.current
        if error != .interrupted { throw error }
    }
}
