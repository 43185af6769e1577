import FoundationEssentials
import Glibc
import SwiftProtobuf

/// Renders messages for logs with every `csi_secret` field's values replaced.
///
/// In csi.proto every field marked `(csi_secret) = true` is a map named `secrets`, so the
/// rendering walks the JSON form and masks the values of every `secrets` object while keeping
/// its keys (which secret was passed is useful in a log; its value never is).
enum SecretRedaction {
    static let secretFieldNames: Set<String> = ["secrets"]
    static let mask = "***stripped***"

    static func redactedJSON(_ message: some SwiftProtobuf.Message) -> String {
        guard let json = try? message.jsonUTF8Data(),
            let tree = try? JSONDecoder().decode(JSONTree.self, from: json)
        else { return "<\(type(of: message).protoMessageName) not renderable>" }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        guard let output = try? encoder.encode(redact(tree)) else {
            return "<\(type(of: message).protoMessageName) not renderable>"
        }
        return String(decoding: output, as: UTF8.self)
    }

    private static func redact(_ value: JSONTree) -> JSONTree {
        switch value {
        case .object(let object):
            var result: [String: JSONTree] = [:]
            for (key, child) in object {
                if secretFieldNames.contains(key), case .object(let secrets) = child {
                    result[key] = .object(secrets.mapValues { _ in .string(mask) })
                } else {
                    result[key] = redact(child)
                }
            }
            return .object(result)
        case .array(let array): return .array(array.map(redact))
        default: return value
        }
    }
}

/// A JSON document as protobuf's JSON mapping writes it (numbers that do not fit 64 bits are
/// written as strings by that mapping, so a `Double` holds every other number).
private enum JSONTree: Codable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONTree])
    case object([String: JSONTree])

    init(from decoder: any Swift.Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode(Double.self) {
            self = .number(value)
        } else if let value = try? container.decode(String.self) {
            self = .string(value)
        } else if let value = try? container.decode([JSONTree].self) {
            self = .array(value)
        } else {
            self = .object(try container.decode([String: JSONTree].self))
        }
    }

    func encode(to encoder: any Swift.Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .null: try container.encodeNil()
        case .bool(let value): try container.encode(value)
        case .number(let value): try container.encode(value)
        case .string(let value): try container.encode(value)
        case .array(let value): try container.encode(value)
        case .object(let value): try container.encode(value)
        }
    }
}
