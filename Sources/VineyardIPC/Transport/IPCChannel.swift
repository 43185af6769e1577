// vineyard-csi: VineyardIPC
// IPCChannel.swift: one connected vineyard socket: frames in, frames and descriptors out.

import Glibc
import POSIXCore
import VineyardObjects
import Synchronization

/// Why a channel could not deliver or receive a frame.
public enum IPCChannelError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The socket failed (including a peer that closed mid-frame).
    case socket(IPCSocketError)
    /// The peer announced a frame longer than the channel accepts. The stream cannot be
    /// resynchronized, so the connection must be closed.
    case frameTooLong(length: UInt64, limit: Int)

    public var description: String {
        switch self {
        case .socket(let error): return "\(error)"
        case .frameTooLong(let length, let limit): return "a \(length)-byte message exceeds the \(limit)-byte limit"
        }
    }
}

/// A connected Unix socket speaking vineyard's framing (see ``IPCFrame``), used by the server
/// for each accepted connection and usable by a client.
///
/// One thread uses a channel at a time (the protocol is strictly request/reply); ``shutdown()``
/// may be called from any thread to wake a blocked read.
public final class IPCChannel: Sendable {
    /// The socket; -1 once closed.
    private let descriptor: Atomic<Int32>
    /// The largest frame ``receive()`` accepts.
    public let maximumFrameLength: Int

    init(descriptor: Int32, maximumFrameLength: Int) {
        self.descriptor = Atomic(descriptor)
        self.maximumFrameLength = maximumFrameLength
    }

    deinit {
        close()
    }

    /// Connects to a vineyard socket.
    ///
    /// - Throws: ``IPCSocketError`` when the socket cannot be reached.
    public static func connect(path: String, maximumFrameLength: Int = IPCFrame.defaultMaximumLength)
        throws(IPCSocketError) -> IPCChannel
    {
        IPCChannel(descriptor: try Socket.connect(path: path), maximumFrameLength: maximumFrameLength)
    }

    var fileDescriptor: Int32 { descriptor.load(ordering: .acquiring) }

    /// The process at the other end; pid 0 when it is not visible from this PID namespace.
    public var peer: (pid: Int32, uid: UInt32, gid: UInt32) { Socket.peerCredentials(fileDescriptor) }

    // MARK: - Frames

    /// Reads one frame's body. Returns `nil` when the peer closed the connection cleanly
    /// between frames.
    public func receiveBody() throws(IPCChannelError) -> [UInt8]? {
        let fd = fileDescriptor
        var header = [UInt8](repeating: 0, count: IPCFrame.headerSize)
        do throws(IPCSocketError) {
            let open = try header.withTypedMutableBytes { (raw) throws(IPCSocketError) in try Socket.readExactly(fd, raw) }
            guard open else { return nil }
        } catch {
            throw .socket(error)
        }
        let length = IPCFrame.length(header: header)
        guard length <= UInt64(maximumFrameLength) else {
            throw .frameTooLong(length: length, limit: maximumFrameLength)
        }
        var body = [UInt8](repeating: 0, count: Int(length))
        do throws(IPCSocketError) {
            let complete = try body.withTypedMutableBytes { (raw) throws(IPCSocketError) in
                raw.isEmpty ? true : try Socket.readExactly(fd, raw)
            }
            guard complete else { throw IPCSocketError("recv", errno: .connectionReset) }
        } catch {
            throw .socket(error)
        }
        return body
    }

    /// Sends one frame.
    public func send(_ json: JSONValue) throws(IPCSocketError) {
        let frame = IPCFrame.encode(json)
        let fd = fileDescriptor
        try frame.withTypedBytes { (raw) throws(IPCSocketError) in try Socket.writeAll(fd, raw) }
    }

    /// Sends raw bytes (tests use it to produce malformed frames).
    public func sendRaw(_ bytes: [UInt8]) throws(IPCSocketError) {
        let fd = fileDescriptor
        try bytes.withTypedBytes { (raw) throws(IPCSocketError) in try Socket.writeAll(fd, raw) }
    }

    /// Sends a request and reads its reply: the reply's JSON, or the ``IPCError`` it carries.
    ///
    /// - Throws: ``IPCChannelError`` when the connection fails or closes.
    public func call(_ request: IPCRequest) throws(IPCChannelError) -> Result<JSONValue, IPCError> {
        try call(json: request.json)
    }

    /// ``call(_:)`` with a request frame's JSON as given (a client adjusting a field the typed
    /// request fixes, such as `sync_remote`).
    public func call(json request: JSONValue) throws(IPCChannelError) -> Result<JSONValue, IPCError> {
        do throws(IPCSocketError) {
            try send(request)
        } catch {
            throw .socket(error)
        }
        guard let body = try receiveBody() else { throw .socket(IPCSocketError("recv", errno: .connectionReset)) }
        let json: JSONValue
        do throws(IPCError) {
            json = try IPCFrame.decode(body: body)
        } catch {
            return .failure(error)
        }
        if let error = IPCError(reply: json) { return .failure(error) }
        return .success(json)
    }

    // MARK: - Descriptors

    /// Sends a descriptor after a reply (1 data byte + `SCM_RIGHTS`).
    public func sendDescriptor(_ fd: Int32) throws(IPCSocketError) {
        try Socket.sendDescriptor(fileDescriptor, fd)
    }

    /// Receives a descriptor sent with ``sendDescriptor(_:)``; the caller owns it.
    public func receiveDescriptor() throws(IPCSocketError) -> Int32 {
        try Socket.receiveDescriptor(fileDescriptor)
    }

    // MARK: - Lifetime

    /// Whether the peer has hung up, waiting at most `timeoutMilliseconds`.
    public func peerHungUp(timeoutMilliseconds: Int32) -> Bool {
        Socket.peerHungUp(fileDescriptor, timeoutMilliseconds: timeoutMilliseconds)
    }

    /// Wakes a blocked read (it returns end-of-stream) without releasing the descriptor, so
    /// another thread may call it while the owner is reading.
    public func shutdown() {
        let fd = fileDescriptor
        if fd >= 0 { Socket.shutdown(fd) }
    }

    /// Closes the socket. Only the thread that uses the channel should call it.
    public func close() {
        let fd = descriptor.exchange(-1, ordering: .acquiringAndReleasing)
        if fd >= 0 { Socket.close(fd) }
    }
}

extension Array where Element == UInt8 {
    /// `withUnsafeBytes` with a typed error (the standard one only rethrows `any Error`).
    fileprivate func withTypedBytes<R, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
        let result: Result<R, E> = withUnsafeBytes { raw in
            do throws(E) { return .success(try body(raw)) } catch { return .failure(error) }
        }
        return try result.get()
    }

    /// `withUnsafeMutableBytes` with a typed error.
    fileprivate mutating func withTypedMutableBytes<R, E: Error>(
        _ body: (UnsafeMutableRawBufferPointer) throws(E) -> R
    ) throws(E) -> R {
        let result: Result<R, E> = withUnsafeMutableBytes { raw in
            do throws(E) { return .success(try body(raw)) } catch { return .failure(error) }
        }
        return try result.get()
    }
}
