// vineyard-csi: StoreBackendTests
// ObjectBackendContractTests.swift: one contract, asserted on the embedded store and on a real vineyardd.

import Foundation
import Glibc
import SharedMemoryStore
import StoreBackend
import POSIXCore
import Testing
import VineyarddTestSupport

/// A backend under test and what must be torn down after it.
final class BackendUnderTest {
    let backend: any ObjectBackend
    private let tearDown: () -> Void

    init(_ backend: any ObjectBackend, tearDown: @escaping () -> Void) {
        self.backend = backend
        self.tearDown = tearDown
    }

    deinit { tearDown() }

    enum Kind: String, CaseIterable, CustomTestStringConvertible {
        case embedded, vineyardd
        var testDescription: String { rawValue }
    }

    /// An embedded store in a fresh /dev/shm directory, or a vineyardd of its own.
    static func make(_ kind: Kind) throws -> BackendUnderTest {
        switch kind {
        case .embedded:
            var template = Array("/dev/shm/store-backend-test-XXXXXX".utf8CString)
            guard let created = mkdtemp(&template) else { throw CocoaError(.fileWriteUnknown) }
            let directory = String(cString: created)
            let store = try ObjectStore.open(StoreConfiguration(directory: directory + "/store", capacity: 16 << 20))
            return BackendUnderTest(EmbeddedBackend(store: store)) {
                store.close()
                try? FileManager.default.removeItem(atPath: directory)
            }
        case .vineyardd:
            let server = try VineyarddProcess()
            let backend = VineyarddBackend(socketPath: server.socket)
            return BackendUnderTest(backend) {
                backend.connection.close()
                server.stop()
            }
        }
    }

    /// The kinds that can run here (vineyardd needs the vineyard wheel in `.venv`).
    static var available: [Kind] { VineyarddProcess.available ? Kind.allCases : [.embedded] }
}

@Suite("ObjectBackend contract", .serialized)
struct ObjectBackendContractTests {
    func marker(_ typename: String = "test::Marker") -> ObjectMeta {
        ObjectMeta(typename: typename, instanceID: 0, isTransient: false)
    }

    @Test("names: bind, look up, rebind returns the previous object, unbind (missing is fine), list by prefix", arguments: BackendUnderTest.available)
    func names(_ kind: BackendUnderTest.Kind) throws {
        let subject = try BackendUnderTest.make(kind)
        let backend = subject.backend
        let first = try backend.createObject(marker(), name: "v/a")
        let second = try backend.createObject(marker(), name: nil)
        let other = try backend.createObject(marker(), name: "w/a")
        #expect(try backend.lookUp("v/a") == first)
        #expect(try backend.lookUp("v/missing") == nil)
        #expect(try backend.bind("v/b", to: second) == nil)
        #expect(try backend.bind("v/b", to: first) == second)
        #expect(try backend.names(withPrefix: "v/", limit: nil).map(\.name) == ["v/a", "v/b"])
        #expect(try backend.names(withPrefix: "v/", limit: 1).count == 1)
        try backend.unbind("v/b")
        try backend.unbind("v/b")
        #expect(try backend.lookUp("v/b") == nil)
        try backend.bind("v/c/d", to: second)
        try backend.unbind(namesWithPrefix: "v/")
        #expect(try backend.names(withPrefix: "v/", limit: nil).isEmpty)
        #expect(try backend.lookUp("w/a") == other)
    }

    @Test("a new version takes every name of the old one under a prefix where the backend lists an object's names", arguments: BackendUnderTest.available)
    func namesMoveTogether(_ kind: BackendUnderTest.Kind) throws {
        let subject = try BackendUnderTest.make(kind)
        let backend = subject.backend
        func publish(_ bytes: [UInt8], _ name: String, linked: Bool) throws -> PublishedVersion {
            let version = try backend.startVersion(from: nil, keeping: 0)
            try version.write(at: 0, bytes)
            let meta = ObjectMeta.blob(size: bytes.count, instanceID: 0)
            return linked
                ? try backend.publish(version, meta: meta, name: name, withNamesSharingItsObjectUnder: "v/")
                : try backend.publish(version, meta: meta, name: name)
        }
        let old = try publish([1], "v/a", linked: false).id
        try backend.bind("v/b", to: old)
        try backend.bind("w/a", to: old)
        let new = try publish([2, 2], "v/a", linked: true)
        #expect(new.replaced == old)
        #expect(try backend.lookUp("v/a") == new.id)
        #expect(try backend.lookUp("w/a") == old)
        // Hard links exist only where the backend can tell an object's names.
        let expected = backend.capabilities.contains(.sharedNames) ? new.id : old
        #expect(try backend.lookUp("v/b") == expected)
        try backend.unbind(namesWithPrefix: "v/")
        try backend.unbind(namesWithPrefix: "w/")
    }

    @Test("objects: metadata comes back with its fields; deleted objects are gone; unknown ones are ignored", arguments: BackendUnderTest.available)
    func objects(_ kind: BackendUnderTest.Kind) throws {
        let subject = try BackendUnderTest.make(kind)
        let backend = subject.backend
        var meta = marker("test::Stamped")
        meta.fields["owner"] = "volume-1"
        let id = try backend.createObject(meta, name: "v/x")
        let stored = try #require(try backend.meta(id))
        #expect(stored.typename == "test::Stamped")
        #expect(stored.fields["owner"]?.stringValue == "volume-1")
        if let stamped = try backend.objects(stampedWith: "owner", value: "volume-1") {
            #expect(stamped == [id])
        }
        try backend.unbind("v/x")
        try backend.delete([id], deep: true)
        #expect(try backend.meta(id) == nil)
        try backend.delete([id], deep: true)
    }

    @Test("capabilities say what differs; usage reports the backend's memory", arguments: BackendUnderTest.available)
    func capabilities(_ kind: BackendUnderTest.Kind) throws {
        let subject = try BackendUnderTest.make(kind)
        let backend = subject.backend
        let usage = try backend.usage()
        #expect(usage.capacity > 0)
        #expect(usage.bytesUsed >= 0 && usage.bytesUsed <= usage.capacity)
        let id = try backend.createObject(marker(), name: "v/named")
        switch kind {
        case .embedded:
            #expect(backend.capabilities == .embedded)
            #expect(backend.capabilities.contains(.restartAdoption))
            #expect(try backend.names(of: id) == ["v/named"])
        case .vineyardd:
            #expect(backend.capabilities.isEmpty)
            #expect(try backend.names(of: id) == nil)
            #expect(try backend.objects(stampedWith: "owner", value: "v") == nil)
        }
    }

    @Test("an unreachable vineyardd is ENOTCONN, not a crash")
    func unreachable() throws {
        let backend = VineyarddBackend(socketPath: "/tmp/no-such-vineyardd-\(getpid()).sock")
        #expect(throws: BackendError.self) { try backend.lookUp("v/a") }
        do {
            _ = try backend.usage()
            Issue.record("usage of an unreachable vineyardd succeeded")
        } catch {
            #expect(error.errno == .notConnected)
        }
    }
}
