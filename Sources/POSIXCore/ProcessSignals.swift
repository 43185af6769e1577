//
// vineyard-csi: POSIXCore
//
// ProcessSignals.swift: the signal policy of every executable of the package.

import Dispatch
import Glibc

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
    /// once: a process that serves mounts unmounts them first. The handling lasts as long as the
    /// returned value.
    public static func handleStopRequests(_ handler: @escaping @Sendable (Int32) -> Void) -> StopRequestHandling {
        StopRequestHandling(
            sources: [SIGTERM, SIGINT].map { number in
                // The default action would end the process before the source sees the signal.
                signal(number, SIG_IGN)
                let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
                source.setEventHandler { handler(number) }
                source.resume()
                return source
            })
    }
}

/// The handling of stop signals that ``ProcessSignals/handleStopRequests(_:)`` set up; ends
/// when this value goes away or is cancelled (the signals are then still ignored).
public final class StopRequestHandling: @unchecked Sendable {
    // Dispatch sources are thread-safe; only `cancel` is called on them after creation.
    private let sources: [any DispatchSourceSignal]

    init(sources: [any DispatchSourceSignal]) {
        self.sources = sources
    }

    public func cancel() {
        for source in sources { source.cancel() }
    }

    deinit {
        cancel()
    }
}
