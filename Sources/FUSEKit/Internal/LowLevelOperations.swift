//
// vineyard-csi: FUSEKit
//
// The C side of the binding: one `@convention(c)` trampoline per low-level operation.
//
// Rules every handler follows:
// - it runs on a libfuse worker thread and calls the file system synchronously;
// - it sends exactly one reply (`fuse_reply_*`, `fuse_reply_none` for forget) on every path;
// - a thrown `Errno` becomes `fuse_reply_err`; nothing else can be thrown, and nothing traps
//   on input from the kernel (names that are not UTF-8 are answered with EINVAL);
// - when a reply that carries a lookup count or a file handle cannot be delivered (the
//   request was interrupted), the count is forgotten and the handle released here.

internal import CFUSE
import Glibc
import Synchronization

enum LowLevelOperations {
    /// The operations table handed to `fuse_session_new`. The closures capture nothing, so each
    /// converts to a plain C function pointer.
    static func make() -> fuse_lowlevel_ops {
        var ops = fuse_lowlevel_ops()
        ops.`init` = { userdata, conn in Handlers.initialize(userdata, conn) }
        ops.destroy = { userdata in Handlers.destroy(userdata) }
        ops.lookup = { req, parent, name in Handlers.lookup(req, parent, name) }
        ops.forget = { req, ino, nlookup in Handlers.forget(req, ino, nlookup) }
        ops.forget_multi = { req, count, forgets in Handlers.forgetMulti(req, count, forgets) }
        ops.getattr = { req, ino, fi in Handlers.getattr(req, ino, fi) }
        ops.setattr = { req, ino, attr, toSet, fi in Handlers.setattr(req, ino, attr, toSet, fi) }
        ops.readlink = { req, ino in Handlers.readlink(req, ino) }
        ops.mknod = { req, parent, name, mode, rdev in Handlers.mknod(req, parent, name, mode, rdev) }
        ops.mkdir = { req, parent, name, mode in Handlers.mkdir(req, parent, name, mode) }
        ops.unlink = { req, parent, name in Handlers.unlink(req, parent, name) }
        ops.rmdir = { req, parent, name in Handlers.rmdir(req, parent, name) }
        ops.symlink = { req, link, parent, name in Handlers.symlink(req, link, parent, name) }
        ops.rename = { req, parent, name, newParent, newName, flags in
            Handlers.rename(req, parent, name, newParent, newName, flags)
        }
        ops.link = { req, ino, newParent, newName in Handlers.link(req, ino, newParent, newName) }
        ops.open = { req, ino, fi in Handlers.open(req, ino, fi) }
        ops.read = { req, ino, size, off, fi in Handlers.read(req, ino, size, off, fi) }
        ops.write = { req, ino, buf, size, off, fi in Handlers.write(req, ino, buf, size, off, fi) }
        ops.flush = { req, ino, fi in Handlers.flush(req, ino, fi) }
        ops.release = { req, ino, fi in Handlers.release(req, ino, fi) }
        ops.fsync = { req, ino, datasync, fi in Handlers.fsync(req, ino, datasync, fi) }
        ops.fallocate = { req, ino, mode, offset, length, fi in Handlers.fallocate(req, ino, mode, offset, length, fi) }
        ops.opendir = { req, ino, fi in Handlers.opendir(req, ino, fi) }
        ops.readdir = { req, ino, size, off, fi in Handlers.readdir(req, ino, size, off, fi) }
        ops.readdirplus = { req, ino, size, off, fi in Handlers.readdirplus(req, ino, size, off, fi) }
        ops.releasedir = { req, ino, fi in Handlers.releasedir(req, ino, fi) }
        ops.fsyncdir = { req, ino, datasync, fi in Handlers.fsyncdir(req, ino, datasync, fi) }
        ops.statfs = { req, ino in Handlers.statfs(req, ino) }
        ops.access = { req, ino, mask in Handlers.access(req, ino, mask) }
        ops.create = { req, parent, name, mode, fi in Handlers.create(req, parent, name, mode, fi) }
        return ops
    }
}

