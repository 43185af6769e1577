"""Zero configuration: every volume's root shows a read-only `vineyard-config.yaml`, so a task
with the volume mounted at `/var/run` (Fluid's `dataset_mountpath`) calls `vineyard.put` and
`vineyard.get` with no arguments and reaches the volume's socket.

The Fluid-style pipeline runs each task in a mount namespace of its own (`unshare -m`) with the
volume bound at `/var/run` and no vineyard variable set: without the file, vineyard's client
would silently start a private vineyardd per task and the next task would find nothing.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import vineyard
import yaml

from test_vineyard_ipc import OurDriver

pytestmark = pytest.mark.skipif(
    not os.path.exists("/dev/fuse") or os.geteuid() != 0 or shutil.which("unshare") is None,
    reason="needs /dev/fuse, root to mount, and unshare")


@pytest.fixture(scope="module")
def embedded_volume():
    driver = OurDriver()
    try:
        driver.start()
        yield driver.volumes[0].target
    finally:
        driver.stop()


@pytest.fixture(scope="module")
def vineyardd_volume(tmp_path_factory):
    """A volume of cluster mode: a vineyardd (etcd metadata, RPC on) and a driver on it."""
    from harness.cluster import create_volume, two_node_cluster
    with two_node_cluster(tmp_path_factory.mktemp("config-vineyardd")) as nodes:
        node = nodes["node_a"]
        volume = create_volume(node.clients, "pvc-config")
        target = node.publish(volume)
        try:
            yield target
        finally:
            node.unpublish(volume)


@pytest.fixture(params=["embedded", "vineyardd"])
def volume(request):
    return request.getfixturevalue(f"{request.param}_volume")


def test_the_volume_root_holds_a_read_only_vineyard_config(volume, request):
    config = volume / "vineyard-config.yaml"
    assert oct(config.stat().st_mode & 0o777) == oct(0o444)
    assert "vineyard-config.yaml" in os.listdir(volume)
    client = vineyard.connect(config=str(volume))
    assert client.ipc_socket == str(volume / "vineyard.sock")
    expected = {"IPCSocket": "vineyard.sock"}
    if request.node.callspec.params["volume"] == "vineyardd":
        # Cluster mode: the deployment's vineyardd RPC endpoints too, by instance id.
        instances = client.meta
        expected["RPCEndpoint"] = ",".join(instances[i]["rpc_endpoint"] for i in sorted(instances))
        assert client.rpc_endpoint in expected["RPCEndpoint"]
    assert yaml.safe_load(config.read_text()) == {"Vineyard": expected}
    client.close()


PREPROCESS = """
import numpy as np, vineyard
rng = np.random.default_rng(11)
X = rng.normal(size=(400, 3))
y = X @ np.array([2.0, -1.0, 0.5]) + 3.0 + rng.normal(0, 0.01, size=400)
vineyard.put(X[:300], name="x_train", persist=True)
vineyard.put(y[:300], name="y_train", persist=True)
vineyard.put(X[300:], name="x_test", persist=True)
vineyard.put(y[300:], name="y_test", persist=True)
"""

TRAIN = """
import numpy as np, vineyard
X, y = vineyard.get(name="x_train", fetch=True), vineyard.get(name="y_train", fetch=True)
design = np.hstack([X, np.ones((len(X), 1))])
weights, *_ = np.linalg.lstsq(design, y, rcond=None)
vineyard.put(weights, name="model", persist=True)
"""

TEST = """
import json, numpy as np, vineyard
X, y = vineyard.get(name="x_test", fetch=True), vineyard.get(name="y_test", fetch=True)
weights = vineyard.get(name="model", fetch=True)
predicted = np.hstack([X, np.ones((len(X), 1))]) @ weights
print(json.dumps({"rmse": float(np.sqrt(((predicted - y) ** 2).mean())), "weights": weights.tolist()}))
"""


def run_task(volume, code):
    """One task: its own mount namespace, the volume's mount `volume` (with its socket, a
    submount) bound at /var/run, and nothing else configured."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("VINEYARD_")}
    script = f'mount --make-rprivate / && mount --rbind "$0" /var/run && exec "$1" -c "$2"'
    return subprocess.run(
        ["unshare", "-m", "sh", "-c", script, str(volume), sys.executable, code],
        capture_output=True, text=True, timeout=120, env=env, cwd="/")


def test_fluid_style_tasks_share_objects_through_var_run(volume):
    for code in (PREPROCESS, TRAIN):
        task = run_task(volume, code)
        assert task.returncode == 0, task.stdout + task.stderr
    test = run_task(volume, TEST)
    assert test.returncode == 0, test.stdout + test.stderr
    result = json.loads(test.stdout.strip().splitlines()[-1])
    assert result["rmse"] < 0.05
    assert result["weights"] == pytest.approx([2.0, -1.0, 0.5, 3.0], abs=0.01)
    # The tasks' objects are the volume's names, seen from outside the tasks.
    client = vineyard.connect(str(volume / "vineyard.sock"))
    assert {"x_train", "y_train", "x_test", "y_test", "model"} <= set(client.list_names("*", limit=100))
    client.close()
