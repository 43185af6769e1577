import CSIDriver
import Glibc
import POSIXCore

/// Puts the embedded stores' directory on a tmpfs of the driver's own that backs files with
/// transparent huge pages (`huge=within_size`).
///
/// A store's arena is a file in that directory, mapped by the driver and by every vineyard
/// client. On a plain tmpfs (`/dev/shm` has `huge=never`) each 4 KiB page is allocated,
/// faulted and pinned on its own; with 2 MiB pages FUSE copies and vineyard clients touch
/// 512 times fewer pages. The store already advises huge pages on its mapping; the tmpfs
/// mount is what lets the kernel honour that.
///
/// The mount is made on the directory itself, so in a DaemonSet it needs `Bidirectional`
/// propagation on that hostPath: the tmpfs then lives in the host's mount table and outlives
/// a restart of the driver's container, like the stores' files do. A restarted driver finds
/// its tmpfs there and uses it as it is.
public enum HugePageStoreDirectory {
    /// What ``prepare(at:)`` found or did.
    public enum Outcome: Equatable, Sendable {
        /// The directory already was a tmpfs with huge pages (`options` are its mount options).
        case alreadyMounted(options: String)
        /// A tmpfs of our own was mounted on the (empty) directory.
        case mounted
        /// The directory was our own tmpfs without huge pages; it was remounted with them.
        case remounted
    }

    /// Why the directory cannot get huge pages.
    public struct Failure: Error, CustomStringConvertible, Sendable {
        public let description: String
    }

    /// The tmpfs `huge=` values that back files with huge pages.
    static let hugeModes: Set<String> = ["always", "within_size", "advise"]

    /// Makes `path` a tmpfs with huge pages: keeps one that is, remounts a tmpfs mounted
    /// exactly there, or mounts one on an empty directory. Refuses a directory holding files on
    /// another file system: mounting over them would hide the stores they are.
    public static func prepare(at path: String) throws(Failure) -> Outcome {
        do {
            try syscall { mkdir(path, 0o700) }
        } catch .exists {
            // kept from an earlier start
        } catch {
            throw Failure(description: "cannot create the store directory \(path): \(error)")
        }
        var directory = path
        while directory.count > 1 && directory.hasSuffix("/") { directory.removeLast() }
        if let mount = LinuxMounter().mount(at: directory), mount.fileSystemType == "tmpfs" {
            let huge = mount.superOptions.first { $0.hasPrefix("huge=") }.map { String($0.dropFirst(5)) }
            if let huge, hugeModes.contains(huge) {
                return .alreadyMounted(options: mount.superOptions.joined(separator: ","))
            }
            // A tmpfs mounted on the store directory itself is ours (never the host's /dev/shm,
            // whose mount point is its parent): its huge page mode can change in place.
            do {
                try syscall { Glibc.mount("vineyard-csi-stores", path, "tmpfs", UInt(MS_REMOUNT | MS_NOSUID | MS_NODEV), "huge=within_size") }
            } catch {
                throw Failure(description: "cannot remount the store tmpfs at \(path) with huge=within_size: \(error)")
            }
            return .remounted
        }
        let entries = try contents(of: path)
        guard entries.isEmpty else {
            throw Failure(
                description: "the store directory \(path) holds \(entries.sorted().prefix(3).joined(separator: ", "))"
                    + "\(entries.count > 3 ? ", …" : ""): a tmpfs mounted over it would hide those stores; move them away "
                    + "or run without --store-huge-pages")
        }
        // size=100%: the stores' own capacities are the limit, not tmpfs's default of half the memory.
        do {
            try syscall { Glibc.mount("vineyard-csi-stores", path, "tmpfs", UInt(MS_NOSUID | MS_NODEV), "mode=0700,size=100%,huge=within_size") }
        } catch {
            throw Failure(description: "cannot mount a tmpfs with huge pages on \(path): \(error)")
        }
        return .mounted
    }

    /// Whether the kernel lets tmpfs mounts use huge pages at all: not when sysfs says `deny`,
    /// nor when transparent huge pages are not built in.
    public static var kernelAllowsHugeTmpfs: Bool {
        guard let text = try? FileIO.readAll(atPath: "/sys/kernel/mm/transparent_hugepage/shmem_enabled"), !text.isEmpty
        else { return false }
        return !String(decoding: text, as: UTF8.self).contains("[deny]")
    }

    private static func contents(of path: String) throws(Failure) -> [String] {
        do {
            return try FileIO.directoryEntries(atPath: path)
        } catch {
            throw Failure(description: "cannot read the store directory \(path): \(error)")
        }
    }
}
