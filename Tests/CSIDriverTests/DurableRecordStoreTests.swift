import CSIDriver
import Foundation
import Testing

private struct Note: DurableRecord, Equatable {
    var key: String
    var text: String
}

@Suite struct DurableRecordStoreTests {
    @Test func savedRecordsLoadBack() throws {
        try withTemporaryDirectory { directory in
            let (store, initial) = try DurableRecordStore<Note>.open(directory: directory)
            #expect(initial.isEmpty)
            try store.save(Note(key: "a", text: "one"))
            try store.save(Note(key: "b", text: "two"))
            try store.save(Note(key: "a", text: "three"))
            try store.remove(key: "b")
            try store.remove(key: "never-there")
            let (_, loaded) = try DurableRecordStore<Note>.open(directory: directory)
            #expect(loaded == [Note(key: "a", text: "three")])
        }
    }

    @Test func leftoverTemporaryFilesAreDiscarded() throws {
        try withTemporaryDirectory { directory in
            let (store, _) = try DurableRecordStore<Note>.open(directory: directory)
            try store.save(Note(key: "a", text: "kept"))
            // What a crash between write and rename leaves behind: never counted.
            try Data("{\"key\":\"a\",\"text\":\"torn".utf8).write(to: URL(fileURLWithPath: "\(directory)/a.json.tmp"))
            let (_, loaded) = try DurableRecordStore<Note>.open(directory: directory)
            #expect(loaded == [Note(key: "a", text: "kept")])
            #expect(!FileManager.default.fileExists(atPath: "\(directory)/a.json.tmp"))
        }
    }

    @Test func corruptRecordStopsLoadingNamesTheFileAndKeepsIt() throws {
        try withTemporaryDirectory { directory in
            let path = "\(directory)/bad.json"
            try Data("{ not json".utf8).write(to: URL(fileURLWithPath: path))
            let error = #expect(throws: StateError.self) { try DurableRecordStore<Note>.open(directory: directory) }
            #expect(error?.path == path)
            #expect(error?.description.contains(path) == true)
            #expect(try String(contentsOfFile: path, encoding: .utf8) == "{ not json")
        }
    }

    @Test func recordInTheWrongFileIsCorrupt() throws {
        try withTemporaryDirectory { directory in
            try Data(#"{"key":"other","text":"x"}"#.utf8).write(to: URL(fileURLWithPath: "\(directory)/mine.json"))
            #expect(throws: StateError.self) { try DurableRecordStore<Note>.open(directory: directory) }
        }
    }
}

/// Runs `body` with a fresh directory that is removed afterwards, also when `body` throws.
func withTemporaryDirectory<T>(_ body: (String) throws -> T) throws -> T {
    let path = NSTemporaryDirectory() + "vineyard-csi-test-" + UUID().uuidString
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: path) }
    return try body(path)
}
