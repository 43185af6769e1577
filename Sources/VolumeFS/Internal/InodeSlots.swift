//
// vineyard-csi: VolumeFS
//
// InodeSlots.swift: the inode table of a mount, mirrored in a shared file so that another
// process can serve the same kernel inodes after a restart or a crash.

import FUSEKit
import Glibc
import SharedMemoryStore
import StoreBackend
import Synchronization

/// A file-backed (`MAP_SHARED`) array of fixed-size slots, one per inode the kernel may still
/// reference: inode number `n` is slot `n - 2` (the root, 1, is implicit). Writes are plain
/// stores into the mapping — no system calls on the request path — and survive the process
/// (`kill -9` included), not the machine; that is enough, because a reboot ends the mounts too.
///
/// ## Layout
/// A 4 KiB header (magic, version, slot size, capacity, the file system's generation, the
/// handle epoch, the high-water mark of slots ever used), then `capacity` slots of 384 bytes:
///
/// | bytes | field |
/// | --- | --- |
/// | 0-3 | sequence of the place fields: odd while being changed |
/// | 4 | state: 0 free, 1 attached, 2 detached |
/// | 5 | kind: 0 file, 1 directory, 2 symbolic link, 3 FIFO, 4 socket, 5 char device, 6 block device |
/// | 6 | pending (created here, first version not published) |
/// | 7 | name length |
/// | 8-15 | parent inode |
/// | 16-23 | lookup count |
/// | 24-27 | sequence of the writer fields |
/// | 28-31 | a version is being written |
/// | 32-63 | writer's extent offset, extent length, size, baseline (length -1: the bytes are the blob's own file, the offset field its id) |
/// | 64-75 | permissions, uid, gid |
/// | 80-127 | access, modification and change time (seconds, nanoseconds) |
/// | 128-383 | name (UTF-8) |
///
/// Place fields are written under the inode table's lock, writer fields under the node's lock;
/// each group has its own sequence number so a reader after a crash can tell a torn group.
/// The file is sparse: only slots in use take memory.
final class InodeSlots: @unchecked Sendable {
    // @unchecked: the mapping is written under the locks named above; free-slot bookkeeping
    // under the inode table's lock.

    struct Place {
        var attached: Bool
        var kind: NodeKind
        var pending: Bool
        var parent: UInt64
        var name: FileName
    }

    struct Writer {
        var extentOffset: Int
        var extentLength: Int
        var size: Int
        var baseline: Int
        var attributes: PosixAttributes

        /// An extent length no arena extent has: the bytes are in a file of their own, and the
        /// offset field holds the blob's identifier (which names the file).
        static let ownFileLength = -1

        init(extent: VersionExtent, size: Int, baseline: Int, attributes: PosixAttributes) {
            if let id = extent.ownFile {
                extentOffset = Int(bitPattern: UInt(id.rawValue))
                extentLength = Self.ownFileLength
            } else {
                extentOffset = extent.offset
                extentLength = extent.capacity
            }
            self.size = size
            self.baseline = baseline
            self.attributes = attributes
        }

        init(extentOffset: Int, extentLength: Int, size: Int, baseline: Int, attributes: PosixAttributes) {
            self.extentOffset = extentOffset
            self.extentLength = extentLength
            self.size = size
            self.baseline = baseline
            self.attributes = attributes
        }

        /// Where the version lies, for the backend to adopt it.
        var extent: VersionExtent {
            guard extentLength == Self.ownFileLength else {
                return VersionExtent(offset: extentOffset, capacity: extentLength)
            }
            return VersionExtent(ownFile: ObjectID(rawValue: UInt64(UInt(bitPattern: extentOffset))))
        }
    }

    /// One slot as found when reopening.
    struct Record {
        var inode: UInt64
        /// `nil` when the place fields were torn by a crash.
        var place: Place?
        var lookups: UInt64
        /// `nil` when no version is being written (or its fields were torn).
        var writer: Writer?
    }

    static let headerSize = 4096
    static let slotSize = 384
    static let magic: UInt64 = 0x5644_4F4E_4953_4356  // "VCSINODV"
    static let version: UInt32 = 1
    static let firstInode: UInt64 = 2
    static let maximumNameLength = 255

    let path: String
    let capacity: Int
    private let base: UnsafeMutableRawPointer
    private let mappedSize: Int
    private var freeSlots: [Int] = []
    private var nextUnused = 0

