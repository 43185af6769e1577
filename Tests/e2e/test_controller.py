"""Controller service over the real socket: happy paths, idempotency, pagination, error codes."""

import concurrent.futures
import os
import signal
import stat

import grpc
import pytest

from conftest import Driver, cluster_parameters, csi_pb2, expect_code, mount_capability

GiB = 1 << 30
MiB = 1 << 20
Mode = csi_pb2.VolumeCapability.AccessMode


def create(csi, name, size=None, parameters=None, capabilities=None, **kwargs):
    request = csi_pb2.CreateVolumeRequest(
        name=name,
        volume_capabilities=capabilities or [mount_capability()],
        parameters=cluster_parameters() if parameters is None else parameters,
        **kwargs,
    )
    if size is not None:
        request.capacity_range.required_bytes = size
    return csi.controller.CreateVolume(request).volume


def test_controller_capabilities(csi):
    response = csi.controller.ControllerGetCapabilities(csi_pb2.ControllerGetCapabilitiesRequest())
    rpc = csi_pb2.ControllerServiceCapability.RPC
    assert {c.rpc.type for c in response.capabilities} == {
        rpc.CREATE_DELETE_VOLUME, rpc.PUBLISH_UNPUBLISH_VOLUME, rpc.LIST_VOLUMES, rpc.GET_CAPACITY,
        rpc.PUBLISH_READONLY, rpc.LIST_VOLUMES_PUBLISHED_NODES, rpc.VOLUME_CONDITION, rpc.GET_VOLUME,
        rpc.SINGLE_NODE_MULTI_WRITER, rpc.EXPAND_VOLUME,
        # The driver runs beside its store (--mode all), so snapshots and clones are offered.
        rpc.CREATE_DELETE_SNAPSHOT, rpc.LIST_SNAPSHOTS, rpc.CLONE_VOLUME,
    }


def test_create_volume_carries_cluster_and_capacity(csi):
    volume = create(csi, "pvc-1", size=2 * GiB, parameters=cluster_parameters("ml", "store-a"))
    assert volume.volume_id.startswith("vol-")
    assert volume.capacity_bytes == 2 * GiB
    assert volume.volume_context["k8s.v6d.io/vineyard/namespace"] == "ml"
    assert volume.volume_context["k8s.v6d.io/vineyard/name"] == "store-a"
    assert volume.volume_context["k8s.v6d.io/vineyard/backend"] == "embedded"
    assert len(volume.accessible_topology) == 0


def test_create_volume_without_capacity_gets_the_default(csi):
    assert create(csi, "pvc-default").capacity_bytes == GiB


def test_create_volume_honours_limit_below_default(csi):
    request = csi_pb2.CreateVolumeRequest(name="pvc-limit", volume_capabilities=[mount_capability()])
    request.capacity_range.limit_bytes = 100 * MiB
    assert csi.controller.CreateVolume(request).volume.capacity_bytes == 100 * MiB


def test_create_volume_is_idempotent_by_name(csi):
    first = create(csi, "pvc-same", size=GiB)
    second = create(csi, "pvc-same", size=GiB)
    assert first == second
    listed = csi.controller.ListVolumes(csi_pb2.ListVolumesRequest()).entries
    assert [e.volume.volume_id for e in listed] == [first.volume_id]


def test_create_volume_same_name_incompatible_is_already_exists(csi):
    create(csi, "pvc-x", size=GiB)
    details = expect_code(grpc.StatusCode.ALREADY_EXISTS, create, csi, "pvc-x", size=2 * GiB)
    assert "pvc-x" in details
    expect_code(grpc.StatusCode.ALREADY_EXISTS, create, csi, "pvc-x", size=GiB,
                parameters=cluster_parameters("other", "cluster"))


