// vineyard-csi: SharedMemoryStore
// Syscalls.swift: the store's file operations, each failure a StoreError naming the file.

import Glibc
import POSIXCore

/// Thin wrappers over the system calls the store uses, made through POSIXCore's `syscall`
/// (which retries interrupted calls); each throws ``StoreError/system(operation:path:errno:)``
/// with the failing operation and path.
enum Sys {
    /// Runs `body` through `syscall`; a failure becomes a ``StoreError`` naming `operation`
    /// and `path`.
    @inline(__always)
    static func check<T: FixedWidthInteger>(_ operation: String, _ path: String, _ body: () -> T) throws(StoreError)
        -> T
    {
        do {
            return try syscall(body)
        } catch {
            throw StoreError.system(operation: operation, path: path, errno: error)
        }
    }

    static func open(_ path: String, _ flags: Int32, _ mode: mode_t = 0o600) throws(StoreError) -> Int32 {
        try check("open", path) { Glibc.open(path, flags | O_CLOEXEC, mode) }
    }

    static func close(_ fd: Int32) {
        _ = Glibc.close(fd)
    }

    static func fileSize(_ fd: Int32, path: String) throws(StoreError) -> Int {
        var info = stat()
        _ = try check("fstat", path) { fstat(fd, &info) }
        return Int(info.st_size)
    }

    static func truncate(_ fd: Int32, to size: Int, path: String) throws(StoreError) {
        _ = try check("ftruncate", path) { ftruncate(fd, off_t(size)) }
    }

    static func fsync(_ fd: Int32, path: String) throws(StoreError) {
        _ = try check("fsync", path) { Glibc.fsync(fd) }
    }

    static func fdatasync(_ fd: Int32, path: String) throws(StoreError) {
        _ = try check("fdatasync", path) { Glibc.fdatasync(fd) }
    }