// MARK: - Handlers

private enum Handlers {
    typealias FileInfo = UnsafeMutablePointer<fuse_file_info>

    /// Runs `body` for a request; a thrown errno becomes `fuse_reply_err`. `body` replies itself
    /// on success and must not throw after replying.
    @inline(__always)
    static func handle(
        _ req: OpaquePointer?, _ operation: FileOperation,
        _ body: (OpaquePointer, SessionContext, RequestContext) throws(Errno) -> Void
    ) {
        transfer(req, operation) { req, session, context throws(Errno) in
            try body(req, session, context)
            return 0
        }
    }

    /// ``handle(_:_:_:)`` for requests that move data: `body` returns the bytes it replied with
    /// or wrote. The one place every answered request passes, so the observer sees them all.
    @inline(__always)
    static func transfer(
        _ req: OpaquePointer?, _ operation: FileOperation,
        _ body: (OpaquePointer, SessionContext, RequestContext) throws(Errno) -> Int
    ) {
        guard let req else { return }
        let session = SessionContext.from(request: req)
        session.runAfterInitializationIfNeeded()
        let observer = FileOperationObservation.observer
        let start = observer == nil ? nil : ContinuousClock.now
        do throws(Errno) {
            let bytes = try body(req, session, RequestContext(request: req))
            if let observer, let start {
                observer.fileOperationCompleted(operation, bytes: bytes, duration: .now - start, error: nil)
            }
        } catch {
            fuse_reply_err(req, error.replyValue)
            if let observer, let start {
                observer.fileOperationCompleted(operation, bytes: 0, duration: .now - start, error: error)
            }
        }
    }

    static func name(_ cName: UnsafePointer<CChar>?) throws(Errno) -> String {
        guard let cName, let name = String(validatingCString: cName) else { throw .invalid }
        return name
    }

    static func inode(_ ino: fuse_ino_t) -> InodeNumber {
        InodeNumber(rawValue: UInt64(ino))
    }

    // MARK: Lifecycle

    static func initialize(_ userdata: UnsafeMutableRawPointer?, _ conn: UnsafeMutablePointer<fuse_conn_info>?) {
        guard let userdata, let conn else { return }
        let session = SessionContext.from(userdata: userdata)
        let options = session.options

        // Exactly the requested capabilities the kernel offers; libfuse's defaults are replaced.
        let offered = FUSECapabilities(rawValue: UInt32(conn.pointee.capable))
        let enabled = options.capabilities.intersection(offered)
        conn.pointee.want = UInt32(enabled.rawValue)

        // libfuse has already clamped max_write to its buffer size (1 MiB with max_pages).
        conn.pointee.max_write = min(conn.pointee.max_write, max(options.maxWrite, 4096))
        // Must match the max_read mount option given to fuse_session_new (0 = unset).
        conn.pointee.max_read = options.maxRead ?? 0
        if let readahead = options.maxReadahead {
            conn.pointee.max_readahead = min(conn.pointee.max_readahead, readahead)
        }
        if let background = options.maxBackground {
            conn.pointee.max_background = UInt32(background)
        }
        if let threshold = options.congestionThreshold {
            conn.pointee.congestion_threshold = UInt32(threshold)
        }
        conn.pointee.time_gran = max(options.timeGranularity, 1)

        let grants = InitNegotiation.Grants(rawValue: session.grants.load(ordering: .acquiring))
        let info = ConnectionInfo(
            protocolMajor: conn.pointee.proto_major,
            protocolMinor: conn.pointee.proto_minor,
            offered: offered,
            enabled: enabled,
            maxWrite: conn.pointee.max_write,
            maxRead: conn.pointee.max_read,
            maxReadahead: conn.pointee.max_readahead,
            maxBackground: conn.pointee.max_background,
            congestionThreshold: conn.pointee.congestion_threshold,
            timeGranularity: conn.pointee.time_gran,
            directIOMappable: grants.contains(.directIOMmap),
            backingFiles: grants.contains(.passthrough) ? BackingFiles(device: session.device.load(ordering: .acquiring)) : nil
        )
        session.connection.withLock { $0 = info }
        session.fileSystem.initialize(connection: info)
    }

