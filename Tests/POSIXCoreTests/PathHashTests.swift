//
// vineyard-csi: POSIXCoreTests
//

import POSIXCore
import Testing

@Suite("PathHash")
struct PathHashTests {
    /// FNV-1a 64 reference values: names derived from them must match what earlier runs wrote.
    @Test("the FNV-1a 64 values")
    func referenceValues() {
        #expect(PathHash("").value == 0xcbf2_9ce4_8422_2325)
        #expect(PathHash("a").value == 0xaf63_dc4c_8601_ec8c)
        #expect(PathHash("foobar").value == 0x8594_4171_f739_67e8)
    }

    @Test("sixteen zero-padded hex digits")
    func description() {
        #expect(PathHash("").description == "cbf29ce484222325")
        #expect(PathHash("/var/lib/kubelet/pods/p/volumes/x/mount").description.count == 16)
        #expect(PathHash("/a") != PathHash("/b"))
    }
}
