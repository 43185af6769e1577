//
// vineyard-csi: vineyard-csi-fdholder
//
// Keeps the /dev/fuse descriptors of the node plugin's mounts open while the plugin restarts,
// crashes or is upgraded, and hands them back over a unix socket (SCM_RIGHTS). No threads, no
// Foundation: one poll loop, so that it has nothing to crash on.

import FDHandover
import Glibc
import POSIXCore

let usage = """
    usage: vineyard-csi-fdholder --socket PATH

    Holds the /dev/fuse descriptors of vineyard-csi's FUSE mounts so they survive restarts of
    the node plugin. Listens on PATH (AF_UNIX, SOCK_SEQPACKET, mode 0600). When the plugin's
    connection closes, sends FUSE_NOTIFY_RESEND on every descriptor so that requests the plugin
    read but never answered are given to the next plugin instead of hanging. Drops descriptors
    whose connection the kernel ended (unmounted or aborted). Exits on SIGTERM; the mounts then
    stay up only as long as a plugin serves them.
    """

func log(_ line: String) {
    FileIO.writeToStandardError("vineyard-csi-fdholder: \(line)\n")
}

func parseArguments() -> String {
    var arguments = CommandLine.arguments.dropFirst()
    var socketPath: String?
    while let argument = arguments.popFirst() {
        switch argument {
        case "--socket":
            socketPath = arguments.popFirst()
        case let value where value.hasPrefix("--socket="):
            socketPath = String(value.dropFirst("--socket=".count))
        case "-h", "--help":
            print(usage)
            exit(0)
        default:
            log("unknown argument \(argument)\n\(usage)")
            exit(64)
        }
    }
    guard let socketPath, socketPath.hasPrefix("/") else {
        log("--socket must be an absolute path\n\(usage)")
        exit(64)
    }
    return socketPath
}

/// Creates the directories of `path` (mode 0700 for new ones).
func makeParentDirectories(_ path: String) {
    var prefix = ""
    let components = path.split(separator: "/").dropLast()
    for component in components {
        prefix += "/" + component
        do {
            try syscall { mkdir(prefix, 0o700) }
        } catch .exists {
            // there already
        } catch {
            log("cannot create \(prefix): \(error)")
            exit(1)
        }
    }
}

