// vineyard-csi: SharedMemoryStoreTests
// StoreRegistryTests.swift: one store per vineyard cluster.

import Foundation
import Testing

@testable import SharedMemoryStore

@Suite struct StoreRegistryTests {
    private func registry(_ directory: String) -> StoreRegistry {
        var defaults = StoreConfiguration(directory: "", capacity: 16 << 20)
        defaults.bootID = "test-boot"
        return StoreRegistry(rootDirectory: directory + "/stores", defaults: defaults)
    }

    @Test func opensOneStorePerCluster() throws {
        try withTemporaryDirectory { directory in
            let registry = registry(directory)
            let a = try registry.store(namespace: "default", name: "vineyard-a")
            let again = try registry.store(namespace: "default", name: "vineyard-a")
            let b = try registry.store(namespace: "team-2", name: "vineyard-b", capacity: 32 << 20)
            #expect(a === again)
            #expect(a !== b)
            #expect(a.usage.capacity == 16 << 20)
            #expect(b.usage.capacity == 32 << 20)
            #expect(a.configuration.directory == directory + "/stores/default/vineyard-a")
            try put(a, [1], name: "x")
            #expect(b.name("x") == nil)
            #expect(registry.openKeys.map(\.description) == ["default/vineyard-a", "team-2/vineyard-b"])
            #expect(registry.existingKeys().map(\.description) == ["default/vineyard-a", "team-2/vineyard-b"])
        }
    }

    @Test func concurrentOpensShareOneInstance() throws {
        try withTemporaryDirectory { directory in
            let registry = registry(directory)
            let stores = Shared<[ObjectIdentifier]>([])
            runOnThreads(8) { _ in
                if let store = try? registry.store(namespace: "ns", name: "cluster") {
                    stores.withLock { $0.append(ObjectIdentifier(store)) }
                }
            }
            #expect(Set(stores.withLock { $0 }).count == 1)
            #expect(stores.withLock { $0.count } == 8)
        }
    }

    @Test func rejectsNamesThatAreNotKubernetesNames() throws {
        try withTemporaryDirectory { directory in
            let registry = registry(directory)
            for (namespace, name) in [
                ("", "a"), ("a", ""), ("../x", "a"), ("a", "b/c"), ("A", "b"), ("-a", "b"), ("a", "b-"),
            ] {
                #expect(throws: StoreError.self, "\(namespace)/\(name)") {
                    try registry.store(namespace: namespace, name: name)
                }
            }
        }
    }

    @Test func reopensAfterCloseAndDestroys() throws {
        try withTemporaryDirectory { directory in
            let registry = registry(directory)
            do {
                let store = try registry.store(namespace: "ns", name: "c")
                try put(store, [1, 2], name: "kept")
                registry.close(namespace: "ns", name: "c")
            }
            #expect(registry.openStore(namespace: "ns", name: "c") == nil)
            let reopened = try registry.store(namespace: "ns", name: "c")
            #expect(contents(try #require(reopened.object(named: "kept"))) == [1, 2])
            try registry.destroy(namespace: "ns", name: "c")
            #expect(!FileManager.default.fileExists(atPath: directory + "/stores/ns/c/arena-0"))
            #expect(registry.existingKeys().isEmpty)
        }
    }
}
