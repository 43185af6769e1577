// vineyard-csi: VineyardObjects
// JSONValue.swift: a small JSON value type that keeps 64-bit integers exact.

/// A JSON value, as found in vineyard metadata trees.
///
/// Integers stay exact: vineyard writes object identifiers and signatures as unsigned 64-bit
/// JSON numbers (up to and above 2^63) and instance ids as negative numbers in places, so a
/// path through `Double` would corrupt them. ``int(_:)`` holds every integer that fits in
/// `Int64`; ``uint(_:)`` is used only for integers above `Int64.max`. Equality and hashing treat
/// `.int(5)` and `.uint(5)` as the same number, so either spelling compares correctly; the
/// parser and ``init(integer:)`` always produce the canonical one.
///
/// Object keys are unordered here. ``serialized()`` writes them sorted, as vineyardd does.
public enum JSONValue: Sendable {
    /// `null`.
    case null
    /// `true` or `false`.
    case bool(Bool)
    /// An integer that fits in `Int64`.
    case int(Int64)
    /// An integer above `Int64.max` (for example a blob identifier with bit 63 set).
    case uint(UInt64)
    /// A number with a fraction or an exponent.
    case double(Double)
    /// A string.
    case string(String)
    /// An array.
    case array([JSONValue])
    /// An object.
    case object([String: JSONValue])

    /// The canonical case for an unsigned integer: ``int(_:)`` when it fits, else ``uint(_:)``.
    ///
    /// - Parameter integer: the value.
    public init(integer: UInt64) {
        self = integer <= UInt64(Int64.max) ? .int(Int64(integer)) : .uint(integer)
    }

    /// The canonical case for a signed integer.
    ///
    /// - Parameter integer: the value.
    public init(integer: Int) {
        self = .int(Int64(integer))
    }

    /// The value as a signed integer, if it is an integer that fits `Int64`.
    public var int64Value: Int64? {
        switch self {
        case .int(let value): return value
        default: return nil
        }
    }

    /// The value as an unsigned integer, if it is a non-negative integer.
    public var uint64Value: UInt64? {
        switch self {
        case .int(let value): return value >= 0 ? UInt64(value) : nil
        case .uint(let value): return value
        default: return nil
        }
    }

    /// The value as a `Double`, for any number (integers convert, possibly rounding).
    public var doubleValue: Double? {
        switch self {
        case .int(let value): return Double(value)
        case .uint(let value): return Double(value)
        case .double(let value): return value
        default: return nil
        }
    }

    /// The value if it is a string.
    public var stringValue: String? {
        if case .string(let value) = self { return value }
        return nil
    }

    /// The value if it is a boolean.
    public var boolValue: Bool? {
        if case .bool(let value) = self { return value }
        return nil
    }

    /// The elements if the value is an array.
    public var arrayValue: [JSONValue]? {
        if case .array(let value) = self { return value }
        return nil
    }

    /// The members if the value is an object.
    public var objectValue: [String: JSONValue]? {
        if case .object(let value) = self { return value }
        return nil
    }

    /// Looks a key up when the value is an object.
    ///
    /// - Parameter key: the member name.
    /// - Returns: the member, or `nil` if the value is not an object or lacks the key.
    public subscript(key: String) -> JSONValue? {
        if case .object(let members) = self { return members[key] }
        return nil
    }
}

// MARK: - Equality and hashing

extension JSONValue: Hashable {
    /// Structural equality; integers compare by numeric value whatever their case.
    public static func == (lhs: JSONValue, rhs: JSONValue) -> Bool {
        switch (lhs, rhs) {
        case (.null, .null): return true
        case (.bool(let a), .bool(let b)): return a == b
        case (.int(let a), .int(let b)): return a == b
        case (.uint(let a), .uint(let b)): return a == b
        case (.int(let a), .uint(let b)), (.uint(let b), .int(let a)): return a >= 0 && UInt64(a) == b
        case (.double(let a), .double(let b)): return a == b
        case (.string(let a), .string(let b)): return a == b
        case (.array(let a), .array(let b)): return a == b
        case (.object(let a), .object(let b)): return a == b
        default: return false
        }
    }

    /// Hashes consistently with ``==(_:_:)``.
    public func hash(into hasher: inout Hasher) {
        switch self {
        case .null: hasher.combine(0)
        case .bool(let value): hasher.combine(1); hasher.combine(value)
        case .int(let value):
            if value >= 0 {
                hasher.combine(2); hasher.combine(UInt64(value))
            } else {
                hasher.combine(3); hasher.combine(value)
            }
        case .uint(let value): hasher.combine(2); hasher.combine(value)
        case .double(let value): hasher.combine(4); hasher.combine(value)
        case .string(let value): hasher.combine(5); hasher.combine(value)
        case .array(let value): hasher.combine(6); hasher.combine(value)
        case .object(let value): hasher.combine(7); hasher.combine(value)
        }
    }
}

// MARK: - Literals

extension JSONValue: ExpressibleByNilLiteral, ExpressibleByBooleanLiteral, ExpressibleByIntegerLiteral,
    ExpressibleByFloatLiteral, ExpressibleByStringLiteral, ExpressibleByArrayLiteral,
    ExpressibleByDictionaryLiteral
{
    /// `nil` is ``null``.
    public init(nilLiteral: ()) { self = .null }
    /// A boolean literal is ``bool(_:)``.
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    /// An integer literal is ``int(_:)``.
    public init(integerLiteral value: Int64) { self = .int(value) }
    /// A floating-point literal is ``double(_:)``.
    public init(floatLiteral value: Double) { self = .double(value) }
    /// A string literal is ``string(_:)``.
    public init(stringLiteral value: String) { self = .string(value) }
    /// An array literal is ``array(_:)``.
    public init(arrayLiteral elements: JSONValue...) { self = .array(elements) }
    /// A dictionary literal is ``object(_:)``; a repeated key keeps its last value.
    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        self = .object(Dictionary(elements, uniquingKeysWith: { _, last in last }))
    }
}
