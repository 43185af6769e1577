/// Parses and prints byte sizes the way Kubernetes quantities write them (`4Gi`, `512Mi`, `1G`).
public enum ByteCount {
    private static let binarySuffixes: [(String, Int)] = [
        ("Ki", 1 << 10), ("Mi", 1 << 20), ("Gi", 1 << 30), ("Ti", 1 << 40), ("Pi", 1 << 50),
    ]
    private static let decimalSuffixes: [(String, Int)] = [
        ("k", 1_000), ("K", 1_000), ("M", 1_000_000), ("G", 1_000_000_000), ("T", 1_000_000_000_000),
    ]

    /// Parses a non-negative size such as `4Gi`, `100M` or `65536`; nil when malformed or too large.
    public static func parse(_ text: String) -> Int? {
        var digits = Substring(text)
        var multiplier = 1
        for (suffix, value) in binarySuffixes + decimalSuffixes where text.hasSuffix(suffix) {
            digits = text.dropLast(suffix.count)
            multiplier = value
            break
        }
        guard !digits.isEmpty, digits.allSatisfy(\.isASCII), let number = Int(digits), number >= 0 else { return nil }
        let (product, overflow) = number.multipliedReportingOverflow(by: multiplier)
        return overflow ? nil : product
    }

    /// Prints the largest binary unit that divides the size exactly (`4Gi`, `1536Mi`, `123`).
    public static func format(_ bytes: Int) -> String {
        for (suffix, value) in binarySuffixes.reversed() where bytes != 0 && bytes % value == 0 {
            return "\(bytes / value)\(suffix)"
        }
        return "\(bytes)"
    }
}