def test_create_volume_topology_from_requirements(csi):
    requirement = csi_pb2.TopologyRequirement(
        requisite=[csi_pb2.Topology(segments={"topology.csi.vineyard.v6d.io/node": "node-b"}),
                   csi_pb2.Topology(segments={"topology.csi.vineyard.v6d.io/node": "node-c"})],
        preferred=[csi_pb2.Topology(segments={"topology.csi.vineyard.v6d.io/node": "node-c"})],
    )
    volume = create(csi, "pvc-topo", accessibility_requirements=requirement)
    assert [dict(t.segments) for t in volume.accessible_topology] == [{"topology.csi.vineyard.v6d.io/node": "node-c"}]
    foreign = csi_pb2.TopologyRequirement(requisite=[csi_pb2.Topology(segments={"zone": "z1"})])
    expect_code(grpc.StatusCode.RESOURCE_EXHAUSTED, create, csi, "pvc-foreign", accessibility_requirements=foreign)


@pytest.mark.parametrize("mutate,field", [
    (lambda r: r.ClearField("name"), "name"),
    (lambda r: r.ClearField("volume_capabilities"), "volume_capabilities"),
])
def test_create_volume_missing_fields(csi, mutate, field):
    request = csi_pb2.CreateVolumeRequest(name="pvc-m", volume_capabilities=[mount_capability()])
    mutate(request)
    details = expect_code(grpc.StatusCode.INVALID_ARGUMENT, csi.controller.CreateVolume, request)
    assert field in details


def test_create_volume_rejects_unsupported_capabilities(csi):
    block = csi_pb2.VolumeCapability(block=csi_pb2.VolumeCapability.BlockVolume(),
                                     access_mode=csi_pb2.VolumeCapability.AccessMode(mode=Mode.SINGLE_NODE_WRITER))
    assert "block" in expect_code(grpc.StatusCode.INVALID_ARGUMENT, create, csi, "pvc-b", capabilities=[block])
    ext4 = mount_capability(fs_type="ext4")
    assert "ext4" in expect_code(grpc.StatusCode.INVALID_ARGUMENT, create, csi, "pvc-e", capabilities=[ext4])
    no_mode = csi_pb2.VolumeCapability(mount=csi_pb2.VolumeCapability.MountVolume())
    assert "access_mode" in expect_code(grpc.StatusCode.INVALID_ARGUMENT, create, csi, "pvc-n", capabilities=[no_mode])
    no_type = csi_pb2.VolumeCapability(access_mode=csi_pb2.VolumeCapability.AccessMode(mode=Mode.SINGLE_NODE_WRITER))
    assert "access_type" in expect_code(grpc.StatusCode.INVALID_ARGUMENT, create, csi, "pvc-t", capabilities=[no_type])


def test_create_volume_rejects_bad_parameters_and_ranges(csi):
    assert "colour" in expect_code(grpc.StatusCode.INVALID_ARGUMENT, create, csi, "p1", parameters={"colour": "red"})
    half = {"k8s.v6d.io/vineyard/namespace": "ns"}
    assert "k8s.v6d.io/vineyard/name" in expect_code(grpc.StatusCode.INVALID_ARGUMENT, create, csi, "p2", parameters=half)
    bad = cluster_parameters("Bad_NS", "x")
    expect_code(grpc.StatusCode.INVALID_ARGUMENT, create, csi, "p3", parameters=bad)
    request = csi_pb2.CreateVolumeRequest(name="p4", volume_capabilities=[mount_capability()])
    request.capacity_range.required_bytes = 2 * GiB
    request.capacity_range.limit_bytes = GiB
    expect_code(grpc.StatusCode.INVALID_ARGUMENT, csi.controller.CreateVolume, request)
    # Larger than a whole store (8Gi in these tests): the range itself cannot be served.
    expect_code(grpc.StatusCode.OUT_OF_RANGE, create, csi, "p5", size=9 * GiB)
    # Kubernetes' own metadata parameters are accepted.
    create(csi, "p6", parameters={**cluster_parameters(), "csi.storage.k8s.io/pvc/name": "claim"})


