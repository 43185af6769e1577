import POSIXCore

/// Runs blocking work (mounting, unmounting, starting and stopping FUSE sessions, anything that
/// waits) on a thread of its own, and lets async code await its result.
///
/// Swift's cooperative pool has one thread per core: a task that blocks one of them (a mount
/// that waits for the kernel, a session that takes seconds to stop) holds back every other
/// task, Probe included. Work handed to ``run(named:_:)`` blocks its own thread instead.
public enum DedicatedThread {
    /// Runs `body` on a new thread named `name` and returns what it returns or throws.
    public static func run<Value: Sendable, Failure: Error>(
        named name: String, _ body: @escaping @Sendable () throws(Failure) -> Value
    ) async throws(Failure) -> Value {
        let result: Result<Value, Failure> = await withCheckedContinuation { continuation in
            let work: @Sendable () -> Void = {
                continuation.resume(returning: Result { () throws(Failure) -> Value in try body() })
            }
            // Without a thread to spare the work still runs, holding this pool thread meanwhile.
            do { try POSIXCore.DetachedThread.start(name: name, work) } catch { work() }
        }
        return try result.get()
    }
}
