import FoundationEssentials
import Glibc
import POSIXCore

/// A record that can be kept in a ``DurableRecordStore``.
public protocol DurableRecord: Codable, Sendable {
    /// The record's key; also its file name, so it must be a safe file name.
    var key: String { get }
}

/// Failures of durable state, each naming the file involved.
public struct StateError: Error, CustomStringConvertible, Sendable {
    public var path: String
    public var reason: String

    public var description: String { "state file \(path): \(reason)" }
}

/// Keeps records of one kind as one JSON file each in a directory, crash-safe.
///
/// Every change is written to a temporary file, fsync'd, renamed over the record file and the
/// directory fsync'd, so after a crash (kill -9 or power loss) each record is either the old or
/// the new version, never a torn one. One file per record keeps a change's cost independent of
/// how many records exist. A record that fails to decode at load stops the driver with an error
/// naming the file; the file is left untouched for the operator to inspect.
///
/// Not thread-safe by itself: the owning service serialises access.
public struct DurableRecordStore<Record: DurableRecord>: Sendable {
    public let directory: String
    private static var temporarySuffix: String { ".tmp" }
    private static var recordSuffix: String { ".json" }

    /// Opens (creating if needed) the directory, removes temporary files a crash left behind,
    /// and loads every record.
    public static func open(directory: String) throws(StateError) -> (DurableRecordStore, [Record]) {
        do {
            try FileIO.createDirectories(atPath: directory)
        } catch {
            throw StateError(path: directory, reason: "cannot create state directory: \(error)")
        }
        let store = DurableRecordStore(directory: directory)
        let names: [String]
        do {
            names = try FileIO.directoryEntries(atPath: directory).sorted()
        } catch {
            throw StateError(path: directory, reason: "cannot list state directory: \(error)")
        }
        var records: [Record] = []
        let decoder = JSONDecoder()
        for name in names {
            let path = "\(directory)/\(name)"
            if name.hasSuffix(temporarySuffix) {
                // An uncommitted write from a crash: the rename never happened, so it never counted.
                unlink(path)
                continue
            }
            guard name.hasSuffix(recordSuffix) else { continue }
            guard let data = FileManager.default.contents(atPath: path) else {
                throw StateError(path: path, reason: "cannot be read")
            }
            let record: Record
            do {
                record = try decoder.decode(Record.self, from: data)
            } catch {
                throw StateError(path: path, reason: "is corrupt and was left untouched (\(Self.describe(error)))")
            }
            guard "\(record.key)\(recordSuffix)" == name else {
                throw StateError(path: path, reason: "holds record \"\(record.key)\", which does not match its file name")
            }
            records.append(record)
        }
        return (store, records)
    }

    /// Writes `record` durably, replacing any previous version.
    public func save(_ record: Record) throws(StateError) {
        let path = recordPath(record.key)
        let temporary = path + Self.temporarySuffix
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let data: Data
        do { data = try encoder.encode(record) } catch {
            throw StateError(path: path, reason: "cannot encode: \(error)")
        }
        let fd: Int32
        do { fd = try syscall { Glibc.open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600) } } catch {
            throw StateError(path: temporary, reason: "open failed: \(error)")
        }
        do {
            defer { close(fd) }
            try FileIO.writeAll(fd, [UInt8](data))
            try syscall { fsync(fd) }
        } catch {
            unlink(temporary)
            throw StateError(path: temporary, reason: "write failed: \(error)")
        }
        do {
            try syscall { rename(temporary, path) } } catch {
            unlink(temporary)
            throw StateError(path: path, reason: "rename failed: \(error)")
        }
        try syncDirectory()
    }

    /// Removes the record with `key`; removing a missing record succeeds.
    public func remove(key: String) throws(StateError) {
        let path = recordPath(key)
        do {
            try syscall { unlink(path) }
        } catch .noEntry {
            // already gone
        } catch {
            throw StateError(path: path, reason: "unlink failed: \(error)")
        }
        try syncDirectory()
    }

    private func recordPath(_ key: String) -> String { "\(directory)/\(key)\(Self.recordSuffix)" }

    private func syncDirectory() throws(StateError) {
        let fd: Int32
        do { fd = try syscall { Glibc.open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC) } } catch {
            throw StateError(path: directory, reason: "open failed: \(error)")
        }
        defer { close(fd) }
        do { try syscall { fsync(fd) } } catch {
            throw StateError(path: directory, reason: "fsync failed: \(error)")
        }
    }

    private static func describe(_ error: any Error) -> String {
        switch error {
        case DecodingError.dataCorrupted(let context): return context.debugDescription
        case DecodingError.keyNotFound(let key, _): return "missing key \(key.stringValue)"
        case DecodingError.typeMismatch(_, let context): return context.debugDescription
        case DecodingError.valueNotFound(_, let context): return context.debugDescription
        default: return "\(error)"
        }
    }
}
