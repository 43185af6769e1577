// vineyard-csi: SharedMemoryStore
// StoreError.swift: the typed errors every store operation throws.

public import POSIXCore

/// Why a store operation failed.
///
/// Every throwing API in this module throws exactly this type. A failed operation changes
/// nothing: the store's memory, names and metadata are as they were before the call.
public enum StoreError: Error, Equatable, Sendable {
    /// The arena cannot hold `requested` more bytes; `available` bytes are free (possibly
    /// fragmented). Also thrown when the host's shared memory (tmpfs or the memory cgroup)
    /// cannot back the allocation. The FUSE layer maps it to `ENOSPC`, the socket layer to
    /// vineyard's `NotEnoughMemory` (41).
    case outOfMemory(requested: Int, available: Int)
    /// No sealed object (or, where documented, no unsealed blob) has this identifier.
    case notFound(ObjectID)
    /// No name is bound to this string.
    case nameNotFound(String)
    /// The blob writer was already sealed; sealed objects are immutable.
    case alreadySealed
    /// The blob writer was discarded (explicitly, or by deleting its identifier).
    case writerDiscarded
    /// The name is empty, longer than ``StoreLimits/maximumNameLength`` bytes, or contains NUL.
    case invalidName(String)
    /// An argument is out of range (negative offset or size, or an identifier the store cannot
    /// accept).
    case invalidArgument(String)
    /// Metadata does not have vineyard's shape (see ``ObjectMeta/init(json:)``).
    case invalidMetadata(String)
    /// The metadata log at `path` cannot be understood. Recovery never guesses: the store
    /// refuses to open rather than expose inconsistent state.
    case corruptMetadata(path: String, reason: String)
    /// Another process (or another open ``ObjectStore`` in this process) has the store directory
    /// open.
    case storeLocked(path: String)
    /// The configuration cannot be used (for example a capacity too small for the recovered
    /// objects).
    case invalidConfiguration(String)
    /// The store was closed with ``ObjectStore/close()``.
    case storeClosed
    /// A system call failed with `errno`.
    case system(operation: String, path: String, errno: Errno)
}

extension StoreError: CustomStringConvertible {
    /// A one-line human-readable description.
    public var description: String {
        switch self {
        case .outOfMemory(let requested, let available):
            return "out of memory: requested \(requested) bytes, \(available) bytes available"
        case .notFound(let id): return "object \(id) not found"
        case .nameNotFound(let name): return "name not found: \(name)"
        case .alreadySealed: return "the blob is already sealed"
        case .writerDiscarded: return "the blob writer was discarded"
        case .invalidName(let name): return "invalid name: \(name.debugDescription)"
        case .invalidArgument(let reason): return "invalid argument: \(reason)"
        case .invalidMetadata(let reason): return "invalid metadata: \(reason)"
        case .corruptMetadata(let path, let reason): return "corrupt metadata in \(path): \(reason)"
        case .storeLocked(let path): return "store \(path) is in use by another process or store instance"
        case .invalidConfiguration(let reason): return "invalid configuration: \(reason)"
        case .storeClosed: return "the store is closed"
        case .system(let operation, let path, let errno):
            return "\(operation)(\(path)) failed: \(errno)"
        }
    }

    /// The POSIX error a filesystem layer should report for this error (`ENOSPC` for
    /// ``outOfMemory(requested:available:)``, `ENOENT` for missing objects and names, …).
    public var errno: Errno {
        switch self {
        case .outOfMemory: return .noSpace
        case .notFound, .nameNotFound: return .noEntry
        case .alreadySealed: return .notPermitted
        case .writerDiscarded: return .badFileDescriptor
        case .invalidName: return .invalid
        case .invalidArgument, .invalidMetadata, .invalidConfiguration: return .invalid
        case .corruptMetadata: return .io
        case .storeLocked: return .busy
        case .storeClosed: return .shutDown
        case .system(_, _, let errno): return errno
        }
    }

    /// The vineyard IPC status code a socket server should reply with (41 `NotEnoughMemory`,
    /// 12 `ObjectNotExists`, 1 `Invalid`, …).
    public var vineyardStatusCode: Int {
        switch self {
        case .outOfMemory: return 41
        case .notFound, .nameNotFound: return 12
        case .alreadySealed: return 13  // ObjectSealed
        case .invalidMetadata: return 21  // MetaTreeInvalid
        case .invalidName, .invalidArgument, .writerDiscarded: return 1  // Invalid
        case .corruptMetadata, .storeLocked, .invalidConfiguration, .storeClosed, .system: return 4  // IOError
        }
    }
}

/// Limits the store enforces on its inputs.
public enum StoreLimits {
    /// Names are at most this many UTF-8 bytes. A volume's names are its paths below a
    /// prefix of up to 1 KiB, and a path reached through relative opens may exceed PATH_MAX
    /// (4,096), so names leave room for eight times that. The log stores lengths as 32 bits.
    public static let maximumNameLength = 32 << 10
}
