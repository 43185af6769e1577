// vineyard-csi: SharedMemoryStore
// ObjectStore+Sharing.swift: trees of names that share objects (snapshots, clones).

import Synchronization

/// What a whole-prefix name operation did.
public struct PrefixChange: Equatable, Sendable {
    /// Names bound (``ObjectStore/copyNames(withPrefix:to:)``) or unbound
    /// (``ObjectStore/removeNames(withPrefix:)``).
    public var names: Int
    /// Blob bytes the names refer to, each object counted once.
    public var bytes: Int
    /// Objects deleted because no name referred to them any more (removal only).
    public var deletedObjects: Int

    public init(names: Int, bytes: Int, deletedObjects: Int) {
        self.names = names
        self.bytes = bytes
        self.deletedObjects = deletedObjects
    }
}

extension ObjectStore {
    /// Binds, for every name under `prefix`, the same name under `newPrefix` to the same
    /// object, in one atomic step: a snapshot or clone of a tree that copies no bytes.
    ///
    /// The cost is one log record and O(k log n) for k names; objects are immutable once sealed,
    /// so the two trees share them until one side rebinds a name. Objects stay alive while any
    /// name refers to them (see ``deleteIfUnnamed(_:)`` and ``removeNames(withPrefix:)``).
    ///
    /// - Parameters:
    ///   - prefix: the source tree, e.g. `"vol-1/"`.
    ///   - newPrefix: the new tree, e.g. `"snap-2/"`; no name may exist under it yet.
    /// - Returns: the names bound and the bytes they share.
    /// - Throws: ``StoreError/invalidArgument(_:)`` when a prefix is empty, the trees overlap or
    ///   the target tree is not empty; ``StoreError/invalidName(_:)`` when a new name is too
    ///   long; ``StoreError/storeClosed`` or a log failure (nothing is bound then).
    @discardableResult
    public func copyNames(withPrefix prefix: String, to newPrefix: String) throws(StoreError) -> PrefixChange {
        guard !prefix.isEmpty, !newPrefix.isEmpty else { throw .invalidArgument("empty name prefix") }
        guard !newPrefix.hasPrefix(prefix), !prefix.hasPrefix(newPrefix) else {
            throw .invalidArgument("name prefixes \"\(prefix)\" and \"\(newPrefix)\" overlap")
        }
        let sourceKey = NameKey(prefix)
        let targetKey = NameKey(newPrefix)
        return try state.withLock { (state) throws(StoreError) -> PrefixChange in
            let existing = state.names.lowerBound(targetKey)
            if existing != state.names.endIndex, state.names.key(at: existing).hasPrefix(targetKey) {
                throw .invalidArgument("names under \"\(newPrefix)\" already exist")
            }
            var bindings: [(NameKey, ObjectID)] = []
            state.names.forEach(from: state.names.lowerBound(sourceKey)) { name, id in
                guard name.hasPrefix(sourceKey) else { return false }
                bindings.append((name, id))
                return true
            }
            var operations: [LogOp] = []
            var targets: [(NameKey, ObjectID)] = []
            operations.reserveCapacity(bindings.count)
            targets.reserveCapacity(bindings.count)
            for (name, id) in bindings {
                let target = try ObjectStore.validatedName(newPrefix + name.string.utf8.dropFirst(prefix.utf8.count).string)
                operations.append(.putName(target.string, id))
                targets.append((target, id))
            }
            if !operations.isEmpty { try appendLocked(&state, operations) }
            for (target, id) in targets { state.bind(target, to: id) }
            compactIfNeededLocked(&state)
            return PrefixChange(names: targets.count, bytes: Self.sharedBytes(state, targets.map(\.1)), deletedObjects: 0)
        }
    }

