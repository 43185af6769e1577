//
// vineyard-csi: VolumeFS
//
// VolumeFileSystem+Passthrough.swift: sealed files served by the kernel from the object's
// own file (FUSE passthrough), so reads and mappings never reach the driver.

import FUSEKit
import Glibc
import SharedMemoryStore
import StoreBackend
import Synchronization

/// Who serves the bytes of a volume's files.
public enum FileServing: Sendable, Equatable, CustomStringConvertible {
    /// The kernel connection is not set up yet.
    case starting
    /// Read-only opens of sealed files whose bytes have a file of their own are served by the
    /// kernel from that file; everything else by the driver.
    case passthrough
    /// Every read comes to the driver, for the reason given.
    case driver(String)

    public var description: String {
        switch self {
        case .starting: return "starting"
        case .passthrough: return "passthrough"
        case .driver(let reason): return "driver (\(reason))"
        }
    }
}

/// The passthrough state of one file system: the connection's backing files once INIT agreed
/// to them and this process proved it may register them, and where ids are recorded.
final class PassthroughFiles: Sendable {
    private struct State {
        /// The connection's backing files once INIT agreed to passthrough.
        var connection: BackingFiles?
        var serving: FileServing = .starting
        /// New opens may be passthrough opens (``VolumeFileSystem/allowPassthrough(_:)``).
        var allowed = true
        /// When INIT agreed, while registering was not tried yet.
        var agreedAt: ContinuousClock.Instant?
    }

    private let state = Mutex(State())
    /// Backing ids by inode, for a process taking the mount over; `nil` when the mount does
    /// not outlive this process.
    let slots: BackingSlots?

    /// How long after agreeing at INIT the kernel surely took the INIT reply in: until then it
    /// refuses every registration (`EPERM`), so a probe would prove nothing.
    static let initSettling: Duration = .milliseconds(100)

    init(slots: BackingSlots?) {
        self.slots = slots
    }

    /// Where new backing files are registered; `nil` while opens are served by the driver.
    var files: BackingFiles? {
        probeIfAgreed()
        return state.withLock { $0.serving == .passthrough ? $0.connection : nil }
    }

    /// The connection's backing files, to release ids with (also after new opens stopped
    /// using passthrough).
    var connection: BackingFiles? { state.withLock { $0.connection } }

    var serving: FileServing {
        probeIfAgreed()
        return state.withLock { $0.serving }
    }

    /// Takes the connection's backing files (called while INIT is answered).
    func connect(_ connection: ConnectionInfo) {
        state.withLock {
            $0.connection = connection.backingFiles
            if !$0.allowed {
                $0.serving = .driver("turned off")
                $0.agreedAt = nil
            } else if connection.backingFiles == nil {
                $0.serving = .driver("the kernel connection has no FUSE passthrough: Linux < 6.9, or turned off")
                $0.agreedAt = nil
            } else {
                $0.agreedAt = .now
            }
        }
    }

    /// Proves once that this process may register backing files on the connection.
    private func probeIfAgreed() {
        guard let (files, agreedAt) = state.withLock({ state in state.agreedAt.map { (state.connection!, $0) } }) else {
            return
        }
        let settled = agreedAt + Self.initSettling
        if settled > .now {
            let wait = settled - .now
            usleep(UInt32(clamping: wait.components.attoseconds / 1_000_000_000_000))
        }
        let serving: FileServing
        switch files.probe() {
        case .success: serving = .passthrough
        case .failure(let error): serving = .driver("cannot register backing files: \(error) (needs CAP_SYS_ADMIN)")
        }
        state.withLock {
            guard $0.agreedAt == agreedAt else { return }
            $0.agreedAt = nil
            $0.serving = serving
        }
    }

    /// Whether new opens may be passthrough opens (a mount resumed from an earlier process keeps
    /// what its INIT agreed, so the mount options alone do not decide).
    func allow(_ allowed: Bool) {
        state.withLock {
            $0.allowed = allowed
            if !allowed {
                $0.serving = .driver("turned off")
                $0.agreedAt = nil
            }
        }
    }

