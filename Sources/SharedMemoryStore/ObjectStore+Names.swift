// vineyard-csi: SharedMemoryStore
// ObjectStore+Names.swift: the name map, lookups and sorted listings.

import Synchronization

extension ObjectStore {
    /// Checks a name: non-empty, at most ``StoreLimits/maximumNameLength`` UTF-8 bytes, no NUL.
    static func validatedName(_ name: String) throws(StoreError) -> NameKey {
        let count = name.utf8.count
        guard count > 0, count <= StoreLimits.maximumNameLength, !name.utf8.contains(0) else {
            throw StoreError.invalidName(name)
        }
        return NameKey(name)
    }

    /// Binds a name to a sealed object, atomically replacing any previous binding: a concurrent
    /// reader resolves the name to the old object or the new one.
    ///
    /// Names are compared byte for byte (no Unicode normalization), like file names.
    ///
    /// - Parameters:
    ///   - name: the name, e.g. `vol-1/dir/file.pkl`.
    ///   - id: a sealed object.
    /// - Returns: the object the name was bound to before, if any (its object is not deleted).
    /// - Throws: ``StoreError/invalidName(_:)``, ``StoreError/notFound(_:)``,
    ///   ``StoreError/storeClosed``, or a log failure.
    @discardableResult
    public func putName(_ name: String, _ id: ObjectID) throws(StoreError) -> ObjectID? {
        let key = try ObjectStore.validatedName(name)
        return try state.withLock { (state) throws(StoreError) -> ObjectID? in
            guard state.objects[id] != nil else { throw StoreError.notFound(id) }
            let previous = state.names[key]
            if previous == id { return previous }
            try appendLocked(&state, [.putName(key.string, id)])
            state.bind(key, to: id)
            compactIfNeededLocked(&state)
            return previous
        }
    }

    /// Binds `name` to `id` together with every other name under `prefix` that is bound to
    /// the same object as `name`, in one log record: readers and a restart see all of them
    /// move or none. A file system publishes a new version of a hard-linked file this way.
    ///
    /// - Parameters:
    ///   - name: the name; its current object decides which other names move.
    ///   - id: a sealed object.
    ///   - prefix: only names starting with it move with `name` (a volume's, not a snapshot's).
    /// - Returns: the object the names were bound to before, if any (it is not deleted).
    /// - Throws: ``StoreError/invalidName(_:)``, ``StoreError/notFound(_:)``,
    ///   ``StoreError/storeClosed``, or a log failure.
    @discardableResult
    public func putName(_ name: String, _ id: ObjectID, withNamesSharingItsObjectUnder prefix: String) throws(StoreError)
        -> ObjectID?
    {
        let key = try ObjectStore.validatedName(name)
        let prefixKey = NameKey(prefix)
        return try state.withLock { (state) throws(StoreError) -> ObjectID? in
            guard state.objects[id] != nil else { throw StoreError.notFound(id) }
            let previous = state.names[key]
            if previous == id { return previous }
            var keys = [key]
            if let previous, let shared = state.objects[previous]?.names {
                keys += shared.filter { $0 != key && $0.hasPrefix(prefixKey) }
            }
            try appendLocked(&state, keys.map { .putName($0.string, id) })
            for bound in keys { state.bind(bound, to: id) }
            compactIfNeededLocked(&state)
            return previous
        }
    }

    /// The object a name is bound to.
    ///
    /// - Parameter name: the name.
    /// - Returns: the identifier, or `nil`.
    public func name(_ name: String) -> ObjectID? {
        let key = NameKey(name)
        return state.withLock { $0.names[key] }
    }

    /// Removes a name (the object stays).
    ///
    /// - Parameter name: the name.
    /// - Returns: the object it was bound to.
    /// - Throws: ``StoreError/nameNotFound(_:)``, ``StoreError/storeClosed``, or a log failure.
    @discardableResult
    public func deleteName(_ name: String) throws(StoreError) -> ObjectID {
        let key = NameKey(name)
        return try state.withLock { (state) throws(StoreError) -> ObjectID in
            guard let id = state.names[key] else { throw StoreError.nameNotFound(name) }
            try appendLocked(&state, [.deleteName(key.string)])
            state.unbind(key)
            compactIfNeededLocked(&state)
            return id
        }
    }

    /// Moves a binding from one name to another in one atomic step, replacing any binding of
    /// the target (like `rename(2)`).
    ///
    /// - Parameters:
    ///   - from: a bound name.
    ///   - to: the new name.
    /// - Returns: the object `to` was bound to before, if any (its object is not deleted).
    /// - Throws: ``StoreError/nameNotFound(_:)``, ``StoreError/invalidName(_:)``,
    ///   ``StoreError/storeClosed``, or a log failure.
    @discardableResult
    public func renameName(from: String, to: String) throws(StoreError) -> ObjectID? {
        let source = NameKey(from)
        let target = try ObjectStore.validatedName(to)
        return try state.withLock { (state) throws(StoreError) -> ObjectID? in
            guard let id = state.names[source] else { throw StoreError.nameNotFound(from) }
            if source == target { return nil }
            let replaced = state.names[target]
            try appendLocked(&state, [.deleteName(source.string), .putName(target.string, id)])
            state.unbind(source)
            state.bind(target, to: id)
            compactIfNeededLocked(&state)
            return replaced
        }
    }

