//
// vineyard-csi: VolumeFSTests
//
// Sys.swift: plain POSIX I/O and child processes for driving a mount.

import FUSEKit
import Foundation
import Glibc
import Synchronization

enum Sys {
    // MARK: Errno-returning wrappers (0 = success)

    static func errnoOf(_ result: Int32) -> Int32 {
        result == 0 ? 0 : errno
    }

    static func mkdir(_ path: String, _ mode: mode_t = 0o755) -> Int32 { errnoOf(Glibc.mkdir(path, mode)) }
    static func rmdir(_ path: String) -> Int32 { errnoOf(Glibc.rmdir(path)) }
    static func unlink(_ path: String) -> Int32 { errnoOf(Glibc.unlink(path)) }

    /// `renameat2(AT_FDCWD, from, AT_FDCWD, to, flags)` (via dlsym: Glibc does not export it).
    static func rename(_ from: String, _ to: String, flags: UInt32 = 0) -> Int32 {
        typealias Renameat2 = @convention(c) (Int32, UnsafePointer<CChar>, Int32, UnsafePointer<CChar>, UInt32) -> Int32
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "renameat2") else { return ENOSYS }
        let function = unsafeBitCast(symbol, to: Renameat2.self)
        return function(AT_FDCWD, from, AT_FDCWD, to, flags) == 0 ? 0 : errno
    }

    static let renameNoReplace: UInt32 = 1
    static let renameExchange: UInt32 = 2

    /// `open`; the descriptor or `-errno`.
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

    static func writeFile(_ path: String, _ bytes: [UInt8], mode: mode_t = 0o644) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode)
        guard fd >= 0 else { throw Errno(rawValue: -fd) }
        do {
            try pwriteAll(fd, bytes[...], at: 0)
        } catch {
            close(fd)
            throw error
        }
        guard close(fd) == 0 else { throw Errno.current }
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
        guard let directory = opendir(path) else { throw Errno.current }
        defer { closedir(directory) }
        var names: [String] = []
        while let entry = readdir(directory) {
            let name = entryName(entry)
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    static func entryName(_ entry: UnsafeMutablePointer<dirent>) -> String {
        withUnsafeBytes(of: entry.pointee.d_name) { raw in
            String(cString: raw.bindMemory(to: CChar.self).baseAddress!)
        }
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

        var text: String { String(decoding: output, as: UTF8.self) }
        var errorText: String { String(decoding: error, as: UTF8.self) }
    }

    /// Runs `executable` in a separate process and collects its output.
    static func run(_ executable: String, _ arguments: [String], currentDirectory: String? = nil) throws
        -> ProcessResult
    {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if let currentDirectory { process.currentDirectoryURL = URL(fileURLWithPath: currentDirectory) }
        let stdout = Pipe()
        let stderr = Pipe()
        process.standardOutput = stdout
        process.standardError = stderr
        process.standardInput = FileHandle.nullDevice
        try process.run()
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

    /// Runs a shell command line.
    static func shell(_ command: String) throws -> ProcessResult {
        try run("/bin/sh", ["-c", command])
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

/// A temporary directory on /dev/shm for source files of copies, removed by `remove()`.
struct ScratchDirectory {
    let path: String

    init() throws {
        _ = TestEnvironment.staleStateCleaned
        var template = Array("/dev/shm/vfs-scratch-\(getpid())-XXXXXX".utf8CString)
        guard let created = mkdtemp(&template) else { throw Errno.current }
        path = String(cString: created)
    }

    func url(_ name: String) -> String { "\(path)/\(name)" }

    func remove() {
        _ = try? FileManager.default.removeItem(atPath: path)
    }
}

/// Where two byte sequences first differ, or `nil` if they are equal. Use it instead of
/// comparing large buffers in `#expect`, whose failure diff is quadratic.
func mismatch(_ actual: some Collection<UInt8>, _ expected: some Collection<UInt8>) -> String? {
    var index = 0
    var a = actual.makeIterator()
    var e = expected.makeIterator()
    while true {
        switch (a.next(), e.next()) {
        case (nil, nil): return nil
        case (let x?, let y?) where x == y: index += 1
        case (let x, let y):
            return "differ at byte \(index) (\(x.map(String.init) ?? "end") vs \(y.map(String.init) ?? "end")); "
                + "sizes \(actual.count) and \(expected.count)"
        }
    }
}
