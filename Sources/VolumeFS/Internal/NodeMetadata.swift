//
// vineyard-csi: VolumeFS
//
// NodeMetadata.swift: POSIX attributes kept in the metadata of a volume's objects.

import FUSEKit
import SharedMemoryStore

/// What a name of the volume stands for.
enum NodeKind: Sendable, Hashable {
    case file
    case directory
    case symbolicLink
    /// A FIFO, unix socket or device node: an object without bytes; the kernel does the
    /// node's I/O itself once the inode exists.
    case special(FileType)

    var fileType: FileType {
        switch self {
        case .file: return .regular
        case .directory: return .directory
        case .symbolicLink: return .symbolicLink
        case .special(let type): return type
        }
    }
}

/// Owner, permissions and times of a node, stored as fields of its object's metadata:
/// `posix_mode` (permission bits, `0o7777`), `posix_uid`, `posix_gid`, and `posix_atime`,
/// `posix_mtime`, `posix_ctime` as `[seconds, nanoseconds]`.
struct PosixAttributes: Sendable, Hashable {
    var permissions: UInt32
    var uid: UInt32
    var gid: UInt32
    var accessTime: Timespec
    var modificationTime: Timespec
    var changeTime: Timespec
    /// Set once a file has been hard-linked (`vcsi_link`): the same for every name and every
    /// version of the file, so a mount finds the inode it already serves for another name.
    var linkIdentity: UInt64?

    init(permissions: UInt32, uid: UInt32, gid: UInt32, time: Timespec) {
        self.permissions = permissions & 0o7777
        self.uid = uid
        self.gid = gid
        self.accessTime = time
        self.modificationTime = time
        self.changeTime = time
    }

    /// Reads the fields of `meta`; missing ones (objects written by vineyard clients) take
    /// `defaultPermissions`, root ownership and the epoch.
    init(meta: ObjectMeta, defaultPermissions: UInt32) {
        let fields = meta.fields
        self.permissions =
            fields[Keys.mode]?.uint64Value.map { UInt32(truncatingIfNeeded: $0) & 0o7777 }
            ?? defaultPermissions
        self.uid = fields[Keys.uid]?.uint64Value.map { UInt32(truncatingIfNeeded: $0) } ?? 0
        self.gid = fields[Keys.gid]?.uint64Value.map { UInt32(truncatingIfNeeded: $0) } ?? 0
        self.accessTime = Self.time(fields[Keys.accessTime])
        self.modificationTime = Self.time(fields[Keys.modificationTime])
        self.changeTime = Self.time(fields[Keys.changeTime])
        self.linkIdentity = fields[Keys.linkIdentity]?.uint64Value
        // Objects put through the vineyard socket carry vineyard's creation time instead.
        if fields[Keys.modificationTime] == nil, let milliseconds = fields["__timestamp"]?.int64Value, milliseconds > 0 {
            let created = Timespec(seconds: milliseconds / 1000, nanoseconds: milliseconds % 1000 * 1_000_000)
            (accessTime, modificationTime, changeTime) = (created, created, created)
        }
    }

    /// Writes the attributes into metadata fields.
    func encode(into fields: inout [String: JSONValue]) {
        fields[Keys.mode] = JSONValue(integer: Int(permissions))
        fields[Keys.uid] = JSONValue(integer: Int(uid))
        fields[Keys.gid] = JSONValue(integer: Int(gid))
        fields[Keys.accessTime] = Self.json(accessTime)
        fields[Keys.modificationTime] = Self.json(modificationTime)
        fields[Keys.changeTime] = Self.json(changeTime)
        if let linkIdentity { fields[Keys.linkIdentity] = JSONValue(integer: linkIdentity) }
    }

    /// Applies chmod/chown/utimens changes (not the size); the change time becomes `now`
    /// unless the request sets it.
    mutating func apply(_ changes: SetAttributes, now: Timespec) {
        if let mode = changes.mode { permissions = mode & 0o7777 }
        if let uid = changes.uid { self.uid = uid }
        if let gid = changes.gid { self.gid = gid }
        switch changes.accessTime {
        case .now: accessTime = now
        case .time(let time): accessTime = time
        case nil: break
        }
        switch changes.modificationTime {
        case .now: modificationTime = now
        case .time(let time): modificationTime = time
        case nil: break
        }
        changeTime = changes.changeTime ?? now
    }

    enum Keys {
        static let mode = "posix_mode"
        static let uid = "posix_uid"
        static let gid = "posix_gid"
        static let accessTime = "posix_atime"
        static let modificationTime = "posix_mtime"
        static let changeTime = "posix_ctime"
        static let linkIdentity = "vcsi_link"
    }