    static func destroy(_ userdata: UnsafeMutableRawPointer?) {
        guard let userdata else { return }
        SessionContext.from(userdata: userdata).fileSystem.destroy()
    }

    // MARK: Names and attributes

    /// Sends an entry; if it cannot be delivered, gives the lookup count back.
    static func replyEntry(_ req: OpaquePointer, _ session: SessionContext, _ entry: EntryReply) {
        var param = fuse_entry_param(entry)
        if fuse_reply_entry(req, &param) != 0, !entry.isNegative {
            session.fileSystem.forget(inode: entry.attributes.inode, lookups: 1)
        }
    }

    static func lookup(_ req: OpaquePointer?, _ parent: fuse_ino_t, _ cName: UnsafePointer<CChar>?) {
        handle(req, .lookup) { req, session, context throws(Errno) in
            let entry = try session.fileSystem.lookup(parent: inode(parent), name: name(cName), context: context)
            replyEntry(req, session, entry)
        }
    }

    static func forget(_ req: OpaquePointer?, _ ino: fuse_ino_t, _ nlookup: UInt64) {
        guard let req else { return }
        SessionContext.from(request: req).fileSystem.forget(inode: inode(ino), lookups: nlookup)
        fuse_reply_none(req)
    }

    static func forgetMulti(_ req: OpaquePointer?, _ count: Int, _ forgets: UnsafeMutablePointer<fuse_forget_data>?) {
        guard let req else { return }
        let fileSystem = SessionContext.from(request: req).fileSystem
        if let forgets {
            for item in UnsafeBufferPointer(start: forgets, count: count) {
                fileSystem.forget(inode: inode(item.ino), lookups: item.nlookup)
            }
        }
        fuse_reply_none(req)
    }

    static func replyAttributes(_ req: OpaquePointer, _ reply: AttributeReply) {
        var st = reply.attributes.stat
        fuse_reply_attr(req, &st, reply.timeout)
    }

    static func getattr(_ req: OpaquePointer?, _ ino: fuse_ino_t, _ fi: FileInfo?) {
        handle(req, .getattr) { req, session, context throws(Errno) in
            let reply = try session.fileSystem.getAttributes(inode: inode(ino), handle: fi?.pointee.fh, context: context)
            replyAttributes(req, reply)
        }
    }

    static func setattr(
        _ req: OpaquePointer?, _ ino: fuse_ino_t, _ attr: UnsafeMutablePointer<stat>?, _ toSet: Int32, _ fi: FileInfo?
    ) {
        handle(req, .setattr) { req, session, context throws(Errno) in
            guard let attr = attr?.pointee else { throw .invalid }
            var changes = SetAttributes(rawMask: toSet)
            if toSet & FUSE_SET_ATTR_MODE != 0 { changes.mode = UInt32(attr.st_mode) & 0o7777 }
            if toSet & FUSE_SET_ATTR_UID != 0 { changes.uid = UInt32(attr.st_uid) }
            if toSet & FUSE_SET_ATTR_GID != 0 { changes.gid = UInt32(attr.st_gid) }
            if toSet & FUSE_SET_ATTR_SIZE != 0 {
                guard attr.st_size >= 0 else { throw .invalid }
                changes.size = UInt64(attr.st_size)
            }
            if toSet & FUSE_SET_ATTR_ATIME_NOW != 0 {
                changes.accessTime = .now
            } else if toSet & FUSE_SET_ATTR_ATIME != 0 {
                changes.accessTime = .time(Timespec(attr.st_atim))
            }
            if toSet & FUSE_SET_ATTR_MTIME_NOW != 0 {
                changes.modificationTime = .now
            } else if toSet & FUSE_SET_ATTR_MTIME != 0 {
                changes.modificationTime = .time(Timespec(attr.st_mtim))
            }
            if toSet & FUSE_SET_ATTR_CTIME != 0 { changes.changeTime = Timespec(attr.st_ctim) }
            let reply = try session.fileSystem.setAttributes(
                inode: inode(ino), changes, handle: fi?.pointee.fh, context: context)
            replyAttributes(req, reply)
        }
    }