def test_store_capacity_is_a_quota(csi):
    create(csi, "q1", size=5 * GiB)
    details = expect_code(grpc.StatusCode.RESOURCE_EXHAUSTED, create, csi, "q2", size=4 * GiB)
    assert "vineyard-system/vineyardd-sample" in details
    # Another cluster has its own store.
    create(csi, "q3", size=4 * GiB, parameters=cluster_parameters("other", "store"))
    capacity = csi.controller.GetCapacity(csi_pb2.GetCapacityRequest(parameters=cluster_parameters()))
    assert capacity.available_capacity == 3 * GiB
    assert capacity.maximum_volume_size.value == 3 * GiB


def test_get_capacity_with_unsupported_capability_is_zero(csi):
    block = csi_pb2.VolumeCapability(block=csi_pb2.VolumeCapability.BlockVolume(),
                                     access_mode=csi_pb2.VolumeCapability.AccessMode(mode=Mode.SINGLE_NODE_WRITER))
    response = csi.controller.GetCapacity(csi_pb2.GetCapacityRequest(volume_capabilities=[block]))
    assert response.available_capacity == 0


def test_delete_volume_is_idempotent(csi):
    volume = create(csi, "pvc-del")
    csi.controller.DeleteVolume(csi_pb2.DeleteVolumeRequest(volume_id=volume.volume_id))
    csi.controller.DeleteVolume(csi_pb2.DeleteVolumeRequest(volume_id=volume.volume_id))
    csi.controller.DeleteVolume(csi_pb2.DeleteVolumeRequest(volume_id="never-existed"))
    assert csi.controller.ListVolumes(csi_pb2.ListVolumesRequest()).entries == []
    details = expect_code(grpc.StatusCode.INVALID_ARGUMENT, csi.controller.DeleteVolume, csi_pb2.DeleteVolumeRequest())
    assert "volume_id" in details


def test_publish_unpublish(csi, driver):
    volume = create(csi, "pvc-pub")
    publish = csi_pb2.ControllerPublishVolumeRequest(
        volume_id=volume.volume_id, node_id=driver.node_id, volume_capability=mount_capability())
    csi.controller.ControllerPublishVolume(publish)
    csi.controller.ControllerPublishVolume(publish)  # idempotent
    got = csi.controller.ControllerGetVolume(csi_pb2.ControllerGetVolumeRequest(volume_id=volume.volume_id))
    assert list(got.status.published_node_ids) == [driver.node_id]
    assert got.status.volume_condition.abnormal is False
    listed = csi.controller.ListVolumes(csi_pb2.ListVolumesRequest()).entries
    assert list(listed[0].status.published_node_ids) == [driver.node_id]
    # Same node, different readonly: incompatible.
    publish.readonly = True
    expect_code(grpc.StatusCode.ALREADY_EXISTS, csi.controller.ControllerPublishVolume, publish)
    # A published volume cannot be deleted.
    expect_code(grpc.StatusCode.FAILED_PRECONDITION, csi.controller.DeleteVolume,
                csi_pb2.DeleteVolumeRequest(volume_id=volume.volume_id))
    unpublish = csi_pb2.ControllerUnpublishVolumeRequest(volume_id=volume.volume_id, node_id=driver.node_id)
    csi.controller.ControllerUnpublishVolume(unpublish)
    csi.controller.ControllerUnpublishVolume(unpublish)  # idempotent
    got = csi.controller.ControllerGetVolume(csi_pb2.ControllerGetVolumeRequest(volume_id=volume.volume_id))
    assert list(got.status.published_node_ids) == []
    csi.controller.DeleteVolume(csi_pb2.DeleteVolumeRequest(volume_id=volume.volume_id))


