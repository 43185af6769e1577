// vineyard-csi: VineyardObjectsTests
// JSONValueTests.swift: exact integers and round trips of vineyard metadata.

import VineyardObjects
import Testing

@Suite struct JSONValueTests {
    @Test func keepsSixtyFourBitIntegersExact() throws {
        let text =
            #"{"id":16753960362562289664,"signature":9223372036854775808,"neg":-1,"min":-9223372036854775808,"max":18446744073709551615}"#
        let value = try JSONValue(parsing: text)
        #expect(value["id"]?.uint64Value == 16_753_960_362_562_289_664)
        #expect(value["signature"] == .uint(9_223_372_036_854_775_808))
        #expect(value["neg"] == .int(-1))
        #expect(value["min"] == .int(Int64.min))
        #expect(value["max"]?.uint64Value == UInt64.max)
        #expect(try JSONValue(parsing: value.serialized()) == value)
        #expect(
            value.serialized()
                == #"{"id":16753960362562289664,"max":18446744073709551615,"min":-9223372036854775808,"neg":-1,"signature":9223372036854775808}"#
        )
    }

    @Test func integerCasesCompareByValue() {
        #expect(JSONValue.int(5) == JSONValue.uint(5))
        #expect(JSONValue(integer: UInt64(5)) == .int(5))
        #expect(JSONValue.int(-1) != JSONValue.uint(UInt64.max))
        var set: Set<JSONValue> = [.int(7)]
        set.insert(.uint(7))
        #expect(set.count == 1)
    }

    @Test func roundTripsEveryKind() throws {
        let value: JSONValue = [
            "null": nil, "t": true, "f": false, "i": 42, "d": 1.5, "e": 1e-7, "big": 1e300,
            "s": "tab\there \"quoted\" back\\slash \u{1} é 😀", "a": [1, "two", [3.0], [:]], "o": ["k": ["nested": []]],
            "jsonInString": "[2, 3]",
        ]
        let text = value.serialized()
        #expect(try JSONValue(parsing: text) == value)
        #expect(try JSONValue(parsing: value.serializedBytes()) == value)
    }

    @Test func parsesEscapesAndWhitespace() throws {
        let value = try JSONValue(
            parsing: " { \"a\" : [ 1 , 2.50 , -0.5e2 ] , \"u\" : \"\\u00e9\\ud83d\\ude00\\n\\/\" } ")
        #expect(value["a"] == [1, 2.5, -50.0])
        #expect(value["u"] == "é😀\n/")
    }

    @Test func rejectsInvalidText() {
        for text in [
            "", "{", "[1,]", "{\"a\"}", "01", "1.", "-", "nul", "\"unterminated", "[1] x", "{\"a\":1,}", "\"\u{1}\"",
        ] {
            #expect(throws: JSONParseError.self, "\(text)") { try JSONValue(parsing: text) }
        }
    }

    @Test func deepNestingIsBounded() {
        let deep = String(repeating: "[", count: 600) + String(repeating: "]", count: 600)
        #expect(throws: JSONParseError.self) { try JSONValue(parsing: deep) }
        let fine = String(repeating: "[", count: 100) + String(repeating: "]", count: 100)
        #expect((try? JSONValue(parsing: fine)) != nil)
    }

    @Test func largeIntegersBeyondSixtyFourBitsBecomeDoubles() throws {
        #expect(try JSONValue(parsing: "18446744073709551616") == .double(18_446_744_073_709_551_616))
        // -2^63 - 1 does not fit Int64; the nearest Double is -2^63.
        #expect(try JSONValue(parsing: "-9223372036854775809") == .double(-9_223_372_036_854_775_808))
    }
}
