"""End-to-end fixtures: the real vineyard-csi binary, driven over its real unix socket.

The driver process, the gRPC client (Python's grpcio, stubs generated from Protos/csi.proto when
the session starts, so the tests share no code with the driver) and the mount helpers live in
scripts/harness, which the benchmarks use too; this file adds the pytest fixtures.
"""

import signal
import sys
import tempfile
from pathlib import Path

import grpc
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
from harness.driver import (  # noqa: E402,F401  (re-exported to the tests)
    BIN_DIR, DRIVER, EXTRA_DRIVER_ARGS, REPO, VCTL, Clients, Driver, cluster_parameters, csi_pb2, csi_pb2_grpc,
    mount_capability, stage_and_publish, unpublish_and_unstage)


@pytest.fixture
def workdir():
    with tempfile.TemporaryDirectory(prefix="vineyard-csi-e2e-") as path:
        yield Path(path)


@pytest.fixture
def driver(workdir):
    d = Driver(workdir).start()
    try:
        yield d
    finally:
        d.stop(signal.SIGKILL)


@pytest.fixture
def csi(driver):
    channel = driver.channel()
    try:
        yield Clients(channel)
    finally:
        channel.close()


def expect_code(code, call, *args, **kwargs):
    """Calls and asserts the RPC fails with `code`; returns the error details."""
    with pytest.raises(grpc.RpcError) as failure:
        call(*args, **kwargs)
    assert failure.value.code() == code, f"expected {code}, got {failure.value.code()}: {failure.value.details()}"
    return failure.value.details()