def test_publish_errors(csi, driver):
    volume = create(csi, "pvc-pub-err")
    cap = mount_capability()
    call = csi.controller.ControllerPublishVolume
    R = csi_pb2.ControllerPublishVolumeRequest
    assert "volume_id" in expect_code(grpc.StatusCode.INVALID_ARGUMENT, call, R(node_id="n", volume_capability=cap))
    assert "node_id" in expect_code(grpc.StatusCode.INVALID_ARGUMENT, call, R(volume_id=volume.volume_id, volume_capability=cap))
    assert "volume_capability" in expect_code(grpc.StatusCode.INVALID_ARGUMENT, call, R(volume_id=volume.volume_id, node_id=driver.node_id))
    expect_code(grpc.StatusCode.NOT_FOUND, call, R(volume_id="vol-missing", node_id=driver.node_id, volume_capability=cap))
    expect_code(grpc.StatusCode.NOT_FOUND, call, R(volume_id=volume.volume_id, node_id="no-such-node", volume_capability=cap))
    assert "volume_id" in expect_code(grpc.StatusCode.INVALID_ARGUMENT, csi.controller.ControllerUnpublishVolume,
                                      csi_pb2.ControllerUnpublishVolumeRequest(node_id="n"))


def test_single_node_volume_pinned_to_its_node(csi, driver):
    requirement = csi_pb2.TopologyRequirement(
        requisite=[csi_pb2.Topology(segments={"topology.csi.vineyard.v6d.io/node": "node-b"})])
    volume = create(csi, "pvc-pinned", accessibility_requirements=requirement)
    publish = csi_pb2.ControllerPublishVolumeRequest(
        volume_id=volume.volume_id, node_id=driver.node_id, volume_capability=mount_capability())
    expect_code(grpc.StatusCode.FAILED_PRECONDITION, csi.controller.ControllerPublishVolume, publish)
    publish.node_id = "node-b"  # known through the volume's topology
    csi.controller.ControllerPublishVolume(publish)


def test_validate_volume_capabilities(csi):
    volume = create(csi, "pvc-val")
    R = csi_pb2.ValidateVolumeCapabilitiesRequest
    ok = csi.controller.ValidateVolumeCapabilities(R(volume_id=volume.volume_id, volume_capabilities=[mount_capability(Mode.MULTI_NODE_MULTI_WRITER)]))
    assert ok.HasField("confirmed")
    assert list(ok.confirmed.volume_capabilities) == [mount_capability(Mode.MULTI_NODE_MULTI_WRITER)]
    block = csi_pb2.VolumeCapability(block=csi_pb2.VolumeCapability.BlockVolume(),
                                     access_mode=csi_pb2.VolumeCapability.AccessMode(mode=Mode.SINGLE_NODE_WRITER))
    not_ok = csi.controller.ValidateVolumeCapabilities(R(volume_id=volume.volume_id, volume_capabilities=[block]))
    assert not not_ok.HasField("confirmed") and "block" in not_ok.message
    expect_code(grpc.StatusCode.NOT_FOUND, csi.controller.ValidateVolumeCapabilities,
                R(volume_id="vol-missing", volume_capabilities=[mount_capability()]))
    expect_code(grpc.StatusCode.INVALID_ARGUMENT, csi.controller.ValidateVolumeCapabilities, R(volume_id=volume.volume_id))
    expect_code(grpc.StatusCode.INVALID_ARGUMENT, csi.controller.ValidateVolumeCapabilities,
                R(volume_capabilities=[mount_capability()]))


def test_get_volume_errors(csi):
    expect_code(grpc.StatusCode.INVALID_ARGUMENT, csi.controller.ControllerGetVolume, csi_pb2.ControllerGetVolumeRequest())
    expect_code(grpc.StatusCode.NOT_FOUND, csi.controller.ControllerGetVolume,
                csi_pb2.ControllerGetVolumeRequest(volume_id="vol-missing"))


def test_list_volumes_pagination(csi):
    ids = sorted(create(csi, f"page-{i}", size=MiB).volume_id for i in range(7))
    seen, token, pages = [], "", 0
    while True:
        response = csi.controller.ListVolumes(csi_pb2.ListVolumesRequest(max_entries=3, starting_token=token))
        assert len(response.entries) <= 3
        seen += [e.volume.volume_id for e in response.entries]
        pages += 1
        token = response.next_token
        if not token:
            break
    assert seen == ids and pages == 3
    # A token survives the deletion of the volume it points at.
    first = csi.controller.ListVolumes(csi_pb2.ListVolumesRequest(max_entries=2))
    csi.controller.DeleteVolume(csi_pb2.DeleteVolumeRequest(volume_id=first.next_token))
    rest = csi.controller.ListVolumes(csi_pb2.ListVolumesRequest(starting_token=first.next_token))
    assert [e.volume.volume_id for e in rest.entries] == [i for i in ids if i > first.next_token]
    expect_code(grpc.StatusCode.ABORTED, csi.controller.ListVolumes, csi_pb2.ListVolumesRequest(starting_token="garbage"))
    expect_code(grpc.StatusCode.INVALID_ARGUMENT, csi.controller.ListVolumes, csi_pb2.ListVolumesRequest(max_entries=-1))


