//
// vineyard-csi: FUSEKit
//

internal import CFUSE
import Glibc
import POSIXCore
import Synchronization

/// A mounted libfuse low-level session serving one ``FileSystem``.
///
/// ```swift
/// let session = try FUSESession(fileSystem: fs, mountPoint: "/mnt/x", options: MountOptions(fsName: "vineyard"))
/// let thread = Thread { try? session.run() }   // blocks until unmounted
/// thread.start()
/// ...
/// try session.unmount()                        // from any thread; run() then returns
/// ```
///
/// Do not do file I/O on the mount from the serving process except in tests: if the process
/// dies with such files open, exit flushes them through a connection nobody serves any more
/// and hangs until the connection is aborted (``abortConnection()``, or
/// `/sys/fs/fuse/connections/N/abort`).
///
/// Lifecycle: `init` creates the session and mounts; ``run(threads:)`` serves requests on
/// libfuse worker threads until the file system is unmounted (by ``unmount()`` or by anyone
/// else) or the connection is aborted; `deinit` unmounts if still mounted and this session
/// did the mount, then destroys the session (calling ``FileSystem/destroy()`` if INIT happened).
public final class FUSESession: @unchecked Sendable {
    // @unchecked: `handle` is only used through libfuse calls that are thread-safe
    // (fuse_session_exit/fd/notify) or that are serialised by `state`.

    /// The mount point, if known (always for path mounts; optional for descriptor sessions).
    public let mountPoint: String?
    /// The options the session was created with.
    public let options: MountOptions

    private let handle: OpaquePointer
    private let context: Unmanaged<SessionContext>
    /// Whether libfuse mounted (path init) and therefore knows how to unmount.
    private let libfuseMounted: Bool
    /// The mount's device (from /proc/self/mountinfo right after mounting), so that an unmount
    /// never detaches something else mounted at the same path later.
    private let mountDevice: MountTable.Device?
    private let state = Mutex(State())

    private struct State {
        var running = false
        var mounted = true
    }

    // MARK: - Creating

    /// Creates a session and mounts it at `mountPoint` (`fuse_session_mount`; as root this is
    /// `mount(2)`, otherwise libfuse runs `fusermount3`).
    /// - Throws: ``FUSEError`` with code ``FUSEError/Code/sessionCreation`` for rejected options,
    ///   ``FUSEError/Code/mount`` when mounting fails.
    public convenience init(
        fileSystem: some FileSystem, mountPoint: String, options: MountOptions = MountOptions()
    ) throws(FUSEError) {
        var st = stat()
        do { try syscall { stat(mountPoint, &st) } } catch {
            throw FUSEError(code: .mount, errno: error, message: "cannot stat mount point \(mountPoint)")
        }
        guard st.st_mode & S_IFMT == S_IFDIR else {
            throw FUSEError(code: .mount, errno: .notDirectory, message: "mount point \(mountPoint) is not a directory")
        }
        try self.init(fileSystem: fileSystem, target: .path(mountPoint), mountPoint: mountPoint, options: options)
    }

    /// Creates a session on an already open and mounted `/dev/fuse` descriptor (libfuse's
    /// `/dev/fd/N` convention), e.g. from ``FUSEDevice/mount(at:options:)`` or a privileged helper.
    ///
    /// The session takes ownership of `fileDescriptor` and closes it when destroyed; `dup` it
    /// first to keep the connection alive beyond the session. The connection must not have seen
    /// INIT yet (libfuse 3.14 cannot adopt a connection another process already initialised).
    /// Kernel-side mount options (allow_other, ro, ...) are the mounter's; only the negotiated
    /// ones (capabilities, max_write, ...) of `options` apply.
    /// - Parameter mountPoint: where the descriptor is mounted, used by ``unmount()``; `nil` if
    ///   the owner of the mount unmounts it.
    public convenience init(
        fileSystem: some FileSystem, fileDescriptor: Int32, mountPoint: String? = nil,
        options: MountOptions = MountOptions()
    ) throws(FUSEError) {
        guard fileDescriptor >= 0, fcntl(fileDescriptor, F_GETFD) != -1 else {
            throw FUSEError(code: .invalidArgument, errno: .badFileDescriptor, message: "invalid /dev/fuse descriptor")
        }
        try self.init(
            fileSystem: fileSystem, target: .fileDescriptor(fileDescriptor), mountPoint: mountPoint, options: options)
    }

    private enum Target {
        case path(String)
        case fileDescriptor(Int32)
    }

