//
// vineyard-csi: FUSEKit
//

internal import CFUSE
import Glibc
import POSIXCore
import Synchronization

/// A libfuse low-level session on a `/dev/fuse` descriptor whose connection can be handed to
/// another process and served on from there, without the kernel noticing.
///
/// ## INIT
/// The kernel sends `FUSE_INIT` once per mount, and libfuse 3.14 answers `EIO` to every other
/// request until it has processed an INIT. So this session owns INIT:
/// - **Fresh** (`resuming: nil`, a descriptor just mounted, e.g. by ``FUSEDevice/mount(at:options:)``):
///   the session reads the INIT request off the descriptor itself, keeps its bytes in
///   ``initRecord``, and hands them to libfuse (`fuse_session_process_buf`), which answers the
///   kernel as usual.
/// - **Resumed** (`resuming: record` of an earlier session on the same connection): libfuse
///   processes the recorded INIT request once more, with the recorded agreement as options,
///   while its descriptor is a pipe (`fuse_session_mount` with `/dev/fd/N` of the pipe); the
///   reply goes into the pipe and is thrown away. Then the session is pointed at the real
///   descriptor. libfuse's state (capabilities, buffer sizes) is then the first session's, and
///   the kernel sees no INIT at all.
///
/// ## Serving
/// ``run(threads:)`` runs its own worker threads instead of `fuse_session_loop_mt`: every
/// worker reads the one shared descriptor (no `clone_fd`: a cloned descriptor dies with its
/// process, and the kernel then fails the requests queued on it with `ECONNABORTED`, whereas
/// requests read from the shared descriptor can be resent). ``stop(timeout:)`` stops reading
/// new requests and waits for the ones being processed (workers blocked in `read(2)` are woken
/// with `SIGUSR2`, whose handler does nothing); the mount stays.
///
/// ## Taking over
/// After a takeover call ``requestResend()``: requests the previous process read but never
/// answered (it was killed) are queued again (`FUSE_NOTIFY_RESEND`, Linux 6.9+).
///
/// Do not do file I/O on the mount from the serving process except in tests.
public final class HandoverSession: @unchecked Sendable {
    // @unchecked: `handle` is used through thread-safe libfuse calls; mutable state is in `state`.

    public let mountPoint: String
    /// How the connection was initialised; give it to the next process with the descriptor.
    public let initRecord: FUSEInitRecord
    /// Whether this session resumed a connection initialised by another.
    public let resumed: Bool

    private let handle: OpaquePointer
    private let context: Unmanaged<SessionContext>
    private let mountDevice: MountTable.Device?
    private let state = Mutex(State())

    private struct State {
        var workers: [pthread_t] = []
        var running = false
        var stopping = false
        var mounted = true
        var handedOver = false
        var ended = false
    }

    /// Requests being processed right now.
    private let inFlight = Atomic<Int>(0)

    /// Fault injection for tests of takeover: requests with this opcode (environment variable
    /// `FUSEKIT_FAULT_UNANSWERED_OPCODE`, e.g. 15 for READ) are read and never answered, as by
    /// a server killed in the middle of them.
    static let unansweredOpcode: UInt32? = getenv("FUSEKIT_FAULT_UNANSWERED_OPCODE").flatMap { UInt32(String(cString: $0)) }

    /// Workers a session runs unless told otherwise.
    public static let defaultThreads = 8

    // MARK: - Creating

    /// Creates a session on `fileDescriptor` (taken over: closed with the session unless handed
    /// over), mounted at `mountPoint`.
    ///
    /// - Parameters:
    ///   - resuming: the ``initRecord`` of the session that served this connection before, or
    ///     `nil` for a connection that has not seen INIT yet (the INIT request is read now).
    /// - Throws: ``FUSEError`` (``FUSEError/Code/sessionCreation`` when libfuse rejects the
    ///   options or the INIT, ``FUSEError/Code/invalidArgument`` for a bad descriptor or
    ///   record).
    public init(
        fileSystem: some FileSystem, fileDescriptor: Int32, mountPoint: String, options: MountOptions = MountOptions(),
        resuming record: FUSEInitRecord? = nil
    ) throws(FUSEError) {
        guard fileDescriptor >= 0, fcntl(fileDescriptor, F_GETFD) != -1 else {
            throw FUSEError(code: .invalidArgument, errno: .badFileDescriptor, message: "invalid /dev/fuse descriptor")
        }
        if let record, !record.isInitRequest {
            throw FUSEError(code: .invalidArgument, message: "the recorded INIT request is malformed")
        }
        let effective = record.map { $0.resumeOptions(options) } ?? options
        let (session, box) = try SessionFactory.make(fileSystem: fileSystem, options: effective)

        let request: [UInt8]
        do throws(FUSEError) {
            if let record {
                request = record.request
                box.takeUnretainedValue().grantsDirectIOMmap.store(record.directIOMappable ?? false, ordering: .releasing)
                try InitNegotiation.replay(session, request: request, device: fileDescriptor)
            } else {
                request = try InitNegotiation.readRequest(fileDescriptor)
                let grant = options.directIOMappable && InitNegotiation.offersDirectIOMmap(request)
                box.takeUnretainedValue().grantsDirectIOMmap.store(grant, ordering: .releasing)
                try InitNegotiation.negotiate(
                    session, request: request, device: fileDescriptor, grantDirectIOMmap: grant)
            }
        } catch {
            Self.destroyKeepingDescriptor(session)
            box.release()
            throw error
        }
        let context = box.takeUnretainedValue()
        guard let connection = context.connection.withLock({ $0 }), fuse_session_exited(session) == 0 else {
            Self.destroyKeepingDescriptor(session)
            box.release()
            throw FUSEError(code: .sessionCreation, message: "libfuse refused the INIT negotiation (see stderr)")
        }
        self.handle = session
        self.context = box
        self.mountPoint = mountPoint
        self.resumed = record != nil
        self.initRecord = FUSEInitRecord(request: request, connection: connection, maxRead: effective.maxRead ?? 0)
        self.mountDevice = MountTable.visibleMount(at: mountPoint)?.device
        if record == nil, let kilobytes = options.readAheadKilobytes, let device = mountDevice {
            try? FUSESession.writeReadAhead(kilobytes: kilobytes, device: device)
        }
        Self.installWakeHandler()
    }

