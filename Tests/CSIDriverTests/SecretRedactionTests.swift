@testable import CSIDriver
import CSIProto
import Testing

@Suite struct SecretRedactionTests {
    @Test func secretValuesAreMaskedAndKeysKept() {
        var request = Csi_V1_CreateVolumeRequest()
        request.name = "pvc-1"
        request.secrets = ["password": "hunter2", "token": "s3cr3t"]
        request.parameters = ["k8s.v6d.io/vineyard/name": "visible"]
        let text = SecretRedaction.redactedJSON(request)
        #expect(!text.contains("hunter2"))
        #expect(!text.contains("s3cr3t"))
        #expect(text.contains("password") && text.contains("token"))
        #expect(text.contains(SecretRedaction.mask))
        #expect(text.contains("visible") && text.contains("pvc-1"))
    }

    @Test func nestedSecretsInNodeRequestsAreMasked() {
        var request = Csi_V1_NodeStageVolumeRequest()
        request.volumeID = "vol-1"
        request.secrets = ["key": "value-never-logged"]
        #expect(!SecretRedaction.redactedJSON(request).contains("value-never-logged"))
    }
}
