//
// vineyard-csi: VolumeFS
//
// VineyarddFileSystem+Unsupported.swift: what a vineyardd volume refuses, with the errno
// POSIX gives a file system that does not support it (docs/posix.md lists them).

public import FUSEKit

extension VineyarddFileSystem {
    /// Hard links: `EPERM`, link(2)'s "the file system does not support hard links". A file
    /// is one chunked object under one name, and vineyardd has no second name for it.
    public func link(
        inode: InodeNumber, newParent: InodeNumber, newName: String, context: RequestContext
    ) throws(Errno) -> EntryReply {
        throw readOnly ? .readOnlyFileSystem : .notPermitted
    }

    /// FIFOs, unix sockets (`bind(2)`) and device nodes: `EPERM`, mknod(2)'s "the file system
    /// does not support the type of node requested".
    public func makeNode(
        parent: InodeNumber, name: String, mode: UInt32, device: UInt64, context: RequestContext
    ) throws(Errno) -> EntryReply {
        throw readOnly ? .readOnlyFileSystem : .notPermitted
    }

    /// Symbolic links: `EPERM`, symlink(2)'s "the file system does not support symbolic links".
    public func symbolicLink(
        target: String, parent: InodeNumber, name: String, context: RequestContext
    ) throws(Errno) -> EntryReply {
        throw readOnly ? .readOnlyFileSystem : .notPermitted
    }
}
