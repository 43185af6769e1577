// vineyard-csi: SharedMemoryStore
// SortedMap.swift: an ordered map for names and free ranges.

/// An ordered map kept as a list of sorted chunks (a two-level B+-tree).
///
/// Keys are held in chunks of at most ``chunkCapacity`` entries; a binary search over the
/// chunks' last keys finds the chunk, a second one finds the slot. Lookup is O(log n); an
/// insert or removal moves at most one chunk's worth of elements plus, on a split or when a
/// chunk empties, one pointer per chunk — at 100,000 names that is a few hundred
/// word moves. Iteration from a lower bound is sequential within chunks, which makes prefix
/// listings cheap.
struct SortedMap<Key: Comparable, Value> {
    /// Maximum entries per chunk.
    static var chunkCapacity: Int { 256 }

    private var keyChunks: [[Key]] = []
    private var valueChunks: [[Value]] = []
    /// Number of entries.
    private(set) var count = 0

    /// A position: a chunk and a slot in it. `endIndex` is `(chunks, 0)`.
    struct Index: Comparable {
        var chunk: Int
        var slot: Int

        static func < (lhs: Index, rhs: Index) -> Bool {
            (lhs.chunk, lhs.slot) < (rhs.chunk, rhs.slot)
        }
    }

    var isEmpty: Bool { count == 0 }

    var startIndex: Index { Index(chunk: 0, slot: 0) }

    var endIndex: Index { Index(chunk: keyChunks.count, slot: 0) }

    /// The position after `index`.
    func index(after index: Index) -> Index {
        let next = index.slot + 1
        if next < keyChunks[index.chunk].count { return Index(chunk: index.chunk, slot: next) }
        return Index(chunk: index.chunk + 1, slot: 0)
    }

    /// The position before `index` (which must not be `startIndex`).
    func index(before index: Index) -> Index {
        if index.slot > 0 { return Index(chunk: index.chunk, slot: index.slot - 1) }
        let chunk = index.chunk - 1
        return Index(chunk: chunk, slot: keyChunks[chunk].count - 1)
    }

    /// The key at a valid position.
    func key(at index: Index) -> Key { keyChunks[index.chunk][index.slot] }

    /// The value at a valid position.
    func value(at index: Index) -> Value { valueChunks[index.chunk][index.slot] }

    /// The first chunk whose last key is `>= key`, or `keyChunks.count` if none.
    private func chunkIndex(for key: Key) -> Int {
        var low = 0
        var high = keyChunks.count
        while low < high {
            let middle = (low + high) / 2
            if keyChunks[middle][keyChunks[middle].count - 1] < key { low = middle + 1 } else { high = middle }
        }
        return low
    }

    /// The first slot in `chunk` whose key is `>= key`.
    private static func slot(in chunk: [Key], for key: Key) -> Int {
        var low = 0
        var high = chunk.count
        while low < high {
            let middle = (low + high) / 2
            if chunk[middle] < key { low = middle + 1 } else { high = middle }
        }
        return low
    }

    /// The position of the first key `>= key`.
    func lowerBound(_ key: Key) -> Index {
        let chunk = chunkIndex(for: key)
        if chunk == keyChunks.count { return endIndex }
        return Index(chunk: chunk, slot: SortedMap.slot(in: keyChunks[chunk], for: key))
    }

    /// The position of the first key `> key`.
    func upperBound(_ key: Key) -> Index {
        var index = lowerBound(key)
        if index != endIndex && self.key(at: index) == key { index = self.index(after: index) }
        return index
    }

    /// The position of `key`, if present.
    func find(_ key: Key) -> Index? {
        let index = lowerBound(key)
        if index != endIndex && self.key(at: index) == key { return index }
        return nil
    }

    /// The value for `key`.
    subscript(key: Key) -> Value? {
        guard let index = find(key) else { return nil }
        return value(at: index)
    }

    /// The entry with the greatest key `<= key`.
    func floor(_ key: Key) -> (key: Key, value: Value)? {
        var index = lowerBound(key)
        if index != endIndex && self.key(at: index) == key { return (key, value(at: index)) }
        if index == startIndex { return nil }
        index = self.index(before: index)
        return (self.key(at: index), value(at: index))
    }

