import CSIDriver
import Foundation
import Synchronization
import Testing

@Suite struct DedicatedThreadTests {
    final class Flag: Sendable {
        private let value = Atomic<Bool>(false)
        var isSet: Bool { value.load(ordering: .acquiring) }
        func set() { value.store(true, ordering: .releasing) }
    }

    @Test func returnsWhatTheWorkReturnsOrThrows() async {
        struct Failure: Error, Equatable {}
        #expect(await DedicatedThread.run(named: "t") { 42 } == 42)
        await #expect(throws: Failure.self) {
            try await DedicatedThread.run(named: "t") { () throws(Failure) -> Int in throw Failure() }
        }
    }

    /// More blocked jobs than the cooperative pool has threads, and async work still runs:
    /// the blocking happens on threads of their own.
    @Test(.timeLimit(.minutes(1))) func blockingWorkLeavesTheCooperativePoolFree() async {
        let blocked = ProcessInfo.processInfo.activeProcessorCount + 2
        let release = Flag()
        await withTaskGroup(of: Void.self) { group in
            for index in 0..<blocked {
                group.addTask {
                    await DedicatedThread.run(named: "blocked \(index)") {
                        while !release.isSet { usleep(1_000) }
                    }
                }
            }
            // Runs only if a pool thread is free while every job above blocks.
            group.addTask {
                try? await Task.sleep(for: .milliseconds(50))
                release.set()
            }
        }
        #expect(release.isSet)
    }
}
