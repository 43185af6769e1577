// vineyard-csi: SharedMemoryStoreTests
// SortedMapTests.swift: the ordered map against a reference model.

import Testing

@testable import SharedMemoryStore

@Suite struct SortedMapTests {
    @Test func matchesDictionaryUnderRandomOperations() {
        var map = SortedMap<Int, Int>()
        var model: [Int: Int] = [:]
        var generator = SystemRandomNumberGenerator()
        for step in 0..<20_000 {
            let key = Int.random(in: 0..<3_000, using: &generator)
            if Bool.random(using: &generator) || step < 2_000 {
                #expect(map.updateValue(step, forKey: key) == model.updateValue(step, forKey: key))
            } else {
                #expect(map.removeValue(forKey: key) == model.removeValue(forKey: key))
            }
        }
        #expect(map.count == model.count)
        #expect(map.entries.map(\.key) == model.keys.sorted())
        for key in stride(from: -1, to: 3_001, by: 7) {
            #expect(map[key] == model[key])
            let floor = model.keys.filter { $0 <= key }.max()
            #expect(map.floor(key)?.key == floor)
            let ceiling = model.keys.filter { $0 >= key }.min()
            #expect(map.ceiling(key)?.key == ceiling)
        }
    }

    @Test func boundsAndIteration() {
        var map = SortedMap<Int, String>()
        for key in stride(from: 0, to: 2_000, by: 2) { map.updateValue("\(key)", forKey: key) }
        #expect(map.key(at: map.lowerBound(7)) == 8)
        #expect(map.key(at: map.lowerBound(8)) == 8)
        #expect(map.key(at: map.upperBound(8)) == 10)
        #expect(map.lowerBound(5_000) == map.endIndex)
        var seen: [Int] = []
        map.forEach(from: map.lowerBound(1_990)) { key, _ in
            seen.append(key)
            return true
        }
        #expect(seen == [1_990, 1_992, 1_994, 1_996, 1_998])
        #expect(map.first?.key == 0)
        #expect(map.last?.key == 1_998)
        for key in stride(from: 0, to: 2_000, by: 2) { map.removeValue(forKey: key) }
        #expect(map.isEmpty)
        #expect(map.first == nil)
    }
}
