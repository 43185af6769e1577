// vineyard-csi: SharedMemoryStoreTests
// NameTests.swift: binding, atomic replacement and rename, and sorted listings.

import Foundation
import Testing

@testable import SharedMemoryStore

@Suite struct NameTests {
    @Test func bindReplaceDelete() throws {
        try withStore { store, _ in
            let a = try put(store, [1])
            let b = try put(store, [2])
            #expect(try store.putName("n", a) == nil)
            #expect(store.name("n") == a)
            #expect(try store.putName("n", b) == a)  // replaced atomically; a still exists
            #expect(store.name("n") == b)
            #expect(store.object(a) != nil)
            #expect(try store.deleteName("n") == b)
            #expect(store.name("n") == nil)
            #expect(throws: StoreError.nameNotFound("n")) { try store.deleteName("n") }
            #expect(throws: StoreError.notFound(ObjectID(12345))) { try store.putName("n", ObjectID(12345)) }
            #expect(throws: StoreError.invalidName("")) { try store.putName("", a) }
            #expect(throws: StoreError.self) { try store.putName(String(repeating: "x", count: StoreLimits.maximumNameLength + 1), a) }
        }
    }

    @Test func renameIsAtomicAndReplacesTarget() throws {
        try withStore { store, _ in
            let a = try put(store, [1], name: "dir/a")
            let b = try put(store, [2], name: "dir/b")
            #expect(try store.renameName(from: "dir/a", to: "dir/b") == b)
            #expect(store.name("dir/a") == nil)
            #expect(store.name("dir/b") == a)
            #expect(store.usage.nameCount == 1)
            #expect(try store.renameName(from: "dir/b", to: "other/c") == nil)
            #expect(store.names(withPrefix: "").map(\.0) == ["other/c"])
            #expect(throws: StoreError.nameNotFound("missing")) { try store.renameName(from: "missing", to: "x") }
            #expect(try store.renameName(from: "other/c", to: "other/c") == nil)
            #expect(store.name("other/c") == a)
        }
    }

    @Test func namesCompareByteForByte() throws {
        try withStore { store, _ in
            let composed = "caf\u{E9}"  // é as one scalar
            let decomposed = "cafe\u{301}"  // e + combining accent: equal as Swift Strings
            #expect(composed == decomposed)
            let a = try put(store, [1], name: composed)
            let b = try put(store, [2], name: decomposed)
            #expect(store.name(composed) == a)
            #expect(store.name(decomposed) == b)
            #expect(store.usage.nameCount == 2)
        }
    }

    @Test func prefixListingIsSortedAndBounded() throws {
        try withStore { store, _ in
            let id = try put(store, [1])
            for name in ["vol-1/b", "vol-1/a", "vol-10/x", "vol-1/dir/file.pkl", "vol-2/a", "vol-1"] {
                try store.putName(name, id)
            }
            #expect(store.names(withPrefix: "vol-1/").map(\.0) == ["vol-1/a", "vol-1/b", "vol-1/dir/file.pkl"])
            #expect(
                store.names(withPrefix: "vol-1").map(\.0) == [
                    "vol-1", "vol-1/a", "vol-1/b", "vol-1/dir/file.pkl", "vol-10/x",
                ])
            #expect(store.names(withPrefix: "vol-1/", limit: 2).map(\.0) == ["vol-1/a", "vol-1/b"])
            #expect(
                store.names(withPrefix: "vol-1/", after: "vol-1/a", limit: 10).map(\.0) == [
                    "vol-1/b", "vol-1/dir/file.pkl",
                ])
            #expect(store.names(withPrefix: "nope").isEmpty)
            #expect(store.names(withPrefix: "", limit: 0).isEmpty)
        }
    }

    @Test func directoryListing() throws {
        try withStore { store, _ in
            let id = try put(store, [1])
            for name in ["d/a", "d/b/x", "d/b/y", "d/b/z/deep", "d/c", "d/a-b", "d/a/inner", "e/f", "top"] {
                try store.putName(name, id)
            }
            let listing = store.listDirectory("d/")
            #expect(
                listing == [
                    .object(name: "a", id: id), .object(name: "a-b", id: id), .directory(name: "a"),
                    .directory(name: "b"), .object(name: "c", id: id),
                ])
            #expect(store.listDirectory("").map(\.name) == ["d", "e", "top"])
            #expect(
                store.listDirectory("d/b/") == [
                    .object(name: "x", id: id), .object(name: "y", id: id), .directory(name: "z"),
                ])
            // Paging: each page resumes after the previous page's last entry.
            var pages: [DirectoryEntry] = []
            var last: DirectoryEntry?
            while true {
                let page = store.listDirectory("d/", after: last, limit: 2)
                if page.isEmpty { break }
                pages += page
                last = page.last
            }
            #expect(pages == listing)
        }
    }

    @Test func listingStaysFastAtOneHundredThousandObjects() throws {
        try withStore(capacity: 64 << 20) { store, _ in
            let count = 100_000
            let start = Date()
            for index in 0..<count {
                let volume = index % 10
                let directory = (index / 10) % 100
                try store.createObject(
                    ObjectMeta(typename: "vineyard::Blob", fields: ["mode": 420]),
                    name: "vol-\(volume)/dir-\(directory)/file-\(index).pkl")
            }
            let created = Date().timeIntervalSince(start)
            #expect(store.usage.objectCount == count)
            #expect(store.usage.nameCount == count)

            // Time many small listings, compared with one full scan of every name.
            let scanStart = Date()
            let all = store.names(withPrefix: "")
            let fullScan = Date().timeIntervalSince(scanStart)
            #expect(all.count == count)
            #expect(zip(all, all.dropFirst()).allSatisfy { NameKey($0.0) < NameKey($1.0) })

            let queries = 1_000
            let queryStart = Date()
            for query in 0..<queries {
                let prefix = "vol-\(query % 10)/dir-\(query % 100)/"
                let page = store.names(withPrefix: prefix, limit: 50)
                if page.count != 50 { Issue.record("\(prefix): \(page.count)") }
            }
            let perQuery = Date().timeIntervalSince(queryStart) / Double(queries)
            let directoryStart = Date()
            let directories = store.listDirectory("vol-3/")
            let directoryTime = Date().timeIntervalSince(directoryStart)
            #expect(directories.count == 100)
            #expect(store.name("vol-7/dir-24/file-4247.pkl") != nil)
            print(
                "100k names: created in \(created) s, full scan \(fullScan * 1000) ms, prefix query (50 results) \(perQuery * 1e6) µs, directory of 100 subdirectories over 10k names \(directoryTime * 1000) ms"
            )
            // Generous bounds for debug and sanitizer builds: a listing is far cheaper than a scan.
            #expect(perQuery < 0.005)
            #expect(perQuery * 20 < fullScan)
            #expect(directoryTime < 0.05)
        }
    }
}
