//
// vineyard-csi: VolumeFS
//
// VolumeFileSystem+SpecialFiles.swift: mknod of FIFOs, sockets, device nodes and empty files.

import FUSEKit
import StoreBackend
import VineyardObjects
import Synchronization

extension VolumeFileSystem {
    /// Creates a FIFO, unix socket (`bind(2)` inside the volume), character or block device:
    /// an object without bytes holding the type, device number, owner, mode and times. The
    /// kernel serves the node's I/O itself (pipes and sockets meet at its in-memory inode,
    /// which every publication of the volume shares, being bind mounts of one FUSE mount);
    /// opening a device still obeys the mount's `nodev`. A regular type makes an empty file.
    public func makeNode(
        parent: InodeNumber, name: String, mode: UInt32, device: UInt64, context: RequestContext
    ) throws(Errno) -> EntryReply {
        guard !readOnly else { throw .readOnlyFileSystem }
        let name = try Self.validatedName(name)
        guard let type = FileType(mode: mode), type != .directory, type != .symbolicLink else { throw .invalid }
        let parentNode = try directoryNode(parent)
        return try namespace.withReadLock { () throws(Errno) -> EntryReply in
            let kind: NodeKind = type == .regular ? .file : .special(type)
            let (path, objectName, attributes) = try newEntryLocked(
                parentNode, name, kind: kind, mode: mode & 0o7777, context: context)
            let resolved = try call { () throws(BackendError) -> Resolved in
                if type == .regular {
                    let meta = NodeMetadata.file(
                        size: 0, attributes: attributes, volumeID: volumeID, instanceID: instanceID)
                    let version = try backend.startVersion(from: nil, keeping: 0)
                    return .file(try backend.publish(version, meta: meta, name: objectName).id, meta)
                }
                let meta = NodeMetadata.special(
                    type: type, device: device, attributes: attributes, volumeID: volumeID, instanceID: instanceID)
                return .special(try backend.createObject(meta, name: objectName), meta)
            }
            accounting.adjust(files: 1)
            touchParent(of: path)
            let node = table.withLock { $0.pinChild(of: parentNode, named: name, kind: kind) }
            return entry(self.attributes(of: node, resolved: resolved))
        }
    }
}
