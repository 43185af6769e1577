"""Identity service over the real socket."""

import grpc

from conftest import csi_pb2, expect_code


def test_plugin_info_names_the_driver(csi):
    info = csi.identity.GetPluginInfo(csi_pb2.GetPluginInfoRequest())
    assert info.name == "csi.vineyard.v6d.io"
    assert info.vendor_version == "0.1.0"


def test_plugin_capabilities(csi):
    response = csi.identity.GetPluginCapabilities(csi_pb2.GetPluginCapabilitiesRequest())
    services = {c.service.type for c in response.capabilities if c.HasField("service")}
    assert services == {
        csi_pb2.PluginCapability.Service.CONTROLLER_SERVICE,
        csi_pb2.PluginCapability.Service.VOLUME_ACCESSIBILITY_CONSTRAINTS,
    }
    expansion = [c.volume_expansion.type for c in response.capabilities if c.HasField("volume_expansion")]
    assert expansion == [csi_pb2.PluginCapability.VolumeExpansion.ONLINE]


def test_probe_reports_ready(csi):
    response = csi.identity.Probe(csi_pb2.ProbeRequest())
    assert response.HasField("ready") and response.ready.value is True


def test_unknown_method_is_unimplemented(driver):
    with driver.channel() as channel:
        call = channel.unary_unary("/csi.v1.Controller/ControllerModifyVolume")
        expect_code(grpc.StatusCode.UNIMPLEMENTED, call, b"")
        call = channel.unary_unary("/no.such.Service/Method")
        expect_code(grpc.StatusCode.UNIMPLEMENTED, call, b"")


def test_malformed_request_bytes_get_an_error_and_the_driver_lives(driver):
    with driver.channel() as channel:
        for method in ["/csi.v1.Controller/CreateVolume", "/csi.v1.Identity/Probe", "/csi.v1.Node/NodeGetInfo"]:
            call = channel.unary_unary(method)
            # A field tag with wire type 7 does not exist: no parser may accept it.
            expect_code(grpc.StatusCode.INVALID_ARGUMENT, call, b"\x0f\xff\xff\xff")
            # A length-delimited field that claims more bytes than follow.
            expect_code(grpc.StatusCode.INVALID_ARGUMENT, call, b"\x0a\x7f" + b"x" * 3)
        probe = channel.unary_unary("/csi.v1.Identity/Probe", response_deserializer=csi_pb2.ProbeResponse.FromString)
        assert probe(b"").ready.value is True
    assert driver.process.poll() is None