    /// The entry with the least key `>= key`.
    func ceiling(_ key: Key) -> (key: Key, value: Value)? {
        let index = lowerBound(key)
        if index == endIndex { return nil }
        return (self.key(at: index), value(at: index))
    }

    /// The entry with the greatest key.
    var last: (key: Key, value: Value)? {
        guard let keys = keyChunks.last else { return nil }
        return (keys[keys.count - 1], valueChunks[valueChunks.count - 1][keys.count - 1])
    }

    /// The entry with the least key.
    var first: (key: Key, value: Value)? {
        guard let keys = keyChunks.first else { return nil }
        return (keys[0], valueChunks[0][0])
    }

    /// Inserts or replaces.
    ///
    /// - Returns: the replaced value, if any.
    @discardableResult
    mutating func updateValue(_ value: Value, forKey key: Key) -> Value? {
        if keyChunks.isEmpty {
            keyChunks.append([key])
            valueChunks.append([value])
            count = 1
            return nil
        }
        var chunk = chunkIndex(for: key)
        if chunk == keyChunks.count { chunk -= 1 }  // beyond every key: append to the last chunk
        let slot = SortedMap.slot(in: keyChunks[chunk], for: key)
        if slot < keyChunks[chunk].count && keyChunks[chunk][slot] == key {
            let old = valueChunks[chunk][slot]
            valueChunks[chunk][slot] = value
            return old
        }
        keyChunks[chunk].insert(key, at: slot)
        valueChunks[chunk].insert(value, at: slot)
        count += 1
        if keyChunks[chunk].count > SortedMap.chunkCapacity {
            let half = keyChunks[chunk].count / 2
            let upperKeys = Array(keyChunks[chunk][half...])
            let upperValues = Array(valueChunks[chunk][half...])
            keyChunks[chunk].removeSubrange(half...)
            valueChunks[chunk].removeSubrange(half...)
            keyChunks.insert(upperKeys, at: chunk + 1)
            valueChunks.insert(upperValues, at: chunk + 1)
        }
        return nil
    }

    /// Removes `key`.
    ///
    /// - Returns: the removed value, if any.
    @discardableResult
    mutating func removeValue(forKey key: Key) -> Value? {
        guard let index = find(key) else { return nil }
        let old = valueChunks[index.chunk][index.slot]
        keyChunks[index.chunk].remove(at: index.slot)
        valueChunks[index.chunk].remove(at: index.slot)
        count -= 1
        if keyChunks[index.chunk].isEmpty {
            keyChunks.remove(at: index.chunk)
            valueChunks.remove(at: index.chunk)
        } else if index.chunk + 1 < keyChunks.count
            && keyChunks[index.chunk].count + keyChunks[index.chunk + 1].count <= SortedMap.chunkCapacity / 2
        {
            // Merge sparse neighbours so deletions do not leave many tiny chunks behind.
            keyChunks[index.chunk].append(contentsOf: keyChunks[index.chunk + 1])
            valueChunks[index.chunk].append(contentsOf: valueChunks[index.chunk + 1])
            keyChunks.remove(at: index.chunk + 1)
            valueChunks.remove(at: index.chunk + 1)
        }
        return old
    }

    /// Calls `body` for each entry from `index` in ascending order until it returns `false`.
    func forEach(from index: Index, _ body: (Key, Value) -> Bool) {
        var chunk = index.chunk
        var slot = index.slot
        while chunk < keyChunks.count {
            let keys = keyChunks[chunk]
            let values = valueChunks[chunk]
            while slot < keys.count {
                if !body(keys[slot], values[slot]) { return }
                slot += 1
            }
            chunk += 1
            slot = 0
        }
    }

    /// Every entry in ascending order.
    var entries: [(key: Key, value: Value)] {
        var result: [(key: Key, value: Value)] = []
        result.reserveCapacity(count)
        forEach(from: startIndex) { key, value in
            result.append((key, value))
            return true
        }
        return result
    }
}

extension SortedMap: Sendable where Key: Sendable, Value: Sendable {}
