// vineyard-csi: SharedMemoryStore
// ArenaAllocator.swift: placement of blobs in the arena, preferring warm memory.

/// A byte range of the arena owned by one blob.
struct Extent: Hashable, Sendable {
    var offset: Int
    var length: Int
    var end: Int { offset + length }
}

/// Best-fit allocation over the arena, with coalescing and a warm/cold distinction.
///
/// Page faults dominate write cost on tmpfs (first-touch writes run at 0.4–1.3 GB/s against
/// ~10 GB/s for a copy into memory that is already mapped), so the allocator tracks which free
/// memory is *warm* — backed by tmpfs pages and present in page tables (this process's, or those
/// of the client that wrote it through its own mapping), because a deleted blob used it or it
/// was pre-faulted — and which is *cold* (never touched, trimmed,
/// or of unknown state after a restart). Every allocation is served from warm memory when any
/// warm range fits (best fit, lowest address on ties); only then from cold memory, starting in
/// the warm range right before the chosen cold one if there is such a range; only then from a
/// run of adjacent warm and cold ranges. The caller backs the cold parts of an
/// allocation (``ObjectStore`` reserves them with `fallocate` and, unless another process
/// writes them, populates them with `MADV_POPULATE_WRITE`, which is several times faster than
/// faulting page by page) before anyone writes to it.
///
/// Free ranges are indexed by offset (for coalescing) and by size within each temperature (for
/// best fit), all in ``SortedMap``s, so allocation and free are O(log n). Adjacent free ranges
/// of the same temperature are always coalesced.
///
/// Sizes round up to 64 bytes. Allocations of 64 KiB or more start on a 4 KiB page boundary
/// (so they can be mapped, spliced or punched page-wise); smaller ones on 64 bytes, as
/// vineyardd does.
struct ArenaAllocator: Sendable {
    /// One free range.
    struct FreeRange: Sendable {
        var length: Int
        var warm: Bool
    }

    /// Best-fit key: by length, then by offset.
    struct SizeKey: Comparable, Sendable {
        var length: Int
        var offset: Int
        static func < (lhs: SizeKey, rhs: SizeKey) -> Bool {
            (lhs.length, lhs.offset) < (rhs.length, rhs.offset)
        }
    }

    /// An allocation and the parts of it that came from cold memory.
    struct Placement: Sendable {
        var extent: Extent
        var coldParts: [Extent]
    }

    /// Allocation granularity.
    static let granule = 64
    /// Allocations of at least this size are page aligned.
    static let largeThreshold = 64 << 10
    /// Alignment of large allocations.
    static let pageAlignment = 4096

    /// The arena size.
    private(set) var capacity: Int
    /// Bytes handed out.
    private(set) var bytesAllocated = 0
    /// Free bytes in warm ranges.
    private(set) var warmFreeBytes = 0

    private var ranges = SortedMap<Int, FreeRange>()
    private var warmBySize = SortedMap<SizeKey, Void>()
    private var coldBySize = SortedMap<SizeKey, Void>()

    /// An empty, entirely cold arena.
    init(capacity: Int) {
        self.capacity = capacity
        if capacity > 0 { insertRaw(offset: 0, length: capacity, warm: false) }
    }

    /// An arena in which `allocated` extents are in use and everything else is free and cold.
    ///
    /// - Returns: `nil` if extents overlap, are misaligned, or exceed the capacity.
    init?(capacity: Int, allocated: [Extent]) {
        self.capacity = capacity
        var cursor = 0
        for extent in allocated.sorted(by: { $0.offset < $1.offset }) where extent.length > 0 {
            guard extent.offset >= cursor, extent.end <= capacity, extent.offset % ArenaAllocator.granule == 0,
                extent.length % ArenaAllocator.granule == 0
            else { return nil }
            if extent.offset > cursor { insertFree(offset: cursor, length: extent.offset - cursor, warm: false) }
            bytesAllocated += extent.length
            cursor = extent.end
        }
        if cursor < capacity { insertFree(offset: cursor, length: capacity - cursor, warm: false) }
    }

    /// Rounds a byte count up to the allocation granularity.
    static func roundUp(_ size: Int, to alignment: Int = granule) -> Int {
        (size + alignment - 1) / alignment * alignment
    }

    /// Free bytes in total (possibly fragmented).
    var bytesFree: Int { capacity - bytesAllocated }

    /// Number of free ranges (a fragmentation figure).
    var freeRangeCount: Int { ranges.count }

    // MARK: - Allocation

    /// Finds room for `size` bytes (rounded up to the granule), warm memory first.
    ///
    /// - Parameter size: a positive byte count.
    /// - Returns: the placement, or `nil` if no free range or run of adjacent ranges fits.
    mutating func allocate(_ size: Int) -> Placement? {
        precondition(size > 0)
        let length = ArenaAllocator.roundUp(size)
        guard length <= bytesFree else { return nil }
        let alignment = length >= ArenaAllocator.largeThreshold ? ArenaAllocator.pageAlignment : ArenaAllocator.granule
        let start =
            ArenaAllocator.bestFit(in: warmBySize, length: length, alignment: alignment)
            ?? ArenaAllocator.bestFit(in: coldBySize, length: length, alignment: alignment).map {
                startingInWarmNeighbour($0, alignment: alignment)
            }
            ?? mixedRunFit(length: length, alignment: alignment)
        guard let start else { return nil }
        let cold = take(start: start, length: length)
        bytesAllocated += length
        return Placement(extent: Extent(offset: start, length: length), coldParts: cold)
    }

