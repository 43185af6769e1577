//
// vineyard-csi: POSIXCore
//
// FileIO.swift: whole-file reads and complete writes on descriptors.

import Glibc

/// Reads and writes that finish what they start: the kernel may transfer fewer bytes than asked
/// (pipes, sockets, signals), so each call loops until done.
public enum FileIO {
    /// The whole content of the file at `path`, read to its end. Files under `/proc` report a
    /// size of zero, so the size is never trusted.
    public static func readAll(atPath path: String) throws(Errno) -> [UInt8] {
        let fd = try syscall { Glibc.open(path, O_RDONLY | O_CLOEXEC) }
        defer { Glibc.close(fd) }
        var content: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let count = try read(fd, into: &chunk)
            if count == 0 { return content }
            content.append(contentsOf: chunk[0..<count])
        }
    }

    /// One `read` into `buffer`: the number of bytes read, zero at the end of the file.
    public static func read(_ fd: Int32, into buffer: inout [UInt8]) throws(Errno) -> Int {
        try buffer.withUnsafeMutableBytes { raw in
            Result { () throws(Errno) in try syscall { Glibc.read(fd, raw.baseAddress, raw.count) } }
        }.get()
    }

    /// One `write` of `bytes`: the number of bytes written. For a device that takes a message in
    /// one write, whole or not at all (`/dev/fuse`); elsewhere use `writeAll`.
    @discardableResult
    public static func write(_ fd: Int32, _ bytes: [UInt8]) throws(Errno) -> Int {
        try bytes.withUnsafeBytes { raw in
            Result { () throws(Errno) in try syscall { Glibc.write(fd, raw.baseAddress, raw.count) } }
        }.get()
    }

    /// Writes all of `bytes` at the descriptor's position.
    public static func writeAll(_ fd: Int32, _ bytes: [UInt8]) throws(Errno) {
        try bytes.withUnsafeBytes { raw in Result { () throws(Errno) in try writeAll(fd, raw) } }.get()
    }

    /// Writes all of `bytes` at the descriptor's position.
    public static func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) throws(Errno) {
        var done = 0
        while done < bytes.count {
            done += try syscall { Glibc.write(fd, bytes.baseAddress! + done, bytes.count - done) }
        }
    }

    /// Writes `text` to the existing file at `path` (a control file under `/sys` or `/proc`),
    /// without creating or truncating it.
    public static func write(_ text: String, toExistingFile path: String) throws(Errno) {
        let fd = try syscall { Glibc.open(path, O_WRONLY | O_CLOEXEC) }
        defer { Glibc.close(fd) }
        try writeAll(fd, Array(text.utf8))
    }

    /// The names of the entries of the directory at `path`, without `.` and `..`.
    public static func directoryEntries(atPath path: String) throws(Errno) -> [String] {
        guard let directory = opendir(path) else { throw Errno.current }
        defer { closedir(directory) }
        var names: [String] = []
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    /// Writes `text` to standard error, best effort: a diagnostic must never stop the process,
    /// so a closed or full stream (``Errno/brokenPipe`` once `SIGPIPE` is ignored) drops it.
    /// (Foundation's `FileHandle.write(_:)` traps on such a failure.)
    public static func writeToStandardError(_ text: String) {
        _ = try? writeAll(STDERR_FILENO, Array(text.utf8))
    }

    /// Creates the directory at `path` and every missing parent (`mkdir -p`); an existing
    /// directory is not an error, an existing file of another kind is (`ENOTDIR`/`EEXIST`).
    public static func createDirectories(atPath path: String, mode: mode_t = 0o755) throws(Errno) {
        var prefix = path.hasPrefix("/") ? "/" : ""
        for component in path.split(separator: "/", omittingEmptySubsequences: true) {
            prefix += component
            do {
                try syscall { mkdir(prefix, mode) }
            } catch .exists {
                var status = stat()
                try syscall { stat(prefix, &status) }
                guard status.st_mode & S_IFMT == S_IFDIR else { throw .exists }
            }
            prefix += "/"
        }
    }

    /// Replaces the file at `path` with `bytes` in one step: they go to `<path>.tmp` first, which
    /// is then renamed over `path`, so a reader sees the old file or the new one, never a part.
    public static func replaceContents(atPath path: String, with bytes: [UInt8], mode: mode_t = 0o644) throws(Errno) {
        let temporary = path + ".tmp"
        let fd = try syscall { open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode) }
        do {
            try writeAll(fd, bytes)
        } catch {
            close(fd)
            unlink(temporary)
            throw error
        }
        close(fd)
        do {
            try syscall { rename(temporary, path) }
        } catch {
            unlink(temporary)
            throw error
        }
    }
}
