//
// vineyard-csi: POSIXCore
//
// ProcessSignals.swift: the signal policy of every executable of the package.

import Dispatch
import Glibc
import Synchronization

/// What the package's processes do about signals that are not requests to stop.
public enum ProcessSignals {
    /// Ignores `SIGPIPE`, so a write to a pipe or socket whose reader is gone fails with
    /// ``Errno/brokenPipe`` instead of killing the process. Each executable calls this first.
    ///
    /// The driver serves mounts: if it died because its log pipe closed (`| head`, a `| tee`
    /// that Ctrl-C stopped first, a log collector that restarted) or because a client hung up
    /// on one of its sockets, every mount it serves would go stale. Logging writes ignore
    /// their result, so a closed log stream costs one failed `write` per line.
    public static func applyPolicy() {
        signal(SIGPIPE, SIG_IGN)
    }

    /// Calls `handler` with the signal number, on a Dispatch queue, for every `SIGTERM` (what
    /// Kubernetes sends) and `SIGINT` (Ctrl-C), instead of letting them end the process at
    /// once: a process that serves mounts unmounts them first. The handling lasts until the
    /// returned value is cancelled or goes away; the signals stay ignored after that, so a
    /// second Ctrl-C cannot cut a shutdown short. One handling at a time.
    ///
    /// The signal handler only writes the number into a pipe, so the signal may arrive on any
    /// thread (libfuse's, gRPC's), blocked or not elsewhere; a Dispatch source on a signal alone
    /// misses a signal that the kernel hands to a thread that does not block it.
    public static func handleStopRequests(_ handler: @escaping @Sendable (Int32) -> Void) -> StopRequestHandling {
        var ends: [Int32] = [-1, -1]
        // Without a pipe the process would not stop on SIGTERM: nothing sensible is left to do.
        precondition(pipe(&ends) == 0, "cannot create the stop-signal pipe: \(Errno.current)")
        for fd in ends {
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
            _ = fcntl(fd, F_SETFL, O_NONBLOCK)  // a full pipe must never block the handler
        }
        let source = DispatchSource.makeReadSource(fileDescriptor: ends[0], queue: .global())
        source.setEventHandler {
            var numbers = [UInt8](repeating: 0, count: 16)
            while let count = try? nonBlockingSyscall({ read(ends[0], &numbers, numbers.count) }), count > 0 {
                for number in numbers[0..<count] { handler(Int32(number)) }
            }
        }
        source.setCancelHandler {
            close(ends[0])
            close(ends[1])
        }
        stopSignalPipe.store(ends[1], ordering: .releasing)
        var action = sigaction()
        action.__sigaction_handler.sa_handler = { number in
            let fd = stopSignalPipe.load(ordering: .acquiring)
            guard fd >= 0 else { return }
            var byte = UInt8(truncatingIfNeeded: number)
            let saved = Glibc.errno  // a handler must leave errno as the interrupted code had it
            _ = write(fd, &byte, 1)
            Glibc.errno = saved
        }
        action.sa_flags = SA_RESTART
        for number in [SIGTERM, SIGINT] { sigaction(number, &action, nil) }
        source.resume()
        return StopRequestHandling(source: source)
    }
}

/// The write end of the stop-signal pipe, read by the signal handler (-1: none).
private let stopSignalPipe = Atomic<Int32>(-1)

/// The handling of stop signals that ``ProcessSignals/handleStopRequests(_:)`` set up.
public final class StopRequestHandling: @unchecked Sendable {
    // A Dispatch source is thread-safe; after creation only `cancel` is called on it.
    private let source: any DispatchSourceRead

    init(source: any DispatchSourceRead) {
        self.source = source
    }

    /// Stops calling the handler; `SIGTERM` and `SIGINT` stay ignored.
    public func cancel() {
        for number in [SIGTERM, SIGINT] { signal(number, SIG_IGN) }
        stopSignalPipe.store(-1, ordering: .releasing)
        source.cancel()
    }

    deinit {
        cancel()
    }
}
