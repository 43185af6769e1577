//
// vineyard-csi: VolumeFSTests
//
// FUSE passthrough of sealed files: which opens get the inode's backing file, and how its
// id is counted over the opens and released after the last (logic, then a real mount).

import FUSEKit
import Foundation
import Glibc
import SharedMemoryStore
import Synchronization
import Testing
@testable import VolumeFS

@Suite("Passthrough choice")
struct PassthroughChoiceTests {
    let object = ObjectID(rawValue: 0x10)
    let newer = ObjectID(rawValue: 0x20)

    func backing(_ opens: Int) -> BackingFile {
        BackingFile(id: BackingID(rawValue: 7), object: object, handle: nil, opens: opens)
    }

    @Test("a read-only open of a sealed file with a file of its own registers it when no open is cached")
    func registers() {
        #expect(
            PassthroughChoice.choose(
                backing: nil, cachedOpens: 0, writable: false, writing: false, current: object, currentHasFile: true)
                == .register)
    }

    @Test("no passthrough while the inode is open in cached mode, for writers, or for arena objects")
    func cachedCases() {
        let cases: [(Int, Bool, Bool, ObjectID?, Bool)] = [
            (1, false, false, object, true),  // another open is cached: the kernel would refuse
            (0, true, false, object, true),  // writable: writes must not reach the sealed object
            (0, false, true, object, true),  // a version is being written: reads must see it
            (0, false, false, nil, false),  // nothing sealed yet
            (0, false, false, object, false),  // bytes in the arena: no file starts at byte 0
        ]
        for (cached, writable, writing, current, hasFile) in cases {
            #expect(
                PassthroughChoice.choose(
                    backing: nil, cachedOpens: cached, writable: writable, writing: writing, current: current,
                    currentHasFile: hasFile) == .cached)
        }
    }

    @Test("while the inode has a backing file every open shares it; direct unless it reads that very object")
    func shares() {
        let id = BackingID(rawValue: 7)
        #expect(
            PassthroughChoice.choose(
                backing: backing(1), cachedOpens: 0, writable: false, writing: false, current: object,
                currentHasFile: true) == .share(id, direct: false))
        #expect(
            PassthroughChoice.choose(
                backing: backing(2), cachedOpens: 0, writable: true, writing: false, current: object,
                currentHasFile: true) == .share(id, direct: true))
        #expect(
            PassthroughChoice.choose(
                backing: backing(1), cachedOpens: 0, writable: false, writing: true, current: object,
                currentHasFile: true) == .share(id, direct: true))
        // Replaced since the backing file was chosen: the kernel allows no other backing file.
        #expect(
            PassthroughChoice.choose(
                backing: backing(1), cachedOpens: 0, writable: false, writing: false, current: newer,
                currentHasFile: true) == .share(id, direct: true))
    }

    @Test("a backing file with no opens left is not shared")
    func exhausted() {
        #expect(
            PassthroughChoice.choose(
                backing: backing(0), cachedOpens: 0, writable: false, writing: false, current: newer,
                currentHasFile: true) == .register)
    }
}

/// Linux 6.9+ offers FUSE passthrough.
let kernelOffersPassthrough: Bool = {
    var name = utsname()
    uname(&name)
    let release = withUnsafeBytes(of: &name.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
    let parts = release.split(separator: ".").prefix(2).compactMap { Int($0.prefix { $0.isNumber }) }
    return parts.count == 2 && (parts[0], parts[1]) >= (6, 9)
}()

@Suite(
    "Passthrough backing files", .serialized,
    .enabled(if: TestEnvironment.canMount && kernelOffersPassthrough, "needs /dev/fuse, root, Linux 6.9+"))
struct PassthroughBackingTests {
    /// The node of `name` in the mount's root and its backing file.
    func backing(_ fileSystem: VolumeFileSystem, _ name: String) -> BackingFile? {
        let node = fileSystem.table.withLock { table in table.allNodes.first { $0.name.string == name } }
        return node.flatMap { node in node.lock.withLock { _ in node.file.backing } }
    }

    /// Waits (up to 5 s) for `condition`: RELEASE arrives after `close(2)` returned.
    func eventually(_ condition: () -> Bool) -> Bool {
        for _ in 0..<250 {
            if condition() { return true }
            usleep(20_000)
        }
        return condition()
    }

    @Test("one backing id per inode, counted over its opens, released after the last close")
    func referenceCounted() throws {
        let store = try TestStore(capacity: 64 << 20, blobFileThreshold: 64 << 10)
        defer { store.tearDown() }
        let mount = try TestMount(store: store.store, volumeID: "vol-1") { $0.passthrough = true }
        defer { mount.tearDown() }
        let fileSystem = try #require(mount.fileSystem)
        let bytes = (0..<(1 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        try Data(bytes).write(to: URL(fileURLWithPath: mount.url("f.bin")))
        waitForPublication(store.store)

        let first = open(mount.url("f.bin"), O_RDONLY)
        let second = open(mount.url("f.bin"), O_RDONLY)
        #expect(first >= 0 && second >= 0)
        #expect(fileSystem.fileServing == .passthrough)
        let held = try #require(backing(fileSystem, "f.bin"), "read-only opens of a sealed blob file are passthrough")
        #expect(held.opens == 2)
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        #expect(pread(second, &buffer, buffer.count, 0) == buffer.count)
        #expect(buffer == bytes)

        // A writer shares the id (direct I/O): its bytes go into a new version.
        let writer = open(mount.url("f.bin"), O_WRONLY)
        #expect(backing(fileSystem, "f.bin")?.opens == 3)
        #expect(pwrite(writer, [0xFF], 1, 0) == 1)
        close(writer)
        close(first)
        #expect(eventually { backing(fileSystem, "f.bin")?.opens == 1 })
        #expect(pread(second, &buffer, 1, 0) == 1)
        #expect(buffer[0] == bytes[0], "the reader keeps the sealed version it opened")
        close(second)
        #expect(eventually { backing(fileSystem, "f.bin") == nil }, "released after the last close")

        // The next read-only open registers the new version's file.
        let third = open(mount.url("f.bin"), O_RDONLY)
        defer { close(third) }
        #expect(pread(third, &buffer, 1, 0) == 1)
        #expect(buffer[0] == 0xFF)
        #expect(backing(fileSystem, "f.bin")?.opens == 1)
    }
}