    /// Stops using passthrough for new opens after registering failed.
    func disable(_ error: Errno) {
        state.withLock {
            $0.serving = .driver("registering a backing file failed: \(error)")
        }
    }
}

extension VolumeFileSystem {
    /// What the volume's backend can do (whether its objects can back passthrough files).
    public var backendCapabilities: BackendCapabilities {
        backend.capabilities
    }

    /// Who serves the bytes of this volume's files (see ``FileServing``).
    public var fileServing: FileServing {
        passthrough.serving
    }

    /// Lets new opens be served by the kernel where it can (the default), or never. Backing
    /// files an earlier process registered are still released after their last open.
    public func allowPassthrough(_ allowed: Bool) {
        passthrough.allow(allowed)
    }

    /// Takes the connection's backing files (at INIT, or when a session is resumed).
    func connectPassthrough(_ connection: ConnectionInfo) {
        passthrough.connect(connection)
    }

    /// Chooses how an open of `node` is answered and takes the inode's backing file for it when
    /// it is a passthrough open. Call it with the node's lock held, after the open's object
    /// is current and before the open is counted.
    func passthroughOpenLocked(_ node: Node, writable: Bool) -> PassthroughOpen? {
        let files = passthrough.files
        guard files != nil || node.file.backing != nil else { return nil }
        let current = node.file.current
        let cachedOpens = node.file.openCount - (node.file.backing?.opens ?? 0)
        let choice = PassthroughChoice.choose(
            backing: node.file.backing, cachedOpens: cachedOpens, writable: writable,
            writing: node.file.writer != nil, current: current?.id,
            currentHasFile: backend.capabilities.contains(.ownFiles) && (current?.size ?? 0) > 0)
        switch choice {
        case .cached:
            return nil
        case .share(let id, let direct):
            node.file.backing!.opens += 1
            passthrough.slots?.set(node.inode, node.file.backing)
            return PassthroughOpen(id: id, direct: direct)
        case .register:
            guard let current, let files else { return nil }
            // No file of its own (an arena blob, an object rendered as a file), or it is gone:
            // served by the driver.
            guard let fd = try? current.openOwnFile() else { return nil }
            defer { close(fd) }
            let id: BackingID
            do {
                id = try files.register(fd)
            } catch {
                passthrough.disable(error)
                return nil
            }
            node.file.backing = BackingFile(id: id, object: current.id, handle: current, opens: 1)
            passthrough.slots?.set(node.inode, node.file.backing)
            return PassthroughOpen(id: id, direct: false)
        }
    }

    /// Counts a passthrough handle of `node` closed; the inode's backing file is released
    /// after the last. Call it with the node's lock held.
    func passthroughReleaseLocked(_ node: Node, _ file: OpenFile) {
        guard file.passthrough, var backing = node.file.backing else { return }
        backing.opens -= 1
        if backing.opens > 0 {
            node.file.backing = backing
        } else {
            node.file.backing = nil
            // The connection's backing files, even when new opens no longer use them.
            passthrough.connection?.release(backing.id)
        }
        passthrough.slots?.set(node.inode, node.file.backing)
    }

    /// Takes back the backing files an earlier process recorded for inodes restored from
    /// the mount's state (they belong to the kernel connection, which lived on).
    func restoreBackingFiles() {
        guard let slots = passthrough.slots else { return }
        let nodes = table.withLock { table in table.allNodes }
        let byInode = Dictionary(nodes.map { ($0.inode, $0) }, uniquingKeysWith: { first, _ in first })
        for (inode, record) in slots.usedRecords(inodes: byInode.keys) {
            guard let node = byInode[inode], node.kind == .file else { continue }
            node.lock.withLock { _ in
                node.file.backing = BackingFile(
                    id: record.id, object: record.object, handle: (try? backend.openFile(record.object)) ?? nil,
                    opens: record.opens)
            }
        }
    }
}
