//
// vineyard-csi: FDHandover
//
// FDPassingSocket.swift: SOCK_SEQPACKET messages with descriptors attached (SCM_RIGHTS).

import Glibc
import POSIXCore

/// A failed socket operation: what was attempted and, for a failed system call, its error.
public struct FDHandoverError: Error, CustomStringConvertible, Sendable {
    public var operation: String
    public var errno: Errno?

    public init(_ operation: String, errno: Errno? = nil) {
        self.operation = operation
        self.errno = errno
    }

    public var description: String {
        errno.map { "\(operation): \($0)" } ?? operation
    }
}

/// One connected `AF_UNIX` `SOCK_SEQPACKET` socket that sends and receives whole messages with
/// descriptors attached. Not thread-safe: one caller at a time.
public struct FDPassingSocket: ~Copyable {
    public let fileDescriptor: Int32

    /// `struct cmsghdr` on 64-bit Linux: `size_t cmsg_len; int cmsg_level; int cmsg_type;`,
    /// data aligned to `size_t` (the CMSG_* macros are not importable).
    private static let headerSize = 16
    private static let solSocket: Int32 = 1
    private static let scmRights: Int32 = 1
    /// Descriptors accepted in one message.
    public static let maximumDescriptors = 16

    /// Adopts a connected socket (closed when this value goes away).
    public init(adopting fileDescriptor: Int32) {
        self.fileDescriptor = fileDescriptor
    }

    deinit {
        close(fileDescriptor)
    }

    /// Connects to the socket at `path`.
    public static func connect(to path: String) throws(FDHandoverError) -> FDPassingSocket {
        var address = try makeAddress(path)
        let fd: Int32
        do {
            fd = try syscall { Glibc.socket(AF_UNIX, Int32(SOCK_SEQPACKET.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0) }
        } catch {
            throw FDHandoverError("socket", errno: error)
        }
        let connected = FDPassingSocket(adopting: fd)
        do {
            try withUnsafePointer(to: &address) { (pointer) throws(Errno) in
                try pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { (address) throws(Errno) in
                    _ = try syscall { Glibc.connect(fd, address, socklen_t(MemoryLayout<sockaddr_un>.size)) }
                }
            }
        } catch {
            throw FDHandoverError("connect \(path)", errno: error)
        }
        return connected
    }

    /// A `sockaddr_un` for `path` (at most 107 bytes).
    public static func makeAddress(_ path: String) throws(FDHandoverError) -> sockaddr_un {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard !bytes.isEmpty, bytes.count < MemoryLayout.size(ofValue: address.sun_path) else {
            throw FDHandoverError("socket path too long: \(path)", errno: .nameTooLong)
        }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        return address
    }

    /// Sends one message, with `descriptors` attached.
    public func send(_ bytes: [UInt8], descriptors: [Int32] = []) throws(FDHandoverError) {
        precondition(descriptors.count <= Self.maximumDescriptors)
        let controlLength = descriptors.isEmpty ? 0 : Self.headerSize + Self.align(descriptors.count * 4)
        var control = [UInt8](repeating: 0, count: max(controlLength, 1))
        if !descriptors.isEmpty {
            control.withUnsafeMutableBytes { raw in
                raw.storeBytes(of: Self.headerSize + descriptors.count * 4, toByteOffset: 0, as: Int.self)
                raw.storeBytes(of: Self.solSocket, toByteOffset: 8, as: Int32.self)
                raw.storeBytes(of: Self.scmRights, toByteOffset: 12, as: Int32.self)
                for (index, fd) in descriptors.enumerated() {
                    raw.storeBytes(of: fd, toByteOffset: Self.headerSize + index * 4, as: Int32.self)
                }
            }
        }
        var payload = bytes.isEmpty ? [0] : bytes
        let sent = payload.withUnsafeMutableBytes { data in
            control.withUnsafeMutableBytes { controlBytes in
                var vector = iovec(iov_base: data.baseAddress, iov_len: bytes.isEmpty ? 0 : data.count)
                return withUnsafeMutablePointer(to: &vector) { vectorPointer in
                    var header = msghdr()
                    header.msg_iov = vectorPointer
                    header.msg_iovlen = 1
                    if controlLength > 0 {
                        header.msg_control = controlBytes.baseAddress
                        header.msg_controllen = controlLength
                    }
                    return Result { () throws(Errno) in try syscall { sendmsg(fileDescriptor, &header, Int32(MSG_NOSIGNAL)) } }
                }
            }
        }
        if case .failure(let error) = sent { throw FDHandoverError("sendmsg", errno: error) }
    }

    /// Receives one message; `nil` at end of stream. Received descriptors are close-on-exec
    /// and owned by the caller.
    public func receive() throws(FDHandoverError) -> (bytes: [UInt8], descriptors: [Int32])? {
        var buffer = [UInt8](repeating: 0, count: FDHolderMessage.maximumSize)
        let controlLength = Self.headerSize + Self.align(Self.maximumDescriptors * 4)
        var control = [UInt8](repeating: 0, count: controlLength)
        var receivedControl = 0
        var flags: Int32 = 0
        let outcome = buffer.withUnsafeMutableBytes { data in
            control.withUnsafeMutableBytes { controlBytes in
                var vector = iovec(iov_base: data.baseAddress, iov_len: data.count)
                return withUnsafeMutablePointer(to: &vector) { vectorPointer in
                    var header = msghdr()
                    header.msg_iov = vectorPointer
                    header.msg_iovlen = 1
                    header.msg_control = controlBytes.baseAddress
                    header.msg_controllen = controlLength
                    defer {
                        receivedControl = Int(header.msg_controllen)
                        flags = header.msg_flags
                    }
                    return Result { () throws(Errno) in try syscall { recvmsg(fileDescriptor, &header, Int32(MSG_CMSG_CLOEXEC)) } }
                }
            }
        }
        let received: Int
        switch outcome {
        case .success(let count): received = count
        case .failure(let error): throw FDHandoverError("recvmsg", errno: error)
        }
        var descriptors: [Int32] = []
        var offset = 0
        control.withUnsafeBytes { raw in
            while offset + Self.headerSize <= receivedControl {
                let length = raw.load(fromByteOffset: offset, as: Int.self)
                let level = raw.load(fromByteOffset: offset + 8, as: Int32.self)
                let type = raw.load(fromByteOffset: offset + 12, as: Int32.self)
                guard length >= Self.headerSize, offset + length <= receivedControl else { break }
                if level == Self.solSocket && type == Self.scmRights {
                    let count = (length - Self.headerSize) / 4
                    for index in 0..<count {
                        descriptors.append(raw.load(fromByteOffset: offset + Self.headerSize + index * 4, as: Int32.self))
                    }
                }
                offset += Self.headerSize + Self.align(length - Self.headerSize)
            }
        }
        if flags & Int32(MSG_CTRUNC) != 0 {
            for fd in descriptors { close(fd) }
            throw FDHandoverError("recvmsg: too many descriptors in one message", errno: .messageTooLong)
        }
        if received == 0 && descriptors.isEmpty { return nil }
        return (Array(buffer[0..<received]), descriptors)
    }

    private static func align(_ length: Int) -> Int {
        (length + 7) & ~7
    }
}
