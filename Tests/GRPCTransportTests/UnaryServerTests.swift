import Foundation
import GRPCTransport
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

@Suite struct UnaryServerTests {
    // MARK: - Round trips

    @Test func echoRoundTrip() async throws {
        try await withTemporaryDirectory { directory in
            let endpoint = Endpoint.unix(path: "\(directory)/csi.sock")
            try await withServer(endpoint) { _ in
                let client = try UnaryClient(endpoint: endpoint)
                let payload = Array("hello, csi".utf8)
                #expect(try await callBlocking(client, "/t/echo", payload) == payload)
                #expect(try await client.call("/t/echo", payload) == payload)
                #expect(try await callBlocking(client, "/t/echo", []) == [])
                #expect(try await client.call("/t/echo", [], timeout: .seconds(5)) == [])
            }
        }
    }

    @Test func errorStatusAndMessageRoundTrip() async throws {
        try await withTemporaryDirectory { directory in
            let endpoint = Endpoint.unix(path: "\(directory)/csi.sock")
            try await withServer(endpoint) { _ in
                let client = try UnaryClient(endpoint: endpoint)
                let cases: [(StatusCode, String)] = [
                    (.invalidArgument, "volume_id missing in request"),
                    (.notFound, "volume \"v-1\" does not exist"),
                    (.alreadyExists, "volume exists with a different capacity"),
                    (.failedPrecondition, "volume is still published"),
                    (.aborted, "an operation for this volume is in progress"),
                    (.resourceExhausted, "out of capacity: 100% used ✓ ünïcode\nsecond line"),
                    (.internalError, ""),
                    (.permissionDenied, "nope"),
                    (.unauthenticated, "who?"),
                ]
                for (code, message) in cases {
                    let request = [UInt8(code.rawValue)] + Array(message.utf8)
                    let expected = Result<[UInt8], RPCStatus>.failure(RPCStatus(code, message))
                    #expect(await outcome { () async throws(RPCStatus) in try await callBlocking(client, "/t/fail", request) } == expected)
                    #expect(await outcome { () async throws(RPCStatus) in try await client.call("/t/fail", request) } == expected)
                }
                // A failure that claims OK still fails.
                #expect(await outcome { () async throws(RPCStatus) in try await callBlocking(client, "/t/fail", [0]) } == .failure(RPCStatus(.unknown, "")))
                // Unknown methods are the handler's to refuse.
                await #expect(throws: RPCStatus(.unimplemented, "no method /x.Y/Z")) { try await callBlocking(client, "/x.Y/Z", []) }
            }
        }
    }

    @Test func largePayload() async throws {
        try await withTemporaryDirectory { directory in
            let endpoint = Endpoint.unix(path: "\(directory)/csi.sock")
            try await withServer(endpoint) { _ in
                let client = try UnaryClient(endpoint: endpoint)
                let payload = pseudoRandomBytes(count: 16 << 20)
                let blocking = try await callBlocking(client, "/t/echo", payload, timeout: .seconds(60))
                #expect(blocking.count == payload.count)
                #expect(sameBytes(blocking, payload))
                let suspending = try await client.call("/t/echo", payload, timeout: .seconds(60))
                #expect(suspending.count == payload.count)
                #expect(sameBytes(suspending, payload))
            }
        }
    }

    @Test func concurrentCallsFromManyTasks() async throws {
        try await withTemporaryDirectory { directory in
            let endpoint = Endpoint.unix(path: "\(directory)/csi.sock")
            try await withServer(endpoint) { _ in
                let client = try UnaryClient(endpoint: endpoint)
                let failures = try await withThrowingTaskGroup(of: Int.self) { group in
                    for task in 0..<64 {
                        group.addTask {
                            var failures = 0
                            for call in 0..<50 {
                                let payload = Array("task \(task) call \(call)".utf8)
                                if try await client.call("/t/echo", payload, timeout: .seconds(30)) != payload {
                                    failures += 1
                                }
                            }
                            return failures
                        }
                    }
                    return try await group.reduce(0, +)
                }
                #expect(failures == 0)
                // The blocking form from several threads at once, on the same channel.
                let threadFailures = await withTaskGroup(of: Int.self) { group in
                    for thread in 0..<8 {
                        group.addTask {
                            await onThread {
                                var failures = 0
                                for call in 0..<100 {
                                    let payload = Array("thread \(thread) call \(call)".utf8)
                                    if (try? client.call("/t/echo", payload, timeout: .seconds(30))) != payload {
                                        failures += 1
                                    }
                                }
                                return failures
                            }
                        }
                    }
                    return await group.reduce(0, +)
                }
                #expect(threadFailures == 0)
            }
        }
    }

    // MARK: - Socket file handling

    @Test func staleSocketIsRemovedAtStart() async throws {
        try await withTemporaryDirectory { directory in
            let path = "\(directory)/csi.sock"
            try makeStaleSocket(at: path)
            #expect(isSocket(path))
            try await withServer(.unix(path: path)) { _ in
                let client = try UnaryClient(endpoint: .unix(path: path))
                #expect(try await callBlocking(client, "/t/echo", [1, 2, 3]) == [1, 2, 3])
            }
        }
    }

