//
// vineyard-csi: FUSEKit
//

internal import CFUSE
import Synchronization

/// The object behind libfuse's `userdata` pointer: retained once when the session is created
/// and released once after `fuse_session_destroy`, so it outlives every callback.
final class SessionContext: Sendable {
    let fileSystem: any FileSystem
    let options: MountOptions
    let connection = Mutex<ConnectionInfo?>(nil)
    /// Work to do on the first request after INIT (the kernel only sends requests once it has
    /// processed the INIT reply, which resets the read-ahead window).
    let afterInitialization = Mutex<(@Sendable () -> Void)?>(nil)
    let afterInitializationPending = Atomic<Bool>(false)
    /// Set before INIT is processed when the session will agree to `FUSE_DIRECT_IO_ALLOW_MMAP`.
    let grantsDirectIOMmap = Atomic<Bool>(false)

    init(fileSystem: any FileSystem, options: MountOptions) {
        self.fileSystem = fileSystem
        self.options = options
    }

    /// Runs the after-INIT work once; cheap (one relaxed load) on every later request.
    @inline(__always)
    func runAfterInitializationIfNeeded() {
        guard afterInitializationPending.load(ordering: .relaxed) else { return }
        guard afterInitializationPending.exchange(false, ordering: .acquiring) else { return }
        if let work = afterInitialization.withLock({ work in defer { work = nil }; return work }) { work() }
    }

    @inline(__always)
    static func from(userdata: UnsafeMutableRawPointer) -> SessionContext {
        Unmanaged<SessionContext>.fromOpaque(userdata).takeUnretainedValue()
    }

    @inline(__always)
    static func from(request: OpaquePointer) -> SessionContext {
        // libfuse hands back exactly the pointer given to fuse_session_new, never NULL.
        from(userdata: fuse_req_userdata(request)!)
    }
}

extension RequestContext {
    init(request: OpaquePointer) {
        guard let ctx = fuse_req_ctx(request)?.pointee else {
            self.init()
            return
        }
        self.init(uid: UInt32(ctx.uid), gid: UInt32(ctx.gid), pid: Int32(ctx.pid), umask: UInt32(ctx.umask))
    }
}
