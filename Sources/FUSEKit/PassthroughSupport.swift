//
// vineyard-csi: FUSEKit
//
// PassthroughSupport.swift: whether this kernel and process can serve FUSE files from backing
// files, told before any mount exists.

import Glibc

/// What stands in the way of FUSE passthrough here, as far as can be told without a mount
/// (``BackingFiles/probe()`` on a connection is the proof).
public enum PassthroughSupport {
    /// The first kernel with passthrough reads, writes and mappings (protocol 7.40).
    public static let minimumKernel = (major: 6, minor: 9)

    /// `nil` when passthrough should work, otherwise why not.
    public static var obstacle: String? {
        var name = utsname()
        guard uname(&name) == 0 else { return "cannot read the kernel release" }
        let release = withUnsafeBytes(of: &name.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        let numbers = release.split(whereSeparator: { !$0.isNumber }).prefix(2).compactMap { Int($0) }
        guard numbers.count == 2 else { return "unknown kernel release \(release)" }
        if (numbers[0], numbers[1]) < minimumKernel {
            return "Linux \(release) predates FUSE passthrough (\(minimumKernel.major).\(minimumKernel.minor)+)"
        }
        if !hasSystemAdministration {
            return "no CAP_SYS_ADMIN, which registering backing files needs"
        }
        return nil
    }

    /// Whether `CAP_SYS_ADMIN` (bit 21) is in this process's effective set.
    private static var hasSystemAdministration: Bool {
        guard let file = fopen("/proc/self/status", "r") else { return false }
        defer { fclose(file) }
        var line: UnsafeMutablePointer<CChar>?
        var capacity = 0
        defer { free(line) }
        while getline(&line, &capacity, file) > 0, let line {
            let text = String(cString: line)
            guard text.hasPrefix("CapEff:") else { continue }
            let hex = text.dropFirst("CapEff:".count).trimmingPrefix(while: { $0 == " " || $0 == "\t" })
            guard let mask = UInt64(hex.prefix { $0.isHexDigit }, radix: 16) else { return false }
            return mask & (1 << 21) != 0
        }
        return false
    }
}
