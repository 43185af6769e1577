// vineyard-csi: VineyardObjectsTests
// ObjectIDTests.swift: identifier formatting and parsing.

import VineyardObjects
import Testing

@Suite struct ObjectIDTests {
    @Test func printsLikeVineyard() {
        #expect(ObjectID(0x6882_062E_F7C0_0002).description == "o6882062ef7c00002")
        #expect(ObjectID(0xE882_062E_F780_0000).description == "oe882062ef7800000")
        #expect(ObjectID(0).description == "o0000000000000000")
        #expect(ObjectID.emptyBlob.description == "o8000000000000000")
        #expect(ObjectID.invalid.description == "offffffffffffffff")
    }

    @Test func parsesBack() {
        for raw: UInt64 in [0, 1, 0x6882_062E_F7C0_0002, 0xE882_062E_F780_0000, .max, 1 << 63] {
            let id = ObjectID(raw)
            #expect(ObjectID(id.description) == id)
        }
        #expect(ObjectID("oE882062EF7800000") == ObjectID(0xE882_062E_F780_0000))
        #expect(ObjectID("o1f") == ObjectID(0x1F))
    }

    @Test func rejectsMalformed() {
        for text in ["", "o", "6882062ef7c00002", "x6882062ef7c00002", "o6882062ef7c000021", "og", "o-1", " o1"] {
            #expect(ObjectID(text) == nil, "\(text)")
        }
    }

    @Test func blobBitAndOrder() {
        #expect(ObjectID(0xE882_062E_F780_0000).isBlob)
        #expect(!ObjectID(0x6882_062E_F7C0_0002).isBlob)
        #expect(ObjectID(1) < ObjectID(2))
        #expect(ObjectID(0x7FFF_FFFF_FFFF_FFFF) < ObjectID.emptyBlob)
    }
}
