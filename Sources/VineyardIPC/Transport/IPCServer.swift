// vineyard-csi: VineyardIPC
// IPCServer.swift: a Unix-socket listener that serves each connection on its own thread.

import Glibc
import POSIXCore
import VineyardObjects
import Synchronization

/// What a server does with the requests of one connection; one instance per connection, used
/// by that connection's thread only.
public protocol IPCConnectionHandler: AnyObject {
    /// Answers one request (never ``IPCRequest/exit``, which the server handles). A reply's
    /// ``IPCReply/descriptors`` are sent after its frame.
    ///
    /// - Parameters:
    ///   - request: the parsed request.
    ///   - channel: the connection, for requests that wait and must notice a hang-up.
    /// - Returns: the reply, or the error frame to send instead.
    func handle(_ request: IPCRequest, channel: IPCChannel) -> Result<IPCReply, IPCError>

    /// The connection ended (cleanly, by error, or by server stop): release everything it held.
    func connectionClosed()
}

/// A vineyard IPC server on a Unix socket.
///
/// One accept thread and one thread per connection (connections block between requests, so
/// they must not occupy Swift concurrency's pool). Malformed frames get an `Invalid` error
/// reply and the connection continues; an oversized length prefix or a socket failure closes
/// the connection; nothing a client sends can stop the server. ``stop()`` closes the listener
/// and every connection, and returns once every connection's resources are released.
public final class IPCServer: Sendable {
    /// Stack of the accept and connection threads: connections parse JSON recursively (at most
    /// 512 levels deep).
    static let connectionStackSize = 1 << 20

    public struct Configuration: Sendable {
        /// Where the socket is bound (an existing file there is replaced).
        public var socketPath: String
        /// Socket file mode: pods run as arbitrary users, so everyone may connect by default.
        public var socketMode: mode_t
        /// Connections beyond this are closed at once.
        public var maximumConnections: Int
        public var maximumFrameLength: Int

        public init(
            socketPath: String, socketMode: mode_t = 0o777, maximumConnections: Int = 1024,
            maximumFrameLength: Int = IPCFrame.defaultMaximumLength
        ) {
            self.socketPath = socketPath
            self.socketMode = socketMode
            self.maximumConnections = maximumConnections
            self.maximumFrameLength = maximumFrameLength
        }
    }

    private struct State {
        var channels: [ObjectIdentifier: IPCChannel] = [:]
        var acceptorRunning = true
        var stopping = false
    }

    public let configuration: Configuration
    private let listener: Int32
    private let makeHandler: @Sendable (IPCChannel) -> any IPCConnectionHandler
    private let state = Mutex(State())

    /// Binds the socket and starts accepting.
    ///
    /// - Parameters:
    ///   - configuration: where and how.
    ///   - makeHandler: creates the handler of a new connection (called on its thread).
    /// - Throws: ``IPCSocketError`` when the socket cannot be bound or the thread not started.
    public init(
        configuration: Configuration, makeHandler: @escaping @Sendable (IPCChannel) -> any IPCConnectionHandler
    ) throws(IPCSocketError) {
        self.configuration = configuration
        self.makeHandler = makeHandler
        self.listener = try Socket.listen(path: configuration.socketPath, mode: configuration.socketMode, backlog: 128)
        do throws(Errno) {
            try DetachedThread.start(name: "ipc accept", stackSize: Self.connectionStackSize) { [self] in acceptLoop() }
        } catch {
            Socket.close(listener)
            throw IPCSocketError("pthread_create", errno: error)
        }
    }

    /// Connections currently open.
    public var connectionCount: Int { state.withLock { $0.channels.count } }

