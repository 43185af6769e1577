import CSIDriver
import Testing

@Suite struct ByteCountTests {
    @Test(arguments: [
        ("4Gi", 4 << 30), ("512Mi", 512 << 20), ("1Ki", 1024), ("100M", 100_000_000), ("1G", 1_000_000_000),
        ("65536", 65536), ("0", 0),
    ])
    func parses(_ text: String, _ bytes: Int) {
        #expect(ByteCount.parse(text) == bytes)
    }

    @Test(arguments: ["", "Gi", "-1Gi", "4 Gi", "4GiB", "lots", "99999999999999999999Pi", "1.5Gi"])
    func rejects(_ text: String) {
        #expect(ByteCount.parse(text) == nil)
    }

    @Test func formatsInTheLargestExactUnit() {
        #expect(ByteCount.format(4 << 30) == "4Gi")
        #expect(ByteCount.format(1536 << 20) == "1536Mi")
        #expect(ByteCount.format(123) == "123")
        #expect(ByteCount.format(0) == "0")
    }
}

@Suite struct ClusterReferenceTests {
    @Test func parsesNamespaceAndName() throws {
        let cluster = try #require(ClusterReference(parsing: "vineyard-system/vineyardd-sample"))
        #expect(cluster.namespace == "vineyard-system")
        #expect(cluster.name == "vineyardd-sample")
        #expect(cluster.storageClassName == "vineyard-system.vineyardd-sample.csi")
        #expect(cluster.description == "vineyard-system/vineyardd-sample")
    }

    @Test(arguments: ["", "a", "a/b/c", "/b", "a/", "A/b", "a_b/c", "-a/b", "a/b-", String(repeating: "x", count: 64) + "/b"])
    func rejects(_ text: String) {
        #expect(ClusterReference(parsing: text) == nil)
    }
}