def test_concurrent_create_of_one_name_yields_one_volume(csi):
    with concurrent.futures.ThreadPoolExecutor(max_workers=16) as pool:
        volumes = list(pool.map(lambda _: create(csi, "pvc-race", size=MiB), range(64)))
    assert len({v.volume_id for v in volumes}) == 1
    assert len(csi.controller.ListVolumes(csi_pb2.ListVolumesRequest()).entries) == 1


def test_restart_keeps_volumes(workdir):
    driver = Driver(workdir).start()
    try:
        with driver.channel() as channel:
            from conftest import Clients
            csi = Clients(channel)
            volume = create(csi, "pvc-durable", size=3 * MiB)
            csi.controller.ControllerPublishVolume(csi_pb2.ControllerPublishVolumeRequest(
                volume_id=volume.volume_id, node_id=driver.node_id, volume_capability=mount_capability()))
        driver.stop(signal.SIGKILL)  # no chance to flush anything
        driver.start()
        with driver.channel() as channel:
            csi = Clients(channel)
            got = csi.controller.ControllerGetVolume(csi_pb2.ControllerGetVolumeRequest(volume_id=volume.volume_id))
            assert got.volume == volume
            assert list(got.status.published_node_ids) == [driver.node_id]
            assert create(csi, "pvc-durable", size=3 * MiB) == volume
    finally:
        driver.stop(signal.SIGKILL)


def test_corrupt_state_stops_the_driver_and_is_kept(workdir):
    driver = Driver(workdir).start()
    with driver.channel() as channel:
        from conftest import Clients
        volume = create(Clients(channel), "pvc-corrupt")
    driver.stop()
    record = driver.state_dir / "controller" / "volumes" / f"{volume.volume_id}.json"
    record.write_text("{ not json")
    driver.start(expect_ready=False)
    code = driver.process.wait(timeout=30)
    log = driver.read_log()
    driver.stop()
    assert code != 0
    assert str(record) in log
    assert record.read_text() == "{ not json"


def test_sigterm_removes_socket_and_exits_zero(workdir):
    driver = Driver(workdir).start()
    assert stat.S_ISSOCK(os.stat(driver.socket).st_mode)
    assert stat.S_IMODE(os.stat(driver.socket).st_mode) == 0o660
    assert driver.stop(signal.SIGTERM) == 0
    assert not driver.socket.exists()


def test_stale_socket_is_replaced(workdir):
    import socket as pysocket
    stale = pysocket.socket(pysocket.AF_UNIX)
    stale.bind(str(workdir / "csi.sock"))
    stale.close()  # leaves the socket file behind, like a crashed driver
    driver = Driver(workdir).start()
    try:
        with driver.channel() as channel:
            from conftest import Clients
            assert Clients(channel).identity.Probe(csi_pb2.ProbeRequest()).ready.value
    finally:
        driver.stop()


def test_verbose_log_shows_calls_but_never_secrets(workdir):
    driver = Driver(workdir, extra_args=["--verbose"]).start()
    try:
        with driver.channel() as channel:
            from conftest import Clients
            csi = Clients(channel)
            create(csi, "pvc-secret", secrets={"password": "hunter2-never-logged"})
    finally:
        driver.stop()
    log = driver.read_log()
    assert "CreateVolume" in log and "pvc-secret" in log
    assert "password" in log and "***stripped***" in log
    assert "hunter2-never-logged" not in log
