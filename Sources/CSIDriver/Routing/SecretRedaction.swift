import Foundation
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
            let tree = try? JSONSerialization.jsonObject(with: json),
            let output = try? JSONSerialization.data(withJSONObject: redact(tree), options: [.sortedKeys]),
            let text = String(data: output, encoding: .utf8)
        else { return "<\(type(of: message).protoMessageName) not renderable>" }
        return text
    }

    private static func redact(_ value: Any) -> Any {
        if let object = value as? [String: Any] {
            var result: [String: Any] = [:]
            for (key, child) in object {
                if secretFieldNames.contains(key), let secrets = child as? [String: Any] {
                    result[key] = secrets.mapValues { _ in mask }
                } else {
                    result[key] = redact(child)
                }
            }
            return result
        }
        if let array = value as? [Any] { return array.map(redact) }
        return value
    }
}
