//
// vineyard-csi: POSIXCore
//
// TCPListener.swift: a listening TCP socket for a small local HTTP endpoint.

import Glibc

/// A bound, listening TCP socket. Blocking: accept on a thread of its own.
public final class TCPListener: Sendable {
    /// Why a listener could not be made.
    public struct SetupError: Error, CustomStringConvertible {
        public var description: String
    }

    /// The address actually bound, the port resolved when 0 was asked for: `127.0.0.1:9810`,
    /// `[::1]:9810`.
    public let boundAddress: String
    private let fd: Int32

    /// Binds the first address `host` and `port` resolve to (every interface when `host` is
    /// `nil`) and listens on it.
    public init(host: String?, port: String, backlog: Int32 = 16) throws(SetupError) {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_flags = AI_PASSIVE
        var list: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host, port, &hints, &list)
        guard status == 0, let first = list else {
            throw SetupError(description: "\(host ?? ""):\(port): \(String(cString: gai_strerror(status)))")
        }
        defer { freeaddrinfo(list) }
        var lastError = Errno(rawValue: EADDRNOTAVAIL)
        var entry: UnsafeMutablePointer<addrinfo>? = first
        while let info = entry {
            entry = info.pointee.ai_next
            do throws(Errno) {
                let fd = try syscall { socket(info.pointee.ai_family, info.pointee.ai_socktype | Int32(SOCK_CLOEXEC.rawValue), 0) }
                var one: Int32 = 1
                setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
                do throws(Errno) {
                    _ = try syscall { bind(fd, info.pointee.ai_addr, info.pointee.ai_addrlen) }
                    _ = try syscall { Glibc.listen(fd, backlog) }
                } catch {
                    close(fd)
                    throw error
                }
                self.fd = fd
                self.boundAddress = Self.boundName(fd)
                return
            } catch {
                lastError = error
            }
        }
        throw SetupError(description: "cannot listen on \(host ?? ""):\(port): \(lastError)")
    }

    deinit {
        close(fd)
    }

    /// The next connection, with `timeoutSeconds` for each of its reads and writes; `nil` once
    /// ``shutdown()`` was called. A connection aborted before it was accepted, or a descriptor
    /// table that is full for a moment, is waited out rather than reported.
    public func accept(timeoutSeconds: Int = 5) -> Int32? {
        while true {
            do {
                let connection = try syscall { Glibc.accept(fd, nil, nil) }
                var timeout = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
                setsockopt(connection, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
                setsockopt(connection, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
                return connection
            } catch .connectionAborted {
                continue
            } catch .tooManyOpenFiles, .tooManyOpenFilesInSystem {
                usleep(100_000)
            } catch {
                return nil
            }
        }
    }

    /// Wakes a thread blocked in ``accept(timeoutSeconds:)``, which then returns `nil`.
    public func shutdown() {
        Glibc.shutdown(fd, Int32(SHUT_RDWR))
    }

    private static func boundName(_ fd: Int32) -> String {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        var host = [CChar](repeating: 0, count: Int(NI_MAXHOST))
        var service = [CChar](repeating: 0, count: Int(NI_MAXSERV))
        let named = withUnsafeMutablePointer(to: &storage) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { address in
                getsockname(fd, address, &length) == 0
                    && getnameinfo(
                        address, length, &host, socklen_t(host.count), &service, socklen_t(service.count),
                        NI_NUMERICHOST | NI_NUMERICSERV) == 0
            }
        }
        guard named else { return "?" }
        let hostText = text(host)
        let port = text(service)
        return hostText.contains(":") ? "[\(hostText)]:\(port)" : "\(hostText):\(port)"
    }

    private static func text(_ cString: [CChar]) -> String {
        String(decoding: cString.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