    private init(fileSystem: any FileSystem, target: Target, mountPoint: String?, options: MountOptions) throws(FUSEError) {
        let (session, box) = try SessionFactory.make(fileSystem: fileSystem, options: options)

        let mountArgument: String
        switch target {
        case .path(let path): mountArgument = path
        case .fileDescriptor(let fd): mountArgument = "/dev/fd/\(fd)"
        }
        Glibc.errno = 0
        guard fuse_session_mount(session, mountArgument) == 0 else {
            let error = Errno.current
            fuse_session_destroy(session)
            box.release()
            throw FUSEError(
                code: .mount, errno: error.rawValue == 0 ? nil : error,
                message: "cannot mount \(mountArgument) (see stderr)")
        }
        if options.directIOMappable {
            // Answer INIT here instead of in libfuse's loop, to agree to what libfuse cannot.
            do throws(FUSEError) {
                let device = fuse_session_fd(session)
                let request = try InitNegotiation.readRequest(device)
                let grant = InitNegotiation.offersDirectIOMmap(request)
                box.takeUnretainedValue().grantsDirectIOMmap.store(grant, ordering: .releasing)
                try InitNegotiation.negotiate(session, request: request, device: device, grantDirectIOMmap: grant)
            } catch {
                if case .path = target { fuse_session_unmount(session) }
                fuse_session_destroy(session)
                box.release()
                throw error
            }
        }

        self.handle = session
        self.context = box
        self.mountPoint = mountPoint
        self.options = options
        self.mountDevice = mountPoint.flatMap { MountTable.visibleMount(at: $0)?.device }
        if case .path = target {
            self.libfuseMounted = true
        } else {
            self.libfuseMounted = false
        }
        if let kilobytes = options.readAheadKilobytes, let device = mountDevice {
            let sessionContext = box.takeUnretainedValue()
            sessionContext.afterInitialization.withLock { work in
                work = { try? Self.writeReadAhead(kilobytes: kilobytes, device: device) }
            }
            sessionContext.afterInitializationPending.store(true, ordering: .releasing)
        }
    }

    deinit {
        let stillMounted = state.withLock { $0.mounted }
        if stillMounted && libfuseMounted {
            try? unmountIdle()
        }
        // Calls FileSystem.destroy() if INIT happened, closes the device descriptor.
        fuse_session_destroy(handle)
        context.release()
    }

    // MARK: - Properties

    /// libfuse's version string (`fuse_pkgversion`), e.g. "3.14.0".
    public static var libraryVersion: String {
        String(cString: fuse_pkgversion())
    }

    /// The session's `/dev/fuse` descriptor (`fuse_session_fd`); -1 once unmounted by libfuse.
    /// Owned by the session; `dup` it to hand the connection to another process.
    public var fileDescriptor: Int32 {
        fuse_session_fd(handle)
    }

    /// What INIT negotiated, once the kernel has sent it.
    public var connection: ConnectionInfo? {
        context.takeUnretainedValue().connection.withLock { $0 }
    }

    /// Whether ``run(threads:)`` is currently serving requests.
    public var isRunning: Bool {
        state.withLock { $0.running }
    }

    /// Whether the session still considers itself mounted (no ``unmount()`` yet).
    public var isMounted: Bool {
        state.withLock { $0.mounted }
    }

    // MARK: - Serving

    /// Worker threads when ``run(threads:)`` is not told otherwise (libfuse's default).
    public static let defaultMaximumThreads = 10

    /// Serves requests until the file system is unmounted or the connection aborted.
    ///
    /// Blocks the calling thread (`fuse_session_loop_mt` with clone_fd per ``MountOptions/cloneFD``);
    /// requests are handled on libfuse's worker threads. Call it from a dedicated thread, not
    /// from Swift concurrency's pool.
    /// - Parameter threads: maximum worker threads; `nil` for ``defaultMaximumThreads``.
    /// - Throws: ``FUSEError`` (``FUSEError/Code/alreadyRunning``, ``FUSEError/Code/notMounted``,
    ///   or ``FUSEError/Code/loop`` when libfuse reports an error).
    public func run(threads: Int? = nil) throws(FUSEError) {
        try state.withLock { state throws(FUSEError) in
            guard !state.running else {
                throw FUSEError(code: .alreadyRunning, message: "session is already running")
            }
            guard state.mounted else {
                throw FUSEError(code: .notMounted, message: "session was unmounted")
            }
            state.running = true
        }
        // Idle workers are kept by default: Debian's libfuse 3.14.0 otherwise ends a worker after
        // nearly every request and starts a new one (a clone3, a /dev/fuse open and a clone ioctl
        // per request), which costs more than the request itself.
        let maximumThreads = threads ?? Self.defaultMaximumThreads
        let result = cfuse_session_loop_mt(
            handle, options.cloneFD ? 1 : 0, Int32(clamping: maximumThreads),
            Int32(clamping: options.maxIdleThreads ?? maximumThreads))
        state.withLock { $0.running = false }
        if result < 0 {
            throw FUSEError(code: .loop, errno: Errno(rawValue: -result), message: "fuse_session_loop_mt failed")
        }
    }

    /// Asks the loop to stop (`fuse_session_exit`) without unmounting. The loop notices on its
    /// next request; to make it return now, use ``unmount()`` or ``abortConnection()``.
    public func requestExit() {
        fuse_session_exit(handle)
    }

