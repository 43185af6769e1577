//
// vineyard-csi: FUSEKitTests
//
// Plain POSIX helpers for driving a mount from the test process.

import Foundation
@testable import FUSEKit
import Glibc
import Synchronization

enum POSIX {
    // MARK: GNU functions the Glibc module does not export (no _GNU_SOURCE), via dlsym.

    private typealias MemfdCreate = @convention(c) (UnsafePointer<CChar>, UInt32) -> Int32
    private typealias Renameat2 = @convention(c) (Int32, UnsafePointer<CChar>, Int32, UnsafePointer<CChar>, UInt32) -> Int32

    private static func symbol<T>(_ name: String, as type: T.Type) -> T {
        // RTLD_DEFAULT is a null handle on glibc.
        guard let address = dlsym(UnsafeMutableRawPointer(bitPattern: 0), name) else {
            fatalError("glibc has no \(name)")
        }
        return unsafeBitCast(address, to: type)
    }

    static func memfdCreate(_ name: String) -> Int32 {
        let function = symbol("memfd_create", as: MemfdCreate.self)
        return name.withCString { function($0, 1 /* MFD_CLOEXEC */) }
    }

    /// `renameat2(AT_FDCWD, from, AT_FDCWD, to, flags)`; returns 0 or the errno.
    static func rename(_ from: String, _ to: String, flags: RenameFlags = []) -> Int32 {
        let function = symbol("renameat2", as: Renameat2.self)
        let result = function(AT_FDCWD, from, AT_FDCWD, to, flags.rawValue)
        return result == 0 ? 0 : errno
    }

    // MARK: Errno-returning wrappers (0 = success)

    static func errnoOf(_ result: Int32) -> Int32 {
        result == 0 ? 0 : errno
    }

    static func mkdir(_ path: String, _ mode: mode_t = 0o755) -> Int32 { errnoOf(Glibc.mkdir(path, mode)) }
    static func rmdir(_ path: String) -> Int32 { errnoOf(Glibc.rmdir(path)) }
    static func unlink(_ path: String) -> Int32 { errnoOf(Glibc.unlink(path)) }

    /// `open`; returns the descriptor or `-errno`.
    static func open(_ path: String, _ flags: Int32, _ mode: mode_t = 0o644) -> Int32 {
        let fd = Glibc.open(path, flags | O_CLOEXEC, mode)
        return fd >= 0 ? fd : -errno
    }

    static func status(_ path: String) throws -> stat {
        var st = Glibc.stat()
        guard stat(path, &st) == 0 else { throw Errno.current }
        return st
    }

    static func linkStatus(_ path: String) throws -> stat {
        var st = Glibc.stat()
        guard lstat(path, &st) == 0 else { throw Errno.current }
        return st
    }

    static func statErrno(_ path: String) -> Int32 {
        var st = Glibc.stat()
        return errnoOf(stat(path, &st))
    }

    // MARK: Data

    static func pwriteAll(_ fd: Int32, _ bytes: ArraySlice<UInt8>, at offset: Int) throws {
        try bytes.withUnsafeBytes { buffer in
            var done = 0
            while done < buffer.count {
                let n = Glibc.pwrite(fd, buffer.baseAddress! + done, buffer.count - done, off_t(offset + done))
                if n < 0 {
                    if errno == EINTR { continue }
                    throw Errno.current
                }
                done += n
            }
        }
    }

    static func preadAll(_ fd: Int32, count: Int, at offset: Int) throws -> [UInt8] {
        var result = [UInt8](repeating: 0, count: count)
        var done = 0
        try result.withUnsafeMutableBytes { buffer in
            while done < count {
                let n = Glibc.pread(fd, buffer.baseAddress! + done, count - done, off_t(offset + done))
                if n < 0 {
                    if errno == EINTR { continue }
                    throw Errno.current
                }
                if n == 0 { break }
                done += n
            }
        }
        return Array(result[0..<done])
    }

    static func writeFile(_ path: String, _ bytes: [UInt8]) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC)
        guard fd >= 0 else { throw Errno(rawValue: -fd) }
        defer { close(fd) }
        try pwriteAll(fd, bytes[...], at: 0)
    }

    static func readFile(_ path: String) throws -> [UInt8] {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw Errno(rawValue: -fd) }
        defer { close(fd) }
        var st = Glibc.stat()
        guard fstat(fd, &st) == 0 else { throw Errno.current }
        return try preadAll(fd, count: Int(st.st_size) + 1, at: 0)
    }

    /// Names in a directory via opendir/readdir, without "." and "..".
    static func listDirectory(_ path: String) throws -> [String] {
        guard let dir = opendir(path) else { throw Errno.current }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(cString: raw.bindMemory(to: CChar.self).baseAddress!)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    static func randomBytes(_ count: Int, using generator: inout some RandomNumberGenerator) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        var index = 0
        while index < count {
            var word = generator.next()
            for _ in 0..<8 where index < count {
                bytes[index] = UInt8(truncatingIfNeeded: word)
                word >>= 8
                index += 1
            }
        }
        return bytes
    }

    // MARK: Child processes

    struct ProcessResult {
        var status: Int32
        var output: Data
        var error: Data
    }

    /// Runs `executable` with `arguments` in a separate process and collects its output.
    static func run(_ executable: String, _ arguments: [String]) throws -> ProcessResult {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let stdout = Pipe()
        let stderr = Pipe()
        process.standardOutput = stdout
        process.standardError = stderr
        try process.run()
        // Drain stderr concurrently so a chatty child cannot block on a full pipe.
        let errorData = Mutex<Data>(Data())
        let drained = DispatchSemaphore(value: 0)
        let errorHandle = stderr.fileHandleForReading
        Thread.detachNewThread {
            let data = errorHandle.readDataToEndOfFile()
            errorData.withLock { $0 = data }
            drained.signal()
        }
        let output = stdout.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        drained.wait()
        return ProcessResult(status: process.terminationStatus, output: output, error: errorData.withLock { $0 })
    }
}

/// A deterministic generator so failures reproduce (SplitMix64).
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64

    init(seed: UInt64) {
        state = seed
    }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
