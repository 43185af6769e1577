//
// vineyard-csi: FUSEKit
//
// Errno+Reply.swift: the error a request is answered with.

// A file system's methods throw Errno, so a module that implements one with FUSEKit gets the
// type with FUSEKit rather than importing POSIXCore for it.
@_exported import POSIXCore

extension Errno {
    /// The value sent to the kernel: positive, never zero (anything else is ``Errno/io``).
    var replyValue: Int32 {
        rawValue > 0 ? rawValue : Errno.io.rawValue
    }
}