    deinit {
        let handedOver = state.withLock { $0.handedOver }
        if handedOver {
            // The connection lives on in another process: no DESTROY for the file system, and
            // the descriptor stays open until this process exits.
            return
        }
        fuse_session_destroy(handle)
        context.release()
    }

    /// Destroys a session that failed to start without closing the caller's descriptor:
    /// `fuse_session_destroy` closes the session's descriptor, so point it at /dev/null first.
    private static func destroyKeepingDescriptor(_ session: OpaquePointer) {
        let placeholder = open("/dev/null", O_RDWR | O_CLOEXEC)
        if placeholder >= 0 && fuse_session_mount(session, "/dev/fd/\(placeholder)") != 0 { close(placeholder) }
        fuse_session_destroy(session)
    }

    // MARK: - Properties

    /// The session's `/dev/fuse` descriptor.
    public var fileDescriptor: Int32 {
        fuse_session_fd(handle)
    }

    /// What the (possibly replayed) INIT negotiated.
    public var connection: ConnectionInfo? {
        context.takeUnretainedValue().connection.withLock { $0 }
    }

    /// Whether workers are serving requests.
    public var isRunning: Bool {
        state.withLock { $0.running && !$0.ended }
    }

    /// Whether the session still considers itself mounted (no ``unmount()`` yet).
    public var isMounted: Bool {
        state.withLock { $0.mounted }
    }

    // MARK: - Serving

    private final class WorkerContext {
        let session: HandoverSession
        init(session: HandoverSession) {
            self.session = session
        }
    }

    /// Serves requests on `threads` workers until the connection ends (unmounted, aborted) or
    /// ``stop(timeout:)``. Blocks the calling thread, which is one of the workers.
    public func run(threads: Int? = nil) throws(FUSEError) {
        let count = max(1, threads ?? Self.defaultThreads)
        try state.withLock { state throws(FUSEError) in
            guard !state.running else { throw FUSEError(code: .alreadyRunning, message: "session is already running") }
            guard state.mounted, !state.stopping else {
                throw FUSEError(code: .notMounted, message: "session was unmounted or stopped")
            }
            state.running = true
        }
        var spawned: [pthread_t] = []
        for _ in 1..<count {
            let box = Unmanaged.passRetained(WorkerContext(session: self))
            var thread = pthread_t()
            let result = pthread_create(&thread, nil, { raw in
                let worker = Unmanaged<WorkerContext>.fromOpaque(raw!).takeRetainedValue()
                worker.session.serve()
                return nil
            }, box.toOpaque())
            if result == 0 {
                spawned.append(thread)
            } else {
                box.release()
            }
        }
        serve()
        for thread in spawned { pthread_join(thread, nil) }
        state.withLock { $0.running = false }
    }

