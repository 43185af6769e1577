//
// vineyard-csi: FUSEKit
//

/// A failure of the session machinery itself (as opposed to a request, see ``Errno``).
public struct FUSEError: Error, Hashable, Sendable, CustomStringConvertible {
    /// What went wrong.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Value: Hashable, Sendable {
            case invalidArgument, sessionCreation, mount, loop, alreadyRunning, notMounted, unmount, notify
        }

        private let value: Value
        private init(_ value: Value) { self.value = value }

        /// An option or path was rejected before reaching libfuse.
        public static let invalidArgument = Code(.invalidArgument)
        /// `fuse_session_new` failed (usually an unknown `-o` option; libfuse logs it to stderr).
        public static let sessionCreation = Code(.sessionCreation)
        /// Mounting failed (`fuse_session_mount` / `mount(2)`).
        public static let mount = Code(.mount)
        /// The request loop ended with an error.
        public static let loop = Code(.loop)
        /// ``FUSESession/run(threads:)`` was called while already running.
        public static let alreadyRunning = Code(.alreadyRunning)
        /// The session was unmounted before it ran.
        public static let notMounted = Code(.notMounted)
        /// Unmounting or aborting failed.
        public static let unmount = Code(.unmount)
        /// A kernel cache notification failed.
        public static let notify = Code(.notify)

        public var description: String { "\(value)" }
    }

    public var code: Code
    /// The underlying error number, when there is one.
    public var errno: Errno?
    public var message: String

    public init(code: Code, errno: Errno? = nil, message: String) {
        self.code = code
        self.errno = errno
        self.message = message
    }

    public var description: String {
        if let errno {
            return "FUSEError.\(code): \(message): \(errno)"
        }
        return "FUSEError.\(code): \(message)"
    }
}
