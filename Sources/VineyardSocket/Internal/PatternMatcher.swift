// vineyard-csi: VineyardSocket
// PatternMatcher.swift: vineyard's listing filters (glob or regular expression).

import VineyardIPC
import Glibc

/// Matches strings against a listing pattern: a shell glob (`fnmatch(3)`, where `*` also
/// matches `/` as in vineyardd) or, with `regex`, a POSIX extended regular expression that must
/// match the whole string (vineyardd uses `std::regex_match`).
final class PatternMatcher {
    private let glob: String?
    private var regex = regex_t()
    private let hasRegex: Bool

    /// - Throws: ``IPCError`` (``IPCStatusCode/invalid``) for a regular expression that does not
    ///   compile.
    init(_ pattern: IPCPattern) throws(IPCError) {
        if pattern.isRegex {
            glob = nil
            let anchored = "^(" + pattern.pattern + ")$"
            let code = regcomp(&regex, anchored, REG_EXTENDED | REG_NOSUB)
            guard code == 0 else {
                var buffer = [CChar](repeating: 0, count: 256)
                regerror(code, &regex, &buffer, buffer.count)
                throw IPCError(.invalid, "invalid regular expression \(pattern.pattern.debugDescription): \(String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))")
            }
            hasRegex = true
        } else {
            glob = pattern.pattern
            hasRegex = false
        }
    }

    deinit {
        if hasRegex { regfree(&regex) }
    }

    func matches(_ text: String) -> Bool {
        if let glob { return fnmatch(glob, text, 0) == 0 }
        return regexec(&regex, text, 0, nil, 0) == 0
    }
}
