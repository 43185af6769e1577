//
// vineyard-csi: VolumeFS
//
// VolumeFileSystem+DirectoryLinks.swift: a directory's link count, as tmpfs keeps it.

import FUSEKit
import StoreBackend
import Synchronization

/// How many subdirectories a directory had when they were last counted.
struct CountedSubdirectories {
    var count: Int
    let countedAt: ContinuousClock.Instant
}

extension VolumeFileSystem {
    /// How long a count stands for a directory's subdirectories. The kernel refreshes a
    /// directory's attributes after every entry created in it, so without a count kept here a
    /// loop of `mkdir`s would list the parent once per `mkdir`; mkdir, rmdir and rename through
    /// this mount keep the count current, and what vineyard clients or other mounts add shows
    /// within this time, as the kernel's attribute cache does.
    static let subdirectoryCountLifetime = Duration.seconds(1)
    /// Counts kept before expired ones are dropped.
    static let subdirectoryCountsKept = 4096

    /// A directory's `st_nlink`: its name, its `.`, and the `..` of each subdirectory, as
    /// tmpfs and ext4 count (programs and conformance suites check it after mkdir, rmdir and
    /// rename). Where listing a directory costs a walk of every name below it (a backend
    /// without ``BackendCapabilities/localMemory``), 2.
    func directoryLinkCount(path: String) -> UInt32 {
        guard backend.capabilities.contains(.localMemory) else { return 2 }
        let now = ContinuousClock.now
        if let counted = subdirectoryCounts.withLock({ $0[path] }), counted.countedAt.duration(to: now) < Self.subdirectoryCountLifetime {
            return UInt32(clamping: 2 + counted.count)
        }
        guard let count = countSubdirectories(path) else { return 2 }
        remember(count, of: path, at: now)
        return UInt32(clamping: 2 + count)
    }

    private func remember(_ count: Int, of path: String, at now: ContinuousClock.Instant) {
        subdirectoryCounts.withLock { counts in
            if counts.count >= Self.subdirectoryCountsKept {
                counts = counts.filter { $0.value.countedAt.duration(to: now) < Self.subdirectoryCountLifetime }
                // All of them fresh (thousands of directories made within the lifetime): start over
                // rather than filter again at every insertion.
                if counts.count >= Self.subdirectoryCountsKept / 2 { counts.removeAll(keepingCapacity: true) }
            }
            counts[path] = CountedSubdirectories(count: count, countedAt: now)
        }
    }

    /// Subdirectories of the directory at `path`, as its listing shows them; `nil` when the
    /// backend cannot list it now.
    private func countSubdirectories(_ path: String) -> Int? {
        let prefix = naming.directoryName(path)
        var count = 0
        var cursor: ListedName?
        while true {
            guard let page = try? backend.listDirectory(prefix, after: cursor, limit: Self.listingPageSize) else { return nil }
            for case .directory(let name) in page where !name.isEmpty && name.utf8.count <= Self.maximumComponentLength {
                count += 1
            }
            if page.count < Self.listingPageSize { return count }
            cursor = page.last
        }
    }

    /// A directory was made at `path` through this mount: its parent has one more, and it has none.
    func subdirectoryMade(at path: String) {
        adjustParent(of: path, by: 1)
        remember(0, of: path, at: .now)
    }

    /// The directory at `path` was removed, or renamed away, through this mount.
    func subdirectoryRemoved(at path: String) {
        adjustParent(of: path, by: -1)
        subdirectoryCounts.withLock { _ = $0.removeValue(forKey: path) }
    }

    /// A directory was renamed to `path` through this mount, in place of a directory there when
    /// `replacing`. What the directories below it hold is counted again when asked: counts of
    /// their former paths age out within ``subdirectoryCountLifetime``.
    func subdirectoryMoved(to path: String, replacing: Bool) {
        if !replacing { adjustParent(of: path, by: 1) }
        subdirectoryCounts.withLock { _ = $0.removeValue(forKey: path) }
    }

    private func adjustParent(of path: String, by delta: Int) {
        let parent = path.utf8.lastIndex(of: UInt8(ascii: "/")).map { String(path[..<$0]) } ?? ""
        subdirectoryCounts.withLock { counts in
            if var counted = counts[parent] {
                counted.count = max(0, counted.count + delta)
                counts[parent] = counted
            }
        }
    }
}
