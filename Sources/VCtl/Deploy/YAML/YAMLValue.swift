/// A YAML tree as vctl writes Kubernetes manifests: mappings keep the order their keys were
/// written in, and any value can carry a comment that is printed above its key.
///
/// Builders write it with literals: `["name": "x", "replicas": 1, "args": ["--a", "--b"]]`.
/// ``omitted`` drops an entry or item, so optional parts read `flag ? value : .omitted`.
indirect enum YAMLValue: Equatable, Sendable {
    case string(String)
    case int(Int)
    case bool(Bool)
    case sequence([YAMLValue])
    /// A sequence of scalars written on one line: `[get, list, watch]`.
    case flowSequence([String])
    case mapping([YAMLEntry])
    /// `value`, with `comment` printed on the lines above its key (or above its `-` in a sequence).
    case commented(String, YAMLValue)
    /// Nothing: the entry or item is left out of the output.
    case omitted

    /// The value without its comment.
    var uncommented: YAMLValue {
        if case .commented(_, let value) = self { return value.uncommented }
        return self
    }

    var isOmitted: Bool { uncommented == .omitted }

    /// `self` with `value` set under `key`: replaces an existing entry in place, else appends.
    ///
    /// - Precondition: `self` is a mapping.
    func setting(_ key: String, to value: YAMLValue) -> YAMLValue {
        guard case .mapping(var entries) = uncommented else { preconditionFailure("setting \(key) on a non-mapping") }
        if let index = entries.firstIndex(where: { $0.key == key }) {
            entries[index].value = value
        } else {
            entries.append(YAMLEntry(key: key, value: value))
        }
        return .mapping(entries)
    }
}

/// One `key: value` of a mapping.
struct YAMLEntry: Equatable, Sendable {
    var key: String
    var value: YAMLValue
}

extension YAMLValue: ExpressibleByStringInterpolation {
    init(stringLiteral value: String) { self = .string(value) }
}

extension YAMLValue: ExpressibleByIntegerLiteral {
    init(integerLiteral value: Int) { self = .int(value) }
}

extension YAMLValue: ExpressibleByBooleanLiteral {
    init(booleanLiteral value: Bool) { self = .bool(value) }
}

extension YAMLValue: ExpressibleByArrayLiteral {
    init(arrayLiteral elements: YAMLValue...) { self = .sequence(elements) }
}

extension YAMLValue: ExpressibleByDictionaryLiteral {
    /// Keeps the literal's order; a repeated key is a programming error.
    init(dictionaryLiteral elements: (String, YAMLValue)...) {
        var seen = Set<String>()
        for (key, _) in elements { precondition(seen.insert(key).inserted, "duplicate YAML key \(key)") }
        self = .mapping(elements.map { YAMLEntry(key: $0.0, value: $0.1) })
    }
}
