//
// vineyard-csi: POSIXCoreTests
//

import Glibc
import POSIXCore
import Testing

@Suite("Errno")
struct ErrnoTests {
    @Test("members carry the C values")
    func values() {
        let pairs: [(Errno, Int32)] = [
            (.noEntry, ENOENT), (.exists, EEXIST), (.notEmpty, ENOTEMPTY), (.readOnlyFileSystem, EROFS),
            (.noSpace, ENOSPC), (.nameTooLong, ENAMETOOLONG), (.invalid, EINVAL), (.notDirectory, ENOTDIR),
            (.isDirectory, EISDIR), (.permissionDenied, EACCES), (.notPermitted, EPERM), (.io, EIO),
            (.notSupported, EOPNOTSUPP), (.notImplemented, ENOSYS), (.badFileDescriptor, EBADF),
            (.crossDevice, EXDEV), (.interrupted, EINTR), (.tryAgain, EWOULDBLOCK), (.brokenPipe, EPIPE),
            (.connectionReset, ECONNRESET), (.connectionRefused, ECONNREFUSED), (.notConnected, ENOTCONN),
            (.protocolError, EPROTO), (.messageTooLong, EMSGSIZE),
        ]
        for (error, code) in pairs {
            #expect(error.rawValue == code)
        }
        #expect(Errno.noEntry.description == "No such file or directory (2)")
    }

    @Test("current is the calling thread's errno")
    func current() {
        _ = close(-1)
        #expect(Errno.current == .badFileDescriptor)
    }
}
