import ArgumentParser
import Foundation
import Testing
import Yams

@testable import VCtl

/// A Kubernetes object as Yams parsed it from vctl's output.
struct ParsedObject: @unchecked Sendable {
    // @unchecked: `raw` holds only the immutable values Yams constructs (strings, numbers,
    // arrays and dictionaries of them).
    let raw: [String: Any]

    var kind: String { self["kind"] as? String ?? "" }
    var apiVersion: String { self["apiVersion"] as? String ?? "" }
    var name: String { self["metadata", "name"] as? String ?? "" }
    var namespace: String? { self["metadata", "namespace"] as? String }

    /// The value at `path`: strings index mappings, integers index sequences.
    subscript(_ path: any PathComponent...) -> Any? { Self.lookup(raw, path) }

    static func lookup(_ root: Any?, _ path: [any PathComponent]) -> Any? {
        var current = root
        for component in path {
            switch component {
            case let key as String: current = (current as? [String: Any])?[key]
            case let index as Int:
                guard let items = current as? [Any], items.indices.contains(index) else { return nil }
                current = items[index]
            default: return nil
            }
        }
        return current
    }

    /// The pod template's containers of a Deployment or DaemonSet.
    var containers: [ParsedContainer] {
        (self["spec", "template", "spec", "containers"] as? [Any] ?? []).compactMap {
            ($0 as? [String: Any]).map(ParsedContainer.init)
        }
    }

    func container(_ name: String) throws -> ParsedContainer {
        try #require(containers.first { $0.name == name }, "\(kind)/\(self.name) has no container \(name)")
    }

    /// The pod template's volumes by name.
    var volumes: [String: [String: Any]] {
        var result: [String: [String: Any]] = [:]
        for case let volume as [String: Any] in self["spec", "template", "spec", "volumes"] as? [Any] ?? [] {
            if let name = volume["name"] as? String { result[name] = volume }
        }
        return result
    }
}

struct ParsedContainer: @unchecked Sendable {
    let raw: [String: Any]

    var name: String { raw["name"] as? String ?? "" }
    var image: String? { raw["image"] as? String }
    var imagePullPolicy: String? { raw["imagePullPolicy"] as? String }
    var args: [String] { raw["args"] as? [String] ?? [] }
    /// The names of the container's environment variables, in order.
    var environmentNames: [String] { (raw["env"] as? [[String: Any]] ?? []).compactMap { $0["name"] as? String } }
    subscript(_ path: any PathComponent...) -> Any? { ParsedObject.lookup(raw, path) }

    /// The value of `--flag=value` in the arguments.
    func argument(_ flag: String) -> String? {
        args.first { $0.hasPrefix("\(flag)=") }.map { String($0.dropFirst(flag.count + 1)) }
    }

    var volumeMounts: [[String: Any]] { raw["volumeMounts"] as? [[String: Any]] ?? [] }

    func mountPath(of volume: String) -> String? {
        volumeMounts.first { $0["name"] as? String == volume }?["mountPath"] as? String
    }
}

protocol PathComponent {}
extension String: PathComponent {}
extension Int: PathComponent {}

enum DeployFixtures {
    /// Parses every document of a YAML stream; fails the test on a document that is not a mapping.
    static func parse(_ yaml: String) throws -> [ParsedObject] {
        var objects: [ParsedObject] = []
        for document in try Yams.load_all(yaml: yaml) {
            let mapping = try #require(document as? [String: Any], "a document is not a mapping: \(document)")
            objects.append(ParsedObject(raw: mapping))
        }
        return objects
    }

    /// What `vctl deploy csidriver <arguments>` renders, parsed.
    static func render(_ arguments: [String]) throws -> [ParsedObject] {
        try parse(CSIDriverManifests.render(try installation(arguments)).yamlStream)
    }

    /// The installation `vctl deploy csidriver <arguments>` describes, after validation.
    static func installation(_ arguments: [String]) throws -> CSIDriverInstallation {
        let command = try VCtl.parseAsRoot(["deploy", "csidriver"] + arguments)
        let deploy = try #require(command as? DeployCommand.CSIDriverCommand)
        return try deploy.resolvedInstallation()
    }

    static func object(_ objects: [ParsedObject], kind: String, name: String? = nil) throws -> ParsedObject {
        try #require(
            objects.first { $0.kind == kind && (name == nil || $0.name == name) },
            "no \(kind) \(name ?? "") in the manifests"
        )
    }

    /// The repository's root, found from this file's path.
    static var repositoryRoot: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }
}
