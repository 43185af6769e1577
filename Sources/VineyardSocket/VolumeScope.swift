// vineyard-csi: VineyardSocket
// VolumeScope.swift: which part of a shared store one socket exposes, and how names map.

import VineyardIPC
import SharedMemoryStore

/// The slice of a store that one socket serves: the objects and names of one volume.
///
/// Volumes of a vineyard cluster share one store. A client connected through a volume's
/// socket sees only
/// - names under ``namePrefix`` (`"<volumeID>/"`), which is exactly what the volume's file
///   system shows as paths, and
/// - objects whose metadata carries ``ownerKey`` = ``volumeID`` (every object created through
///   the socket or the file system of the volume is stamped so).
///
/// **Names.** A relative name `a/b` is the store name `"<volumeID>/a/b"`, i.e. the file `a/b`
/// in the volume. An absolute name — what `vineyard.csi.write(value, "/vineyard/x")` sends,
/// the in-container path of the file — is first made relative to the mount of the volume
/// that contains it in the client's view (see ``ClientMounts``), so it names the file the
/// user wrote: `x` for a volume mounted at `/vineyard`. An absolute name under no known mount
/// point loses its leading slashes.
public struct VolumeScope: Sendable, Hashable {
    /// The volume.
    public var volumeID: String
    /// `"<volumeID>/"`: every name of the volume starts with it.
    public var namePrefix: String
    /// The metadata field naming the volume that owns an object.
    public var ownerKey: String
    /// The `source` the volume's FUSE mounts show in `/proc/<pid>/mountinfo`, used to find
    /// where a client sees the volume.
    public var mountSource: String
    /// Mount points assumed for clients whose mounts cannot be read (a pod whose processes
    /// are in a PID namespace the driver cannot see).
    public var fallbackMountPoints: [String]
    /// Volume paths the socket never lists or binds (the socket's own placeholder).
    public var reservedPaths: Set<String>
    /// Type names of the file system's own bookkeeping objects (directory markers, links),
    /// which vineyard clients never see in listings.
    public var internalTypenamePrefix: String

    public init(
        volumeID: String, namePrefix: String, ownerKey: String, mountSource: String,
        fallbackMountPoints: [String] = ["/vineyard"], reservedPaths: Set<String> = [],
        internalTypenamePrefix: String = "vineyard-csi::"
    ) {
        self.volumeID = volumeID
        self.namePrefix = namePrefix
        self.ownerKey = ownerKey
        self.mountSource = mountSource
        self.fallbackMountPoints = fallbackMountPoints
        self.reservedPaths = reservedPaths
        self.internalTypenamePrefix = internalTypenamePrefix
    }

    // MARK: - Objects

    /// Whether the volume owns an object.
    public func owns(_ meta: ObjectMeta) -> Bool {
        meta.fields[ownerKey]?.stringValue == volumeID
    }

    /// Marks an object as the volume's.
    public func stamp(_ meta: inout ObjectMeta) {
        meta.fields[ownerKey] = .string(volumeID)
    }

    /// Whether an object is bookkeeping of the file system rather than a vineyard object.
    public func isInternal(_ meta: ObjectMeta) -> Bool {
        meta.typename.hasPrefix(internalTypenamePrefix)
    }

    // MARK: - Names

    /// The volume path a client's name stands for, or `nil` for names the socket refuses
    /// (empty, reserved, or directory-like with a trailing slash).
    ///
    /// - Parameters:
    ///   - name: the name as the client sent it.
    ///   - mounts: where the client sees the volume (mount point and the volume path it shows).
    public func path(forClientName name: String, mounts: [ClientMounts.Mount]) -> String? {
        var path = name
        if name.hasPrefix("/") {
            path = Self.relativize(name, mounts: mounts)
                ?? Self.relativize(name, mounts: fallbackMountPoints.map { ClientMounts.Mount(mountPoint: $0, root: "") })
                ?? String(name.drop { $0 == "/" })
        }
        guard !path.isEmpty, !path.hasSuffix("/"), !reservedPaths.contains(path) else { return nil }
        return path
    }

    /// The store name of a volume path.
    public func storeName(forPath path: String) -> String {
        namePrefix + path
    }

    /// The volume path of a store name, or `nil` when the name is not one a client may see
    /// (another volume's, a directory marker, a reserved path).
    public func path(forStoreName storeName: String) -> String? {
        guard storeName.hasPrefix(namePrefix) else { return nil }
        let path = String(storeName.utf8.dropFirst(namePrefix.utf8.count))!
        guard !path.isEmpty, !path.hasSuffix("/"), !reservedPaths.contains(path) else { return nil }
        return path
    }

    /// `name` relative to the deepest mount point that contains it, prefixed by the volume
    /// path that mount shows.
    private static func relativize(_ name: String, mounts: [ClientMounts.Mount]) -> String? {
        var best: (length: Int, path: String)?
        for mount in mounts {
            let point = mount.mountPoint.hasSuffix("/") ? String(mount.mountPoint.dropLast()) : mount.mountPoint
            guard name.hasPrefix(point + "/"), point.utf8.count >= (best?.length ?? -1) else { continue }
            let rest = String(name.utf8.dropFirst(point.utf8.count + 1))!.drop { $0 == "/" }
            let path = mount.root.isEmpty ? String(rest) : mount.root + "/" + rest
            best = (point.utf8.count, path)
        }
        return best?.path
    }
}