    /// Grows an allocation in place when the bytes right after it are free.
    ///
    /// - Returns: the cold parts of the added range, or `nil` if it is not free.
    mutating func extend(_ extent: Extent, to newLength: Int) -> (extent: Extent, coldParts: [Extent])? {
        let length = ArenaAllocator.roundUp(newLength)
        guard length > extent.length else { return (extent, []) }
        var cursor = extent.end
        let end = extent.offset + length
        guard end <= capacity else { return nil }
        while cursor < end {
            guard let range = ranges[cursor] else { return nil }
            cursor += range.length
        }
        let cold = take(start: extent.end, length: length - extent.length)
        bytesAllocated += length - extent.length
        return (Extent(offset: extent.offset, length: length), cold)
    }

    /// Allocates exactly `extent` if every byte of it is free (taking over a range whose owner
    /// is gone, see ``ObjectStore/adoptUnsealedBlob(offset:capacity:size:)``).
    ///
    /// - Returns: whether the range was free and is now allocated.
    mutating func claim(_ extent: Extent) -> Bool {
        guard extent.length > 0, extent.offset >= 0, extent.end <= capacity,
            let first = ranges.floor(extent.offset), first.key + first.value.length > extent.offset
        else { return false }
        var cursor = first.key + first.value.length
        while cursor < extent.end {
            guard let next = ranges[cursor] else { return false }
            cursor += next.length
        }
        _ = take(start: extent.offset, length: extent.length)
        bytesAllocated += extent.length
        return true
    }

    /// Returns the tail of an allocation beyond `newLength` bytes (rounded up) as warm memory.
    ///
    /// - Returns: the shortened extent (length 0 when `newLength` is 0).
    mutating func shrink(_ extent: Extent, to newLength: Int) -> Extent {
        let length = ArenaAllocator.roundUp(newLength)
        guard length < extent.length else { return extent }
        free(Extent(offset: extent.offset + length, length: extent.length - length), warm: true)
        return Extent(offset: extent.offset, length: length)
    }

    /// Returns an allocation. `warm` says whether its memory is backed and mapped (true for
    /// anything a writer could have used).
    mutating func free(_ extent: Extent, warm: Bool = true) {
        guard extent.length > 0 else { return }
        if let left = ranges.floor(extent.offset) {
            precondition(left.key + left.value.length <= extent.offset, "double free of \(extent)")
        }
        if let right = ranges.ceiling(extent.offset) {
            precondition(right.key >= extent.end, "double free of \(extent)")
        }
        bytesAllocated -= extent.length
        insertFree(offset: extent.offset, length: extent.length, warm: warm)
    }

    /// Marks the free parts of `range` warm (after the caller backed them).
    mutating func markWarm(_ range: Range<Int>) {
        var affected: [(offset: Int, range: FreeRange)] = []
        var index = ranges.lowerBound(range.lowerBound)
        if index != ranges.startIndex {
            let previous = ranges.index(before: index)
            if ranges.key(at: previous) + ranges.value(at: previous).length > range.lowerBound { index = previous }
        }
        ranges.forEach(from: index) { offset, free in
            guard offset < range.upperBound else { return false }
            if !free.warm { affected.append((offset, free)) }
            return true
        }
        for (offset, free) in affected {
            removeRaw(offset: offset)
            let end = offset + free.length
            let warmStart = max(offset, range.lowerBound)
            let warmEnd = min(end, range.upperBound)
            if offset < warmStart { insertFree(offset: offset, length: warmStart - offset, warm: false) }
            insertFree(offset: warmStart, length: warmEnd - warmStart, warm: true)
            if warmEnd < end { insertFree(offset: warmEnd, length: end - warmEnd, warm: false) }
        }
    }

    /// Turns the page-aligned interior of every warm free range cold and returns those
    /// interiors, for the caller to release with a hole punch.
    mutating func coolFreeMemory(pageSize: Int) -> [Extent] {
        var warm: [(offset: Int, length: Int)] = []
        ranges.forEach(from: ranges.startIndex) { offset, free in
            if free.warm { warm.append((offset, free.length)) }
            return true
        }
        var released: [Extent] = []
        for (offset, length) in warm {
            let end = offset + length
            let start = ArenaAllocator.roundUp(offset, to: pageSize)
            let stop = end / pageSize * pageSize
            guard stop > start else { continue }
            removeRaw(offset: offset)
            if offset < start { insertFree(offset: offset, length: start - offset, warm: true) }
            insertFree(offset: start, length: stop - start, warm: false)
            if stop < end { insertFree(offset: stop, length: end - stop, warm: true) }
            released.append(Extent(offset: start, length: stop - start))
        }
        return released
    }

