//
// vineyard-csi: POSIXCoreTests
//

import Glibc
import POSIXCore
import Testing

@Suite("TCPListener")
struct TCPListenerTests {
    @Test("port 0 binds a free port, a client's bytes arrive, and shutdown ends accept")
    func acceptsAndShutsDown() throws {
        let listener = try TCPListener(host: "127.0.0.1", port: "0")
        let port = try #require(listener.boundAddress.split(separator: ":").last.flatMap { UInt16($0) })
        #expect(listener.boundAddress.hasPrefix("127.0.0.1:") && port != 0)

        let client = try syscall { socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0) }
        defer { close(client) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(client, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        #expect(connected == 0)
        try FileIO.writeAll(client, Array("ping".utf8))

        let connection = try #require(listener.accept(timeoutSeconds: 1))
        defer { close(connection) }
        var buffer = [UInt8](repeating: 0, count: 16)
        let count = try FileIO.read(connection, into: &buffer)
        #expect(Array(buffer[..<count]) == Array("ping".utf8))

        listener.shutdown()
        #expect(listener.accept() == nil)
    }

    @Test("an address that does not resolve is an error naming it")
    func unresolvable() {
        #expect(throws: TCPListener.SetupError.self) {
            try TCPListener(host: "no-such-host.invalid", port: "0")
        }
    }
}