    /// Writes all of `bytes` at the descriptor's current position.
    static func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, path: String) throws(StoreError) {
        do { try FileIO.writeAll(fd, bytes) } catch {
            throw StoreError.system(operation: "write", path: path, errno: error)
        }
    }

    /// Writes all of `bytes` at `offset`.
    static func pwriteAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, at offset: Int, path: String) throws(StoreError) {
        var done = 0
        while done < bytes.count {
            let count = try check("pwrite", path) {
                pwrite(fd, bytes.baseAddress! + done, bytes.count - done, off_t(offset + done))
            }
            done += count
        }
    }

    /// Reads the whole file.
    static func readAll(_ fd: Int32, path: String) throws(StoreError) -> [UInt8] {
        let size = try fileSize(fd, path: path)
        var bytes = [UInt8](repeating: 0, count: size)
        var done = 0
        while done < size {
            let count = try bytes.withUnsafeMutableBytes { raw in
                Result { () throws(StoreError) in
                    try check("pread", path) { pread(fd, raw.baseAddress! + done, size - done, off_t(done)) }
                }
            }.get()
            if count == 0 { break }
            done += count
        }
        if done < size { bytes.removeLast(size - done) }
        return bytes
    }

    static func rename(_ from: String, _ to: String) throws(StoreError) {
        _ = try check("rename", from) { Glibc.rename(from, to) }
    }

    /// Removes a file; a missing file is not an error.
    static func unlinkIfPresent(_ path: String) throws(StoreError) {
        do {
            try syscall { Glibc.unlink(path) }
        } catch .noEntry {
            // already gone
        } catch {
            throw StoreError.system(operation: "unlink", path: path, errno: error)
        }
    }

    static func exists(_ path: String) -> Bool {
        access(path, F_OK) == 0
    }

    /// Creates `path` and its missing parents with mode 0700.
    static func makeDirectories(_ path: String) throws(StoreError) {
        var prefix = ""
        for component in path.split(separator: "/", omittingEmptySubsequences: true) {
            prefix += "/" + component
            do {
                try syscall { mkdir(prefix, 0o700) }
            } catch .exists {
                // there already
            } catch {
                throw StoreError.system(operation: "mkdir", path: prefix, errno: error)
            }
        }
        var info = stat()
        guard stat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFDIR else {
            throw StoreError.system(operation: "mkdir", path: path, errno: .notDirectory)
        }
    }

    /// `fsync` of a directory, so a rename inside it is durable.
    static func syncDirectory(_ path: String) throws(StoreError) {
        let fd = try open(path, O_RDONLY | O_DIRECTORY)
        defer { close(fd) }
        try fsync(fd, path: path)
    }

    /// Takes an exclusive, non-blocking `flock` on a lock file; the kernel drops it when the
    /// process dies, so a crashed driver never leaves a stale lock.
    static func lockFile(_ path: String) throws(StoreError) -> Int32 {
        let fd = try open(path, O_RDWR | O_CREAT)
        let locked: Int32?
        do { locked = try nonBlockingSyscall { flock(fd, LOCK_EX | LOCK_NB) } } catch {
            close(fd)
            throw StoreError.system(operation: "flock", path: path, errno: error)
        }
        guard locked != nil else {
            close(fd)
            throw StoreError.storeLocked(path: path)
        }
        return fd
    }

    /// `posix_fallocate(3)`: allocate backing pages for a range without changing the size
    /// (on tmpfs this is the `fallocate(2)` system call).
    ///
    /// - Throws: ``StoreError/outOfMemory(requested:available:)`` for `requested` bytes when
    ///   the file system or memory cgroup is full; other failures as ``StoreError/system(operation:path:errno:)``.
    ///   A file system without fallocate is not an error: its pages fault in lazily.
    static func allocate(_ fd: Int32, offset: Int, length: Int, requested: Int, path: String) throws(StoreError) {
        do {
            try syscallReturningErrno { posix_fallocate(fd, off_t(offset), off_t(length)) }
        } catch .noSpace, .noMemory, .fileTooLarge {
            throw StoreError.outOfMemory(requested: requested, available: 0)
        } catch .notSupported {
            // no fallocate here: the pages are allocated when first written
        } catch {
            throw StoreError.system(operation: "posix_fallocate", path: path, errno: error)
        }
    }

    /// `mmap(2)` of `length` bytes of `fd`, shared, at `hint` (nil: anywhere) with `flags` added.
    static func mapShared(
        _ fd: Int32, length: Int, protection: Int32 = PROT_READ | PROT_WRITE, at hint: UnsafeMutableRawPointer? = nil,
        flags: Int32 = 0, offset: Int = 0, path: String
    ) throws(StoreError) -> UnsafeMutableRawPointer {
        do {
            return try syscallMapping { mmap(hint, length, protection, MAP_SHARED | flags, fd, off_t(offset)) }
        } catch {
            throw StoreError.system(operation: "mmap", path: path, errno: error)
        }
    }

    /// Fills this process's page tables for writing a mapped range (`MADV_POPULATE_WRITE`).
    ///
    /// - Throws: ``StoreError/outOfMemory(requested:available:)`` for `requested` bytes when the
    ///   pages cannot be had. A kernel without `MADV_POPULATE_WRITE` is not an error: the pages
    ///   fault in on first write.
    static func populate(_ address: UnsafeMutableRawPointer, length: Int, requested: Int) throws(StoreError) {
        do {
            try syscall { madvise(address, length, madvisePopulateWrite) }
        } catch .noMemory, .badAddress {
            throw StoreError.outOfMemory(requested: requested, available: 0)
        } catch {
            // not supported here
        }
    }

    /// `msync(MS_SYNC)` of a mapped range.
    static func syncMapping(_ address: UnsafeMutableRawPointer, length: Int, path: String) throws(StoreError) {
        _ = try check("msync", path) { msync(address, length, MS_SYNC) }
    }

    /// `MADV_REMOVE`: frees the backing pages of a range of a shared tmpfs mapping (the same as
    /// punching a hole in the file); the range reads as zeros afterwards.
    static let madviseRemove: Int32 = 9

    /// `MADV_POPULATE_WRITE` (Linux 5.14): fault a range in for writing without touching data.
    static let madvisePopulateWrite: Int32 = 23

    /// The page size.
    static let pageSize: Int = Int(sysconf(Int32(_SC_PAGESIZE)))

    /// The host's current boot identifier, or an empty string if it cannot be read.
    static func currentBootID() -> String {
        guard let bytes = try? FileIO.readAll(atPath: "/proc/sys/kernel/random/boot_id") else { return "" }
        return String(decoding: bytes, as: UTF8.self).trimmingWhitespace()
    }
}

extension String {
    /// The string without leading and trailing ASCII whitespace.
    func trimmingWhitespace() -> String {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\n" || $0 == "\t" || $0 == "\r" }
        guard let first = firstIndex(where: { !isSpace($0) }), let last = lastIndex(where: { !isSpace($0) }) else {
            return ""
        }
        return String(self[first...last])
    }
}

extension Array where Element == UInt8 {
    /// `withUnsafeBytes` with a typed error (the standard one only rethrows `any Error`).
    func withBytes<R, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
        let result: Result<R, E> = withUnsafeBytes { raw in
            do throws(E) { return .success(try body(raw)) } catch { return .failure(error) }
        }
        return try result.get()
    }
}
