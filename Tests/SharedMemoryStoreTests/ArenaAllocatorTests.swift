// vineyard-csi: SharedMemoryStoreTests
// ArenaAllocatorTests.swift: placement, coalescing, and the warm-first policy.

import Testing

@testable import SharedMemoryStore

/// Allocates or fails the test.
private func place(_ allocator: inout ArenaAllocator, _ size: Int) throws -> ArenaAllocator.Placement {
    let placement = allocator.allocate(size)
    return try #require(placement)
}

@Suite struct ArenaAllocatorTests {
    @Test func alignsAndRounds() throws {
        var allocator = ArenaAllocator(capacity: 1 << 20)
        let small = try place(&allocator, 10)
        #expect(small.extent == Extent(offset: 0, length: 64))
        let large = try place(&allocator, 100_000)
        #expect(large.extent.offset % 4096 == 0)
        #expect(large.extent.length == 100_032)
        #expect(allocator.bytesAllocated == 64 + 100_032)
        // The alignment gap stays free and is used by a later small allocation.
        let filler = try place(&allocator, 64)
        #expect(filler.extent.offset == 64)
    }

    @Test func coalescesNeighbours() throws {
        var allocator = ArenaAllocator(capacity: 1 << 20)
        let a = try place(&allocator, 4096).extent
        let b = try place(&allocator, 4096).extent
        let c = try place(&allocator, 4096).extent
        allocator.free(a)
        allocator.free(c)
        allocator.free(b)
        // a, b, c were warm (used) and coalesce into one warm range; the rest is one cold range.
        #expect(allocator.freeRanges.count == 2)
        #expect(
            allocator.freeRanges[0].offset == 0 && allocator.freeRanges[0].length == 3 * 4096
                && allocator.freeRanges[0].warm)
        #expect(allocator.bytesAllocated == 0)
        #expect(allocator.warmFreeBytes == 3 * 4096)
    }

    @Test func prefersWarmMemory() throws {
        var allocator = ArenaAllocator(capacity: 64 << 20)
        let first = try place(&allocator, 8 << 20)
        #expect(!first.coldParts.isEmpty)
        _ = try place(&allocator, 4096)  // a neighbour, so the freed range stays separate
        allocator.free(first.extent)
        // A smaller allocation goes into the warm hole, not the cold rest of the arena.
        let second = try place(&allocator, 1 << 20)
        #expect(second.extent.offset == first.extent.offset)
        #expect(second.coldParts.isEmpty)
    }

    @Test func bestFitPicksTheSmallestWarmHole() throws {
        var allocator = ArenaAllocator(capacity: 1 << 20)
        var extents: [Extent] = []
        for size in [8192, 64, 4096, 64, 16384, 64] { extents.append(try place(&allocator, size).extent) }
        allocator.free(extents[0])
        allocator.free(extents[2])
        allocator.free(extents[4])
        let placed = try place(&allocator, 4000)
        #expect(placed.extent.offset == extents[2].offset)
    }

    @Test func failsCleanlyWhenFull() throws {
        var allocator = ArenaAllocator(capacity: 1 << 20)
        let all = try place(&allocator, 1 << 20)
        let overflow = allocator.allocate(64)
        #expect(overflow == nil)
        allocator.free(all.extent)
        let again = allocator.allocate(1 << 20)
        #expect(again != nil)
    }

    @Test func usesMixedRunsOfWarmAndColdMemory() throws {
        var allocator = ArenaAllocator(capacity: 1 << 20)
        let a = try place(&allocator, 512 << 10).extent
        allocator.free(a)
        // Warm [0, 512K) + cold [512K, 1M) are adjacent but different: only the run fits 768K.
        let placed = try place(&allocator, 768 << 10)
        #expect(placed.extent.offset == 0)
        #expect(placed.coldParts == [Extent(offset: 512 << 10, length: 256 << 10)])
    }

    @Test func coldPlacementStartsInTheWarmRangeBeforeIt() throws {
        var allocator = ArenaAllocator(capacity: 64 << 20)
        let small = try place(&allocator, 2 << 20)
        allocator.free(small.extent)
        // Warm [0, 2M), cold after it: a 4 MiB blob uses the warm range and 2 MiB of cold.
        let first = try place(&allocator, 4 << 20)
        #expect(first.extent.offset == 0)
        #expect(first.coldParts == [Extent(offset: 2 << 20, length: 2 << 20)])
        allocator.free(first.extent)
        // The next blob of that size lands exactly where the first was, entirely warm.
        let second = try place(&allocator, 4 << 20)
        #expect(second.extent == first.extent)
        #expect(second.coldParts.isEmpty)
    }

    @Test func coldPlacementKeepsItsAlignmentInTheWarmRange() throws {
        var allocator = ArenaAllocator(capacity: 1 << 20)
        let a = try place(&allocator, 64).extent
        let b = try place(&allocator, 64).extent
        allocator.free(b)
        // Warm [64, 128), cold from 128: a page-aligned blob cannot start in the warm range.
        let large = try place(&allocator, 128 << 10)
        #expect(large.extent.offset == 4096)
        #expect(large.coldParts == [large.extent])
        allocator.free(large.extent)
        allocator.free(a)
    }

    @Test func extendsInPlaceAndShrinks() throws {
        var allocator = ArenaAllocator(capacity: 1 << 20)
        let a = try place(&allocator, 4096).extent
        let extended = allocator.extend(a, to: 16384)
        let (grown, cold) = try #require(extended)
        #expect(grown == Extent(offset: 0, length: 16384))
        #expect(cold == [Extent(offset: 4096, length: 12288)])
        let b = try place(&allocator, 64).extent
        let blocked = allocator.extend(grown, to: 20000)
        #expect(blocked == nil)  // b is in the way
        let shrunk = allocator.shrink(grown, to: 100)
        #expect(shrunk == Extent(offset: 0, length: 128))
        #expect(allocator.bytesAllocated == 128 + 64)
        allocator.free(shrunk)
        allocator.free(b)
        #expect(allocator.bytesAllocated == 0)
    }

    @Test func recoversFromAllocatedExtents() throws {
        let used = [
            Extent(offset: 4096, length: 64), Extent(offset: 0, length: 128), Extent(offset: 65536, length: 4096),
        ]
        let recovered = ArenaAllocator(capacity: 1 << 20, allocated: used)
        var allocator = try #require(recovered)
        #expect(allocator.bytesAllocated == 64 + 128 + 4096)
        #expect(allocator.warmFreeBytes == 0)
        let placed = try place(&allocator, 128)
        #expect(placed.extent.offset == 128)
        #expect(
            ArenaAllocator(
                capacity: 1 << 20, allocated: [Extent(offset: 0, length: 128), Extent(offset: 64, length: 64)]) == nil)
        #expect(ArenaAllocator(capacity: 4096, allocated: [Extent(offset: 4032, length: 128)]) == nil)
    }

    @Test func coolingReturnsPageAlignedInteriors() throws {
        var allocator = ArenaAllocator(capacity: 1 << 20)
        let a = try place(&allocator, 64).extent
        let b = try place(&allocator, 3 * 4096).extent
        _ = try place(&allocator, 64)
        allocator.free(a)
        allocator.free(b)
        let released = allocator.coolFreeMemory(pageSize: 4096)
        #expect(released == [Extent(offset: 0, length: 3 * 4096)])
        #expect(allocator.warmFreeBytes == 64)  // the unaligned tail [12288, 12352) stays warm
    }

    @Test func randomWorkloadKeepsInvariants() throws {
        var allocator = ArenaAllocator(capacity: 32 << 20)
        var live: [Extent] = []
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<5_000 {
            if live.isEmpty || Int.random(in: 0..<3, using: &generator) > 0 {
                let size =
                    Bool.random(using: &generator)
                    ? Int.random(in: 1...4096, using: &generator) : Int.random(in: 1...(512 << 10), using: &generator)
                if let placement = allocator.allocate(size) {
                    live.append(placement.extent)
                    if placement.coldParts.count > 0 && Bool.random(using: &generator) {
                        allocator.markWarm(placement.extent.offset..<placement.extent.end)
                    }
                }
            } else {
                allocator.free(live.remove(at: Int.random(in: 0..<live.count, using: &generator)))
            }
            if Int.random(in: 0..<500, using: &generator) == 0 { _ = allocator.coolFreeMemory(pageSize: 4096) }
        }
        // No overlaps, accounting adds up, and free ranges tile the rest exactly.
        let sorted = live.sorted { $0.offset < $1.offset }
        for (left, right) in zip(sorted, sorted.dropFirst()) { #expect(left.end <= right.offset) }
        #expect(allocator.bytesAllocated == live.reduce(0) { $0 + $1.length })
        let free = allocator.freeRanges.reduce(0) { $0 + $1.length }
        #expect(free + allocator.bytesAllocated == 32 << 20)
        for (left, right) in zip(allocator.freeRanges, allocator.freeRanges.dropFirst()) {
            #expect(left.offset + left.length <= right.offset)
            if left.offset + left.length == right.offset { #expect(left.warm != right.warm) }
        }
        for extent in live { allocator.free(extent) }
        #expect(allocator.bytesAllocated == 0)
    }
}
