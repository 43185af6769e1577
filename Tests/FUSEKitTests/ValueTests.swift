//
// vineyard-csi: FUSEKitTests
//
// Tests that need no mount.

@testable import FUSEKit
import Glibc
import Testing

@Suite("Values")
struct ValueTests {
    @Test("an Errno is replied as itself, and anything not positive as EIO")
    func errnoReplies() {
        #expect(Errno.noEntry.replyValue == ENOENT)
        #expect(Errno.textFileBusy.replyValue == ETXTBSY)
        #expect(Errno(rawValue: 0).replyValue == EIO)
        #expect(Errno(rawValue: -5).replyValue == EIO)
    }

    @Test("mount options become fuse_session_new arguments")
    func mountArguments() {
        var options = MountOptions(
            fsName: "vineyard,a\\b", subtype: "vineyard", allowOther: true, defaultPermissions: true, readOnly: true,
            maxRead: 131072, extraOptions: ["noatime"])
        options.debug = true
        #expect(
            options.arguments == [
                "fusekit", "-o", "fsname=vineyard\\,a\\\\b", "-o", "subtype=vineyard", "-o", "allow_other", "-o",
                "default_permissions", "-o", "ro", "-o", "max_read=131072", "-o", "noatime", "-d",
            ])
        #expect(MountOptions().arguments == ["fusekit", "-o", "rw"])
    }

    @Test("capability defaults leave the writeback cache and readdirplus off")
    func capabilities() {
        let defaults = FUSECapabilities.defaults
        #expect(defaults.contains(.asyncRead))
        #expect(defaults.contains(.spliceWrite))
        #expect(defaults.contains(.spliceMove))
        #expect(defaults.contains(.parallelDirectoryOperations))
        #expect(!defaults.contains(.writebackCache))
        #expect(!defaults.contains(.readDirectoryPlus))
        #expect(!defaults.contains(.spliceRead))
        #expect(FUSECapabilities.asyncRead.rawValue == 1)
        #expect(FUSECapabilities.writebackCache.rawValue == 1 << 16)
        #expect(FUSECapabilities([.asyncRead, .spliceMove]).description == "[asyncRead, spliceMove]")
    }

    @Test("file attributes survive the struct stat conversion")
    func statConversion() {
        let attributes = FileAttributes(
            inode: 42, mode: FileType.regular.mode(permissions: 0o4755), linkCount: 3, uid: 7, gid: 8, size: 1025,
            blockSize: 65536, accessTime: Timespec(seconds: 1, nanoseconds: 2),
            modificationTime: Timespec(seconds: 3, nanoseconds: 4), changeTime: Timespec(seconds: 5, nanoseconds: 6))
        #expect(attributes.blocks == 3)
        #expect(attributes.type == .regular)
        #expect(attributes.permissions == 0o4755)
        #expect(FileAttributes(attributes.stat) == attributes)
        for type in FileType.allCases {
            #expect(FileType(mode: type.mode(permissions: 0o644)) == type)
        }
    }

    @Test("open flags expose the access mode")
    func openFlags() {
        #expect(OpenFlags(rawValue: O_RDONLY).accessMode == .readOnly)
        #expect(OpenFlags(rawValue: O_WRONLY | O_TRUNC).accessMode == .writeOnly)
        #expect(OpenFlags(rawValue: O_WRONLY | O_TRUNC).contains(.truncate))
        #expect(OpenFlags(rawValue: O_RDWR).isWritable && OpenFlags(rawValue: O_RDWR).isReadable)
    }
}
