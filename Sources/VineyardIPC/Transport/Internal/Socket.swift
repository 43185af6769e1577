// vineyard-csi: VineyardIPC
// Socket.swift: the Unix-socket system calls of the IPC transport, each naming its operation.

import Glibc
public import POSIXCore

/// A failed socket operation.
public struct IPCSocketError: Error, Hashable, Sendable, CustomStringConvertible {
    public var operation: String
    public var errno: Errno

    public init(_ operation: String, errno: Errno) {
        self.operation = operation
        self.errno = errno
    }

    public var description: String { "\(operation): \(errno)" }
}

/// Thin wrappers over the Unix-socket system calls. Each goes through POSIXCore's `syscall`
/// and throws ``IPCSocketError`` naming the operation; writes never raise `SIGPIPE`
/// (`MSG_NOSIGNAL`), so a client that vanishes mid-reply cannot kill the driver.
enum Socket {
    /// Runs the system call `body`, a failure becoming an ``IPCSocketError`` for `operation`.
    @inline(__always)
    static func check<T: FixedWidthInteger>(_ operation: @autoclosure () -> String, _ body: () -> T)
        throws(IPCSocketError) -> T
    {
        do {
            return try syscall(body)
        } catch {
            throw IPCSocketError(operation(), errno: error)
        }
    }

    /// The longest path `sockaddr_un` holds (without the terminating NUL).
    static let maximumPathLength = MemoryLayout.size(ofValue: sockaddr_un().sun_path) - 1