    /// Stops accepting, closes every connection, waits until their resources are released,
    /// and removes the socket file. Idempotent.
    ///
    /// - Parameter timeoutSeconds: how long to wait for connection threads.
    /// - Returns: whether everything stopped in time.
    @discardableResult
    public func stop(timeoutSeconds: Double = 10) -> Bool {
        let channels = state.withLock { state -> [IPCChannel] in
            let first = !state.stopping
            state.stopping = true
            return first ? Array(state.channels.values) : []
        }
        Socket.shutdown(listener)  // accept(2) then fails with EINVAL and the loop ends
        for channel in channels { channel.shutdown() }
        let deadline = Self.now() + timeoutSeconds
        while Self.now() < deadline {
            if state.withLock({ !$0.acceptorRunning && $0.channels.isEmpty }) { break }
            usleep(2_000)
        }
        // Remove the file only if it is still ours (a newer server may have replaced it).
        _ = Glibc.unlink(configuration.socketPath)
        return state.withLock { !$0.acceptorRunning && $0.channels.isEmpty }
    }

    private static func now() -> Double {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return Double(time.tv_sec) + Double(time.tv_nsec) / 1e9
    }

    // MARK: - Threads

    private func acceptLoop() {
        defer {
            Socket.close(listener)
            state.withLock { $0.acceptorRunning = false }
        }
        while true {
            let fd: Int32
            do throws(IPCSocketError) {
                fd = try Socket.accept(listener)
            } catch {
                switch error.errno {
                case .connectionAborted, .protocolError: continue  // that client gave up; keep serving
                case .tooManyOpenFiles, .tooManyOpenFilesInSystem, .noBufferSpace, .noMemory:
                    usleep(50_000)  // out of descriptors: back off instead of spinning
                    continue
                default:
                    return  // the listener was shut down by stop()
                }
            }
            let channel = IPCChannel(descriptor: fd, maximumFrameLength: configuration.maximumFrameLength)
            let admitted = state.withLock { state -> Bool in
                guard !state.stopping, state.channels.count < configuration.maximumConnections else { return false }
                state.channels[ObjectIdentifier(channel)] = channel
                return true
            }
            guard admitted else {
                channel.close()
                continue
            }
            do throws(Errno) {
                try DetachedThread.start(name: "ipc connection", stackSize: Self.connectionStackSize) { [self] in
                    serve(channel)
                }
            } catch {
                state.withLock { _ = $0.channels.removeValue(forKey: ObjectIdentifier(channel)) }
                channel.close()
            }
        }
    }

    private func serve(_ channel: IPCChannel) {
        let handler = makeHandler(channel)
        let observer = IPCServerObservation.observer
        observer?.connectionOpened()
        defer {
            observer?.connectionClosed()
            handler.connectionClosed()
            state.withLock { _ = $0.channels.removeValue(forKey: ObjectIdentifier(channel)) }
            channel.close()
        }
        if state.withLock({ $0.stopping }) { return }
        while true {
            let body: [UInt8]
            do throws(IPCChannelError) {
                guard let received = try channel.receiveBody() else { return }
                body = received
            } catch {
                if case .frameTooLong(let length, let limit) = error {
                    // Tell the client why before dropping it; the stream cannot be resynchronized.
                    try? channel.send(IPCError(.invalid, "message of \(length) bytes exceeds the limit of \(limit)").json)
                }
                return
            }
            let start = ContinuousClock.now
            let request: IPCRequest?
            let reply: Result<IPCReply, IPCError>
            do throws(IPCError) {
                let parsed = try IPCRequest(json: try IPCFrame.decode(body: body))
                if parsed == .exit { return }
                request = parsed
                reply = handler.handle(parsed, channel: channel)
            } catch {
                request = nil
                reply = .failure(error)
            }
            defer {
                var failed = false
                if case .failure = reply { failed = true }
                observer?.requestServed(request, failed: failed, duration: .now - start)
            }
            // Relayed descriptors are copies owned by the reply: closed once sent (the client
            // then has its own), or when sending fails.
            let relayed: [Int32]
            if case .success(.forwarded(_, let received)) = reply { relayed = received } else { relayed = [] }
            defer { for descriptor in relayed { Glibc.close(descriptor) } }
            do throws(IPCSocketError) {
                switch reply {
                case .success(let reply):
                    try channel.send(reply.json)
                    for descriptor in reply.descriptors { try channel.sendDescriptor(descriptor) }
                case .failure(let error):
                    try channel.send(error.json)
                }
            } catch {
                return
            }
        }
    }
}
