// vineyard-csi: VineyardIPC
// DetachedThread.swift: a plain OS thread for blocking socket work.

import Glibc
import POSIXCore

/// Starts detached pthreads. Connections block in `recv` for as long as a client is idle, so
/// they get OS threads of their own rather than Swift concurrency's cooperative pool, which a
/// few idle clients would exhaust.
enum DetachedThread {
    private final class Box {
        let body: () -> Void
        init(_ body: @escaping () -> Void) { self.body = body }
    }

    /// Stack size: connections parse JSON recursively (at most 512 levels deep).
    static let stackSize = 1 << 20

    /// Runs `body` on a new detached thread.
    ///
    /// - Throws: ``IPCSocketError`` (operation `pthread_create`) when no thread can be made.
    static func start(_ body: @escaping @Sendable () -> Void) throws(IPCSocketError) {
        var attributes = pthread_attr_t()
        pthread_attr_init(&attributes)
        defer { pthread_attr_destroy(&attributes) }
        pthread_attr_setdetachstate(&attributes, Int32(PTHREAD_CREATE_DETACHED))
        pthread_attr_setstacksize(&attributes, stackSize)
        let context = Unmanaged.passRetained(Box(body)).toOpaque()
        var thread = pthread_t()
        do {
            try syscallReturningErrno {
                pthread_create(&thread, &attributes, { raw in
                    let box = Unmanaged<Box>.fromOpaque(raw!).takeRetainedValue()
                    box.body()
                    return nil
                }, context)
            }
        } catch {
            Unmanaged<Box>.fromOpaque(context).release()
            throw IPCSocketError("pthread_create", errno: error)
        }
    }
}