    /// Unmounts lazily so that ``run(threads:)`` returns. Safe from any thread, idempotent.
    ///
    /// While running: `fuse_session_exit` plus a lazy detach (`umount2(MNT_DETACH)`, or
    /// `fusermount3 -u -z` without privileges); the loop returns as soon as the kernel tears
    /// the connection down, i.e. when the last open file on the mount is closed. When not
    /// running: `fuse_session_unmount` (path sessions) or the detach (descriptor sessions).
    /// - Throws: ``FUSEError`` with code ``FUSEError/Code/unmount`` if the detach failed.
    public func unmount() throws(FUSEError) {
        enum Action { case none, exitAndDetach, libfuseUnmount, detach }
        let action = state.withLock { state -> Action in
            guard state.mounted else { return .none }
            state.mounted = false
            if state.running { return .exitAndDetach }
            return libfuseMounted ? .libfuseUnmount : .detach
        }
        switch action {
        case .none:
            return
        case .libfuseUnmount:
            try unmountIdle()
        case .exitAndDetach:
            fuse_session_exit(handle)
            try detach()
        case .detach:
            try detach()
        }
    }

    /// Unmounts a path session whose loop is not running.
    private func unmountIdle() throws(FUSEError) {
        // Closes the device first (so the unmount cannot wait on us), then unmounts. libfuse
        // skips the unmount when the connection was already aborted; the detach covers that.
        fuse_session_unmount(handle)
        try detach()
    }

    /// Lazily detaches our mount, if it is still the one at the mount point.
    private func detach() throws(FUSEError) {
        guard let mountPoint else { return }
        try Unmounter.detach(mountPoint, expecting: mountDevice)
    }

    /// Aborts the connection (`/sys/fs/fuse/connections/N/abort`): pending and future requests
    /// fail with `ENOTCONN`, and the loop returns even if files are still open. The mount stays
    /// until unmounted (call ``unmount()`` too). Mounts the `fusectl` file system if needed.
    public func abortConnection() throws(FUSEError) {
        guard let mountPoint else {
            throw FUSEError(code: .unmount, message: "abortConnection needs the mount point")
        }
        try Unmounter.abortConnection(mountPoint: mountPoint, device: mountDevice)
        fuse_session_exit(handle)
    }

    // MARK: - Tuning

    /// Sets the mount's read-ahead window (`/sys/class/bdi/<major:minor>/read_ahead_kb`).
    ///
    /// The kernel caps read-ahead at INIT to its default (128 KiB), so sequential reads arrive
    /// as 128 KiB requests; raising it after INIT gives larger reads (up to `max_pages`, 1 MiB).
    /// Call it once the mount answered its first request (INIT happens first). Needs root.
    /// ``MountOptions/readAheadKilobytes`` does this automatically on the first request.
    public func setReadAhead(kilobytes: Int) throws(FUSEError) {
        guard let device = mountDevice ?? mountPoint.flatMap({ MountTable.visibleMount(at: $0)?.device }) else {
            throw FUSEError(code: .invalidArgument, message: "mount device unknown")
        }
        try Self.writeReadAhead(kilobytes: kilobytes, device: device)
    }

    static func writeReadAhead(kilobytes: Int, device: MountTable.Device) throws(FUSEError) {
        let path = "/sys/class/bdi/\(device.major):\(device.minor)/read_ahead_kb"
        do { try FileIO.write("\(max(0, kilobytes))\n", toExistingFile: path) } catch {
            throw FUSEError(code: .invalidArgument, errno: error, message: "cannot write \(path)")
        }
    }

    // MARK: - Kernel cache notifications

    /// Drops the kernel's cached `parent/name` entry (`fuse_lowlevel_notify_inval_entry`).
    /// Call it outside request handlers; a name the kernel does not cache is not an error.
    public func invalidateEntry(parent: InodeNumber, name: String) throws(FUSEError) {
        let result = name.withCString { cName in
            fuse_lowlevel_notify_inval_entry(handle, fuse_ino_t(parent.rawValue), cName, strlen(cName))
        }
        try Self.checkNotify(result, "invalidate entry \(name)")
    }

    /// Drops cached attributes and the data range `offset..<offset+length` of `inode`
    /// (`fuse_lowlevel_notify_inval_inode`; `length` 0 means to the end, a negative offset
    /// invalidates attributes only).
    public func invalidateInode(_ inode: InodeNumber, offset: Int64 = 0, length: Int64 = 0) throws(FUSEError) {
        let result = fuse_lowlevel_notify_inval_inode(handle, fuse_ino_t(inode.rawValue), off_t(offset), off_t(length))
        try Self.checkNotify(result, "invalidate \(inode)")
    }

    /// Tells the kernel `parent/name` (which was `child`) is gone (`fuse_lowlevel_notify_delete`).
    public func notifyDelete(parent: InodeNumber, child: InodeNumber, name: String) throws(FUSEError) {
        let result = name.withCString { cName in
            fuse_lowlevel_notify_delete(
                handle, fuse_ino_t(parent.rawValue), fuse_ino_t(child.rawValue), cName, strlen(cName))
        }
        try Self.checkNotify(result, "delete \(name)")
    }

    private static func checkNotify(_ result: Int32, _ what: String) throws(FUSEError) {
        // -ENOENT: not cached (or not yet initialised); nothing to do.
        guard result != 0, result != -ENOENT else { return }
        throw FUSEError(code: .notify, errno: Errno(rawValue: -result), message: "cannot \(what)")
    }
}
