//
// vineyard-csi: FUSEKit
//

internal import CFUSE
import Glibc
import POSIXCore

/// FUSE_INIT processed outside libfuse's loop, so FUSEKit can agree to what libfuse 3.14 does
/// not know: `FUSE_DIRECT_IO_ALLOW_MMAP` (Linux 6.6+), which lets a file opened with
/// `direct_io` be mapped `MAP_SHARED` (without it such an `mmap` fails with `ENODEV`).
///
/// libfuse answers the INIT request as usual, but into a pipe; the answer is read back, the
/// agreed flag is added, and the amended answer goes to the kernel.
enum InitNegotiation {
    // `struct fuse_in_header` is 40 bytes, `struct fuse_out_header` 16; offsets of `flags`
    // and `flags2` in `struct fuse_init_in` and `struct fuse_init_out` follow them.
    static let requestFlagsOffset = 40 + 12
    static let requestFlags2Offset = 40 + 16
    static let replyFlagsOffset = 16 + 12
    static let replyFlags2Offset = 16 + 32
    /// `FUSE_INIT_EXT`: `flags2` carries flag bits 32 to 63.
    static let initExtended: UInt32 = 1 << 30
    /// `FUSE_DIRECT_IO_ALLOW_MMAP` (bit 36), as a `flags2` bit.
    static let directIOAllowMmap: UInt32 = 1 << (36 - 32)

    /// Whether the kernel that sent `request` can map `direct_io` files.
    static func offersDirectIOMmap(_ request: [UInt8]) -> Bool {
        guard request.count >= requestFlags2Offset + 4 else { return false }
        return word(request, requestFlagsOffset) & initExtended != 0
            && word(request, requestFlags2Offset) & directIOAllowMmap != 0
    }

    /// `reply` with `FUSE_DIRECT_IO_ALLOW_MMAP` agreed; unchanged when it is an error or too
    /// short to carry `flags2` (an old protocol minor).
    static func grantingDirectIOMmap(_ reply: [UInt8]) -> [UInt8] {
        guard reply.count >= replyFlags2Offset + 4, word(reply, 4) == 0 else { return reply }
        var amended = reply
        setWord(&amended, replyFlagsOffset, word(reply, replyFlagsOffset) | initExtended)
        setWord(&amended, replyFlags2Offset, word(reply, replyFlags2Offset) | directIOAllowMmap)
        return amended
    }

    /// Lets libfuse process the INIT `request`, amends its answer and sends it on `device`;
    /// the session is left serving `device`.
    ///
    /// - Throws: ``FUSEError`` when the pipe cannot be made, libfuse sends no answer, or the
    ///   kernel rejects the amended one.
    static func negotiate(
        _ session: OpaquePointer, request: [UInt8], device: Int32, grantDirectIOMmap: Bool
    ) throws(FUSEError) {
        var answer = try answer(session, request: request, thenServe: device)
        guard answer.count >= 16 else { throw FUSEError(code: .sessionCreation, message: "libfuse sent no INIT reply") }
        if grantDirectIOMmap { answer = grantingDirectIOMmap(answer) }
        // The device takes a reply in one write, whole or not at all.
        do {
            try FileIO.write(device, answer)
        } catch {
            throw FUSEError(code: .sessionCreation, errno: error, message: "the kernel refused the INIT reply")
        }
    }

    /// Lets libfuse process a recorded INIT once more, for a connection another session
    /// initialised: libfuse's state becomes that session's, and the kernel sees nothing.
    static func replay(_ session: OpaquePointer, request: [UInt8], device: Int32) throws(FUSEError) {
        _ = try answer(session, request: request, thenServe: device)
    }

    /// libfuse's answer to `request`, written into a pipe instead of the device; the session
    /// is then pointed at `device`.
    private static func answer(
        _ session: OpaquePointer, request: [UInt8], thenServe device: Int32
    ) throws(FUSEError) -> [UInt8] {
        var ends: [Int32] = [-1, -1]
        do { try syscall { pipe(&ends) } } catch {
            throw FUSEError(code: .sessionCreation, errno: error, message: "pipe")
        }
        defer {
            close(ends[0])
            close(ends[1])
        }
        try attach(session, ends[1])
        process(session, request)
        try attach(session, device)
        // libfuse wrote its whole answer (well under a pipe's capacity) before returning; an
        // empty pipe would block, so look first.
        var available: Int32 = 0
        guard ioctl(ends[0], UInt(FIONREAD), &available) == 0, available > 0 else { return [] }
        var bytes = [UInt8](repeating: 0, count: Int(available))
        let count = (try? FileIO.read(ends[0], into: &bytes)) ?? 0
        return Array(bytes[0..<count])
    }

    /// Points the session at descriptor `fd` (libfuse takes `/dev/fd/N` as an open descriptor
    /// and only records it).
    static func attach(_ session: OpaquePointer, _ fd: Int32) throws(FUSEError) {
        guard fuse_session_mount(session, "/dev/fd/\(fd)") == 0 else {
            throw FUSEError(code: .mount, message: "libfuse does not accept /dev/fd/\(fd)")
        }
    }

    /// Has libfuse process one request held in memory.
    static func process(_ session: OpaquePointer, _ request: [UInt8]) {
        var bytes = request
        bytes.withUnsafeMutableBytes { raw in
            var buffer = fuse_buf()
            buffer.size = raw.count
            buffer.mem = raw.baseAddress
            buffer.fd = -1
            fuse_session_process_buf(session, &buffer)
        }
    }

    /// Reads the INIT request the kernel queued when the descriptor was mounted.
    static func readRequest(_ fd: Int32) throws(FUSEError) -> [UInt8] {
        // The kernel refuses reads smaller than what its largest request could need.
        var buffer = [UInt8](repeating: 0, count: (1 << 20) + 2 * 4096)
        let count: Int
        do {
            count = try FileIO.read(fd, into: &buffer)
        } catch {
            throw FUSEError(code: .sessionCreation, errno: error, message: "cannot read the INIT request")
        }
        let request = Array(buffer[0..<count])
        guard FUSEInitRecord.isInitRequest(request) else {
            throw FUSEError(code: .sessionCreation, message: "the first request on the descriptor is not INIT")
        }
        return request
    }

    private static func word(_ bytes: [UInt8], _ offset: Int) -> UInt32 {
        UInt32(bytes[offset]) | UInt32(bytes[offset + 1]) << 8 | UInt32(bytes[offset + 2]) << 16
            | UInt32(bytes[offset + 3]) << 24
    }

    private static func setWord(_ bytes: inout [UInt8], _ offset: Int, _ value: UInt32) {
        for index in 0..<4 { bytes[offset + index] = UInt8(truncatingIfNeeded: value >> (8 * UInt32(index))) }
    }
}
