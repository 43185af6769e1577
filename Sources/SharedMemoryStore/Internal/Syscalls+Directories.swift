// vineyard-csi: SharedMemoryStore
// Syscalls+Directories.swift: listing a directory, for the blob files.

import Glibc

extension Sys {
    /// The names of the entries of a directory (without `.` and `..`); empty if it is missing.
    static func fileNames(in path: String) throws(StoreError) -> [String] {
        guard let directory = opendir(path) else {
            if errno == ENOENT { return [] }
            throw StoreError.system(operation: "opendir", path: path, errno: errno)
        }
        defer { closedir(directory) }
        var names: [String] = []
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }
}
