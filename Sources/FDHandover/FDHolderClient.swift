//
// vineyard-csi: FDHandover
//
// FDHolderClient.swift: the node plugin's side of the descriptor holder.

import Glibc
import POSIXCore
import Synchronization

/// One descriptor the holder keeps, with the data stored beside it.
public struct HeldDescriptor: Sendable {
    public var key: String
    public var data: [UInt8]
    /// A descriptor of this process (close-on-exec), owned by the caller.
    public var fileDescriptor: Int32
}

/// A connection to the descriptor holder (`vineyard-csi-fdholder`).
///
/// The holder keeps a duplicate of every descriptor it was given until told to drop it, so
/// a FUSE connection outlives the process serving it. While this connection stays open the
/// holder considers this process the server; when it closes (exit, crash), the holder sends
/// `FUSE_NOTIFY_RESEND` on every descriptor so requests the process read but never answered
/// go back to the kernel's queue for the next server.
///
/// Calls are serialised by an internal lock; any thread may use it.
public final class FDHolderClient: Sendable {
    public let socketPath: String
    private let connection: Mutex<FDPassingSocket>

    /// Connects to the holder listening at `socketPath`.
    public init(socketPath: String) throws(FDHandoverError) {
        self.socketPath = socketPath
        self.connection = Mutex(try FDPassingSocket.connect(to: socketPath))
    }

    /// Stores `fileDescriptor` (duplicated by the kernel; the caller keeps its own) under `key`,
    /// replacing an earlier entry of that key.
    public func put(key: String, data: [UInt8], fileDescriptor: Int32) throws(FDHandoverError) {
        try connection.withLock { (socket: inout FDPassingSocket) throws(FDHandoverError) in
            try socket.send(FDHolderMessage.put(key: key, data: data).encoded, descriptors: [fileDescriptor])
            try Self.expectOK(socket, "put \(key)")
        }
    }

    /// Closes the holder's descriptor of `key` (unknown keys are fine).
    public func drop(key: String) throws(FDHandoverError) {
        try connection.withLock { (socket: inout FDPassingSocket) throws(FDHandoverError) in
            try socket.send(FDHolderMessage.drop(key: key).encoded)
            try Self.expectOK(socket, "drop \(key)")
        }
    }

    /// Whether the holder is still at the other end (it has not closed the connection).
    public var isConnected: Bool {
        connection.withLock { (socket: inout FDPassingSocket) -> Bool in
            var entry = pollfd(fd: socket.fileDescriptor, events: Int16(POLLIN), revents: 0)
            guard poll(&entry, 1, 0) >= 0 else { return false }
            return entry.revents & Int16(POLLIN | POLLHUP | POLLERR) == 0
        }
    }

    /// Asks the holder to send `FUSE_NOTIFY_RESEND` on every descriptor it holds.
    public func resendAll() throws(FDHandoverError) {
        try connection.withLock { (socket: inout FDPassingSocket) throws(FDHandoverError) in
            try socket.send(FDHolderMessage.resend.encoded)
            try Self.expectOK(socket, "resend")
        }
    }

    /// Every entry, each with a fresh descriptor of this process.
    public func list() throws(FDHandoverError) -> [HeldDescriptor] {
        try connection.withLock { (socket: inout FDPassingSocket) throws(FDHandoverError) -> [HeldDescriptor] in
            try socket.send(FDHolderMessage.list.encoded)
            var entries: [HeldDescriptor] = []
            while true {
                guard let (bytes, descriptors) = try socket.receive() else {
                    for entry in entries { close(entry.fileDescriptor) }
                    throw FDHandoverError("list: the holder closed the connection", errno: .connectionReset)
                }
                switch FDHolderMessage(decoding: bytes) {
                case .item(let key, let data)? where descriptors.count == 1:
                    entries.append(HeldDescriptor(key: key, data: data, fileDescriptor: descriptors[0]))
                case .end?:
                    for fd in descriptors { close(fd) }
                    return entries
                case .failure(let message)?:
                    for fd in descriptors { close(fd) }
                    for entry in entries { close(entry.fileDescriptor) }
                    throw FDHandoverError("list: \(message)")
                default:
                    for fd in descriptors { close(fd) }
                    for entry in entries { close(entry.fileDescriptor) }
                    throw FDHandoverError("list: unexpected answer", errno: .protocolError)
                }
            }
        }
    }

    private static func expectOK(_ socket: borrowing FDPassingSocket, _ what: String) throws(FDHandoverError) {
        guard let (bytes, descriptors) = try socket.receive() else {
            throw FDHandoverError("\(what): the holder closed the connection", errno: .connectionReset)
        }
        for fd in descriptors { close(fd) }
        switch FDHolderMessage(decoding: bytes) {
        case .ok?: return
        case .failure(let message)?: throw FDHandoverError("\(what): \(message)")
        default: throw FDHandoverError("\(what): unexpected answer", errno: .protocolError)
        }
    }

}
