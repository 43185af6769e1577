// vineyard-csi: VineyardIPC
// JSONFields.swift: typed access to the members of a message, with errors that name the field.

import VineyardObjects

/// The members of one message, read with typed accessors that throw ``IPCError`` naming the
/// message type and the field, so a malformed request gets a precise `Invalid` reply.
struct JSONFields {
    let type: String
    let members: [String: JSONValue]

    init(_ json: JSONValue) throws(IPCError) {
        guard case .object(let members) = json else {
            throw IPCError(.invalid, "a message must be a JSON object")
        }
        guard let type = members["type"]?.stringValue else {
            throw IPCError(.invalid, "the message has no string \"type\"")
        }
        self.type = type
        self.members = members
    }

    subscript(key: String) -> JSONValue? { members[key] }

    private func failure(_ key: String, _ expected: String) -> IPCError {
        IPCError(.invalid, "\(type): \"\(key)\" must be \(expected)")
    }

    func uint64(_ key: String) throws(IPCError) -> UInt64 {
        guard let value = members[key]?.uint64Value else { throw failure(key, "an unsigned integer") }
        return value
    }

    func objectID(_ key: String) throws(IPCError) -> ObjectID {
        ObjectID(try uint64(key))
    }

    func int(_ key: String, default fallback: Int? = nil) throws(IPCError) -> Int {
        guard let value = members[key] else {
            if let fallback { return fallback }
            throw failure(key, "an integer")
        }
        guard let number = value.int64Value, let result = Int(exactly: number) else { throw failure(key, "an integer") }
        return result
    }

    func string(_ key: String, default fallback: String? = nil) throws(IPCError) -> String {
        guard let value = members[key] else {
            if let fallback { return fallback }
            throw failure(key, "a string")
        }
        guard let text = value.stringValue else { throw failure(key, "a string") }
        return text
    }

    func bool(_ key: String, default fallback: Bool) throws(IPCError) -> Bool {
        guard let value = members[key], value != .null else { return fallback }
        guard let flag = value.boolValue else { throw failure(key, "a boolean") }
        return flag
    }

    /// An array of unsigned integers; a single integer counts as a one-element array (some
    /// vineyard commands accept both).
    func objectIDs(_ key: String) throws(IPCError) -> [ObjectID] {
        guard let value = members[key] else { throw failure(key, "an array of object ids") }
        if let single = value.uint64Value { return [ObjectID(single)] }
        guard let array = value.arrayValue else { throw failure(key, "an array of object ids") }
        var ids: [ObjectID] = []
        ids.reserveCapacity(array.count)
        for element in array {
            guard let raw = element.uint64Value else { throw failure(key, "an array of object ids") }
            ids.append(ObjectID(raw))
        }
        return ids
    }

    /// Vineyard's indexed form: `"num": n, "0": x0, …, "n-1": xn-1`.
    func indexed(countKey: String = "num", limit: Int) throws(IPCError) -> [JSONValue] {
        let count = try int(countKey)
        guard count >= 0, count <= limit else { throw failure(countKey, "between 0 and \(limit)") }
        var values: [JSONValue] = []
        values.reserveCapacity(count)
        for index in 0..<count {
            guard let value = members[String(index)] else { throw failure(String(index), "present") }
            values.append(value)
        }
        return values
    }
}