    /// Calls `body` with a `sockaddr_un` for `path`. Paths too long for `sun_path` are reached
    /// through `/proc/self/fd/<dir>/<name>`, which the kernel resolves like any path.
    static func withAddress<R>(
        _ path: String, _ body: (UnsafePointer<sockaddr>, socklen_t) throws(IPCSocketError) -> R
    ) throws(IPCSocketError) -> R {
        var directoryFD: Int32 = -1
        defer { if directoryFD >= 0 { Glibc.close(directoryFD) } }
        var effective = path
        if path.utf8.count > maximumPathLength {
            let slash = path.lastIndex(of: "/") ?? path.startIndex
            let directory = slash == path.startIndex ? "/" : String(path[..<slash])
            let name = String(path[path.index(after: slash)...])
            directoryFD = try check("open \(directory)") { open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC) }
            effective = "/proc/self/fd/\(directoryFD)/\(name)"
            guard effective.utf8.count <= maximumPathLength else {
                throw IPCSocketError("socket path \(path)", errno: .nameTooLong)
            }
        }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (index, byte) in effective.utf8.enumerated() { raw[index] = byte }
            raw[effective.utf8.count] = 0
        }
        return try withUnsafePointer(to: &address) { (pointer) throws(IPCSocketError) -> R in
            try pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { (address) throws(IPCSocketError) -> R in
                try body(address, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
    }

    static func makeStreamSocket() throws(IPCSocketError) -> Int32 {
        try check("socket") { socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0) }
    }

    /// A listening socket at `path` (a stale socket file there is replaced), mode `mode`.
    static func listen(path: String, mode: mode_t, backlog: Int32) throws(IPCSocketError) -> Int32 {
        let fd = try makeStreamSocket()
        do throws(IPCSocketError) {
            do {
                try syscall { Glibc.unlink(path) }
            } catch .noEntry {
            } catch {
                throw IPCSocketError("unlink \(path)", errno: error)
            }
            _ = try withAddress(path) { (address, length) throws(IPCSocketError) in
                try check("bind \(path)") { bind(fd, address, length) }
            }
            _ = try check("chmod \(path)") { chmod(path, mode) }
            _ = try check("listen \(path)") { Glibc.listen(fd, backlog) }
            return fd
        } catch {
            Glibc.close(fd)
            throw error
        }
    }

    static func connect(path: String) throws(IPCSocketError) -> Int32 {
        let fd = try makeStreamSocket()
        do throws(IPCSocketError) {
            _ = try withAddress(path) { (address, length) throws(IPCSocketError) in
                try check("connect \(path)") { Glibc.connect(fd, address, length) }
            }
            return fd
        } catch {
            Glibc.close(fd)
            throw error
        }
    }

    /// Accepts a connection and marks it close-on-exec. (`accept4` is a GNU extension that
    /// Swift's Glibc module does not declare; the driver does not fork between the two calls.)
    static func accept(_ fd: Int32) throws(IPCSocketError) -> Int32 {
        let connection = try check("accept") { Glibc.accept(fd, nil, nil) }
        _ = fcntl(connection, F_SETFD, FD_CLOEXEC)
        return connection
    }

    /// Reads exactly `buffer.count` bytes. Returns `false` if the peer closed the connection
    /// before the first byte; a close in the middle is an error (`ECONNRESET`).
    static func readExactly(_ fd: Int32, _ buffer: UnsafeMutableRawBufferPointer) throws(IPCSocketError) -> Bool {
        var done = 0
        while done < buffer.count {
            let count = try check("recv") { recv(fd, buffer.baseAddress! + done, buffer.count - done, 0) }
            if count == 0 {
                if done == 0 { return false }
                throw IPCSocketError("recv", errno: .connectionReset)
            }
            done += count
        }
        return true
    }

    static func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) throws(IPCSocketError) {
        var done = 0
        while done < bytes.count {
            done += try check("send") { send(fd, bytes.baseAddress! + done, bytes.count - done, Int32(MSG_NOSIGNAL)) }
        }
    }

    // MARK: - Descriptor passing

    /// `CMSG_ALIGN`: control messages are aligned to `size_t`.
    private static func controlAlign(_ length: Int) -> Int {
        let alignment = MemoryLayout<Int>.size
        return (length + alignment - 1) & ~(alignment - 1)
    }

    /// `CMSG_SPACE(sizeof(int))` and `CMSG_LEN(sizeof(int))`, computed as glibc's macros do.
    private static let headerLength = controlAlign(MemoryLayout<cmsghdr>.size)
    private static let controlSpace = headerLength + controlAlign(MemoryLayout<Int32>.size)
    private static let controlLength = headerLength + MemoryLayout<Int32>.size

    /// Sends one descriptor as vineyard does: one byte of ordinary data plus an `SCM_RIGHTS`
    /// control message carrying exactly one `int`.
    static func sendDescriptor(_ fd: Int32, _ descriptor: Int32, marker: UInt8 = 0x14) throws(IPCSocketError) {
        _ = try withDescriptorMessage(byte: marker) { (message, control) throws(IPCSocketError) -> Int in
            let header = control.bindMemory(to: cmsghdr.self, capacity: 1)
            header.pointee.cmsg_len = controlLength
            header.pointee.cmsg_level = SOL_SOCKET
            header.pointee.cmsg_type = Int32(SCM_RIGHTS)
            (control + headerLength).storeBytes(of: descriptor, as: Int32.self)
            return try check("sendmsg") { sendmsg(fd, &message, Int32(MSG_NOSIGNAL)) }
        }
    }

    /// Receives one byte carrying one descriptor (the client side of ``sendDescriptor(_:_:marker:)``).
    /// The descriptor arrives close-on-exec.
    static func receiveDescriptor(_ fd: Int32) throws(IPCSocketError) -> Int32 {
        let received = try withDescriptorMessage(byte: 0) { (message, control) throws(IPCSocketError) -> Int32? in
            let count = try check("recvmsg") { recvmsg(fd, &message, Int32(MSG_CMSG_CLOEXEC)) }
            let header = control.bindMemory(to: cmsghdr.self, capacity: 1)
            guard count == 1, message.msg_controllen >= controlLength, header.pointee.cmsg_level == SOL_SOCKET,
                header.pointee.cmsg_type == Int32(SCM_RIGHTS)
            else { return nil }
            return (control + headerLength).load(as: Int32.self)
        }
        guard let received else { throw IPCSocketError("recvmsg: no descriptor", errno: .protocolError) }
        return received
    }

    /// A `msghdr` for one data byte and room for one descriptor's control message.
    private static func withDescriptorMessage<R>(
        byte: UInt8, _ body: (inout msghdr, UnsafeMutableRawPointer) throws(IPCSocketError) -> R
    ) throws(IPCSocketError) -> R {
        let data = UnsafeMutablePointer<UInt8>.allocate(capacity: 1)
        data.initialize(to: byte)
        let control = UnsafeMutableRawPointer.allocate(byteCount: controlSpace, alignment: MemoryLayout<cmsghdr>.alignment)
        let vector = UnsafeMutablePointer<iovec>.allocate(capacity: 1)
        defer {
            data.deallocate()
            control.deallocate()
            vector.deallocate()
        }
        control.initializeMemory(as: UInt8.self, repeating: 0, count: controlSpace)
        vector.initialize(to: iovec(iov_base: UnsafeMutableRawPointer(data), iov_len: 1))
        var message = msghdr()
        message.msg_iov = vector
        message.msg_iovlen = 1
        message.msg_control = control
        message.msg_controllen = controlSpace
        return try body(&message, control)
    }

    // MARK: - Peer

    /// The process at the other end (`SO_PEERCRED`); pid 0 when it is in a PID namespace this
    /// process cannot see.
    static func peerCredentials(_ fd: Int32) -> (pid: Int32, uid: UInt32, gid: UInt32) {
        // `struct ucred` (GNU-only in the headers): pid_t pid, uid_t uid, gid_t gid, 4 bytes each.
        var credentials = [Int32](repeating: 0, count: 3)
        var length = socklen_t(3 * MemoryLayout<Int32>.size)
        let result = credentials.withUnsafeMutableBytes { raw in
            getsockopt(fd, SOL_SOCKET, SO_PEERCRED, raw.baseAddress, &length)
        }
        guard result == 0, length == socklen_t(3 * MemoryLayout<Int32>.size) else { return (0, 0, 0) }
        return (credentials[0], UInt32(bitPattern: credentials[1]), UInt32(bitPattern: credentials[2]))
    }

    static func shutdown(_ fd: Int32) {
        _ = Glibc.shutdown(fd, Int32(SHUT_RDWR))
    }

    static func close(_ fd: Int32) {
        _ = Glibc.close(fd)
    }

    /// Whether the peer hung up, without consuming data (for requests that wait).
    static func peerHungUp(_ fd: Int32, timeoutMilliseconds: Int32) -> Bool {
        var entry = pollfd(fd: fd, events: pollReadHangUp | Int16(POLLHUP), revents: 0)
        let result = poll(&entry, 1, timeoutMilliseconds)
        return result > 0 && entry.revents & (pollReadHangUp | Int16(POLLHUP) | Int16(POLLERR) | Int16(POLLNVAL)) != 0
    }

    /// `POLLRDHUP` (Linux, GNU-only in the headers): the peer shut down its writing side.
    private static let pollReadHangUp: Int16 = 0x2000
}
