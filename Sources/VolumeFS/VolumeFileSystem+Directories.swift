//
// vineyard-csi: VolumeFS
//
// VolumeFileSystem+Directories.swift: opendir, readdir, readdirplus and releasedir.

import FUSEKit
import Glibc
import SharedMemoryStore
import StoreBackend
import Synchronization

extension VolumeFileSystem {
    /// Store entries fetched per page while listing.
    static var listingPageSize: Int { 512 }

    public func openDirectory(inode: InodeNumber, flags: OpenFlags, context: RequestContext) throws(Errno) -> OpenReply
    {
        let node = try directoryNode(inode)
        let handle = directories.makeHandle()
        table.withLock { $0.opened(node) }
        directories.insert(DirectoryHandle(node: node), as: handle)
        return OpenReply(handle: handle)
    }

    public func releaseDirectory(inode: InodeNumber, handle: UInt64) {
        guard let directory = directories.remove(handle) else { return }
        table.withLock { $0.closed(directory.node) }
    }

    public func readDirectory(
        inode: InodeNumber, handle: UInt64, offset: Int64, into buffer: inout DirectoryBuffer,
        context: RequestContext
    ) throws(Errno) {
        guard let directory = directories.get(handle) ?? adoptDirectory(handle, inode: inode) else {
            throw .badFileDescriptor
        }
        guard offset >= 0 else { throw .invalid }
        // A dirent takes at least 32 bytes; fetch what could fit.
        let items = try listing(directory, from: Int(offset), count: buffer.capacity / 32 + 1)
        let inodes = table.withLock { table in
            items.map { item -> InodeNumber in
                switch item.name.string {
                case ".": return directory.node.inode
                case "..": return directory.node.parent?.inode ?? .root
                default: return table.child(of: directory.node, named: item.name)?.inode ?? Self.unknownInode
                }
            }
        }
        for (index, item) in items.enumerated() {
            let accepted = buffer.add(
                name: item.name.string, inode: inodes[index], type: item.kind.fileType,
                nextOffset: offset + Int64(index) + 1)
            if !accepted { break }
        }
    }

    public func readDirectoryPlus(
        inode: InodeNumber, handle: UInt64, offset: Int64, into buffer: inout DirectoryPlusBuffer,
        context: RequestContext
    ) throws(Errno) {
        guard let directory = directories.get(handle) ?? adoptDirectory(handle, inode: inode) else {
            throw .badFileDescriptor
        }
        guard offset >= 0 else { throw .invalid }
        // An entry with attributes takes at least 152 bytes.
        let items = try listing(directory, from: Int(offset), count: buffer.capacity / 152 + 1)
        let parentInode = table.withLock { _ in directory.node.parent?.inode ?? .root }
        for (index, item) in items.enumerated() {
            let nextOffset = offset + Int64(index) + 1
            if item.name.string == "." || item.name.string == ".." {
                // The kernel takes neither the attributes nor a lookup count from these.
                let inode = item.name.string == "." ? directory.node.inode : parentInode
                let attributes = FileAttributes(inode: inode, mode: FileType.directory.mode(permissions: 0o755))
                let entry = EntryReply(
                    attributes: attributes, generation: generation, entryTimeout: 0, attributeTimeout: 0)
                guard buffer.add(name: item.name.string, entry: entry, nextOffset: nextOffset) else { break }
                continue
            }
            // Counts as a lookup, exactly like LOOKUP; entries removed meanwhile are skipped.
            guard
                let entry = try? namespace.withReadLock({ () throws(Errno) -> EntryReply in
                    try lookupLocked(directory.node, item.name)
                })
            else { continue }
            if !buffer.add(name: item.name.string, entry: entry, nextOffset: nextOffset) {
                forget(inode: entry.attributes.inode, lookups: 1)
                break
            }
        }
    }

    /// The listing from position `offset` on ("." is 0, ".." is 1, then the entries): at
    /// most `count` items. Position 0 starts a fresh listing (opendir, rewinddir); later
    /// positions continue the handle's listing, fetching store pages as needed.
    private func listing(_ directory: DirectoryHandle, from offset: Int, count: Int) throws(Errno)
        -> [DirectoryListing.Entry]
    {
        try namespace.withReadLock { () throws(Errno) -> [DirectoryListing.Entry] in
            try directory.listing.withLock { (listing) throws(Errno) -> [DirectoryListing.Entry] in
                if offset == 0 {
                    listing = DirectoryListing()
                    listing.pendingNames = table.withLock { $0.pendingNames(in: directory.node) }
                    listing.entries = listing.pendingNames.map { DirectoryListing.Entry(name: $0, kind: .file) }
                }
                let first = max(0, offset - 2)
                let end = first + max(0, count - max(0, 2 - offset))
                while listing.entries.count < end && !listing.exhausted {
                    try fetchPage(directory.node, &listing)
                }
                var items: [DirectoryListing.Entry] = []
                items.reserveCapacity(count)
                if offset <= 0 { items.append(DirectoryListing.Entry(name: FileName("."), kind: .directory)) }
                if offset <= 1 { items.append(DirectoryListing.Entry(name: FileName(".."), kind: .directory)) }
                if first < listing.entries.count {
                    items.append(contentsOf: listing.entries[first..<min(end, listing.entries.count)])
                }
                return items
            }
        }
    }

    /// Appends the next page of the store's listing of the directory. Call it with the
    /// namespace lock held.
    private func fetchPage(_ directory: Node, _ listing: inout DirectoryListing) throws(Errno) {
        guard let path = table.withLock({ $0.path(of: directory) }) else {
            listing.exhausted = true  // removed while being listed
            return
        }
        let page = try call { () throws(BackendError) in
            try backend.listDirectory(naming.directoryName(path), after: listing.cursor, limit: Self.listingPageSize)
        }
        if page.count < Self.listingPageSize { listing.exhausted = true }
        if let last = page.last { listing.cursor = last }
        for entry in page {
            let name: String
            let kind: NodeKind
            switch entry {
            case .object(let objectName, let id):
                if id.isBlob {
                    kind = .file
                } else {
                    guard let meta = try? backend.meta(id), let found = NodeMetadata.kind(of: id, meta: meta)
                    else { continue }
                    kind = found
                }
                name = objectName
            case .directory(let directoryName):
                name = directoryName
                kind = .directory
            }
            // The directory's own marker lists as "", and vineyard clients may use names no
            // kernel accepts.
            guard !name.isEmpty, name.utf8.count <= Self.maximumComponentLength, name != ".", name != ".." else {
                continue
            }
            let fileName = FileName(name)
            if kind == .file && listing.pendingNames.contains(fileName) { continue }  // listed already
            listing.entries.append(DirectoryListing.Entry(name: fileName, kind: kind))
        }
    }
}
