// vineyard-csi: SharedMemoryStore
// Syscalls+Directories.swift: listing a directory, for the blob files.

import POSIXCore

extension Sys {
    /// The names of the entries of a directory (without `.` and `..`); empty if it is missing.
    static func fileNames(in path: String) throws(StoreError) -> [String] {
        do {
            return try FileIO.directoryEntries(atPath: path)
        } catch .noEntry {
            return []
        } catch {
            throw StoreError.system(operation: "opendir", path: path, errno: error)
        }
    }
}