/// Binds and listens at `path`, replacing a stale socket file; exits if a holder answers there.
func listen(at path: String) -> Int32 {
    if (try? FDPassingSocket.connect(to: path)) != nil {
        log("another holder already listens at \(path)")
        exit(3)
    }
    unlink(path)
    let fd = socket(AF_UNIX, Int32(SOCK_SEQPACKET.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    guard fd >= 0, var address = try? FDPassingSocket.makeAddress(path) else {
        log("cannot create a socket for \(path)")
        exit(1)
    }
    let previousMask = umask(0o077)
    defer { umask(previousMask) }
    do {
        try withUnsafePointer(to: &address) { (pointer) throws(Errno) in
            try pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { (address) throws(Errno) in
                try syscall { bind(fd, address, socklen_t(MemoryLayout<sockaddr_un>.size)) }
            }
        }
        try syscall { Glibc.listen(fd, 16) }
    } catch {
        log("cannot listen at \(path): \(error)")
        exit(1)
    }
    return fd
}

/// Lets the holder keep as many descriptors as the hard limit allows.
func raiseDescriptorLimit() {
    var limit = rlimit()
    guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return }
    limit.rlim_cur = limit.rlim_max
    _ = setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
}

struct Entry {
    var data: [UInt8]
    var fileDescriptor: Int32
}

final class Client {
    let socket: FDPassingSocket
    /// Gave or took descriptors, i.e. serves (or served) them.
    var isServer = false

    init(_ fd: Int32) {
        socket = FDPassingSocket(adopting: fd)
    }
}

final class Holder {
    var entries: [String: Entry] = [:]
    var clients: [Int32: Client] = [:]
    let listener: Int32

    init(listener: Int32) {
        self.listener = listener
    }

    func resendAll(reason: String) {
        var sent = 0
        for (key, entry) in entries {
            let message = FUSEResendNotification.message
            do {
                // The device takes a notification in one write, whole or not at all.
                try FileIO.write(entry.fileDescriptor, message)
                sent += 1
            } catch {
                log("FUSE_NOTIFY_RESEND on \(key) failed: \(error)")
            }
        }
        if sent > 0 { log("sent FUSE_NOTIFY_RESEND on \(sent) connection(s) (\(reason))") }
    }

    func drop(_ key: String, reason: String) {
        guard let entry = entries.removeValue(forKey: key) else { return }
        close(entry.fileDescriptor)
        log("dropped \(key) (\(reason))")
    }

    /// Handles one request; returns false when the client is gone.
    func serve(_ client: Client) -> Bool {
        let message: (bytes: [UInt8], descriptors: [Int32])?
        do {
            message = try client.socket.receive()
        } catch {
            log("client error: \(error)")
            return false
        }
        guard let (bytes, descriptors) = message else { return false }
        var unused = descriptors
        defer { for fd in unused { close(fd) } }
        let answer: FDHolderMessage
        switch FDHolderMessage(decoding: bytes) {
        case .put(let key, let data)? where descriptors.count == 1:
            if let old = entries[key] { close(old.fileDescriptor) }
            entries[key] = Entry(data: data, fileDescriptor: descriptors[0])
            unused = []
            client.isServer = true
            log("holding \(key)")
            answer = .ok
        case .drop(let key)?:
            drop(key, reason: "asked")
            answer = .ok
        case .list?:
            client.isServer = true
            for (key, entry) in entries.sorted(by: { $0.key < $1.key }) {
                do {
                    try client.socket.send(FDHolderMessage.item(key: key, data: entry.data).encoded, descriptors: [entry.fileDescriptor])
                } catch {
                    log("cannot hand \(key) over: \(error)")
                    return false
                }
            }
            answer = .end
        case .resend?:
            resendAll(reason: "asked")
            answer = .ok
        default:
            answer = .failure("malformed request")
        }
        do {
            try client.socket.send(answer.encoded)
        } catch {
            return false
        }
        return true
    }

    func run() -> Never {
        while true {
            // Listener, clients, then held descriptors (events 0: only POLLERR, i.e. the
            // kernel ended the connection).
            let clientDescriptors = Array(clients.keys)
            let held = entries.map { ($0.key, $0.value.fileDescriptor) }
            var polled = [pollfd(fd: listener, events: Int16(POLLIN), revents: 0)]
            polled += clientDescriptors.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
            polled += held.map { pollfd(fd: $0.1, events: 0, revents: 0) }
            do { try syscall { poll(&polled, nfds_t(polled.count), -1) } } catch {
                log("poll: \(error)")
                exit(1)
            }
            if polled[0].revents & Int16(POLLIN) != 0, let fd = try? syscall({ accept(listener, nil, nil) }) {
                _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
                clients[fd] = Client(fd)
            }
            for (index, fd) in clientDescriptors.enumerated() where polled[1 + index].revents != 0 {
                guard let client = clients[fd] else { continue }
                let revents = polled[1 + index].revents
                let alive = revents & Int16(POLLIN) != 0 ? serve(client) : false
                if !alive {
                    clients[fd] = nil
                    if client.isServer { resendAll(reason: "a plugin disconnected") }
                }
            }
            for (index, (key, fd)) in held.enumerated() where polled[1 + clientDescriptors.count + index].revents != 0 {
                if entries[key]?.fileDescriptor == fd { drop(key, reason: "the kernel ended the connection") }
            }
        }
    }
}

ProcessSignals.applyPolicy()
let socketPath = parseArguments()
raiseDescriptorLimit()
makeParentDirectories(socketPath)
let holder = Holder(listener: listen(at: socketPath))
log("listening at \(socketPath)")
holder.run()
