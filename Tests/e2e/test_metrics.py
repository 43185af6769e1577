"""The node plugin's Prometheus endpoint (--metrics-address), scraped while the real driver serves a
real FUSE volume: CSI calls, file writes and reads through the mount, vineyard.sock requests of
vineyard's own client, the store's usage, and the volumes staged and published move the series
docs/metrics.md lists."""

import os
import time
import uuid

import numpy as np
import pytest
import vineyard

from conftest import (
    Clients, Driver, cluster_parameters, csi_pb2, expect_code, mount_capability, stage_and_publish,
    unpublish_and_unstage,
)
from harness.mounts import unmount_all_under
from metrics_scrape import metrics_url_from_log, scrape

MiB = 1 << 20
STORE = 'store="vineyard-system/vineyardd-sample"'


@pytest.fixture
def metered(workdir):
    driver = Driver(workdir, extra_args=["--metrics-address", "127.0.0.1:0"])
    driver.start()
    channel = driver.channel()
    try:
        deadline = time.monotonic() + 10
        while (url := metrics_url_from_log(driver.read_log())) is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert url, f"the driver did not log its metrics endpoint: {driver.read_log()}"
        yield driver, Clients(channel), url
    finally:
        channel.close()
        driver.stop()
        unmount_all_under(workdir)


def value(samples, series):
    return samples.get(series, 0.0)


def test_metrics_move_with_real_io(metered, workdir):
    driver, clients, url = metered
    before = scrape(url)
    assert value(before, "vineyard_csi_volumes_staged") == 0
    assert value(before, 'vineyard_csi_mount_recoveries_total{method="remount",result="ok"}') == 0

    request = csi_pb2.CreateVolumeRequest(
        name=f"metrics-{uuid.uuid4().hex[:8]}", volume_capabilities=[mount_capability()],
        parameters=cluster_parameters())
    request.capacity_range.required_bytes = 256 * MiB
    volume = clients.controller.CreateVolume(request).volume
    staging, target = workdir / "staging", workdir / "pods" / "p" / "mount"
    stage_and_publish(clients, volume, staging, target)
    expect_code(__import__("grpc").StatusCode.NOT_FOUND, clients.node.NodeGetVolumeStats,
                csi_pb2.NodeGetVolumeStatsRequest(volume_id="no-such-volume", volume_path=str(target)))

    payload = os.urandom(3 * MiB + 123)
    (target / "data.bin").write_bytes(payload)
    os.sync()
    assert (target / "data.bin").read_bytes() == payload
    client = vineyard.connect(str(target / "vineyard.sock"))
    try:
        array = np.arange(1 << 18, dtype=np.float64)
        object_id = client.put(array, persist=True, name="metrics-array")
        assert np.array_equal(client.get(object_id), array)
    finally:
        client.close()

    after = scrape(url)
    moved = lambda series: value(after, series) - value(before, series)  # noqa: E731
    assert moved('vineyard_csi_calls_total{method="CreateVolume",code="OK"}') == 1
    assert moved('vineyard_csi_calls_total{method="NodeStageVolume",code="OK"}') == 1
    assert moved('vineyard_csi_calls_total{method="NodePublishVolume",code="OK"}') == 1
    assert moved('vineyard_csi_calls_total{method="NodeGetVolumeStats",code="NOT_FOUND"}') == 1
    assert moved('vineyard_csi_call_duration_seconds_count{method="NodeStageVolume",code="OK"}') == 1
    assert moved('vineyard_csi_file_bytes_total{operation="write"}') >= len(payload)
    assert moved('vineyard_csi_file_operations_total{operation="write"}') >= 1
    assert moved('vineyard_csi_file_operations_total{operation="create"}') >= 1
    assert moved('vineyard_csi_file_operation_duration_seconds_count{operation="write"}') == \
        moved('vineyard_csi_file_operations_total{operation="write"}')
    # The read may be served from the page cache; the kernel asked for at least the lookup.
    assert moved('vineyard_csi_file_operations_total{operation="lookup"}') >= 1
    assert value(after, "vineyard_csi_volumes_staged") == 1
    assert value(after, "vineyard_csi_volumes_published") == 1
    assert value(after, f"vineyard_csi_store_capacity_bytes{{{STORE}}}") == 8 << 30
    assert value(after, f"vineyard_csi_store_used_bytes{{{STORE}}}") >= len(payload) + array.nbytes
    assert value(after, f"vineyard_csi_store_objects{{{STORE}}}") >= 2
    assert moved("vineyard_csi_ipc_connections_total") >= 1
    assert moved('vineyard_csi_ipc_requests_total{type="register"}') >= 1
    assert moved('vineyard_csi_ipc_requests_total{type="create_buffer"}') >= 1
    assert moved('vineyard_csi_ipc_request_duration_seconds_count{type="create_buffer"}') >= 1

    # A read the page cache cannot serve (a new file, read back after dropping the cache of the
    # mount) counts its bytes. Below --blob-file-threshold, so the driver serves it (the kernel
    # serves larger files itself).
    second = os.urandom(MiB // 2)
    (target / "second.bin").write_bytes(second)
    with open(target / "second.bin", "rb") as handle:
        os.posix_fadvise(handle.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
    assert (target / "second.bin").read_bytes() == second
    last = scrape(url)
    assert value(last, 'vineyard_csi_file_bytes_total{operation="write"}') - \
        value(after, 'vineyard_csi_file_bytes_total{operation="write"}') >= len(second)
    assert value(last, 'vineyard_csi_file_bytes_total{operation="read"}') > \
        value(before, 'vineyard_csi_file_bytes_total{operation="read"}')

    unpublish_and_unstage(clients, volume, staging, target)
    final = scrape(url)
    assert value(final, "vineyard_csi_volumes_staged") == 0
    assert value(final, "vineyard_csi_volumes_published") == 0


def test_metrics_are_off_by_default_and_a_bad_address_is_refused(workdir):
    driver = Driver(workdir).start()
    try:
        assert "serving metrics" not in driver.read_log()
    finally:
        driver.stop()
    bad = Driver(workdir, extra_args=["--metrics-address", "localhost:notaport"])
    bad.start(expect_ready=False)
    assert bad.process.wait(timeout=30) != 0
    assert "--metrics-address" in bad.read_log() and "notaport" in bad.read_log()
    bad.stop()