    private static func time(_ value: JSONValue?) -> Timespec {
        guard let parts = value?.arrayValue, parts.count == 2, let seconds = parts[0].int64Value,
            let nanoseconds = parts[1].int64Value, (0..<1_000_000_000).contains(nanoseconds)
        else { return .zero }
        return Timespec(seconds: seconds, nanoseconds: nanoseconds)
    }

    private static func json(_ time: Timespec) -> JSONValue {
        .array([.int(time.seconds), .int(time.nanoseconds)])
    }
}

/// Builds and reads the metadata of the volume's objects.
enum NodeMetadata {
    /// Files are vineyard blobs: vineyard's own blob metadata (`vineyard::Blob`, `nbytes`,
    /// `length`), so vineyard clients can read them, plus the POSIX fields and the volume.
    static let fileTypename = "vineyard::Blob"
    /// Directory markers: metadata objects without bytes.
    static let directoryTypename = "vineyard-csi::Directory"
    /// Symbolic links: metadata objects without bytes; the target is the `target` field.
    static let symbolicLinkTypename = "vineyard-csi::SymbolicLink"
    /// The field naming the volume an object was written for (finds orphans when purging).
    static let volumeKey = "vcsi_volume"
    static let targetKey = "target"

    /// Permissions of files that carry none (written by vineyard clients).
    static let defaultFilePermissions: UInt32 = 0o644
    /// Permissions of directories that carry none: the root of a new volume, and directories
    /// that exist only because names below them do. 0777 (no sticky bit) so that pods running
    /// as any user can write; a mode set later (chmod, an fsGroup policy) is kept.
    static let defaultDirectoryPermissions: UInt32 = 0o777

    static func file(size: Int, attributes: PosixAttributes, volumeID: String, instanceID: UInt64) -> ObjectMeta {
        var meta = ObjectMeta.blob(size: size, instanceID: instanceID)
        meta.isTransient = false
        attributes.encode(into: &meta.fields)
        meta.fields[volumeKey] = .string(volumeID)
        return meta
    }

    static func directory(attributes: PosixAttributes, volumeID: String, instanceID: UInt64) -> ObjectMeta {
        var meta = ObjectMeta(typename: directoryTypename, instanceID: instanceID, isTransient: false)
        attributes.encode(into: &meta.fields)
        meta.fields[volumeKey] = .string(volumeID)
        return meta
    }

    static func symbolicLink(
        target: String, attributes: PosixAttributes, volumeID: String, instanceID: UInt64
    ) -> ObjectMeta {
        var meta = ObjectMeta(typename: symbolicLinkTypename, instanceID: instanceID, isTransient: false)
        attributes.encode(into: &meta.fields)
        meta.fields[volumeKey] = .string(volumeID)
        meta.fields[targetKey] = .string(target)
        return meta
    }

    /// What an object found at a file name is: blobs are files, symbolic-link objects are
    /// links, special-file objects are FIFOs, sockets or devices, directory markers are not
    /// files (`nil`), any other vineyard object reads as a file (``ObjectFileView``).
    static func kind(of id: ObjectID, meta: ObjectMeta) -> NodeKind? {
        if id.isBlob { return .file }
        switch meta.typename {
        case symbolicLinkTypename: return .symbolicLink
        case directoryTypename: return nil
        case specialTypename: return .special(specialType(meta))
        default: return .file
        }
    }
}

extension NodeMetadata {
    /// FIFOs, unix sockets and device nodes: metadata objects without bytes, with the file
    /// type (`S_IFMT` bits) in `posix_type` and the device number in `posix_rdev`.
    static let specialTypename = "vineyard-csi::SpecialFile"
    static let specialTypeKey = "posix_type"
    static let deviceKey = "posix_rdev"

    static func special(
        type: FileType, device: UInt64, attributes: PosixAttributes, volumeID: String, instanceID: UInt64
    ) -> ObjectMeta {
        var meta = ObjectMeta(typename: specialTypename, instanceID: instanceID, isTransient: false)
        attributes.encode(into: &meta.fields)
        meta.fields[volumeKey] = .string(volumeID)
        meta.fields[specialTypeKey] = JSONValue(integer: Int(type.modeBits))
        meta.fields[deviceKey] = JSONValue(integer: device)
        return meta
    }

    /// The type of a special-file object; a FIFO when the field is missing or not one of
    /// the special types.
    static func specialType(_ meta: ObjectMeta) -> FileType {
        guard let bits = meta.fields[specialTypeKey]?.uint64Value,
            let type = FileType(mode: UInt32(truncatingIfNeeded: bits)),
            type != .regular, type != .directory, type != .symbolicLink
        else { return .fifo }
        return type
    }

    /// The device number of a special-file object.
    static func device(_ meta: ObjectMeta) -> UInt64 {
        meta.fields[deviceKey]?.uint64Value ?? 0
    }
}