    /// Opens the slots file at `path` for `capacity` inodes: empty unless `resume`.
    ///
    /// - Returns: the slots, and whether `resume` found a file with a matching layout (its
    ///   slots are then in use until ``adoptUsedSlots(_:)``).
    static func open(path: String, capacity: Int, resume: Bool) throws(VolumeFSError) -> (InodeSlots, existed: Bool) {
        let fd = try StateFileMapping.open(path)
        defer { close(fd) }
        var header = [UInt8](repeating: 0, count: 24)
        let headerRead = header.withUnsafeMutableBytes { raw in (try? syscall { pread(fd, raw.baseAddress, 24, 0) }) ?? -1 }
        let matches =
            resume && headerRead == 24
            && header.withUnsafeBytes {
                $0.load(as: UInt64.self) == magic && $0.load(fromByteOffset: 8, as: UInt32.self) == version
                    && $0.load(fromByteOffset: 12, as: UInt32.self) == UInt32(slotSize)
            }
        let recorded = matches ? Int(header.withUnsafeBytes { $0.load(fromByteOffset: 16, as: UInt64.self) }) : capacity
        // A file of another layout is emptied.
        let size = headerSize + recorded * slotSize
        let pointer = try StateFileMapping.map(fd, path: path, size: size, empty: !matches)
        let slots = InodeSlots(path: path, base: pointer, mappedSize: size, capacity: recorded)
        if !matches {
            slots.setHeader(0, magic)
            slots.setHeader(8, version)
            slots.setHeader(12, UInt32(slotSize))
            slots.setHeader(16, UInt64(recorded))
        }
        return (slots, matches)
    }

    private init(path: String, base: UnsafeMutableRawPointer, mappedSize: Int, capacity: Int) {
        self.path = path
        self.base = base
        self.mappedSize = mappedSize
        self.capacity = capacity
    }

    // MARK: - Header

    private func header<T>(_ offset: Int, _ type: T.Type) -> T {
        base.load(fromByteOffset: offset, as: type)
    }

    private func setHeader<T>(_ offset: Int, _ value: T) {
        base.storeBytes(of: value, toByteOffset: offset, as: T.self)
    }

    /// The generation in every entry reply (stays with the mount across processes).
    var generation: UInt64 {
        get { header(24, UInt64.self) }
        set { setHeader(24, newValue) }
    }

    /// Bumped by every process that takes the mount over; the top bits of its handle numbers.
    var handleEpoch: UInt64 {
        get { header(32, UInt64.self) }
        set { setHeader(32, newValue) }
    }

    // MARK: - Slots

    private func slot(_ inode: UInt64) -> UnsafeMutableRawPointer? {
        guard inode >= Self.firstInode else { return nil }
        let index = Int(inode - Self.firstInode)
        guard index < capacity else { return nil }
        return base + Self.headerSize + index * Self.slotSize
    }

    private static func kindCode(_ kind: NodeKind) -> UInt8 {
        switch kind {
        case .file: return 0
        case .directory: return 1
        case .symbolicLink: return 2
        case .special(.fifo): return 3
        case .special(.socket): return 4
        case .special(.characterDevice): return 5
        case .special(_): return 6
        }
    }

    /// A free inode number, or `nil` when every slot is in use.
    func allocate() -> UInt64? {
        if let index = freeSlots.popLast() { return UInt64(index) + Self.firstInode }
        guard nextUnused < capacity else { return nil }
        defer {
            nextUnused += 1
            setHeader(40, UInt64(nextUnused))
        }
        return UInt64(nextUnused) + Self.firstInode
    }

