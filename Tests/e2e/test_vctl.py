"""vctl against a real driver: output, exit codes and clear errors."""

import subprocess

from conftest import VCTL


def vctl(*args, check=True):
    result = subprocess.run([str(VCTL), *args], capture_output=True, text=True, timeout=60)
    if check and result.returncode != 0:
        raise AssertionError(f"vctl {' '.join(args)} failed ({result.returncode}): {result.stderr}")
    return result


def test_info_and_probe(driver):
    out = vctl("csi", "info", "--endpoint", driver.endpoint).stdout
    assert "name: csi.vineyard.v6d.io" in out
    assert "plugin capability: CONTROLLER_SERVICE" in out and "VOLUME_ACCESSIBILITY_CONSTRAINTS" in out
    assert vctl("csi", "probe", "--endpoint", driver.endpoint).stdout.strip() == "ready"


def test_volume_lifecycle(driver):
    e = ("--endpoint", driver.endpoint)
    out = vctl("csi", "create-volume", "pvc-cli", "--size", "64Mi", "--cluster", "ml/store", *e).stdout
    volume_id = next(line.split(": ")[1] for line in out.splitlines() if line.startswith("volume: "))
    assert f"capacity: {64 << 20}" in out and "k8s.v6d.io/vineyard/namespace=ml" in out
    listed = vctl("csi", "list-volumes", *e).stdout
    assert volume_id in listed
    vctl("csi", "publish", volume_id, "--node", driver.node_id, *e)
    assert driver.node_id in vctl("csi", "get-volume", volume_id, *e).stdout
    assert vctl("csi", "validate", volume_id, *e).stdout.strip() == "confirmed"
    vctl("csi", "unpublish", volume_id, *e)
    vctl("csi", "delete-volume", volume_id, *e)
    assert volume_id not in vctl("csi", "list-volumes", *e).stdout


def test_json_output(driver):
    import json
    out = vctl("csi", "create-volume", "pvc-json", "--json", "--endpoint", driver.endpoint).stdout
    assert json.loads(out)["volume"]["volume_id"].startswith("vol-")


def test_rpc_error_prints_code_and_exits_1(driver):
    result = vctl("csi", "get-volume", "vol-nope", "--endpoint", driver.endpoint, check=False)
    assert result.returncode == 1
    assert "NOT_FOUND" in result.stderr and "vol-nope" in result.stderr


def test_unreachable_driver_is_unavailable(workdir):
    result = vctl("csi", "probe", "--endpoint", f"unix://{workdir}/absent.sock", "--timeout", "2", check=False)
    assert result.returncode == 1
    assert "UNAVAILABLE" in result.stderr


def test_bad_arguments_name_the_problem():
    result = vctl("csi", "create-volume", "x", "--size", "lots", check=False)
    assert result.returncode == 64 and "--size lots" in result.stderr
    result = vctl("csi", "probe", "--endpoint", "http://x", check=False)
    assert result.returncode == 64 and "--endpoint" in result.stderr
    result = vctl("csi", "create-volume", "x", "--cluster", "no-slash", check=False)
    assert result.returncode == 64 and "--cluster" in result.stderr
    result = vctl("csi", "frobnicate", check=False)
    assert result.returncode == 64