    static func access(_ req: OpaquePointer?, _ ino: fuse_ino_t, _ mask: Int32) {
        handle(req, .access) { req, session, context throws(Errno) in
            try session.fileSystem.access(inode: inode(ino), mask: AccessMask(rawValue: mask), context: context)
            fuse_reply_err(req, 0)
        }
    }

    static func statfs(_ req: OpaquePointer?, _ ino: fuse_ino_t) {
        handle(req, .statfs) { req, session, context throws(Errno) in
            let stats = try session.fileSystem.statistics(inode: inode(ino), context: context)
            var out = statvfs()
            out.f_bsize = UInt(stats.blockSize)
            out.f_frsize = UInt(stats.fragmentSize)
            out.f_blocks = fsblkcnt_t(stats.blocks)
            out.f_bfree = fsblkcnt_t(stats.freeBlocks)
            out.f_bavail = fsblkcnt_t(stats.availableBlocks)
            out.f_files = fsfilcnt_t(stats.files)
            out.f_ffree = fsfilcnt_t(stats.freeFiles)
            out.f_favail = fsfilcnt_t(stats.availableFiles)
            out.f_namemax = UInt(stats.maximumNameLength)
            fuse_reply_statfs(req, &out)
        }
    }

    // MARK: Links

    static func readlink(_ req: OpaquePointer?, _ ino: fuse_ino_t) {
        handle(req, .readlink) { req, session, context throws(Errno) in
            let target = try session.fileSystem.readLink(inode: inode(ino), context: context)
            target.withCString { _ = fuse_reply_readlink(req, $0) }
        }
    }

    static func symlink(
        _ req: OpaquePointer?, _ cTarget: UnsafePointer<CChar>?, _ parent: fuse_ino_t, _ cName: UnsafePointer<CChar>?
    ) {
        handle(req, .symlink) { req, session, context throws(Errno) in
            let entry = try session.fileSystem.symbolicLink(
                target: name(cTarget), parent: inode(parent), name: name(cName), context: context)
            replyEntry(req, session, entry)
        }
    }

    static func link(
        _ req: OpaquePointer?, _ ino: fuse_ino_t, _ newParent: fuse_ino_t, _ cNewName: UnsafePointer<CChar>?
    ) {
        handle(req, .link) { req, session, context throws(Errno) in
            let entry = try session.fileSystem.link(
                inode: inode(ino), newParent: inode(newParent), newName: name(cNewName), context: context)
            replyEntry(req, session, entry)
        }
    }

    // MARK: Namespace changes

    static func mknod(
        _ req: OpaquePointer?, _ parent: fuse_ino_t, _ cName: UnsafePointer<CChar>?, _ mode: mode_t, _ rdev: dev_t
    ) {
        handle(req, .mknod) { req, session, context throws(Errno) in
            let entry = try session.fileSystem.makeNode(
                parent: inode(parent), name: name(cName), mode: UInt32(mode), device: UInt64(rdev), context: context)
            replyEntry(req, session, entry)
        }
    }

