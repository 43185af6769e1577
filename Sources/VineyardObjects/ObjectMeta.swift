// vineyard-csi: VineyardObjects
// ObjectMeta.swift: vineyard's object metadata tree.

/// The metadata of a vineyard object: a typed tree of attributes and member objects.
///
/// Vineyard describes every object with a JSON object. A few keys are special and get their own
/// properties here (`typename`, `nbytes`, `instance_id`, `transient`, `id`); every other
/// non-object value is an attribute (``fields``), and every JSON-object value is a member
/// object (``members``), itself a complete metadata tree with its own `id`. For example a
/// `vineyard::Tensor<double>` has fields `shape_`, `value_type_`, … and a member `buffer_`
/// that is the `vineyard::Blob` holding the bytes.
///
/// ``init(json:)`` and ``json`` convert to and from that vineyard form so trees round-trip
/// exactly; fields keep their JSON values verbatim (including vineyard's JSON-in-a-string
/// attributes such as `"shape_": "[2, 3]"`).
///
/// A key in ``fields`` that collides with one of the dedicated properties is ignored by ``json``:
/// the property wins.
public struct ObjectMeta: Sendable, Hashable {
    /// The object's identifier (`"id"`), assigned by the store; `nil` until then.
    public var id: ObjectID?
    /// The C++-style type name (`"typename"`), e.g. `vineyard::Blob` or `vineyard::Tensor<double>`.
    public var typename: String
    /// The payload size hint (`"nbytes"`).
    public var nbytes: Int
    /// The owning vineyard instance (`"instance_id"`); `UInt64.max` means unspecified.
    public var instanceID: UInt64
    /// Vineyard's `transient` flag: `true` until the object is persisted.
    ///
    /// The store keeps every sealed object across restarts whatever this flag says; the flag
    /// records vineyard's notion of persistence (for example, vineyard only names persisted
    /// objects), which the socket layer enforces.
    public var isTransient: Bool
    /// Plain attributes: every key whose value is not a JSON object.
    public var fields: [String: JSONValue]
    /// Member objects, keyed by attribute name.
    public var members: [String: ObjectMeta]

    /// Creates metadata.
    ///
    /// - Parameters:
    ///   - typename: the type name.
    ///   - nbytes: the payload size hint.
    ///   - instanceID: the owning instance.
    ///   - isTransient: vineyard's transient flag.
    ///   - fields: plain attributes.
    ///   - members: member objects.
    ///   - id: the identifier, normally left `nil` for the store to assign.
    public init(
        typename: String,
        nbytes: Int = 0,
        instanceID: UInt64 = 0,
        isTransient: Bool = true,
        fields: [String: JSONValue] = [:],
        members: [String: ObjectMeta] = [:],
        id: ObjectID? = nil
    ) {
        self.id = id
        self.typename = typename
        self.nbytes = nbytes
        self.instanceID = instanceID
        self.isTransient = isTransient
        self.fields = fields
        self.members = members
    }

    /// The metadata vineyard synthesizes for a bare blob of `size` bytes: typename
    /// `vineyard::Blob`, `nbytes` and a `length` field equal to the size.
    ///
    /// - Parameters:
    ///   - size: the blob's length in bytes.
    ///   - instanceID: the owning instance.
    /// - Returns: the metadata.
    public static func blob(size: Int, instanceID: UInt64 = 0) -> ObjectMeta {
        ObjectMeta(
            typename: "vineyard::Blob", nbytes: size, instanceID: instanceID,
            fields: ["length": JSONValue(integer: size)])
    }

    /// Every member's identifier, at any depth of the tree (not the root's own).
    public var memberIDs: Set<ObjectID> {
        var ids: Set<ObjectID> = []
        var queue = Array(members.values)
        while let member = queue.popLast() {
            if let id = member.id { ids.insert(id) }
            queue.append(contentsOf: member.members.values)
        }
        return ids
    }

    /// The keys that have dedicated properties.
    public static let reservedKeys: Set<String> = ["id", "typename", "nbytes", "instance_id", "transient"]

    /// Reads a vineyard metadata tree.
    ///
    /// `typename` must be a string if present (it defaults to empty); `nbytes` and `instance_id`
    /// must be integers if present; `transient` a boolean (default `true`); `id` a string in
    /// ``ObjectID`` form. Every JSON-object value becomes a member, recursively.
    ///
    /// - Parameter json: a JSON object.
    /// - Throws: ``InvalidMetadata`` when the tree does not have that shape.
    public init(json: JSONValue) throws(InvalidMetadata) {
        guard case .object(let members) = json else { throw InvalidMetadata("metadata must be a JSON object") }
        self.init(typename: "")
        for (key, value) in members {
            switch key {
            case "typename":
                guard case .string(let name) = value else { throw InvalidMetadata("typename must be a string") }
                typename = name
            case "nbytes":
                guard let number = value.int64Value, number >= 0 else {
                    throw InvalidMetadata("nbytes must be a non-negative integer")
                }
                nbytes = Int(number)
            case "instance_id":
                guard let number = value.uint64Value else {
                    throw InvalidMetadata("instance_id must be an unsigned integer")
                }
                instanceID = number
            case "transient":
                guard case .bool(let flag) = value else { throw InvalidMetadata("transient must be a boolean") }
                isTransient = flag
            case "id":
                guard case .string(let text) = value, let parsed = ObjectID(text) else {
                    throw InvalidMetadata("id must be a string such as o0123456789abcdef")
                }
                id = parsed
            default:
                if case .object = value {
                    self.members[key] = try ObjectMeta(json: value)
                } else {
                    fields[key] = value
                }
            }
        }
    }

    /// The tree in vineyard's JSON form (see ``init(json:)``).
    public var json: JSONValue {
        var object: [String: JSONValue] = [:]
        object.reserveCapacity(fields.count + members.count + 5)
        for (key, value) in fields where !ObjectMeta.reservedKeys.contains(key) {
            object[key] = value
        }
        for (key, member) in members where !ObjectMeta.reservedKeys.contains(key) {
            object[key] = member.json
        }
        object["typename"] = .string(typename)
        object["nbytes"] = JSONValue(integer: nbytes)
        object["instance_id"] = JSONValue(integer: instanceID)
        object["transient"] = .bool(isTransient)
        if let id { object["id"] = .string(id.description) }
        return .object(object)
    }

    /// Accesses a plain attribute.
    ///
    /// - Parameter field: the attribute name.
    public subscript(field: String) -> JSONValue? {
        get { fields[field] }
        set { fields[field] = newValue }
    }

    /// Every blob identifier in the tree (this object if it is a blob, and blob members at any
    /// depth), deduplicated and in ascending order: what vineyard's `get_buffers` asks for.
    public var blobIDs: [ObjectID] {
        var found: Set<ObjectID> = []
        func visit(_ meta: ObjectMeta) {
            if let id = meta.id, id.isBlob { found.insert(id) }
            for member in meta.members.values { visit(member) }
        }
        visit(self)
        return found.sorted()
    }
}
