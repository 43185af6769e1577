//
// vineyard-csi: POSIXCore
//
// DetachedThread.swift: plain OS threads for work that blocks.

import Glibc

/// Starts detached pthreads, for work that blocks for as long as it likes (a connection waiting
/// in `recv`, a FUSE session's loop, a mount waiting for the kernel) and so must not run on Swift
/// concurrency's cooperative pool, which has one thread per core.
///
/// Plain pthreads rather than Foundation's `Thread`: starting one `Foundation.Thread` links the
/// whole of Foundation and its ICU data into a statically linked binary (about 40 MB).
public enum DetachedThread {
    private final class Box {
        let name: String?
        let body: () -> Void
        init(name: String?, body: @escaping () -> Void) {
            self.name = name
            self.body = body
        }

        func run() {
            // The kernel keeps 15 bytes of a thread's name; pthread_setname_np is a GNU
            // extension Swift does not see, so the name goes to /proc directly.
            if let name {
                try? FileIO.write(String(decoding: name.utf8.prefix(15), as: UTF8.self), toExistingFile: "/proc/thread-self/comm")
            }
            body()
        }
    }

    /// The stack of threads started without a size: glibc's default for new threads.
    public static let defaultStackSize = 8 << 20

    /// Runs `body` on a new detached thread.
    ///
    /// - Parameters:
    ///   - name: the thread's name as `top -H` and `/proc/<pid>/task/<tid>/comm` show it (the
    ///     kernel keeps its first 15 bytes).
    ///   - stackSize: bytes of stack.
    /// - Throws: the `pthread_create` error (`EAGAIN` when no thread can be made).
    public static func start(
        name: String? = nil, stackSize: Int = defaultStackSize, _ body: @escaping @Sendable () -> Void
    ) throws(Errno) {
        var attributes = pthread_attr_t()
        pthread_attr_init(&attributes)
        defer { pthread_attr_destroy(&attributes) }
        pthread_attr_setdetachstate(&attributes, Int32(PTHREAD_CREATE_DETACHED))
        pthread_attr_setstacksize(&attributes, stackSize)
        let context = Unmanaged.passRetained(Box(name: name, body: body)).toOpaque()
        var thread = pthread_t()
        do {
            try syscallReturningErrno {
                pthread_create(&thread, &attributes, { raw in
                    Unmanaged<Box>.fromOpaque(raw!).takeRetainedValue().run()
                    return nil
                }, context)
            }
        } catch {
            Unmanaged<Box>.fromOpaque(context).release()
            throw error
        }
    }
}
