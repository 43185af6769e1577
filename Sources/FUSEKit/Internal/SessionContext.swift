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
    /// What the session agrees to beyond libfuse (``InitNegotiation/Grants``), and the
    /// connection's descriptor: both set before INIT is processed.
    let grants = Atomic<UInt32>(0)
    let device = Atomic<Int32>(-1)

    /// Records what INIT will agree to on `device`, before libfuse processes it.
    func prepare(grants: InitNegotiation.Grants, device: Int32) {
        self.device.store(device, ordering: .releasing)
        self.grants.store(grants.rawValue, ordering: .releasing)
    }

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
