// vineyard-csi: SharedMemoryStore
// MetadataLog.swift: the crash-consistent, append-only metadata log.

import Glibc
import POSIXCore

/// The store's metadata: an append-only log of checksummed records, compacted by rewriting.
///
/// **Record format.** `[payload length: u32 LE][CRC-32C of payload: u32 LE][payload]`, where
/// the payload is one or more ``LogOp``s that take effect together. Each record is written with
/// a single `write(2)` on an `O_APPEND` descriptor, after the blob bytes it refers to are in
/// the arena, and before the in-memory state changes. A write that returns has put the record
/// in the page cache, which survives `kill -9`; with
/// ``StoreConfiguration/SyncMode/hostCrash`` it is also `fdatasync`ed.
///
/// **Recovery.** Records are replayed in order up to the first one that is incomplete or fails
/// its checksum — the trace of a crash in the middle of an append — and the file is cut back to
/// that point. A record that passes its checksum but cannot be decoded is real corruption and
/// fails the open with ``StoreError/corruptMetadata(path:reason:)``.
///
/// **Compaction.** The live state is written as fresh records to `meta.log.tmp`, which is
/// `fsync`ed and renamed over `meta.log` (and the directory `fsync`ed). A crash at any point
/// leaves either the old or the new complete log; a stale `.tmp` is deleted at open.
struct MetadataLog {
    static let fileName = "meta.log"
    static let temporaryName = "meta.log.tmp"
    /// Records larger than this are rejected as corrupt lengths.
    static let maximumRecord = 256 << 20
    /// Payload bytes per record when writing a snapshot.
    static let snapshotRecordTarget = 1 << 20

    let path: String
    private(set) var fileDescriptor: Int32
    /// Bytes in the file.
    private(set) var size: Int
    let syncMode: StoreConfiguration.SyncMode
    /// Set when a failed append could not be rolled back; every later append fails.
    private(set) var isPoisoned = false

    init(path: String, fileDescriptor: Int32, size: Int, syncMode: StoreConfiguration.SyncMode) {
        self.path = path
        self.fileDescriptor = fileDescriptor
        self.size = size
        self.syncMode = syncMode
    }

    /// The result of reading a log file.
    struct Contents {
        var header: LogHeader
        var operations: [LogOp]
        var validLength: Int
        var discardedTailBytes: Int
    }

    /// Frames a payload.
    static func frame(_ payload: [UInt8], into output: inout [UInt8]) {
        var header = BinaryWriter()
        header.write(UInt32(payload.count))
        header.write(CRC32C.checksum(payload))
        output.append(contentsOf: header.bytes)
        output.append(contentsOf: payload)
    }

    /// Encodes operations as one payload.
    static func payload(_ operations: [LogOp]) -> [UInt8] {
        var writer = BinaryWriter()
        for operation in operations { operation.encode(into: &writer) }
        return writer.bytes
    }

    /// Reads and validates the log at `path`; `nil` if there is no log file.
    static func read(path: String) throws(StoreError) -> Contents? {
        guard Sys.exists(path) else { return nil }
        let fd = try Sys.open(path, O_RDONLY)
        defer { Sys.close(fd) }
        let bytes = try Sys.readAll(fd, path: path)
        return try bytes.withBytes { (raw) throws(StoreError) -> Contents in
            var operations: [LogOp] = []
            var position = 0
            while raw.count - position >= 8 {
                let length = Int(UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: position, as: UInt32.self)))
                let checksum = UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: position + 4, as: UInt32.self))
                guard length <= maximumRecord, raw.count - position - 8 >= length else { break }
                let payload = UnsafeRawBufferPointer(rebasing: raw[position + 8..<position + 8 + length])
                guard CRC32C.checksum(payload) == checksum else { break }
                var reader = BinaryReader(payload)
                do throws(BinaryReader.Malformed) {
                    while !reader.isAtEnd { operations.append(try LogOp.decode(from: &reader)) }
                } catch {
                    throw StoreError.corruptMetadata(path: path, reason: "undecodable record at byte \(position)")
                }
                position += 8 + length
            }
            guard case .header(let header)? = operations.first else {
                throw StoreError.corruptMetadata(path: path, reason: "the log does not start with a valid header")
            }
            operations.removeFirst()
            return Contents(
                header: header, operations: operations, validLength: position,
                discardedTailBytes: raw.count - position)
        }
    }

    /// Opens an existing log for appending, cutting it to `validLength` first.
    static func openForAppend(path: String, validLength: Int, syncMode: StoreConfiguration.SyncMode) throws(StoreError)
        -> MetadataLog
    {
        let fd = try Sys.open(path, O_WRONLY | O_APPEND)
        do throws(StoreError) {
            if try Sys.fileSize(fd, path: path) != validLength {
                try Sys.truncate(fd, to: validLength, path: path)
                try Sys.fsync(fd, path: path)
            }
        } catch {
            Sys.close(fd)
            throw error
        }
        return MetadataLog(path: path, fileDescriptor: fd, size: validLength, syncMode: syncMode)
    }

    /// Writes a complete log (header first, then `operations`) atomically in place of the
    /// current one and opens it for appending.
    static func writeSnapshot(
        directory: String, header: LogHeader, operations: [LogOp], syncMode: StoreConfiguration.SyncMode
    ) throws(StoreError) -> MetadataLog {
        let path = directory + "/" + fileName
        let temporary = directory + "/" + temporaryName
        var file: [UInt8] = []
        var pending = BinaryWriter()
        LogOp.header(header).encode(into: &pending)
        for operation in operations {
            operation.encode(into: &pending)
            if pending.bytes.count >= snapshotRecordTarget {
                frame(pending.bytes, into: &file)
                pending = BinaryWriter()
            }
        }
        if !pending.bytes.isEmpty { frame(pending.bytes, into: &file) }

        let fd = try Sys.open(temporary, O_WRONLY | O_CREAT | O_TRUNC)
        do throws(StoreError) {
            try file.withBytes { (raw) throws(StoreError) in try Sys.writeAll(fd, raw, path: temporary) }
            try Sys.fsync(fd, path: temporary)
        } catch {
            Sys.close(fd)
            try? Sys.unlinkIfPresent(temporary)
            throw error
        }
        Sys.close(fd)
        try Sys.rename(temporary, path)
        try Sys.syncDirectory(directory)
        return try openForAppend(path: path, validLength: file.count, syncMode: syncMode)
    }

    /// Appends one record holding `operations`. On failure the file is cut back, so the record
    /// is either entirely in the log or not at all.
    mutating func append(_ operations: [LogOp]) throws(StoreError) {
        guard !isPoisoned else {
            throw StoreError.system(operation: "write", path: path, errno: .io)
        }
        var record: [UInt8] = []
        MetadataLog.frame(MetadataLog.payload(operations), into: &record)
        guard record.count - 8 <= MetadataLog.maximumRecord else {
            throw StoreError.invalidArgument("metadata record of \(record.count) bytes is too large")
        }
        let fd = fileDescriptor
        let path = self.path
        do throws(StoreError) {
            try record.withBytes { (raw) throws(StoreError) in try Sys.writeAll(fd, raw, path: path) }
            if syncMode == .hostCrash { try Sys.fdatasync(fd, path: path) }
        } catch {
            if ftruncate(fd, off_t(size)) != 0 { isPoisoned = true }
            throw error
        }
        size += record.count
    }

    /// Closes the descriptor (if it owns one).
    func close() {
        if fileDescriptor >= 0 { Sys.close(fileDescriptor) }
    }
}
