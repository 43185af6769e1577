//
// vineyard-csi: FUSEKitTests
//
// FUSE passthrough on a real mount: opens answered with a backing file are served by the
// kernel from that file, so reads, writes and shared mappings never reach the file system.

@testable import FUSEKit
import Glibc
import Synchronization
import Testing

/// One file, `data`, whose bytes live in a memfd; opens are passthrough when the connection
/// allows it and counted reads and writes otherwise.
final class BackedFileSystem: FileSystem {
    static let fileInode = InodeNumber(rawValue: 2)
    let backing: Int32
    let size: Int
    let reads = Atomic<Int>(0)
    let writes = Atomic<Int>(0)
    let registrations = Atomic<Int>(0)
    private let backingFiles = Mutex<BackingFiles?>(nil)
    /// The registered id and the opens that use it.
    private let registered = Mutex<(id: BackingID, opens: Int)?>(nil)

    init(bytes: [UInt8]) throws {
        backing = POSIX.memfdCreate("fusekit-backed")
        guard backing >= 0 else { throw Errno.current }
        size = bytes.count
        try POSIX.pwriteAll(backing, bytes[...], at: 0)
    }

    deinit { close(backing) }

    var offersPassthrough: Bool { backingFiles.withLock { $0 != nil } }
    var openBackingID: BackingID? { registered.withLock { $0?.id } }

    func initialize(connection: ConnectionInfo) {
        backingFiles.withLock { $0 = connection.backingFiles }
    }

    private func attributes(_ inode: InodeNumber) throws(Errno) -> FileAttributes {
        switch inode {
        case .root: return FileAttributes(inode: .root, mode: UInt32(S_IFDIR) | 0o755, linkCount: 2)
        case Self.fileInode:
            let size = lseek(backing, 0, SEEK_END)
            guard size >= 0 else { throw Errno.current }
            return FileAttributes(inode: inode, mode: UInt32(S_IFREG) | 0o644, linkCount: 1, size: UInt64(size))
        default: throw .noEntry
        }
    }

    func lookup(parent: InodeNumber, name: String, context: RequestContext) throws(Errno) -> EntryReply {
        guard parent == .root, name == "data" else { throw .noEntry }
        return EntryReply(attributes: try attributes(Self.fileInode))
    }

    func getAttributes(inode: InodeNumber, handle: UInt64?, context: RequestContext) throws(Errno) -> AttributeReply {
        AttributeReply(attributes: try attributes(inode), timeout: 0)
    }

    func readDirectory(
        inode: InodeNumber, handle: UInt64, offset: Int64, into buffer: inout DirectoryBuffer, context: RequestContext
    ) throws(Errno) {}

    func open(inode: InodeNumber, flags: OpenFlags, context: RequestContext) throws(Errno) -> OpenReply {
        guard inode == Self.fileInode else { throw .isDirectory }
        guard let files = backingFiles.withLock({ $0 }) else { return OpenReply(handle: 1) }
        let id = try registered.withLock { entry throws(Errno) -> BackingID in
            if let current = entry {
                entry = (current.id, current.opens + 1)
                return current.id
            }
            let id = try files.register(backing)
            registrations.add(1, ordering: .relaxed)
            entry = (id, 1)
            return id
        }
        return OpenReply(handle: 1, passthrough: id)
    }

    func release(inode: InodeNumber, handle: UInt64, flags: OpenFlags) {
        guard let files = backingFiles.withLock({ $0 }) else { return }
        registered.withLock { entry in
            guard let current = entry else { return }
            if current.opens > 1 {
                entry = (current.id, current.opens - 1)
            } else {
                files.release(current.id)
                entry = nil
            }
        }
    }

    func read(
        inode: InodeNumber, handle: UInt64, offset: Int64, size: Int, context: RequestContext
    ) throws(Errno) -> ReadReply {
        reads.add(1, ordering: .relaxed)
        return .fileDescriptor(fd: backing, offset: Int(offset), length: max(0, min(size, self.size - Int(offset))))
    }

    func write(
        inode: InodeNumber, handle: UInt64, offset: Int64, data: UnsafeRawBufferPointer, context: RequestContext
    ) throws(Errno) -> Int {
        writes.add(1, ordering: .relaxed)
        let written = pwrite(backing, data.baseAddress, data.count, off_t(offset))
        guard written >= 0 else { throw Errno.current }
        return written
    }
}