    /// Names starting with `prefix` (bytewise), in ascending byte order.
    ///
    /// Cost is O(log n + k) for k results: the names are a sorted map.
    ///
    /// - Parameters:
    ///   - prefix: the prefix; empty lists everything.
    ///   - limit: the most to return.
    /// - Returns: `(name, id)` pairs.
    public func names(withPrefix prefix: String, limit: Int? = nil) -> [(String, ObjectID)] {
        names(withPrefix: prefix, after: nil, limit: limit)
    }

    /// Names starting with `prefix` and sorting after `after`, for paging through a listing.
    ///
    /// - Parameters:
    ///   - prefix: the prefix.
    ///   - after: the last name of the previous page, or `nil` to start at the beginning.
    ///   - limit: the most to return.
    /// - Returns: `(name, id)` pairs in ascending byte order.
    public func names(withPrefix prefix: String, after: String?, limit: Int?) -> [(String, ObjectID)] {
        let prefixKey = NameKey(prefix)
        let afterKey = after.map(NameKey.init)
        let limit = limit ?? Int.max
        guard limit > 0 else { return [] }
        return state.withLock { state in
            var result: [(String, ObjectID)] = []
            var start = state.names.lowerBound(prefixKey)
            if let afterKey, prefixKey < afterKey { start = state.names.upperBound(afterKey) }
            state.names.forEach(from: start) { name, id in
                guard name.hasPrefix(prefixKey) else { return false }
                result.append((name.string, id))
                return result.count < limit
            }
            return result
        }
    }

    /// Lists one directory level under `prefix`, like `ls` (or S3's listing with a delimiter):
    /// names directly under it, and each deeper path component once as a directory.
    ///
    /// With names `d/a`, `d/b/x`, `d/b/y` and `d/c`, listing `d/` returns `.object("a")`,
    /// `.directory("b")`, `.object("c")`. Whole subtrees are skipped with one O(log n) seek, so
    /// the cost is O(entries × log n) however many names lie below.
    ///
    /// Entries come in the byte order of the names they stand for (a directory `b` sorts where
    /// `prefix + "b/"` does). A component that is both a name and a directory (`d/b` and
    /// `d/b/x`) appears twice, once as each.
    ///
    /// - Parameters:
    ///   - prefix: the directory, normally ending in the delimiter (empty for the root).
    ///   - delimiter: the path separator, an ASCII character other than 0x7F.
    ///   - after: the last entry of the previous page, or `nil` to start at the beginning.
    ///   - limit: the most entries to return.
    /// - Returns: the entries.
    public func listDirectory(
        _ prefix: String, delimiter: Character = "/", after: DirectoryEntry? = nil, limit: Int? = nil
    ) -> [DirectoryEntry] {
        precondition(delimiter.isASCII && delimiter.asciiValue! < 0x7F, "the delimiter must be ASCII")
        let delimiterByte = delimiter.asciiValue!
        let prefixBytes = Array(prefix.utf8)
        let prefixKey = NameKey(prefix)
        let limit = limit ?? Int.max
        guard limit > 0 else { return [] }
        /// The first name after a whole subtree `prefix + component + delimiter`.
        func subtreeEnd(_ component: some Sequence<UInt8>) -> NameKey {
            NameKey(String(decoding: prefixBytes + component + [delimiterByte + 1], as: UTF8.self))
        }
        return state.withLock { state in
            var result: [DirectoryEntry] = []
            var index: SortedMap<NameKey, ObjectID>.Index
            switch after {
            case nil: index = state.names.lowerBound(prefixKey)
            case .object(let name, _): index = state.names.upperBound(NameKey(prefix + name))
            case .directory(let name): index = state.names.lowerBound(subtreeEnd(name.utf8))
            }
            while index != state.names.endIndex && result.count < limit {
                let name = state.names.key(at: index)
                guard name.hasPrefix(prefixKey) else { break }
                let rest = name.string.utf8.dropFirst(prefixBytes.count)
                if let cut = rest.firstIndex(of: delimiterByte) {
                    result.append(.directory(name: String(decoding: rest[..<cut], as: UTF8.self)))
                    index = state.names.lowerBound(subtreeEnd(rest[..<cut]))
                } else {
                    result.append(
                        .object(name: String(decoding: rest, as: UTF8.self), id: state.names.value(at: index)))
                    index = state.names.index(after: index)
                }
            }
            return result
        }
    }
}