    static func mkdir(_ req: OpaquePointer?, _ parent: fuse_ino_t, _ cName: UnsafePointer<CChar>?, _ mode: mode_t) {
        handle(req, .mkdir) { req, session, context throws(Errno) in
            let entry = try session.fileSystem.makeDirectory(
                parent: inode(parent), name: name(cName), mode: UInt32(mode), context: context)
            replyEntry(req, session, entry)
        }
    }

    static func unlink(_ req: OpaquePointer?, _ parent: fuse_ino_t, _ cName: UnsafePointer<CChar>?) {
        handle(req, .unlink) { req, session, context throws(Errno) in
            try session.fileSystem.unlink(parent: inode(parent), name: name(cName), context: context)
            fuse_reply_err(req, 0)
        }
    }

    static func rmdir(_ req: OpaquePointer?, _ parent: fuse_ino_t, _ cName: UnsafePointer<CChar>?) {
        handle(req, .rmdir) { req, session, context throws(Errno) in
            try session.fileSystem.removeDirectory(parent: inode(parent), name: name(cName), context: context)
            fuse_reply_err(req, 0)
        }
    }

    static func rename(
        _ req: OpaquePointer?, _ parent: fuse_ino_t, _ cName: UnsafePointer<CChar>?, _ newParent: fuse_ino_t,
        _ cNewName: UnsafePointer<CChar>?, _ flags: UInt32
    ) {
        handle(req, .rename) { req, session, context throws(Errno) in
            try session.fileSystem.rename(
                parent: inode(parent), name: name(cName), newParent: inode(newParent), newName: name(cNewName),
                flags: RenameFlags(rawValue: flags), context: context)
            fuse_reply_err(req, 0)
        }
    }

    // MARK: Files

    static func apply(_ reply: OpenReply, to fi: FileInfo) {
        cfuse_file_info_set_open_flags(
            fi, reply.handle, reply.directIO ? 1 : 0, reply.keepCache ? 1 : 0, reply.nonSeekable ? 1 : 0,
            reply.cacheDirectory ? 1 : 0, reply.noFlush ? 1 : 0, reply.parallelDirectWrites ? 1 : 0)
    }

    static func create(
        _ req: OpaquePointer?, _ parent: fuse_ino_t, _ cName: UnsafePointer<CChar>?, _ mode: mode_t, _ fi: FileInfo?
    ) {
        handle(req, .create) { req, session, context throws(Errno) in
            guard let fi else { throw .invalid }
            let flags = OpenFlags(rawValue: fi.pointee.flags)
            let reply = try session.fileSystem.create(
                parent: inode(parent), name: name(cName), mode: UInt32(mode), flags: flags, context: context)
            let failed: Int32
            if let backing = reply.open.passthrough {
                failed = OpenReplyEncoding.send(
                    req, OpenReplyEncoding.entryOut(reply.entry) + OpenReplyEncoding.openOut(reply.open, backing: backing))
            } else {
                apply(reply.open, to: fi)
                var param = fuse_entry_param(reply.entry)
                failed = fuse_reply_create(req, &param, fi)
            }
            if failed != 0 {
                let ino = reply.entry.attributes.inode
                session.fileSystem.release(inode: ino, handle: reply.open.handle, flags: flags)
                session.fileSystem.forget(inode: ino, lookups: 1)
            }
        }
    }

    static func open(_ req: OpaquePointer?, _ ino: fuse_ino_t, _ fi: FileInfo?) {
        handle(req, .open) { req, session, context throws(Errno) in
            guard let fi else { throw .invalid }
            let flags = OpenFlags(rawValue: fi.pointee.flags)
            let reply = try session.fileSystem.open(inode: inode(ino), flags: flags, context: context)
            let failed: Int32
            if let backing = reply.passthrough {
                failed = OpenReplyEncoding.send(req, OpenReplyEncoding.openOut(reply, backing: backing))
            } else {
                apply(reply, to: fi)
                failed = fuse_reply_open(req, fi)
            }
            if failed != 0 {
                session.fileSystem.release(inode: inode(ino), handle: reply.handle, flags: flags)
            }
        }
    }