@Suite("Passthrough", .serialized, .enabled(if: TestEnvironment.canMount))
struct PassthroughTests {
    static let pattern: [UInt8] = (0..<(2 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ $0 >> 12) }

    /// Linux 6.9+ offers FUSE_PASSTHROUGH; the machines this runs on have it.
    static var kernelOffersPassthrough: Bool {
        var name = utsname()
        uname(&name)
        let release = withUnsafeBytes(of: &name.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        let parts = release.split(separator: ".").prefix(2).compactMap { Int($0.prefix { $0.isNumber }) }
        return parts.count == 2 && (parts[0], parts[1]) >= (6, 9)
    }

    @Test("reads, writes and shared mappings of a passthrough open never reach the file system")
    func kernelServesTheBackingFile() throws {
        try #require(Self.kernelOffersPassthrough, "needs Linux 6.9+")
        let fileSystem = try BackedFileSystem(bytes: Self.pattern)
        try withMount(serving: fileSystem, options: MountOptions(passthrough: true)) { mount in
            let connection = try #require(mount.session.connection)
            let files = try #require(connection.backingFiles, "INIT agreed to FUSE_PASSTHROUGH")
            #expect(throws: Never.self) { try files.probe().get() }

            let fd = POSIX.open(mount.url("data"), O_RDWR)
            try #require(fd >= 0)
            #expect(fileSystem.registrations.load(ordering: .relaxed) == 1)
            #expect(try POSIX.preadAll(fd, count: Self.pattern.count, at: 0) == Self.pattern)

            let mapped = try #require(mmap(nil, Self.pattern.count, PROT_READ, MAP_SHARED, fd, 0))
            #expect(mapped != MAP_FAILED)
            let view = UnsafeRawBufferPointer(start: mapped, count: Self.pattern.count)
            #expect(view.elementsEqual(Self.pattern))

            // A write through the mount lands in the backing file, and a mapping sees it: the
            // mapping is the backing file's own pages.
            try POSIX.pwriteAll(fd, [0xAB, 0xCD][...], at: 4096)
            var direct = [UInt8](repeating: 0, count: 2)
            #expect(pread(fileSystem.backing, &direct, 2, 4096) == 2)
            #expect(direct == [0xAB, 0xCD])
            #expect(view[4096] == 0xAB && view[4097] == 0xCD)
            munmap(mapped, Self.pattern.count)

            // A second open of the inode shares the registration.
            let second = POSIX.open(mount.url("data"), O_RDONLY)
            try #require(second >= 0)
            #expect(try POSIX.preadAll(second, count: 2, at: 4096) == [0xAB, 0xCD])
            close(second)

            #expect(fileSystem.reads.load(ordering: .relaxed) == 0)
            #expect(fileSystem.writes.load(ordering: .relaxed) == 0)
            #expect(fileSystem.registrations.load(ordering: .relaxed) == 1)

            // RELEASE reaches the file system after close(2) returns: wait for the last one.
            close(fd)
            let deadline = ContinuousClock.now + .seconds(10)
            while fileSystem.openBackingID != nil && ContinuousClock.now < deadline {
                usleep(10_000)
            }
            #expect(fileSystem.openBackingID == nil, "the backing id is released after the last release")
        }
    }

    @Test("without passthrough the same reads and writes are requests to the file system")
    func withoutPassthroughRequestsArrive() throws {
        let fileSystem = try BackedFileSystem(bytes: Self.pattern)
        try withMount(serving: fileSystem) { mount in
            #expect(mount.session.connection?.backingFiles == nil)
            let fd = POSIX.open(mount.url("data"), O_RDWR)
            try #require(fd >= 0)
            defer { close(fd) }
            #expect(try POSIX.preadAll(fd, count: Self.pattern.count, at: 0) == Self.pattern)
            try POSIX.pwriteAll(fd, [1][...], at: 0)
            #expect(fileSystem.reads.load(ordering: .relaxed) > 0)
            #expect(fileSystem.writes.load(ordering: .relaxed) > 0)
            #expect(fileSystem.registrations.load(ordering: .relaxed) == 0)
        }
    }
}
