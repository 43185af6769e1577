//
// vineyard-csi: VolumeFS
//
// VolumeFileSystem+SetID.swift: set-user-ID and set-group-ID bits dropped by writes.

import FUSEKit
import Glibc

extension VolumeFileSystem {
    /// The permissions of a file after a write by `context`, as Linux leaves them: a writer
    /// without `CAP_FSETID` (taken here as anyone but root) clears set-user-ID, and
    /// set-group-ID when the group may execute. The kernel asks for this itself (a SETATTR)
    /// before writes through the page cache, but for `direct_io` writes (write-only opens) it
    /// leaves the clearing to the file system.
    static func permissions(_ permissions: UInt32, afterWriteBy context: RequestContext) -> UInt32 {
        guard context.uid != 0 else { return permissions }
        var cleared = permissions & ~UInt32(S_ISUID)
        if cleared & UInt32(S_IXGRP) != 0 { cleared &= ~UInt32(S_ISGID) }
        return cleared
    }
}