    static func read(_ req: OpaquePointer?, _ ino: fuse_ino_t, _ size: Int, _ off: off_t, _ fi: FileInfo?) {
        transfer(req, .read) { req, session, context throws(Errno) in
            let reply = try session.fileSystem.read(
                inode: inode(ino), handle: fi?.pointee.fh ?? 0, offset: Int64(off), size: size, context: context)
            switch reply {
            case .buffer(let buffer, let keepAlive):
                let count = min(buffer.count, size)
                withExtendedLifetime(keepAlive) {
                    _ = fuse_reply_buf(req, buffer.baseAddress?.assumingMemoryBound(to: CChar.self), count)
                }
                return count
            case .fileDescriptor(let fd, let offset, let length, let keepAlive):
                let count = max(0, min(length, size))
                if count == 0 {
                    fuse_reply_buf(req, nil, 0)
                } else {
                    withExtendedLifetime(keepAlive) {
                        _ = cfuse_reply_fd(
                            req, fd, off_t(offset), count, session.options.spliceMoveReplies ? 1 : 0)
                    }
                }
                return count
            case .buffers(let pieces, let keepAlive):
                var vectors: [iovec] = []
                var remaining = size
                for piece in pieces where remaining > 0 && piece.count > 0 {
                    let length = min(piece.count, remaining)
                    vectors.append(iovec(iov_base: UnsafeMutableRawPointer(mutating: piece.baseAddress), iov_len: length))
                    remaining -= length
                }
                withExtendedLifetime(keepAlive) {
                    _ = fuse_reply_iov(req, vectors, Int32(vectors.count))
                }
                return size - remaining
            case .bytes(let bytes):
                let count = min(bytes.count, size)
                bytes.withUnsafeBytes { buffer in
                    _ = fuse_reply_buf(req, buffer.baseAddress?.assumingMemoryBound(to: CChar.self), count)
                }
                return count
            }
        }
    }

    static func write(
        _ req: OpaquePointer?, _ ino: fuse_ino_t, _ buf: UnsafePointer<CChar>?, _ size: Int, _ off: off_t,
        _ fi: FileInfo?
    ) {
        transfer(req, .write) { req, session, context throws(Errno) in
            let data = UnsafeRawBufferPointer(start: buf, count: buf == nil ? 0 : size)
            let written = try session.fileSystem.write(
                inode: inode(ino), handle: fi?.pointee.fh ?? 0, offset: Int64(off), data: data, context: context)
            guard written >= 0, written <= size else { throw .io }
            fuse_reply_write(req, written)
            return written
        }
    }

    static func flush(_ req: OpaquePointer?, _ ino: fuse_ino_t, _ fi: FileInfo?) {
        handle(req, .flush) { req, session, context throws(Errno) in
            try session.fileSystem.flush(
                inode: inode(ino), handle: fi?.pointee.fh ?? 0, lockOwner: fi?.pointee.lock_owner ?? 0,
                context: context)
            fuse_reply_err(req, 0)
        }
    }

    static func fsync(_ req: OpaquePointer?, _ ino: fuse_ino_t, _ datasync: Int32, _ fi: FileInfo?) {
        handle(req, .fsync) { req, session, context throws(Errno) in
            try session.fileSystem.synchronize(
                inode: inode(ino), handle: fi?.pointee.fh ?? 0, dataOnly: datasync != 0, context: context)
            fuse_reply_err(req, 0)
        }
    }

    static func fallocate(
        _ req: OpaquePointer?, _ ino: fuse_ino_t, _ mode: Int32, _ offset: off_t, _ length: off_t, _ fi: FileInfo?
    ) {
        handle(req, .fallocate) { req, session, context throws(Errno) in
            try session.fileSystem.allocate(
                inode: inode(ino), handle: fi?.pointee.fh ?? 0, offset: Int64(offset), length: Int64(length), mode: mode,
                context: context)
            fuse_reply_err(req, 0)
        }
    }

