// vineyard-csi: VineyardObjectsTests
// ObjectMetaTests.swift: vineyard metadata trees.

import VineyardObjects
import Testing

@Suite struct ObjectMetaTests {
    /// The tensor tree vineyardd returns after persist and put_name (from the protocol notes).
    static let tensor =
        #"{"__name":"arr","__timestamp":1795432168415,"buffer_":{"id":"oe882062ef7800000","instance_id":0,"length":0,"nbytes":0,"transient":true,"typename":"vineyard::Blob"},"global":false,"id":"o6882062ef7c00002","instance_id":0,"nbytes":48,"order_":"\"C\"","partition_index_":"[]","shape_":"[2, 3]","signature":7530588325711708161,"transient":false,"typename":"vineyard::Tensor<double>","value_type_":"float64","value_type_meta_":"<f8"}"#

    @Test func readsVineyardTree() throws {
        let meta = try ObjectMeta(json: JSONValue(parsing: Self.tensor))
        #expect(meta.typename == "vineyard::Tensor<double>")
        #expect(meta.id == ObjectID("o6882062ef7c00002"))
        #expect(meta.nbytes == 48)
        #expect(meta.instanceID == 0)
        #expect(!meta.isTransient)
        #expect(meta["shape_"] == "[2, 3]")
        #expect(meta["signature"] == .int(7_530_588_325_711_708_161))
        let buffer = try #require(meta.members["buffer_"])
        #expect(buffer.typename == "vineyard::Blob")
        #expect(buffer.id?.isBlob == true)
        #expect(meta.blobIDs == [ObjectID("oe882062ef7800000")!])
    }

    @Test func roundTripsExactly() throws {
        let json = try JSONValue(parsing: Self.tensor)
        let meta = try ObjectMeta(json: json)
        #expect(meta.json == json)
        #expect(meta.json.serialized() == Self.tensor)
    }

    @Test func rejectsWrongShapes() {
        for text in [
            #"[1]"#, #"{"typename":1}"#, #"{"nbytes":-1}"#, #"{"transient":"yes"}"#, #"{"id":"zz"}"#,
            #"{"instance_id":"0"}"#,
        ] {
            #expect(throws: InvalidMetadata.self, "\(text)") { try ObjectMeta(json: JSONValue(parsing: text)) }
        }
    }

    @Test func blobDefaults() {
        let meta = ObjectMeta.blob(size: 14)
        #expect(
            meta.json == [
                "typename": "vineyard::Blob", "nbytes": 14, "length": 14, "instance_id": 0, "transient": true,
            ])
    }
}