    /// The free ranges in address order (for tests and diagnostics).
    var freeRanges: [(offset: Int, length: Int, warm: Bool)] {
        ranges.entries.map { ($0.key, $0.value.length, $0.value.warm) }
    }

    // MARK: - Internals

    private static func alignUp(_ value: Int, _ alignment: Int) -> Int {
        (value + alignment - 1) / alignment * alignment
    }

    /// Smallest range that fits `length` at `alignment`; lowest offset among equals.
    private static func bestFit(in index: SortedMap<SizeKey, Void>, length: Int, alignment: Int) -> Int? {
        var position = index.lowerBound(SizeKey(length: length, offset: 0))
        var checked = 0
        while position != index.endIndex {
            let key = index.key(at: position)
            let start = alignUp(key.offset, alignment)
            if start + length <= key.offset + key.length { return start }
            checked += 1
            if checked == 32 {
                // Many near-miss ranges: jump to the sizes that fit whatever their alignment.
                position = index.lowerBound(SizeKey(length: length + alignment - granule, offset: 0))
                checked = Int.min
                continue
            }
            position = index.index(after: position)
        }
        return nil
    }

    /// A placement in cold memory, moved down to start in the warm free range that ends where its
    /// cold range begins (if any; different temperatures never coalesce, so such a neighbour is
    /// warm). It still fits: it starts no later and the run is longer. Without this, a growing
    /// blob size lands past the warm memory its predecessor left, and the next allocation of
    /// that size lands on the (now larger) warm range's lowest address instead: two placements
    /// that overlap only partly, so a client that wrote the first through its own mapping (a
    /// vineyard client re-putting same-sized arrays) faults a third of the second's pages in
    /// again, and the store backs pages it did not need to.
    private func startingInWarmNeighbour(_ start: Int, alignment: Int) -> Int {
        guard let cold = ranges.floor(start), let warm = ranges.floor(cold.key - 1),
            warm.key + warm.value.length == cold.key, warm.value.warm
        else { return start }
        return min(start, ArenaAllocator.alignUp(warm.key, alignment))
    }

    /// Lowest-address run of adjacent free ranges (of mixed temperature) that fits.
    private func mixedRunFit(length: Int, alignment: Int) -> Int? {
        var runStart = 0
        var runEnd = -1
        var found: Int?
        ranges.forEach(from: ranges.startIndex) { offset, free in
            if offset != runEnd { runStart = offset }
            runEnd = offset + free.length
            let start = ArenaAllocator.alignUp(runStart, alignment)
            if start + length <= runEnd {
                found = start
                return false
            }
            return true
        }
        return found
    }

    /// Removes `[start, start + length)` from the free ranges, which must cover it; returns the
    /// parts that were cold. Leftovers keep their temperature.
    private mutating func take(start: Int, length: Int) -> [Extent] {
        let end = start + length
        guard let first = ranges.floor(start), first.key + first.value.length > start else {
            preconditionFailure("take of a range that is not free")
        }
        var cold: [Extent] = []
        var offset = first.key
        var cursor = start
        while cursor < end {
            guard let free = ranges[offset] else { preconditionFailure("take across an allocated range") }
            let rangeEnd = offset + free.length
            removeRaw(offset: offset)
            if offset < cursor { insertRaw(offset: offset, length: cursor - offset, warm: free.warm) }
            let takenEnd = min(rangeEnd, end)
            if !free.warm { cold.append(Extent(offset: cursor, length: takenEnd - cursor)) }
            if rangeEnd > end { insertRaw(offset: end, length: rangeEnd - end, warm: free.warm) }
            cursor = takenEnd
            offset = rangeEnd
        }
        return cold
    }

    /// Inserts a free range, coalescing with same-temperature neighbours.
    private mutating func insertFree(offset: Int, length: Int, warm: Bool) {
        guard length > 0 else { return }
        var start = offset
        var total = length
        if let left = ranges.floor(offset - 1), left.key + left.value.length == offset, left.value.warm == warm {
            removeRaw(offset: left.key)
            start = left.key
            total += left.value.length
        }
        if let right = ranges[offset + length], right.warm == warm {
            removeRaw(offset: offset + length)
            total += right.length
        }
        insertRaw(offset: start, length: total, warm: warm)
    }

    private mutating func insertRaw(offset: Int, length: Int, warm: Bool) {
        ranges.updateValue(FreeRange(length: length, warm: warm), forKey: offset)
        if warm {
            warmBySize.updateValue((), forKey: SizeKey(length: length, offset: offset))
            warmFreeBytes += length
        } else {
            coldBySize.updateValue((), forKey: SizeKey(length: length, offset: offset))
        }
    }

    private mutating func removeRaw(offset: Int) {
        guard let free = ranges.removeValue(forKey: offset) else { preconditionFailure("no free range at \(offset)") }
        if free.warm {
            warmBySize.removeValue(forKey: SizeKey(length: free.length, offset: offset))
            warmFreeBytes -= free.length
        } else {
            coldBySize.removeValue(forKey: SizeKey(length: free.length, offset: offset))
        }
    }
}