    static func release(_ req: OpaquePointer?, _ ino: fuse_ino_t, _ fi: FileInfo?) {
        guard let req else { return }
        SessionContext.from(request: req).fileSystem.release(
            inode: inode(ino), handle: fi?.pointee.fh ?? 0, flags: OpenFlags(rawValue: fi?.pointee.flags ?? 0))
        fuse_reply_err(req, 0)
    }

    // MARK: Directories

    static func opendir(_ req: OpaquePointer?, _ ino: fuse_ino_t, _ fi: FileInfo?) {
        handle(req, .opendir) { req, session, context throws(Errno) in
            guard let fi else { throw .invalid }
            let reply = try session.fileSystem.openDirectory(
                inode: inode(ino), flags: OpenFlags(rawValue: fi.pointee.flags), context: context)
            apply(reply, to: fi)
            if fuse_reply_open(req, fi) != 0 {
                session.fileSystem.releaseDirectory(inode: inode(ino), handle: reply.handle)
            }
        }
    }

    static func readdir(_ req: OpaquePointer?, _ ino: fuse_ino_t, _ size: Int, _ off: off_t, _ fi: FileInfo?) {
        handle(req, .readdir) { req, session, context throws(Errno) in
            let capacity = max(size, 0)
            let base = UnsafeMutableRawPointer.allocate(byteCount: max(capacity, 1), alignment: 8)
            defer { base.deallocate() }
            var buffer = DirectoryBuffer(request: req, base: base, capacity: capacity)
            try session.fileSystem.readDirectory(
                inode: inode(ino), handle: fi?.pointee.fh ?? 0, offset: Int64(off), into: &buffer, context: context)
            fuse_reply_buf(req, base.assumingMemoryBound(to: CChar.self), buffer.used)
        }
    }

    static func readdirplus(_ req: OpaquePointer?, _ ino: fuse_ino_t, _ size: Int, _ off: off_t, _ fi: FileInfo?) {
        handle(req, .readdirplus) { req, session, context throws(Errno) in
            let capacity = max(size, 0)
            let base = UnsafeMutableRawPointer.allocate(byteCount: max(capacity, 1), alignment: 8)
            defer { base.deallocate() }
            var buffer = DirectoryPlusBuffer(request: req, base: base, capacity: capacity)
            do throws(Errno) {
                try session.fileSystem.readDirectoryPlus(
                    inode: inode(ino), handle: fi?.pointee.fh ?? 0, offset: Int64(off), into: &buffer,
                    context: context)
            } catch {
                // Entries added before the error took lookup counts the kernel never sees.
                for counted in buffer.counted { session.fileSystem.forget(inode: counted, lookups: 1) }
                throw error
            }
            if fuse_reply_buf(req, base.assumingMemoryBound(to: CChar.self), buffer.used) != 0 {
                for counted in buffer.counted { session.fileSystem.forget(inode: counted, lookups: 1) }
            }
        }
    }

    static func releasedir(_ req: OpaquePointer?, _ ino: fuse_ino_t, _ fi: FileInfo?) {
        guard let req else { return }
        SessionContext.from(request: req).fileSystem.releaseDirectory(inode: inode(ino), handle: fi?.pointee.fh ?? 0)
        fuse_reply_err(req, 0)
    }

    static func fsyncdir(_ req: OpaquePointer?, _ ino: fuse_ino_t, _ datasync: Int32, _ fi: FileInfo?) {
        handle(req, .fsyncdir) { req, session, context throws(Errno) in
            try session.fileSystem.synchronizeDirectory(
                inode: inode(ino), handle: fi?.pointee.fh ?? 0, dataOnly: datasync != 0, context: context)
            fuse_reply_err(req, 0)
        }
    }
}
