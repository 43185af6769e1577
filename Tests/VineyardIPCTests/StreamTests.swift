// vineyard-csi: VineyardIPCTests
// StreamTests.swift: vineyard's streams, migrate_object and memory_trim on a volume's socket.

import Foundation
import Glibc
import Testing

@testable import VineyardIPC
@testable import VineyardSocket

@Suite struct StreamTests {
    private func object(_ channel: IPCChannel, _ value: Int) throws -> ObjectID {
        let tree: JSONValue = ["typename": "vineyard::Scalar<int>", "instance_id": 0, "value_": JSONValue(integer: value)]
        return ObjectID(try #require(try channel.call(.createData(content: tree)).get()["id"]?.uint64Value))
    }

    private func code(_ channel: IPCChannel, _ request: IPCRequest) throws -> IPCStatusCode? {
        switch try channel.call(request) {
        case .success: return nil
        case .failure(let error): return error.code
        }
    }

    @Test func chunksPassFromWriterToReaderInOrderUntilTheStreamDrains() throws {
        let fixture = try ServerFixture()
        try fixture.serve("vol-a")
        let writer = try fixture.connect("vol-a")
        let reader = try fixture.connect("vol-a")
        let stream = try object(writer, 0)
        _ = try writer.call(.stream(.create(stream))).get()
        #expect(try code(writer, .stream(.create(stream))) == .objectExists)
        _ = try writer.call(.stream(.open(stream, mode: 2))).get()
        #expect(try code(writer, .stream(.open(stream, mode: 2))) == .streamOpened)
        _ = try reader.call(.stream(.open(stream, mode: 1))).get()
        let chunks = try (1...3).map { try object(writer, $0) }
        for chunk in chunks { _ = try writer.call(.stream(.push(stream, chunk: chunk))).get() }

        let first = try reader.call(.stream(.pull(stream))).get()
        #expect(first["type"] == "pull_next_stream_chunk_reply")
        #expect(first["chunk"]?.uint64Value == chunks[0].rawValue)
        // Pulling again gives up the chunk taken before: vineyardd deletes it.
        #expect(try reader.call(.stream(.pull(stream))).get()["chunk"]?.uint64Value == chunks[1].rawValue)
        #expect(try reader.call(.exists(chunks[0])).get()["exists"] == false)

        // A reader waits for the writer.
        let late = try object(writer, 4)
        let pusher = Thread {
            usleep(200_000)
            _ = try? writer.call(.stream(.push(stream, chunk: late))).get()
            _ = try? writer.call(.stream(.stop(stream, failed: false))).get()
        }
        #expect(try reader.call(.stream(.pull(stream))).get()["chunk"]?.uint64Value == chunks[2].rawValue)
        pusher.start()
        #expect(try reader.call(.stream(.pull(stream))).get()["chunk"]?.uint64Value == late.rawValue)
        #expect(try code(reader, .stream(.pull(stream))) == .streamDrained)
        #expect(try code(writer, .stream(.stop(stream, failed: false))) == .invalidStreamState)
        _ = try reader.call(.stream(.drop(stream))).get()
        #expect(try code(reader, .stream(.pull(stream))) == .objectNotExists)
    }

    @Test func aStreamOrChunkMustBeTheVolumesAndDroppingFailsTheReader() throws {
        let fixture = try ServerFixture()
        try fixture.serve("vol-a")
        try fixture.serve("vol-b")
        let a = try fixture.connect("vol-a")
        let b = try fixture.connect("vol-b")
        let stream = try object(a, 0)
        #expect(try code(b, .stream(.create(stream))) == .objectNotExists)
        _ = try a.call(.stream(.create(stream))).get()
        #expect(try code(a, .stream(.push(stream, chunk: try object(b, 1)))) == .objectNotExists)
        let unread = try object(a, 2)
        _ = try a.call(.stream(.push(stream, chunk: unread))).get()
        _ = try a.call(.stream(.stop(stream, failed: true))).get()
        #expect(try a.call(.stream(.pull(stream))).get()["chunk"]?.uint64Value == unread.rawValue)
        #expect(try code(a, .stream(.pull(stream))) == .streamFailed)
    }

    @Test func migrateAnswersALocalObjectWithItselfAndTrimAnswers() throws {
        let fixture = try ServerFixture()
        try fixture.serve("vol-a")
        try fixture.serve("vol-b")
        let a = try fixture.connect("vol-a")
        let id = try object(a, 7)
        let reply = try a.call(.migrateObject(id)).get()
        #expect(reply["type"] == "migrate_object_reply")
        #expect(reply["object_id"]?.uint64Value == id.rawValue)
        #expect(try code(try fixture.connect("vol-b"), .migrateObject(id)) == .objectNotExists)
        // vineyardd's rules: blobs and global objects are not migrated.
        #expect(try code(a, .migrateObject(ObjectID(1 << 63 | 5))) == .invalid)
        let global: JSONValue = ["typename": "vineyard::Tuple", "instance_id": 0, "global": true]
        let globalID = ObjectID(try #require(try a.call(.createData(content: global)).get()["id"]?.uint64Value))
        #expect(try code(a, .migrateObject(globalID)) == .invalid)
        #expect(try a.call(.memoryTrim).get()["type"] == "memory_trim_reply")
    }
}
