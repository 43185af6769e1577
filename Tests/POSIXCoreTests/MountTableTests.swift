//
// vineyard-csi: POSIXCoreTests
//

import Glibc
import POSIXCore
import Testing

@Suite("MountTable")
struct MountTableTests {
    static let sample = """
        22 1 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw
        36 35 98:0 /root /mnt/a\\040b ro,noatime master:1 shared:7 - ext3 /dev/root rw,errors=continue
        40 22 0:55 /vol/sub /var/lib/kubelet/pods/p/x rw,nosuid - fuse.vineyard vineyard:pvc-1 rw,user_id=0
        41 22 0:56 / /no/optional/fields rw - tmpfs tmpfs rw,size=65536k,huge=within_size
        not a mountinfo line
        42 22 0:57 / /short rw - tmpfs
        """

    @Test("each field of a line, optional fields skipped")
    func parsesFields() throws {
        let table = MountTable(parsing: Self.sample)
        #expect(table.entries.map(\.mountPoint) == ["/proc", "/mnt/a b", "/var/lib/kubelet/pods/p/x", "/no/optional/fields"])
        let ext3 = table.entries[1]
        #expect(ext3.mountID == 36 && ext3.parentID == 35)
        #expect(ext3.device == MountTable.Device(major: 98, minor: 0))
        #expect(ext3.root == "/root")
        #expect(ext3.options == ["ro", "noatime"] && ext3.isReadOnly)
        #expect(ext3.fileSystemType == "ext3" && ext3.source == "/dev/root")
        #expect(ext3.superOptions == ["rw", "errors=continue"])
        let fuse = table.entries[2]
        #expect(fuse.root == "/vol/sub" && fuse.source == "vineyard:pvc-1" && !fuse.isReadOnly)
        #expect(table.entries[3].superOptions == ["rw", "size=65536k", "huge=within_size"])
    }

    @Test("the last mount at a point is the visible one")
    func topmost() {
        let table = MountTable(parsing: """
            50 1 0:60 / /m rw - tmpfs first rw
            51 50 0:61 / /m rw - tmpfs second rw
            """)
        #expect(table.topmost(at: "/m")?.source == "second")
        #expect(table.topmost(at: "/other") == nil)
    }

    @Test("octal escapes are undone; anything else is kept")
    func unescapes() {
        #expect(MountTable.unescape("/tmp/a\\040b") == "/tmp/a b")
        #expect(MountTable.unescape("/tmp/tab\\011x\\134") == "/tmp/tab\tx\\")
        #expect(MountTable.unescape("new\\012line") == "new\nline")
        #expect(MountTable.unescape("plain") == "plain")
        #expect(MountTable.unescape("not\\08octal") == "not\\08octal")
        #expect(MountTable.unescape("short\\04") == "short\\04")
    }

    @Test("this process's table and another's")
    func readsTheKernelsTable() throws {
        let own = try MountTable.read()
        #expect(own.entries.contains { $0.mountPoint == "/" })
        #expect(try MountTable.read(process: getpid()).entries.map(\.mountID) == own.entries.map(\.mountID))
        #expect(throws: Errno.noEntry) { try MountTable.read(process: Int32.max) }
        #expect(MountTable.visibleMount(at: "/")?.mountPoint == "/")
    }

    @Test("mount points are compared as the kernel writes them")
    func canonicalMountPoints() {
        #expect(MountTable.canonicalMountPoint("/tmp/../tmp//x/") == "/tmp/x")
        #expect(MountTable.canonicalMountPoint("/") == "/")
    }
}
