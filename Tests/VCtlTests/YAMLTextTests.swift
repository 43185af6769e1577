import Foundation
import Testing
import Yams

@testable import VCtl

/// vctl's YAML writer, read back by Yams: every string stays a string, whatever it looks like.
@Suite struct YAMLTextTests {
    static let awkwardStrings = [
        "yes", "No", "ON", "off", "y", "n", "true", "False", "null", "~", "", "=", "<<",
        "0660", "1.30", "1e3", "0x1F", "0b101", "0o17", "12:30", "2001-12-14", "-1", "+1", ".5", ".inf", "-.inf", ".NaN",
        "-", "- a", "--flag=x", "-x", "a: b", "a #b", "#x", "@x", "`x", "*x", "&x", "!x", "|x", ">x", "%x", "?x", ":x",
        "'x'", "\"x\"", "[x]", "{x}", "a,b", "key:", " leading", "trailing ", "line\nbreak", "tab\there", "ünïcødé",
        "back\\slash", "\u{7}bell", "1Gi", "4608Mi", "$(KUBE_NODE_NAME)", "unix:///csi/csi.sock", "v1",
        "k8s.v6d.io/vineyard/namespace", "---", "...",
    ]

    @Test(arguments: awkwardStrings)
    func stringsRoundTripAsStrings(_ text: String) throws {
        let value: YAMLValue = [
            "scalar": .string(text), "block": [.string(text)], "flow": .flowSequence([text, "x"]),
        ]
        let parsed = try #require(try Yams.load(yaml: value.yamlText) as? [String: Any], "\(value.yamlText)")
        #expect(parsed["scalar"] as? String == text, "\(value.yamlText)")
        #expect(parsed["block"] as? [String] == [text], "\(value.yamlText)")
        #expect(parsed["flow"] as? [String] == [text, "x"], "\(value.yamlText)")
        let keyed = try #require(try Yams.load(yaml: YAMLValue.mapping([YAMLEntry(key: text, value: 1)]).yamlText) as? [String: Any])
        #expect(keyed[text] as? Int == 1)
    }

    @Test func plainStringsStayPlain() {
        for text in ["--csi-address=/csi/csi.sock", "vineyard-system.vineyardd-sample.csi", "$(NAMESPACE)", "4608Mi", "v1"] {
            #expect(YAMLWriter.scalar(text) == text)
        }
    }

    @Test func typesNestingCommentsAndOmissions() throws {
        let value: YAMLValue = [
            "count": 3,
            "enabled": .commented("a comment\nover two lines", true),
            "gone": .omitted,
            "empty": [:],
            "none": [],
            "list": [
                ["name": "first", "nested": ["deep": ["x", .omitted, "y"]]],
                .commented("second item", ["name": "second"]),
                .omitted,
                ["a", "b"],
            ],
        ]
        let text = value.yamlText
        #expect(text.contains("  # a comment\n") == false)
        #expect(text.contains("# a comment\n# over two lines\nenabled: true\n"))
        #expect(!text.contains("gone"))
        let parsed = try #require(try Yams.load(yaml: text) as? [String: Any], "\(text)")
        #expect(parsed["count"] as? Int == 3)
        #expect(parsed["enabled"] as? Bool == true)
        #expect(parsed["gone"] == nil)
        #expect((parsed["empty"] as? [String: Any])?.isEmpty == true)
        #expect((parsed["none"] as? [Any])?.isEmpty == true)
        let list = try #require(parsed["list"] as? [Any])
        #expect(list.count == 3)
        #expect(ParsedObject.lookup(list, [0, "nested", "deep"]) as? [String] == ["x", "y"])
        #expect(ParsedObject.lookup(list, [1, "name"]) as? String == "second")
        #expect(list[2] as? [String] == ["a", "b"])
    }

    @Test func settingReplacesInPlaceOrAppends() {
        let value: YAMLValue = ["a": 1, "b": 2]
        #expect(value.setting("a", to: 3) == ["a": 3, "b": 2])
        #expect(value.setting("c", to: 4) == ["a": 1, "b": 2, "c": 4])
    }
}
