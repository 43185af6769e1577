// vineyard-csi: VineyardObjects
// InvalidMetadata.swift: why a JSON tree is not vineyard metadata.

/// A JSON tree that does not have the shape of vineyard metadata (see ``ObjectMeta/init(json:)``).
public struct InvalidMetadata: Error, Equatable, Sendable, CustomStringConvertible {
    /// What is wrong with the tree.
    public var reason: String

    /// Creates an error.
    public init(_ reason: String) {
        self.reason = reason
    }

    public var description: String { "invalid metadata: \(reason)" }
}
