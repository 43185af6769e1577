//
// vineyard-csi: VolumeFS
//
// StateFileMapping.swift: the shared, sparse files a mount's state lives in across processes.

import Glibc
import POSIXCore

/// Opening and mapping the files of a mount's state (``InodeSlots``, ``BackingSlots``):
/// `MAP_SHARED`, so plain stores reach the file and survive the process.
enum StateFileMapping {
    /// Opens (creating) the file at `path`; the caller closes the descriptor.
    static func open(_ path: String) throws(VolumeFSError) -> Int32 {
        do {
            return try syscall { Glibc.open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600) }
        } catch {
            throw VolumeFSError(code: .store, message: "cannot open \(path): \(error)")
        }
    }

    /// Sizes the open file `fd` to `size` bytes (emptied first when `empty`: truncating to 0
    /// zeroes it without touching pages) and maps it.
    static func map(_ fd: Int32, path: String, size: Int, empty: Bool) throws(VolumeFSError) -> UnsafeMutableRawPointer {
        if empty {
            do { try syscall { ftruncate(fd, 0) } } catch {
                throw VolumeFSError(code: .store, message: "cannot reset \(path): \(error)")
            }
        }
        do { try syscall { ftruncate(fd, off_t(size)) } } catch {
            throw VolumeFSError(code: .store, message: "cannot size \(path): \(error)")
        }
        do {
            return try syscallMapping { mmap(nil, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0) }
        } catch {
            throw VolumeFSError(code: .store, message: "cannot map \(path): \(error)")
        }
    }
}
