//
// vineyard-csi: FUSEKit
//
// Unmounting and aborting without going through a session's descriptor.

import Glibc
import POSIXCore

enum Unmounter {
    private static let mntDetach: Int32 = 2  // MNT_DETACH
    private static let umountNoFollow: Int32 = 8  // UMOUNT_NOFOLLOW

    /// Lazily detaches the mount at `path`. Not mounted is success. With `expecting`, only the
    /// mount with that device is detached (nothing if another mount is on top now).
    static func detach(_ path: String, expecting device: MountTable.Device? = nil) throws(FUSEError) {
        if let device {
            guard MountTable.visibleMount(at: path)?.device == device else { return }
        }
        do {
            try syscall { umount2(path, mntDetach | umountNoFollow) }
        } catch .invalid, .noEntry {
            return  // not a mount point (any more)
        } catch .notPermitted {
            try fusermount(["-u", "-z", "-q", path])
        } catch {
            throw FUSEError(code: .unmount, errno: error, message: "umount2(\(path), MNT_DETACH)")
        }
    }

    /// Runs `fusermount3` (setuid helper) for unprivileged unmounts.
    private static func fusermount(_ arguments: [String]) throws(FUSEError) {
        let candidates = ["/usr/bin/fusermount3", "/bin/fusermount3", "/usr/local/bin/fusermount3"]
        guard let tool = candidates.first(where: { Glibc.access($0, X_OK) == 0 }) else {
            throw FUSEError(code: .unmount, errno: .notPermitted, message: "not privileged and fusermount3 not found")
        }
        let argv = [tool] + arguments
        var cArgs: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) }
        cArgs.append(nil)
        defer { for arg in cArgs { free(arg) } }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, tool, nil, nil, cArgs, environ)
        guard spawned == 0 else {
            throw FUSEError(code: .unmount, errno: Errno(rawValue: spawned), message: "cannot run \(tool)")
        }
        var status: Int32 = 0
        do {
            try syscall { waitpid(pid, &status, 0) } } catch {
            throw FUSEError(code: .unmount, errno: error, message: "cannot wait for \(tool)")
        }
        // WIFEXITED && WEXITSTATUS == 0
        guard status & 0x7f == 0, (status >> 8) & 0xff == 0 else {
            throw FUSEError(code: .unmount, message: "\(argv.joined(separator: " ")) failed (status \(status))")
        }
    }

    /// Writes to `/sys/fs/fuse/connections/<minor>/abort` for the FUSE mount at `mountPoint`.
    static func abortConnection(mountPoint: String, device known: MountTable.Device? = nil) throws(FUSEError) {
        guard let device = known ?? MountTable.visibleMount(at: mountPoint)?.device else {
            throw FUSEError(code: .unmount, errno: .noEntry, message: "\(mountPoint) is not a mount point")
        }
        let controlRoot = "/sys/fs/fuse/connections"
        let abortPath = "\(controlRoot)/\(device.minor)/abort"
        if Glibc.access(abortPath, F_OK) != 0 {
            // fusectl is not mounted everywhere (containers); mount it (needs CAP_SYS_ADMIN).
            do {
                try syscall { mount("fusectl", controlRoot, "fusectl", 0, nil) }
            } catch .busy {
                // mounted already
            } catch {
                throw FUSEError(code: .unmount, errno: error, message: "cannot mount fusectl at \(controlRoot)")
            }
        }
        do { try FileIO.write("1", toExistingFile: abortPath) } catch {
            throw FUSEError(code: .unmount, errno: error, message: "cannot write \(abortPath)")
        }
    }
}
