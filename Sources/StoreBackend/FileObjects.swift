// vineyard-csi: StoreBackend
// FileObjects.swift: what a volume's file system needs of a backend beyond plain objects: a file's sealed version to read, and a new version to write.

public import VineyardObjects

/// Bytes of a file, as a backend hands them out for a read.
public enum FileBytes {
    /// Pieces of the backend's memory, in order, valid while `keepAlive` is held: no copy.
    case mapped([UnsafeRawBufferPointer], keepAlive: AnyObject?)
    /// Bytes assembled for this read (a file synthesized from an object's metadata).
    case copied([UInt8])

    public static var empty: FileBytes { .mapped([], keepAlive: nil) }
}

/// A sealed object opened as a file: its bytes stay readable (and their memory unused by
/// anything else) while it is held, even after its name is removed or rebound.
public protocol SealedFile: AnyObject, Sendable {
    var id: ObjectID { get }
    var meta: ObjectMeta { get }
    /// The file's length in bytes.
    var size: Int { get }
    /// Bytes `offset..<offset+count` (fewer only at the end of the file).
    ///
    /// - Throws: `EIO` when the memory behind it is gone (a vineyardd that restarted).
    func read(at offset: Int, count: Int) throws(BackendError) -> FileBytes

    /// A read-only descriptor of the file holding exactly this object's bytes (the caller
    /// closes it); `nil` when its bytes are not a file of their own
    /// (``BackendCapabilities/ownFiles``).
    func openOwnFile() throws(BackendError) -> Int32?
}

extension SealedFile {
    public func openOwnFile() throws(BackendError) -> Int32? { nil }
}

/// Where an unsealed version lies in the backend's memory, so that the next process can take
/// it over (``BackendCapabilities/restartAdoption``).
public struct VersionExtent: Sendable, Hashable {
    public var offset: Int
    public var capacity: Int
    /// The blob whose file of its own holds the version (``BackendCapabilities/ownFiles``);
    /// `offset` and `capacity` then mean nothing.
    public var ownFile: ObjectID?

    public init(offset: Int, capacity: Int) {
        self.offset = offset
        self.capacity = capacity
    }

    /// A version in the file of its own of blob `id`.
    public init(ownFile id: ObjectID) {
        self.init(offset: 0, capacity: 0)
        self.ownFile = id
    }
}

/// A file's next version, written in place until it is published (or discarded). Nobody but
/// its writer sees it. The caller serializes calls (one writer lock per file).
public protocol FileVersion: AnyObject, Sendable {
    /// Bytes written so far.
    var size: Int { get }
    /// Copies `bytes` to `offset`, growing the version (a gap reads as zeros).
    func write(at offset: Int, _ bytes: UnsafeRawBufferPointer) throws(BackendError)
    /// Sets the length: shorter drops the tail, longer adds zeros.
    func truncate(to size: Int) throws(BackendError)
    /// A copy of bytes `offset..<offset+count` (reading a file back before it is published).
    func read(at offset: Int, count: Int) throws(BackendError) -> [UInt8]
    /// Where the version lies, where the backend can adopt it after a restart.
    var extent: VersionExtent? { get }
    /// Gives the version's memory back; it never becomes visible.
    func discard()
}

/// What publishing a version did.
public struct PublishedVersion: Sendable {
    /// The new, sealed version.
    public var id: ObjectID
    /// The version the name referred to before, already deleted unless another name still
    /// refers to it, with its metadata when it had some.
    public var replaced: ObjectID?
    public var replacedMeta: ObjectMeta?

    public init(id: ObjectID, replaced: ObjectID?, replacedMeta: ObjectMeta?) {
        self.id = id
        self.replaced = replaced
        self.replacedMeta = replacedMeta
    }
}

/// One entry of a directory listing of names: a name directly under the listed prefix, or a
/// component with further names below it.
public enum ListedName: Sendable, Hashable {
    case object(name: String, id: ObjectID)
    case directory(name: String)

    public var name: String {
        switch self {
        case .object(let name, _), .directory(let name): return name
        }
    }

    /// Where the entry sorts among the names: a directory `b` where `prefix + "b/"` does.
    var sortKey: String {
        switch self {
        case .object(let name, _): return name
        case .directory(let name): return name + "/"
        }
    }
}

extension FileVersion {
    /// Copies `bytes` to `offset`.
    public func write(at offset: Int, _ bytes: [UInt8]) throws(BackendError) {
        let result: Result<Void, BackendError> = bytes.withUnsafeBytes { raw in
            do throws(BackendError) {
                try write(at: offset, raw)
                return .success(())
            } catch {
                return .failure(error)
            }
        }
        try result.get()
    }
}
