//
// vineyard-csi: FUSEKit
//

internal import CFUSE
import Glibc

/// OPEN and CREATE replies written byte by byte, for what `struct fuse_file_info` of libfuse
/// 3.14 cannot carry: `FOPEN_PASSTHROUGH` and the backing id, which took the place of
/// `fuse_open_out`'s padding. `fuse_reply_buf` sends them as they are.
enum OpenReplyEncoding {
    /// `FOPEN_*` bits of `fuse_open_out.open_flags`.
    static let directIO: UInt32 = 1 << 0
    static let keepCache: UInt32 = 1 << 1
    static let nonSeekable: UInt32 = 1 << 2
    static let cacheDirectory: UInt32 = 1 << 3
    static let noFlush: UInt32 = 1 << 5
    static let parallelDirectWrites: UInt32 = 1 << 6
    static let passthrough: UInt32 = 1 << 7

    /// `struct fuse_open_out`: fh, open_flags, backing_id (16 bytes).
    static func openOut(_ reply: OpenReply, backing: BackingID) -> [UInt8] {
        var flags = passthrough
        // keep_cache is left out: the kernel fails a passthrough open that also keeps the cache.
        if reply.directIO { flags |= directIO }
        if reply.nonSeekable { flags |= nonSeekable }
        if reply.noFlush { flags |= noFlush }
        if reply.parallelDirectWrites { flags |= parallelDirectWrites }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(16)
        append(&bytes, reply.handle)
        append(&bytes, flags)
        append(&bytes, UInt32(bitPattern: backing.rawValue))
        return bytes
    }

    /// `struct fuse_entry_out` (128 bytes) as libfuse fills it from a `fuse_entry_param`.
    static func entryOut(_ entry: EntryReply) -> [UInt8] {
        let st = entry.attributes.stat
        var bytes: [UInt8] = []
        bytes.reserveCapacity(128)
        append(&bytes, UInt64(st.st_ino))
        append(&bytes, entry.generation)
        append(&bytes, seconds(entry.entryTimeout))
        append(&bytes, seconds(entry.attributeTimeout))
        append(&bytes, nanoseconds(entry.entryTimeout))
        append(&bytes, nanoseconds(entry.attributeTimeout))
        // struct fuse_attr
        append(&bytes, UInt64(st.st_ino))
        append(&bytes, UInt64(st.st_size))
        append(&bytes, UInt64(st.st_blocks))
        append(&bytes, UInt64(bitPattern: Int64(st.st_atim.tv_sec)))
        append(&bytes, UInt64(bitPattern: Int64(st.st_mtim.tv_sec)))
        append(&bytes, UInt64(bitPattern: Int64(st.st_ctim.tv_sec)))
        append(&bytes, UInt32(truncatingIfNeeded: st.st_atim.tv_nsec))
        append(&bytes, UInt32(truncatingIfNeeded: st.st_mtim.tv_nsec))
        append(&bytes, UInt32(truncatingIfNeeded: st.st_ctim.tv_nsec))
        append(&bytes, UInt32(st.st_mode))
        append(&bytes, UInt32(truncatingIfNeeded: st.st_nlink))
        append(&bytes, UInt32(st.st_uid))
        append(&bytes, UInt32(st.st_gid))
        append(&bytes, UInt32(truncatingIfNeeded: st.st_rdev))
        append(&bytes, UInt32(truncatingIfNeeded: st.st_blksize))
        append(&bytes, UInt32(0))  // flags
        return bytes
    }

    /// Sends `bytes` as the reply to `request`; non-zero when it could not be delivered.
    static func send(_ request: OpaquePointer?, _ bytes: [UInt8]) -> Int32 {
        bytes.withUnsafeBytes { raw in
            fuse_reply_buf(request, raw.baseAddress?.assumingMemoryBound(to: CChar.self), raw.count)
        }
    }

    private static func seconds(_ timeout: Double) -> UInt64 {
        guard timeout > 0 else { return 0 }
        return timeout >= Double(UInt64.max) ? UInt64.max : UInt64(timeout)
    }

    private static func nanoseconds(_ timeout: Double) -> UInt32 {
        guard timeout > 0, timeout < Double(UInt64.max) else { return 0 }
        return UInt32(min(999_999_999, (timeout - timeout.rounded(.down)) * 1e9))
    }

    private static func append<T: FixedWidthInteger>(_ bytes: inout [UInt8], _ value: T) {
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }
}