    @Test func regularFileAtSocketPathIsRefused() async throws {
        try await withTemporaryDirectory { directory in
            let path = "\(directory)/csi.sock"
            #expect(FileManager.default.createFile(atPath: path, contents: Data("keep me".utf8)))
            #expect {
                _ = try UnaryServer(endpoint: .unix(path: path), handler: TestHandler())
            } throws: { error in
                guard let status = error as? RPCStatus else { return false }
                return status.code == .alreadyExists && status.message.contains(path)
                    && status.message.contains("not a socket")
            }
            #expect(FileManager.default.contents(atPath: path) == Data("keep me".utf8))
        }
    }

    @Test func liveSocketIsNotTakenOver() async throws {
        try await withTemporaryDirectory { directory in
            let endpoint = Endpoint.unix(path: "\(directory)/csi.sock")
            try await withServer(endpoint) { _ in
                #expect {
                    _ = try UnaryServer(endpoint: endpoint, handler: TestHandler())
                } throws: { error in
                    (error as? RPCStatus)?.code == .alreadyExists
                }
                // The first server is untouched.
                let client = try UnaryClient(endpoint: endpoint)
                #expect(try await callBlocking(client, "/t/echo", [7]) == [7])
            }
        }
    }

    @Test func missingDirectoryIsReported() async throws {
        try await withTemporaryDirectory { directory in
            let path = "\(directory)/missing/csi.sock"
            #expect {
                _ = try UnaryServer(endpoint: .unix(path: path), handler: TestHandler())
            } throws: { error in
                guard let status = error as? RPCStatus else { return false }
                return status.code == .notFound && status.message.contains(path)
            }
        }
    }

    @Test(arguments: [UInt32(0o600), 0o660, 0o666])
    func socketPermissionBitsAsRequested(mode: UInt32) async throws {
        try await withTemporaryDirectory { directory in
            let path = "\(directory)/csi.sock"
            try await withServer(.unix(path: path), socketMode: mode) { _ in
                let bits = try #require(fileMode(path))
                #expect(bits & S_IFMT == S_IFSOCK)
                #expect(UInt32(bits & 0o7777) == mode)
            }
        }
    }

    // MARK: - Shutdown

    @Test func shutdownLetsInFlightCallFinishAndRemovesSocket() async throws {
        try await withTemporaryDirectory { directory in
            let path = "\(directory)/csi.sock"
            let handler = TestHandler()
            let server = try UnaryServer(endpoint: .unix(path: path), handler: handler)
            defer { server.shutdown(gracePeriod: .zero) }
            let client = try UnaryClient(endpoint: .unix(path: path))
            let call = Task { try await client.call("/t/sleep", Array("300".utf8), timeout: .seconds(10)) }
            while handler.startedCount == 0 { try await Task.sleep(for: .milliseconds(5)) }

            let clock = ContinuousClock()
            let started = clock.now
            // Generous bounds: a loaded 2-core CI machine delays task scheduling by seconds.
            await onThread { server.shutdown(gracePeriod: .seconds(30)) }
            let took = clock.now - started

            #expect(try await call.value == Array("done".utf8))
            #expect(took < .seconds(25))
            #expect(fileMode(path) == nil)
            // Idempotent, and wait() returns once stopped.
            server.shutdown(gracePeriod: .seconds(1))
            server.wait()
            // New calls are refused.
            await #expect(throws: RPCStatus.self) { try await callBlocking(UnaryClient(endpoint: .unix(path: path)), "/t/echo", []) }
        }
    }

    @Test func shutdownAnswersCallsTheHandlerNeverAnswers() async throws {
        try await withTemporaryDirectory { directory in
            let path = "\(directory)/csi.sock"
            let handler = TestHandler()
            defer { handler.release() }
            let server = try UnaryServer(endpoint: .unix(path: path), handler: handler)
            defer { server.shutdown(gracePeriod: .zero) }
            let client = try UnaryClient(endpoint: .unix(path: path))
            let call = Task { await outcome { () async throws(RPCStatus) in try await client.call("/t/hang", []) } }
            while handler.startedCount == 0 { try await Task.sleep(for: .milliseconds(5)) }

            let clock = ContinuousClock()
            let started = clock.now
            await onThread { server.shutdown(gracePeriod: .milliseconds(200)) }
            let took = clock.now - started

            #expect(took >= .milliseconds(150))
            #expect(took < .seconds(20))
            let result = await call.value
            guard case .failure(let status) = result else {
                Issue.record("expected the hanging call to fail, got \(result)")
                return
            }
            #expect([StatusCode.unavailable, .cancelled].contains(status.code))
            #expect(fileMode(path) == nil)
        }
    }

    @Test func waitReturnsAfterShutdownFromAnotherThread() async throws {
        try await withTemporaryDirectory { directory in
            let server = try UnaryServer(endpoint: .unix(path: "\(directory)/csi.sock"), handler: TestHandler())
            defer { server.shutdown(gracePeriod: .zero) }
            let waiter = Task { await onThread { server.wait() } }
            try await Task.sleep(for: .milliseconds(50))
            await onThread { server.shutdown(gracePeriod: .milliseconds(100)) }
            await waiter.value
        }
    }

    // MARK: - Deadlines and cancellation

    @Test func deadlineReachesTheHandler() async throws {
        try await withTemporaryDirectory { directory in
            let endpoint = Endpoint.unix(path: "\(directory)/csi.sock")
            try await withServer(endpoint) { _ in
                let client = try UnaryClient(endpoint: endpoint)
                #expect(try await callBlocking(client, "/t/deadline", []) == Array("none".utf8))
                let blocking = Int(String(decoding: try await callBlocking(client, "/t/deadline", [], timeout: .seconds(30)), as: UTF8.self))
                let suspending = Int(
                    String(decoding: try await client.call("/t/deadline", [], timeout: .seconds(30)), as: UTF8.self))
                for left in [blocking, suspending] {
                    let left = try #require(left)
                    #expect(left > 1_000 && left <= 30_100, "\(left) ms left of a 30 s timeout")
                }
            }
        }
    }

    @Test func expiredTimeoutFailsWithDeadlineExceeded() async throws {
        try await withTemporaryDirectory { directory in
            let endpoint = Endpoint.unix(path: "\(directory)/csi.sock")
            try await withServer(endpoint) { _ in
                let client = try UnaryClient(endpoint: endpoint)
                let request = Array("2000".utf8)
                await #expect(throws: RPCStatus.self) { try await callBlocking(client, "/t/sleep", request, timeout: .milliseconds(100)) }
                let result = await outcome { () async throws(RPCStatus) in
                    try await client.call("/t/sleep", request, timeout: .milliseconds(100))
                }
                guard case .failure(let status) = result else {
                    Issue.record("expected DEADLINE_EXCEEDED, got \(result)")
                    return
                }
                #expect(status.code == .deadlineExceeded)
            }
        }
    }

    @Test func cancellingTheTaskCancelsTheCall() async throws {
        try await withTemporaryDirectory { directory in
            let endpoint = Endpoint.unix(path: "\(directory)/csi.sock")
            let handler = TestHandler()
            defer { handler.release() }
            try await withServer(endpoint, handler: handler) { _ in
                let client = try UnaryClient(endpoint: endpoint)
                let call = Task { await outcome { () async throws(RPCStatus) in try await client.call("/t/hang", []) } }
                while handler.startedCount == 0 { try await Task.sleep(for: .milliseconds(5)) }
                call.cancel()
                let result = await call.value
                guard case .failure(let status) = result else {
                    Issue.record("expected CANCELLED, got \(result)")
                    return
                }
                #expect(status.code == .cancelled)
                // The connection is still good afterwards.
                #expect(try await client.call("/t/echo", [9]) == [9])
            }
        }
    }

    // MARK: - Client and TCP

    @Test func clientToMissingSocketGetsUnavailable() async throws {
        try await withTemporaryDirectory { directory in
            let client = try UnaryClient(endpoint: .unix(path: "\(directory)/nobody.sock"))
            let blocking = await outcome { () async throws(RPCStatus) in try await callBlocking(client, "/t/echo", [], timeout: .seconds(5)) }
            let suspending = await outcome { () async throws(RPCStatus) in try await client.call("/t/echo", []) }
            for result in [blocking, suspending] {
                guard case .failure(let status) = result else {
                    Issue.record("expected UNAVAILABLE, got \(result)")
                    continue
                }
                #expect(status.code == .unavailable)
            }
        }
    }

    @Test func tcpOnLoopbackWithPortZero() async throws {
        try await withServer(.tcp(host: "127.0.0.1", port: 0)) { server in
            guard case .tcp(let host, let port) = server.endpoint else {
                Issue.record("expected a tcp endpoint, got \(server.endpoint)")
                return
            }
            #expect(host == "127.0.0.1")
            #expect(port > 0)
            let client = try UnaryClient(endpoint: try Endpoint(parsing: "tcp://127.0.0.1:\(port)"))
            #expect(try await callBlocking(client, "/t/echo", [4, 5, 6]) == [4, 5, 6])
            #expect(try await client.call("/t/echo", [4, 5]) == [4, 5])

            // The port is taken now.
            #expect {
                _ = try UnaryServer(endpoint: server.endpoint, handler: TestHandler())
            } throws: { error in
                guard let status = error as? RPCStatus else { return false }
                return status.code == .alreadyExists && status.message.contains("\(port)")
            }
        }
    }

    @Test func unparsableTcpHostIsRefused() {
        #expect(throws: RPCStatus.self) {
            _ = try UnaryServer(endpoint: .tcp(host: "no-such-host.invalid", port: 0), handler: TestHandler())
        }
    }
}
