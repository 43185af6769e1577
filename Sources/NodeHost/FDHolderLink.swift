import FDHandover
import FoundationEssentials
import Glibc
import Logging
import POSIXCore
import Synchronization

/// The connection to `vineyard-csi-fdholder`, which keeps every mount's `/dev/fuse`
/// descriptor while no plugin serves it; started here when configured and none answers.
final class FDHolderLink: Sendable {
    private let socket: String
    private let executable: String?
    private let logger: Logger
    private let client = Mutex<FDHolderClient?>(nil)

    init(socket: String, executable: String?, logger: Logger) {
        self.socket = socket
        self.executable = executable
        self.logger = logger
        client.withLock { $0 = connect() }
    }

    var isConnected: Bool { client.withLock { $0?.isConnected ?? false } }

    /// The descriptors the holder keeps, or none when it does not answer.
    func list() -> [HeldDescriptor] {
        guard let current = client.withLock({ $0 }) else { return [] }
        do { return try current.list() } catch {
            logger.error("cannot list the descriptor holder's mounts", metadata: ["error": "\(error)"])
            return []
        }
    }

    /// Runs `body` with the holder, reconnecting once when the connection broke; a new
    /// connection first gets what `refill` puts (every mount this process serves).
    func withHolder(
        refill: (FDHolderClient) -> Void, _ body: (FDHolderClient) throws(FDHandoverError) -> Void
    ) throws(FDHandoverError) {
        if let current = client.withLock({ $0 }) {
            do {
                try body(current)
                return
            } catch {
                client.withLock { $0 = nil }
            }
        }
        guard let fresh = connect() else {
            throw FDHandoverError("no descriptor holder at \(socket)", errno: .connectionRefused)
        }
        client.withLock { $0 = fresh }
        refill(fresh)
        try body(fresh)
    }

    private func connect() -> FDHolderClient? {
        if let client = try? FDHolderClient(socketPath: socket) { return client }
        guard let executable else {
            logger.warning("no descriptor holder answers; mounts will not survive a restart", metadata: ["socket": "\(socket)"])
            return nil
        }
        do {
            try Self.spawn(executable, socket: socket)
        } catch {
            logger.error("cannot start the descriptor holder", metadata: ["executable": "\(executable)", "error": "\(error)"])
            return nil
        }
        for _ in 0..<200 {
            if let client = try? FDHolderClient(socketPath: socket) {
                logger.info("started the descriptor holder", metadata: ["socket": "\(socket)"])
                return client
            }
            usleep(10_000)
        }
        logger.error("the descriptor holder did not start listening", metadata: ["socket": "\(socket)"])
        return nil
    }

    /// Starts the holder in a session of its own (it must outlive this process and its
    /// process group), with stdin/stdout on /dev/null and stderr inherited.
    static func spawn(_ executable: String, socket: String) throws(FDHandoverError) {
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        posix_spawnattr_setflags(&attributes, Int16(0x80))  // POSIX_SPAWN_SETSID
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        let argv = [executable, "--socket", socket]
        var cArguments: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) }
        cArguments.append(nil)
        defer { for argument in cArguments { free(argument) } }
        var pid: pid_t = 0
        do throws(Errno) {
            try syscallReturningErrno { posix_spawn(&pid, executable, &actions, &attributes, cArguments, environ) }
        } catch {
            throw FDHandoverError("posix_spawn \(executable)", errno: error)
        }
        // Reap it if it exits while we live (another holder already listening).
        let child = pid
        try? DetachedThread.start(name: "fdholder reaper", stackSize: 64 << 10) {
            var status: Int32 = 0
            _ = try? syscall { waitpid(child, &status, 0) }
        }
    }
}
