//
// vineyard-csi: VolumeFSTests
//
// Real programs against a mount: cp -r, tar, python (pickle, numpy save/load and memmap).

import FUSEKit
import Foundation
import Glibc
import SharedMemoryStore
import Testing
import VolumeFS

@Suite("Programs", .serialized, .enabled(if: TestEnvironment.canMount, "needs /dev/fuse and root"))
struct ProgramTests {
    /// A small tree with nested directories, empty and 1 MiB+ files, odd modes and a link.
    func makeTree(at root: String) throws {
        var random = SeededGenerator(seed: 7)
        #expect(Sys.mkdir(root + "/src") == 0)
        #expect(Sys.mkdir(root + "/src/nested") == 0)
        #expect(Sys.mkdir(root + "/src/nested/deeper", 0o700) == 0)
        try Sys.writeFile(root + "/src/empty", [])
        try Sys.writeFile(root + "/src/small.txt", Array("hello\n".utf8), mode: 0o600)
        try Sys.writeFile(root + "/src/nested/big.bin", Sys.randomBytes((1 << 20) + 4321, using: &random))
        try Sys.writeFile(root + "/src/nested/deeper/exec.sh", Array("#!/bin/sh\necho hi\n".utf8), mode: 0o755)
        #expect(symlink("nested/big.bin", root + "/src/link") == 0)
    }

    @Test("cp -a and tar round trips are identical (diff -r, modes, times, links)")
    func copyAndArchive() throws {
        try withVolume { _, mount in
            let scratch = try ScratchDirectory()
            defer { scratch.remove() }
            try makeTree(at: scratch.path)

            let copy = try Sys.run("/bin/cp", ["-a", scratch.url("src"), mount.url("copied")])
            #expect(copy.status == 0, "\(copy.errorText)")
            let diff = try Sys.run(
                "/usr/bin/diff", ["-r", "--no-dereference", scratch.url("src"), mount.url("copied")])
            #expect(diff.status == 0, "\(diff.text)\(diff.errorText)")
            let original = try Sys.status(scratch.url("src/nested/deeper/exec.sh"))
            let copied = try Sys.status(mount.url("copied/nested/deeper/exec.sh"))
            #expect(copied.st_mode == original.st_mode)
            #expect(copied.st_mtim.tv_sec == original.st_mtim.tv_sec)
            #expect(try Sys.status(mount.url("copied/nested/deeper")).st_mode == S_IFDIR | 0o700)

            // Archive from the mount, extract back into it, compare with the source.
            let archive = scratch.url("tree.tar")
            let create = try Sys.run("/bin/tar", ["-C", mount.url("copied"), "-cf", archive, "."])
            #expect(create.status == 0, "\(create.errorText)")
            #expect(Sys.mkdir(mount.url("extracted")) == 0)
            let extract = try Sys.run("/bin/tar", ["-C", mount.url("extracted"), "-xpf", archive])
            #expect(extract.status == 0, "\(extract.errorText)")
            let again = try Sys.run(
                "/usr/bin/diff", ["-r", "--no-dereference", scratch.url("src"), mount.url("extracted")])
            #expect(again.status == 0, "\(again.text)\(again.errorText)")
            #expect(try Sys.status(mount.url("extracted/small.txt")).st_mode == S_IFREG | 0o600)

            // mv of a directory within the volume.
            let move = try Sys.run("/bin/mv", [mount.url("extracted"), mount.url("copied/moved")])
            #expect(move.status == 0, "\(move.errorText)")
            let third = try Sys.run(
                "/usr/bin/diff", ["-r", "--no-dereference", scratch.url("src"), mount.url("copied/moved")])
            #expect(third.status == 0, "\(third.text)\(third.errorText)")
        }
    }

    @Test("python pickle round trip, written and read by separate processes")
    func pickle() throws {
        try withVolume { _, mount in
            let write = try Sys.run(
                "/usr/bin/python3",
                [
                    "-c",
                    """
                    import pickle, sys
                    data = {"ints": list(range(100000)), "text": "vineyard" * 1000, "nested": {"a": (1, 2.5, None)}}
                    with open(sys.argv[1], "wb") as f:
                        pickle.dump(data, f)
                    """,
                    mount.url("data.pkl"),
                ])
            #expect(write.status == 0, "\(write.errorText)")
            let read = try Sys.run(
                "/usr/bin/python3",
                [
                    "-c",
                    """
                    import pickle, sys
                    with open(sys.argv[1], "rb") as f:
                        data = pickle.load(f)
                    assert data["ints"] == list(range(100000))
                    assert data["text"] == "vineyard" * 1000
                    assert data["nested"] == {"a": (1, 2.5, None)}
                    print("ok")
                    """,
                    mount.url("data.pkl"),
                ])
            #expect(read.status == 0, "\(read.errorText)")
            #expect(read.text == "ok\n")
        }
    }

    @Test("numpy.save / numpy.load, and np.load(mmap_mode='r'), through the mount")
    func numpy() throws {
        guard let python = TestEnvironment.numpyPython else {
            print("skipping the numpy test: no python3 with numpy (/usr/bin/python3 or python3 on PATH)")
            return
        }
        try withVolumes(["np", "np"]) { _, mounts in
            let save = try Sys.run(
                python,
                [
                    "-c",
                    """
                    import numpy as np, sys
                    a = np.arange(3_000_000, dtype=np.float64).reshape(1000, 3000) * 0.5
                    np.save(sys.argv[1], a)
                    b = np.load(sys.argv[1])
                    assert (a == b).all()
                    """,
                    mounts[0].url("array.npy"),
                ])
            #expect(save.status == 0, "\(save.errorText)")
            let load = try Sys.run(
                python,
                [
                    "-c",
                    """
                    import numpy as np, sys
                    m = np.load(sys.argv[1], mmap_mode="r")
                    assert isinstance(m, np.memmap)
                    assert m.shape == (1000, 3000)
                    assert m[999, 2999] == (3_000_000 - 1) * 0.5
                    assert (np.asarray(m) == np.arange(3_000_000, dtype=np.float64).reshape(1000, 3000) * 0.5).all()
                    mm = np.memmap(sys.argv[1], dtype=np.uint8, mode="r")
                    assert mm.shape[0] == 3_000_000 * 8 + 128
                    print("ok")
                    """,
                    mounts[1].url("array.npy"),
                ])
            #expect(load.status == 0, "\(load.errorText)")
            #expect(load.text == "ok\n")
        }
    }
}
