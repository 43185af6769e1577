// vineyard-csi: StoreBackend
// ObjectBackend.swift: the object operations every backend of a volume offers.

public import VineyardObjects

/// Where a volume's objects live: the node's embedded store (``EmbeddedBackend``) or a
/// vineyard deployment's vineyardd (``VineyarddBackend``).
///
/// The operations are vineyard's: blobs (raw bytes, written once, then sealed), metadata
/// objects, and names bound to objects; and, for a volume's file system, files: an object
/// opened for reading (``SealedFile``) and a file's next version written in place
/// (``FileVersion``) until it is published under the file's name. Names are flat strings; a
/// volume's are those under `"<volumeID>/"`. What one backend can do and another cannot is in
/// ``capabilities``, so the layers above (the volume's file system, its `vineyard.sock`, purge
/// and statistics) are written once.
///
/// Every operation may be called from any thread.
public protocol ObjectBackend: AnyObject, Sendable {
    /// What this backend can do.
    var capabilities: BackendCapabilities { get }
    /// The same for every backend over the same memory (one store, one vineyardd
    /// connection), so that what is counted per volume is counted once.
    var identity: ObjectIdentifier { get }
    /// The instance id new objects carry (0: the backend fills it in).
    var instanceID: UInt64 { get }

    // MARK: Objects

    /// Creates a sealed, persistent metadata object, optionally bound to `name` in the same step.
    func createObject(_ meta: ObjectMeta, name: String?) throws(BackendError) -> ObjectID
    /// The metadata of objects that exist (missing ones are left out).
    func metas(_ ids: [ObjectID]) throws(BackendError) -> [ObjectID: ObjectMeta]
    /// Deletes objects (and, with `deep`, their members); unknown ones are ignored.
    func delete(_ ids: [ObjectID], deep: Bool) throws(BackendError)

    // MARK: Names

    /// Binds `name` to `id` and returns the object it was bound to before, if any.
    @discardableResult
    func bind(_ name: String, to id: ObjectID) throws(BackendError) -> ObjectID?
    /// The object bound to `name`.
    func lookUp(_ name: String) throws(BackendError) -> ObjectID?
    /// Removes a name; a missing name is not an error.
    func unbind(_ name: String) throws(BackendError)
    /// Removes every name starting with `prefix` (in one step where the backend can).
    func unbind(namesWithPrefix prefix: String) throws(BackendError)
    /// The names starting with `prefix`, in ascending order, with their objects.
    func names(withPrefix prefix: String, limit: Int?) throws(BackendError) -> [(name: String, id: ObjectID)]
    /// The names bound to `id`, where ``BackendCapabilities/sharedNames`` lets one object
    /// have names in several volumes; `nil` when the backend cannot tell (an object then has
    /// the names of one volume only).
    func names(of id: ObjectID) throws(BackendError) -> [String]?
    /// The objects whose metadata field `key` is the string `value` (a volume's stamp), or
    /// `nil` when the backend cannot enumerate its objects cheaply.
    func objects(stampedWith key: String, value: String) throws(BackendError) -> [ObjectID]?

    /// Edits the metadata of object `id`, bound to `name` (chmod, chown, utimens of a file):
    /// in place, or, where objects are immutable, as a new object bound to `name` in its stead
    /// (sharing its members), the old one retired.
    func updateMeta(_ id: ObjectID, name: String, _ body: (inout ObjectMeta) -> Void) throws(BackendError)
    /// Deletes an object unless another name (a snapshot's or clone's) still refers to it;
    /// while it is open for reading (``openFile(_:)``) its memory stays untouched.
    func retire(_ id: ObjectID) throws(BackendError)

    /// Moves `from` to `to` in one step and returns the object `to` referred to before.
    ///
    /// - Throws: `ENOENT` when `from` names nothing.
    func renameName(from: String, to: String) throws(BackendError) -> ObjectID?
    /// The entries directly under `prefix` in name order, after `after`, at most `limit`.
    func listDirectory(_ prefix: String, after: ListedName?, limit: Int) throws(BackendError) -> [ListedName]

    // MARK: Files

    /// The length of the file an object reads as (a blob's bytes, a file object's chunks, a
    /// tensor's rendering).
    func fileSize(of id: ObjectID, meta: ObjectMeta) -> Int
    /// Opens an object as a file; `nil` when it is gone.
    ///
    /// - Throws: `EIO` for an object that cannot be read as a file, `EREMOTE` when its bytes
    ///   are in another instance's memory.
    func openFile(_ id: ObjectID) throws(BackendError) -> (any SealedFile)?
    /// Starts a file's next version holding the first `keeping` bytes of `base` (none without).
    func startVersion(from base: (any SealedFile)?, keeping: Int) throws(BackendError) -> any FileVersion
    /// Takes over a version an earlier process was writing (``BackendCapabilities/restartAdoption``).
    func adoptVersion(at extent: VersionExtent, size: Int) throws(BackendError) -> any FileVersion
    /// Seals `version` with `meta` and binds `name` to it, then retires what `name` referred to
    /// (see ``retire(_:)``). On failure the name keeps its previous object.
    func publish(_ version: any FileVersion, meta: ObjectMeta, name: String) throws(BackendError) -> PublishedVersion

    // MARK: Memory

    /// The backend's memory as a whole.
    func usage() throws(BackendError) -> BackendUsage
}

extension ObjectBackend {
    /// The metadata of one object.
    public func meta(_ id: ObjectID) throws(BackendError) -> ObjectMeta? {
        try metas([id])[id]
    }
}