    /// Writes where an inode is (under the table's lock).
    func setPlace(_ inode: UInt64, _ place: Place) {
        guard let slot = slot(inode) else { return }
        let sequence = slot.load(as: UInt32.self) | 1
        slot.storeBytes(of: sequence, as: UInt32.self)
        atomicFence()
        slot.storeBytes(of: place.attached ? 1 : 2, toByteOffset: 4, as: UInt8.self)
        slot.storeBytes(of: Self.kindCode(place.kind), toByteOffset: 5, as: UInt8.self)
        slot.storeBytes(of: place.pending ? 1 : 0, toByteOffset: 6, as: UInt8.self)
        slot.storeBytes(of: place.parent, toByteOffset: 8, as: UInt64.self)
        let name = Array(place.name.string.utf8.prefix(Self.maximumNameLength))
        slot.storeBytes(of: UInt8(name.count), toByteOffset: 7, as: UInt8.self)
        name.withUnsafeBytes { (slot + 128).copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        atomicFence()
        slot.storeBytes(of: sequence &+ 1, as: UInt32.self)
    }

    /// Writes an inode's lookup count (one aligned 8-byte store, never torn).
    func setLookups(_ inode: UInt64, _ lookups: UInt64) {
        slot(inode)?.storeBytes(of: lookups, toByteOffset: 16, as: UInt64.self)
    }

    /// Frees a slot (the inode is gone from the table).
    func release(_ inode: UInt64) {
        guard let slot = slot(inode) else { return }
        slot.storeBytes(of: 0, toByteOffset: 4, as: UInt8.self)
        slot.storeBytes(of: 0, toByteOffset: 28, as: UInt32.self)
        freeSlots.append(Int(inode - Self.firstInode))
    }

    /// Records the version being written, or that there is none (under the node's lock).
    func setWriter(_ inode: UInt64, _ writer: Writer?) {
        guard let slot = slot(inode) else { return }
        let sequence = slot.load(fromByteOffset: 24, as: UInt32.self) | 1
        slot.storeBytes(of: sequence, toByteOffset: 24, as: UInt32.self)
        atomicFence()
        if let writer {
            slot.storeBytes(of: Int64(writer.extentOffset), toByteOffset: 32, as: Int64.self)
            slot.storeBytes(of: Int64(writer.extentLength), toByteOffset: 40, as: Int64.self)
            slot.storeBytes(of: Int64(writer.size), toByteOffset: 48, as: Int64.self)
            slot.storeBytes(of: Int64(writer.baseline), toByteOffset: 56, as: Int64.self)
            let attributes = writer.attributes
            slot.storeBytes(of: attributes.permissions, toByteOffset: 64, as: UInt32.self)
            slot.storeBytes(of: attributes.uid, toByteOffset: 68, as: UInt32.self)
            slot.storeBytes(of: attributes.gid, toByteOffset: 72, as: UInt32.self)
            for (index, time) in [attributes.accessTime, attributes.modificationTime, attributes.changeTime].enumerated() {
                slot.storeBytes(of: time.seconds, toByteOffset: 80 + index * 16, as: Int64.self)
                slot.storeBytes(of: time.nanoseconds, toByteOffset: 88 + index * 16, as: Int64.self)
            }
        }
        slot.storeBytes(of: writer == nil ? 0 : 1, toByteOffset: 28, as: UInt32.self)
        atomicFence()
        slot.storeBytes(of: sequence &+ 1, toByteOffset: 24, as: UInt32.self)
    }

    // MARK: - Reopening

    /// Every slot in use, as the previous process left it.
    func usedRecords() -> [Record] {
        var records: [Record] = []
        // Only slots below the high-water mark were ever written (reading the rest would
        // populate the sparse file).
        let highWater = min(capacity, Int(header(40, UInt64.self)))
        for index in 0..<highWater {
            let slot = base + Self.headerSize + index * Self.slotSize
            let state = slot.load(fromByteOffset: 4, as: UInt8.self)
            guard state != 0 else { continue }
            let inode = UInt64(index) + Self.firstInode
            var place: Place?
            if slot.load(as: UInt32.self) & 1 == 0 {
                let kind: NodeKind
                switch slot.load(fromByteOffset: 5, as: UInt8.self) {
                case 0: kind = .file
                case 1: kind = .directory
                case 3: kind = .special(.fifo)
                case 4: kind = .special(.socket)
                case 5: kind = .special(.characterDevice)
                case 6: kind = .special(.blockDevice)
                default: kind = .symbolicLink
                }
                let length = Int(slot.load(fromByteOffset: 7, as: UInt8.self))
                let name = String(decoding: UnsafeRawBufferPointer(start: slot + 128, count: length), as: UTF8.self)
                place = Place(
                    attached: state == 1, kind: kind, pending: slot.load(fromByteOffset: 6, as: UInt8.self) == 1,
                    parent: slot.load(fromByteOffset: 8, as: UInt64.self), name: FileName(name))
            }
            var writer: Writer?
            if slot.load(fromByteOffset: 24, as: UInt32.self) & 1 == 0,
                slot.load(fromByteOffset: 28, as: UInt32.self) == 1
            {
                var attributes = PosixAttributes(
                    permissions: slot.load(fromByteOffset: 64, as: UInt32.self),
                    uid: slot.load(fromByteOffset: 68, as: UInt32.self),
                    gid: slot.load(fromByteOffset: 72, as: UInt32.self), time: .zero)
                let times = (0..<3).map { index in
                    Timespec(
                        seconds: slot.load(fromByteOffset: 80 + index * 16, as: Int64.self),
                        nanoseconds: slot.load(fromByteOffset: 88 + index * 16, as: Int64.self))
                }
                attributes.accessTime = times[0]
                attributes.modificationTime = times[1]
                attributes.changeTime = times[2]
                writer = Writer(
                    extentOffset: Int(slot.load(fromByteOffset: 32, as: Int64.self)),
                    extentLength: Int(slot.load(fromByteOffset: 40, as: Int64.self)),
                    size: Int(slot.load(fromByteOffset: 48, as: Int64.self)),
                    baseline: Int(slot.load(fromByteOffset: 56, as: Int64.self)),
                    attributes: attributes)
            }
            records.append(
                Record(inode: inode, place: place, lookups: slot.load(fromByteOffset: 16, as: UInt64.self), writer: writer))
        }
        return records
    }

    /// Rebuilds the free-slot bookkeeping: `used` inodes stay taken, every other slot is free.
    func adoptUsedSlots(_ used: Set<UInt64>) {
        let highest = used.map { Int($0 - Self.firstInode) }.max() ?? -1
        nextUnused = highest + 1
        setHeader(40, UInt64(nextUnused))
        freeSlots = (0..<nextUnused).filter { !used.contains(UInt64($0) + Self.firstInode) }.reversed()
        for index in freeSlots {
            (base + Self.headerSize + index * Self.slotSize).storeBytes(of: 0, toByteOffset: 4, as: UInt8.self)
        }
    }

    /// Removes the file (the mount is gone for good).
    func remove() {
        unlink(path)
    }

    deinit {
        munmap(base, mappedSize)
    }

    /// Keeps the sequence number's stores on either side of the fields they guard (the
    /// mapping is read by a later process, after this one is gone).
    private func atomicFence() {
        atomicMemoryFence(ordering: .sequentiallyConsistent)
    }
}
