extension YAMLValue {
    /// Block-style YAML for this value as one document, ending in a newline.
    ///
    /// Sequences are indented under their key, empty collections are written `{}` / `[]`, and a
    /// string is written plain only when every YAML 1.1 and 1.2 parser reads it back as the same
    /// string; otherwise it is double-quoted.
    var yamlText: String {
        let lines = YAMLWriter.lines(for: self, indent: 0)
        return lines.isEmpty ? "{}\n" : lines.joined(separator: "\n") + "\n"
    }
}

/// Writes ``YAMLValue`` trees as block YAML, line by line.
enum YAMLWriter {
    static func lines(for value: YAMLValue, indent: Int) -> [String] {
        switch value.uncommented {
        case .mapping(let entries): mappingLines(entries, indent: indent)
        case .sequence(let items): sequenceLines(items, indent: indent)
        case .omitted: []
        case let scalar: [String(repeating: " ", count: indent) + inline(scalar)]
        }
    }

    private static func mappingLines(_ entries: [YAMLEntry], indent: Int) -> [String] {
        let pad = String(repeating: " ", count: indent)
        var lines: [String] = []
        for entry in entries where !entry.value.isOmitted {
            lines += commentLines(entry.value, pad: pad)
            let key = pad + scalar(entry.key) + ":"
            let value = entry.value.uncommented
            if isBlock(value) {
                lines.append(key)
                lines += self.lines(for: value, indent: indent + 2)
            } else {
                lines.append(key + " " + inline(value))
            }
        }
        return lines
    }

    private static func sequenceLines(_ items: [YAMLValue], indent: Int) -> [String] {
        let pad = String(repeating: " ", count: indent)
        var lines: [String] = []
        for item in items where !item.isOmitted {
            lines += commentLines(item, pad: pad)
            let value = item.uncommented
            if isBlock(value) {
                // The item's first line goes after the "- "; the rest keep their indentation.
                var nested = self.lines(for: value, indent: indent + 2)
                nested[0] = pad + "- " + nested[0].dropFirst(indent + 2)
                lines += nested
            } else {
                lines.append(pad + "- " + inline(value))
            }
        }
        return lines
    }

    /// Whether `value` is written on lines of its own (a non-empty mapping or sequence).
    private static func isBlock(_ value: YAMLValue) -> Bool {
        switch value {
        case .mapping(let entries): entries.contains { !$0.value.isOmitted }
        case .sequence(let items): items.contains { !$0.isOmitted }
        default: false
        }
    }

    private static func inline(_ value: YAMLValue) -> String {
        switch value {
        case .string(let text): scalar(text)
        case .int(let number): String(number)
        case .bool(let flag): flag ? "true" : "false"
        case .mapping: "{}"
        case .sequence: "[]"
        case .flowSequence(let items): "[" + items.map(flowScalar).joined(separator: ", ") + "]"
        case .commented(_, let inner): inline(inner)
        case .omitted: preconditionFailure("omitted values are skipped before they are written")
        }
    }

    private static func commentLines(_ value: YAMLValue, pad: String) -> [String] {
        guard case .commented(let comment, let inner) = value else { return [] }
        let own = comment.split(separator: "\n", omittingEmptySubsequences: false).map {
            $0.isEmpty ? pad + "#" : pad + "# " + $0
        }
        return own + commentLines(inner, pad: pad)
    }

    // MARK: - Scalars

    /// `text` as a plain scalar when that is unambiguous, else double-quoted.
    static func scalar(_ text: String) -> String {
        isPlainSafe(text) ? text : quoted(text)
    }

    private static let plainPunctuation = Set("-_./:=$()@+,~%")
    /// Words YAML 1.1 reads as booleans or null.
    private static let reservedWords: Set<String> = [
        "y", "n", "yes", "no", "on", "off", "true", "false", "null", "~", "=", "<<",
        ".inf", "-.inf", "+.inf", ".nan",
    ]
    private static let numericCharacters = Set("0123456789abcdefABCDEFxXoO._:+-")

    static func isPlainSafe(_ text: String) -> Bool {
        guard let first = text.first, let last = text.last else { return false }
        guard text.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == " " || plainPunctuation.contains($0)) })
        else { return false }
        if first == " " || last == " " || last == ":" { return false }
        if text.contains(": ") || text.contains(" #") { return false }
        if reservedWords.contains(text.lowercased()) { return false }
        // Indicators that may not start a plain scalar; "-" may start a command-line flag.
        if "-?:,[]{}#&*!|>'\"%@`~".contains(first) {
            guard first == "-", text.wholeMatch(of: /--?[A-Za-z][^ ]*/) != nil else { return false }
        }
        // Anything a resolver could read as a number, date or sexagesimal number is quoted.
        if (first.isNumber || "+-.".contains(first)) && text.allSatisfy({ numericCharacters.contains($0) }) {
            return false
        }
        return true
    }

    /// `text` as an item of a flow sequence, where `,[]{}` also end a plain scalar.
    static func flowScalar(_ text: String) -> String {
        isPlainSafe(text) && !text.contains(where: { ",[]{}".contains($0) }) ? text : quoted(text)
    }

    static func quoted(_ text: String) -> String {
        var result = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\\": result += "\\\\"
            case "\"": result += "\\\""
            case "\n": result += "\\n"
            case "\t": result += "\\t"
            case "\r": result += "\\r"
            case _ where scalar.value < 0x20 || scalar.value == 0x7F:
                let hex = String(scalar.value, radix: 16, uppercase: true)
                result += "\\x" + String(repeating: "0", count: 2 - hex.count) + hex
            default: result.unicodeScalars.append(scalar)
            }
        }
        return result + "\""
    }
}