    /// Unbinds every name under `prefix` in one atomic step and deletes the objects no name
    /// refers to any more; objects another tree still names stay.
    ///
    /// Open ``ObjectHandle``s keep a deleted blob's memory until they are released.
    ///
    /// - Parameter prefix: the tree, e.g. `"vol-1/"`; must not be empty.
    /// - Returns: the names unbound, the bytes they referred to, and the objects deleted.
    /// - Throws: ``StoreError/invalidArgument(_:)`` for an empty prefix,
    ///   ``StoreError/storeClosed`` or a log failure (nothing changes then).
    @discardableResult
    public func removeNames(withPrefix prefix: String) throws(StoreError) -> PrefixChange {
        guard !prefix.isEmpty else { throw .invalidArgument("empty name prefix") }
        let key = NameKey(prefix)
        return try state.withLock { (state) throws(StoreError) -> PrefixChange in
            var bindings: [(NameKey, ObjectID)] = []
            state.names.forEach(from: state.names.lowerBound(key)) { name, id in
                guard name.hasPrefix(key) else { return false }
                bindings.append((name, id))
                return true
            }
            guard !bindings.isEmpty else { return PrefixChange(names: 0, bytes: 0, deletedObjects: 0) }
            let bytes = Self.sharedBytes(state, bindings.map(\.1))
            // Objects every one of whose names goes away.
            var removedPerObject: [ObjectID: Int] = [:]
            for (_, id) in bindings { removedPerObject[id, default: 0] += 1 }
            let orphans = removedPerObject.compactMap { id, removed in
                (state.objects[id]?.names.count ?? 0) == removed ? id : nil
            }
            let members = Self.orphanedMembersLocked(state, deleting: orphans)
            var operations: [LogOp] = bindings.map { .deleteName($0.0.string) }
            operations.append(contentsOf: (orphans + members).map { .deleteObject($0) })
            try appendLocked(&state, operations)
            for (name, _) in bindings { state.unbind(name) }
            for id in orphans + members { Self.forgetObjectLocked(&state, id) }
            compactIfNeededLocked(&state)
            return PrefixChange(names: bindings.count, bytes: bytes, deletedObjects: orphans.count + members.count)
        }
    }

    /// Deletes a sealed object if no name refers to it: how a tree drops the previous version
    /// of a file without taking it from a snapshot or clone that shares it.
    ///
    /// Members of a composite object (a pandas frame's columns and their blobs) go with it,
    /// as a deep delete through vineyard's client does, unless a name or another object still
    /// refers to them: without that, removing such a file would keep all of its bytes.
    ///
    /// - Parameter id: the object.
    /// - Returns: whether it was deleted (`false` when names remain or it does not exist).
    /// - Throws: ``StoreError/storeClosed`` or a log failure.
    @discardableResult
    public func deleteIfUnnamed(_ id: ObjectID) throws(StoreError) -> Bool {
        try state.withLock { (state) throws(StoreError) -> Bool in
            guard let record = state.objects[id], record.names.isEmpty else { return false }
            let members = Self.orphanedMembersLocked(state, deleting: [id])
            try appendLocked(&state, ([id] + members).map { .deleteObject($0) })
            for deleted in [id] + members { Self.forgetObjectLocked(&state, deleted) }
            compactIfNeededLocked(&state)
            return true
        }
    }

    /// Names bound to an object, for diagnostics and tests.
    public func names(of id: ObjectID) -> [String] {
        state.withLock { $0.objects[id]?.names.map(\.string) ?? [] }
    }

    /// The members, at any depth, of the objects `roots` that nothing keeps once the roots are
    /// deleted: no name binds them and no other object has them as members.
    ///
    /// A blob-only deletion (a file written through the file system) has no members and costs
    /// nothing here; a composite one scans the other objects' trees once.
    static func orphanedMembersLocked(_ state: StoreState, deleting roots: [ObjectID]) -> [ObjectID] {
        let rootSet = Set(roots)
        var candidates: [ObjectID] = []
        var seen = rootSet
        for root in roots {
            guard let meta = state.objects[root]?.meta else { continue }
            for id in meta.memberIDs where !seen.contains(id) {
                seen.insert(id)
                candidates.append(id)
            }
        }
        guard !candidates.isEmpty else { return [] }
        let candidateSet = Set(candidates)
        // Stored trees are complete, so another object's tree names the members of its members.
        var kept: Set<ObjectID> = []
        for (id, record) in state.objects where !rootSet.contains(id) && !candidateSet.contains(id) {
            guard !record.meta.members.isEmpty else { continue }
            kept.formUnion(record.meta.memberIDs.lazy.filter { candidateSet.contains($0) })
        }
        // A member that stays (named, or kept above) keeps its own members.
        for id in candidates where kept.contains(id) || !(state.objects[id]?.names.isEmpty ?? true) {
            kept.formUnion(state.objects[id]?.meta.memberIDs ?? [])
        }
        return candidates.filter { id in
            guard let record = state.objects[id] else { return false }
            return record.names.isEmpty && !kept.contains(id)
        }
    }

    /// Drops a sealed object from the state (its names must already be unbound); the memory is
    /// reused once no reader holds it.
    private static func forgetObjectLocked(_ state: inout StoreState, _ id: ObjectID) {
        guard let record = state.objects.removeValue(forKey: id) else { return }
        guard let storage = record.storage else { return }
        if record.readers > 0 {
            state.zombies[id] = Zombie(storage: storage, readers: record.readers)
        } else {
            state.free(storage)
        }
    }

    private static func sharedBytes(_ state: StoreState, _ ids: [ObjectID]) -> Int {
        Set(ids).reduce(0) { sum, id in sum + (state.objects[id]?.location?.size ?? 0) }
    }
}

extension Substring.UTF8View {
    fileprivate var string: String { String(decoding: self, as: UTF8.self) }
}
