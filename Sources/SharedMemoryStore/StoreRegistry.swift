// vineyard-csi: SharedMemoryStore
// StoreRegistry.swift: one store per vineyard cluster on this node.

import Glibc
import Synchronization

/// The stores of one node: one ``ObjectStore`` per vineyard cluster `namespace/name`, each
/// with its own directory (`<root>/<namespace>/<name>`) and capacity.
///
/// ``store(namespace:name:capacity:prefault:)`` opens a store the first time it is asked for
/// (recovering it if the directory already holds one, for example after the driver
/// restarted) and returns the same instance afterwards. Opening is serialized, so two threads
/// asking for the same cluster at once get one store.
public final class StoreRegistry: Sendable {
    /// Identifies a store: a Kubernetes namespace and vineyard cluster name.
    public struct Key: Hashable, Sendable, CustomStringConvertible {
        /// The Kubernetes namespace of the vineyard cluster.
        public var namespace: String
        /// The vineyard cluster's name.
        public var name: String

        /// Creates a key.
        public init(namespace: String, name: String) {
            self.namespace = namespace
            self.name = name
        }

        /// `namespace/name`.
        public var description: String { "\(namespace)/\(name)" }
    }

    /// The directory that holds every store's directory.
    public let rootDirectory: String
    /// Settings for stores opened without explicit values; its `directory` is ignored.
    public let defaults: StoreConfiguration
    private let stores = Mutex<[Key: ObjectStore]>([:])

    /// Creates a registry.
    ///
    /// - Parameters:
    ///   - rootDirectory: where store directories go; default
    ///     ``StoreConfiguration/defaultRoot`` (on `/dev/shm`).
    ///   - defaults: capacity, prefault and other settings for new stores.
    public init(
        rootDirectory: String = StoreConfiguration.defaultRoot,
        defaults: StoreConfiguration = StoreConfiguration(directory: StoreConfiguration.defaultRoot)
    ) {
        self.rootDirectory = rootDirectory
        self.defaults = defaults
    }

    /// The directory of a cluster's store.
    ///
    /// - Throws: ``StoreError/invalidArgument(_:)`` unless both parts are Kubernetes-style
    ///   names (1–253 characters of `a-z`, `0-9`, `-`, `.`, starting and ending alphanumeric).
    public func directory(namespace: String, name: String) throws(StoreError) -> String {
        try StoreRegistry.validate(namespace)
        try StoreRegistry.validate(name)
        return rootDirectory + "/" + namespace + "/" + name
    }

    /// Returns the open store of a cluster, opening (and recovering) it on first use.
    ///
    /// - Parameters:
    ///   - namespace: the cluster's namespace.
    ///   - name: the cluster's name.
    ///   - capacity: the arena size for this store, if not the default. Applies when the store
    ///     is opened; an already open store keeps its capacity.
    ///   - prefault: bytes to pre-fault, if not the default; applies likewise.
    /// - Returns: the store.
    /// - Throws: what ``ObjectStore/open(_:)`` throws, or ``StoreError/invalidArgument(_:)``.
    public func store(namespace: String, name: String, capacity: Int? = nil, prefault: Int? = nil) throws(StoreError)
        -> ObjectStore
    {
        let key = Key(namespace: namespace, name: name)
        let directory = try directory(namespace: namespace, name: name)
        return try stores.withLock { (stores) throws(StoreError) -> ObjectStore in
            if let store = stores[key] { return store }
            var configuration = defaults
            configuration.directory = directory
            if let capacity { configuration.capacity = capacity }
            if let prefault { configuration.prefault = prefault }
            let store = try ObjectStore.open(configuration)
            stores[key] = store
            return store
        }
    }

    /// The open store of a cluster, without opening one.
    public func openStore(namespace: String, name: String) -> ObjectStore? {
        stores.withLock { $0[Key(namespace: namespace, name: name)] }
    }

    /// The clusters whose stores are open.
    public var openKeys: [Key] {
        stores.withLock { Array($0.keys) }.sorted { ($0.namespace, $0.name) < ($1.namespace, $1.name) }
    }

    /// The clusters that have a store directory under the root (open or not), for recovering
    /// every store at start-up.
    public func existingKeys() -> [Key] {
        var keys: [Key] = []
        for namespace in StoreRegistry.subdirectories(of: rootDirectory) {
            for name in StoreRegistry.subdirectories(of: rootDirectory + "/" + namespace)
            where Sys.exists(rootDirectory + "/" + namespace + "/" + name + "/" + MetadataLog.fileName) {
                keys.append(Key(namespace: namespace, name: name))
            }
        }
        return keys.sorted { ($0.namespace, $0.name) < ($1.namespace, $1.name) }
    }

    /// Closes a cluster's store and forgets it (see ``ObjectStore/close()``). The files stay.
    public func close(namespace: String, name: String) {
        let store = stores.withLock { $0.removeValue(forKey: Key(namespace: namespace, name: name)) }
        store?.close()
    }

    /// Closes a cluster's store and deletes its files, freeing its shared memory once nothing
    /// references the store any more.
    ///
    /// - Throws: ``StoreError/system(operation:path:errno:)`` if a file cannot be removed.
    public func destroy(namespace: String, name: String) throws(StoreError) {
        let directory = try directory(namespace: namespace, name: name)
        close(namespace: namespace, name: name)
        for file in [ObjectStore.arenaName, MetadataLog.fileName, MetadataLog.temporaryName, ObjectStore.lockName] {
            try Sys.unlinkIfPresent(directory + "/" + file)
        }
        _ = rmdir(directory)
    }

    private static func validate(_ part: String) throws(StoreError) {
        let bytes = Array(part.utf8)
        let isAlphanumeric: (UInt8) -> Bool = {
            ($0 >= UInt8(ascii: "a") && $0 <= UInt8(ascii: "z")) || ($0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9"))
        }
        guard !bytes.isEmpty, bytes.count <= 253, isAlphanumeric(bytes.first!), isAlphanumeric(bytes.last!),
            bytes.allSatisfy({ isAlphanumeric($0) || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: ".") })
        else {
            throw StoreError.invalidArgument("\(part.debugDescription) is not a valid Kubernetes name")
        }
    }

    private static func subdirectories(of path: String) -> [String] {
        guard let directory = opendir(path) else { return [] }
        defer { closedir(directory) }
        var result: [String] = []
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            guard name != ".", name != "..", entry.pointee.d_type == UInt8(DT_DIR) else { continue }
            result.append(name)
        }
        return result
    }
}