    /// One worker: read a request, process it, until stopped or the connection ends.
    private func serve() {
        var unblocked = sigset_t()
        sigemptyset(&unblocked)
        sigaddset(&unblocked, SIGUSR2)
        pthread_sigmask(SIG_UNBLOCK, &unblocked, nil)
        let registered = pthread_self()
        state.withLock { $0.workers.append(registered) }
        var buffer = fuse_buf()
        defer {
            free(buffer.mem)
            // Out of the list before the thread ends: its id is not signalled after that.
            let me = pthread_self()
            state.withLock { $0.workers.removeAll { pthread_equal($0, me) != 0 } }
        }
        while !state.withLock({ $0.stopping || $0.ended }) {
            let result = fuse_session_receive_buf(handle, &buffer)
            // libfuse returns minus an error number. Interrupted (the wake-up signal), nothing
            // to read, or a request the kernel withdrew: look at the state and read again.
            if result < 0, [.interrupted, .tryAgain, .noEntry].contains(Errno(rawValue: -result)) { continue }
            if result <= 0 {
                if result == 0 || fuse_session_exited(handle) != 0 {
                    state.withLock { $0.ended = true }
                    wakeWorkers()
                    break
                }
                continue
            }
            if let opcode = Self.unansweredOpcode, buffer.size >= 8, let memory = buffer.mem,
                memory.load(fromByteOffset: 4, as: UInt32.self) == opcode
            {
                continue  // fault injection: taken off the connection, never answered
            }
            inFlight.add(1, ordering: .relaxed)
            fuse_session_process_buf(handle, &buffer)
            inFlight.subtract(1, ordering: .releasing)
        }
    }

    /// Interrupts every other worker's `read(2)`. Under the state lock: a worker leaves the list
    /// (under the same lock) before it ends, so every id signalled is a live thread.
    private func wakeWorkers() {
        let me = pthread_self()
        state.withLock { state in
            for thread in state.workers where pthread_equal(thread, me) == 0 {
                pthread_kill(thread, SIGUSR2)
            }
        }
    }

    /// Stops taking requests off the connection and waits until the requests being processed
    /// are answered and every worker returned (up to `timeout` seconds). The mount and the
    /// connection stay; requests that arrive meanwhile wait in the kernel for the next server.
    ///
    /// - Returns: whether every worker stopped in time.
    @discardableResult
    public func stop(timeout: Double = 10) -> Bool {
        let wasRunning = state.withLock { state -> Bool in
            state.stopping = true
            return state.running
        }
        guard wasRunning else { return true }
        let deadline = Self.now() + timeout
        // A worker may be about to enter read(2) when the signal arrives: repeat until it is out.
        while state.withLock({ $0.running }) {
            wakeWorkers()
            if Self.now() > deadline { return false }
            usleep(2_000)
        }
        return true
    }

    /// Stops serving (see ``stop(timeout:)``) and leaves the connection to another process:
    /// the file system gets no DESTROY and this session no longer unmounts or closes anything.
    @discardableResult
    public func handOver(timeout: Double = 10) -> Bool {
        let stopped = stop(timeout: timeout)
        state.withLock { $0.handedOver = true }
        return stopped
    }

    /// Requests being processed right now.
    public var requestsInFlight: Int {
        inFlight.load(ordering: .acquiring)
    }

    /// Asks the kernel to queue again every request read from this connection but not answered
    /// (`FUSE_NOTIFY_RESEND`): those a killed predecessor took with it.
    ///
    /// - Throws: ``FUSEError`` with code ``FUSEError/Code/notify`` (`ENOSYS`-like errors on
    ///   kernels before 6.9).
    public func requestResend() throws(FUSEError) {
        var message = [UInt8](repeating: 0, count: 16)
        message[0] = 16
        message[4] = 7  // FUSE_NOTIFY_RESEND
        do {
            try FileIO.write(fileDescriptor, message)
        } catch {
            throw FUSEError(code: .notify, errno: error, message: "FUSE_NOTIFY_RESEND")
        }
    }

    // MARK: - Unmounting

    /// Lazily unmounts; the workers return once the kernel ends the connection (when the last
    /// file open on the mount is closed). Idempotent.
    public func unmount() throws(FUSEError) {
        let wasMounted = state.withLock { state -> Bool in
            defer { state.mounted = false }
            return state.mounted
        }
        guard wasMounted else { return }
        try Unmounter.detach(mountPoint, expecting: mountDevice)
    }

    /// Aborts the connection (`/sys/fs/fuse/connections/N/abort`): everything pending fails
    /// with `ENOTCONN` and the workers return.
    public func abortConnection() throws(FUSEError) {
        try Unmounter.abortConnection(mountPoint: mountPoint, device: mountDevice)
    }

    // MARK: - Helpers

    private static func now() -> Double {
        var spec = timespec()
        clock_gettime(CLOCK_MONOTONIC, &spec)
        return Double(spec.tv_sec) + Double(spec.tv_nsec) / 1e9
    }

    private static let wakeHandlerInstalled = Mutex(false)

    /// `SIGUSR2` interrupts a worker's `read(2)` (no `SA_RESTART`) and does nothing else.
    private static func installWakeHandler() {
        wakeHandlerInstalled.withLock { installed in
            guard !installed else { return }
            var action = sigaction()
            action.__sigaction_handler.sa_handler = { _ in }
            sigemptyset(&action.sa_mask)
            action.sa_flags = 0
            sigaction(SIGUSR2, &action, nil)
            installed = true
        }
    }

}
