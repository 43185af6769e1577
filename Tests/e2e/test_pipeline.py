"""The housing-price pipeline of scripts/bench-pipeline.sh at a tiny scale, every variant.

Each step is its own process in its own mount namespace; the vineyard-csi variants publish the
volume to every step through the driver's real CSI socket, and in the NFS variant every step
connects to a real nfs-ganesha export on loopback with the user-space libnfs client. Every storage path must carry the
same data: the same table and split digests and the same model error everywhere. Mounts and
processes are released even when a step fails (variants tear down in `finally`; the fixture then
lazily unmounts anything left under its directory; processes are stopped by PID).
"""

import json
import os
import shutil
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from conftest import BIN_DIR, REPO

sys.path.insert(0, str(REPO / "scripts"))
from pipeline import csi as pipeline_csi  # noqa: E402
from pipeline.runner import run_pipeline  # noqa: E402
from pipeline.variants import VARIANTS, vineyardd_binary  # noqa: E402

pytestmark = pytest.mark.skipif(
    not os.path.exists("/dev/fuse") or os.geteuid() != 0, reason="needs /dev/fuse and root to mount")

DATA_MULTIPLIER = 2  # 20,000 rows, about 6 MB
CAPACITY = 192 << 20
WORK_PREFIX = "vineyard-csi-e2e-pipeline-"
DIGESTS = ("table_digest", "x_train_digest", "x_test_digest", "y_train_digest", "y_test_digest")


def digests_of(outcome):
    """Every digest each step recorded, keyed by step and name."""
    return {(step, name): result[name] for step, result in outcome["steps"].items() for name in DIGESTS if name in result}


@pytest.fixture(scope="module")
def outcomes():
    work = Path(tempfile.mkdtemp(prefix=WORK_PREFIX, dir="/var/tmp"))
    pipeline_csi.stubs()  # generated once, before runs start in parallel
    options = {"bin_dir": str(BIN_DIR), "disk_dir": str(work)}

    def run(key):
        return key, run_pipeline(VARIANTS[key](options), work / key, DATA_MULTIPLIER, CAPACITY, digests=True)

    try:
        # Two at a time: each run is a chain of processes, and two cores keep two chains busy.
        with ThreadPoolExecutor(max_workers=2) as pool:
            yield dict(pool.map(run, VARIANTS))
    finally:
        pipeline_csi.unmount_all_under(work)
        shutil.rmtree(work, ignore_errors=True)


def test_every_available_variant_carries_identical_data(outcomes):
    ran = {key: outcome for key, outcome in outcomes.items() if "skipped" not in outcome}
    # The plain-file variants and our volume need nothing beyond this repository and root; the NFS
    # export needs nfs-ganesha, rpcbind and libnfs, which scripts/install-deps.sh installs, so it
    # must run too (a server that does not start fails the fixture with ganesha's log).
    assert {"nfs", "local-disk", "tmpfs", "csi-file"} <= set(ran), {k: o.get("skipped") for k, o in outcomes.items()}
    if vineyardd_binary() is not None:
        assert "vineyard" in ran, outcomes["vineyard"].get("skipped")
    reference = ran["tmpfs"]
    assert reference["steps"]["prepare"]["rows"] == DATA_MULTIPLIER * 10_000
    assert len(digests_of(reference)) == len(DIGESTS) + 4  # preprocess re-states the splits train/test read
    for key, outcome in ran.items():
        assert outcome["mse"] == reference["mse"], f"{key}: mse {outcome['mse']!r} != tmpfs {reference['mse']!r}"
        assert digests_of(outcome) == digests_of(reference), key
    # What preprocess saved is what train and test loaded, in every variant.
    for outcome in ran.values():
        steps = outcome["steps"]
        for name in ("x_train_digest", "y_train_digest"):
            assert steps["preprocess"][name] == steps["train"][name]
        for name in ("x_test_digest", "y_test_digest"):
            assert steps["preprocess"][name] == steps["test"][name]


def test_steps_report_their_io(outcomes):
    for key, outcome in outcomes.items():
        if "skipped" in outcome:
            continue
        steps = outcome["steps"]
        assert steps["prepare"]["write_seconds"] > 0 and steps["prepare"]["read_seconds"] == 0, key
        assert steps["train"]["read_seconds"] > 0 and steps["test"]["read_seconds"] > 0, key
        # what the reads cost the step's process: loading anything touches memory and takes CPU
        assert steps["train"]["read_cpu_seconds"] > 0 and steps["train"]["read_minor_faults"] > 0, key
        assert steps["prepare"]["read_minor_faults"] == 0 and steps["prepare"]["read_cpu_seconds"] == 0, key
        assert all(0 < step["seconds"] <= step["process_seconds"] for step in steps.values()), key


def test_nfs_variant_is_a_real_export(outcomes):
    """(a) ran over NFS (not the local-disk stand-in) and carried the same data as tmpfs."""
    outcome = outcomes["nfs"]
    assert "skipped" not in outcome, outcome.get("skipped")
    storage = outcome["storage"]
    assert storage["protocol"].startswith("NFSv3") and "nfs-ganesha" in storage["server"], storage
    assert storage["rsize"] > 0 and storage["wsize"] > 0, storage
    assert {step["io"] for step in outcome["steps"].values()} == {"nfs"}
    assert outcome["mse"] == outcomes["tmpfs"]["mse"] == outcomes["local-disk"]["mse"]


def test_nfs_server_is_gone_after_the_run(outcomes):
    """Teardown stopped ganesha by PID: no ganesha.nfsd runs with this suite's config any more."""
    assert "skipped" not in outcomes["nfs"], outcomes["nfs"].get("skipped")
    left = []
    for entry in Path("/proc").iterdir():
        try:
            command = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if command and command[0].endswith(b"ganesha.nfsd") and any(WORK_PREFIX.encode() in part for part in command):
            left.append(entry.name)
    assert not left, f"ganesha.nfsd still running: pids {left}"


def test_vineyard_socket_variant(outcomes):
    """(e) lights up once the driver serves vineyard.sock in its volumes; until then it is skipped."""
    outcome = outcomes["csi-vineyard"]
    if "skipped" in outcome:
        pytest.skip(outcome["skipped"])
    assert outcome["mse"] == outcomes["tmpfs"]["mse"]


def test_read_anatomy_takes_train_reads_apart(tmp_path):
    """`bench-pipeline.sh anatomy` at a tiny scale: (c) and (e) on both page sizes each ran the real
    train step and the probe; the probe's parts add up to no more than its load, the index it
    measured is the split's (8 bytes per x_train row), and the fresh-memory touches were timed."""
    from argparse import Namespace

    from pipeline import anatomy
    from pipeline.steps import BYTES_PER_MULTIPLIER

    work = Path(tempfile.mkdtemp(prefix=WORK_PREFIX, dir="/var/tmp"))
    args = Namespace(bin_dir=str(BIN_DIR), work_dir=str(work), seed=2024, probes=1, scale=DATA_MULTIPLIER * BYTES_PER_MULTIPLIER / (1 << 30),
                     fresh_memory_settle=0.5, results=str(tmp_path / "read-anatomy.json"), docs=str(tmp_path))
    try:
        anatomy.main(args, {"bin_dir": str(BIN_DIR), "read_mode": "direct"}, DATA_MULTIPLIER, CAPACITY)
    finally:
        pipeline_csi.unmount_all_under(work)
        shutil.rmtree(work, ignore_errors=True)
    document = json.loads((tmp_path / "read-anatomy.json").read_text())
    assert [variant["name"] for variant in document["variants"]] == [
        "vineyard", "csi-vineyard, store on 4 KiB pages", "csi-vineyard, store on 2 MiB pages"]
    # preprocess drops the GrLivArea > 4800 rows and keeps 90 % of the rest for training
    most_rows = int(DATA_MULTIPLIER * 10_000 * 0.9) + 1
    for variant in document["variants"]:
        (probe,) = variant["probes"]
        assert probe["train_read"] > 0 and probe["train_read_cpu"] > 0, variant["name"]
        # vineyard's client maps the store and touches at least the pages it reads
        assert probe["train_read_minor_faults"] > 0, variant["name"]
        parts = probe["parts"]
        for name, part in parts.items():
            inside = part["connect"] + part["metadata"] + part["numpy_copies"] + part["arrow_strings"]
            assert 0 < inside <= part["seconds"], (variant["name"], name, part)
            assert part["private_copy"] > 0, (variant["name"], name)
        # x_train and y_train share the split's index: int64, one per row
        assert parts["x_train.pkl"]["index_bytes"] == parts["y_train.pkl"]["index_bytes"], variant["name"]
        assert 0 < parts["x_train.pkl"]["index_bytes"] <= 8 * most_rows, variant["name"]
    fresh = document["fresh_memory"]
    assert fresh["just_freed_seconds"] > 0 and fresh["settled_seconds"] > 0 and fresh["settle_seconds"] == 0.5
    report = (tmp_path / "read-anatomy.md").read_text()
    assert report.count("| x_train.pkl:") == len(anatomy.PARTS) and "store on 2 MiB pages" in report
    assert "## Why the same read is sometimes several times slower" in report


def test_read_anatomy_tears_down_a_variant_that_fails_to_start(tmp_path):
    """A driver that exits at start (here a stand-in script for a broken build) fails the anatomy
    with its message, and leaves no store directory under /dev/shm and no work directory behind."""
    import glob
    from argparse import Namespace

    from pipeline import anatomy

    broken = tmp_path / "bin"
    broken.mkdir()
    (broken / "vineyard-csi").write_text("#!/bin/sh\necho 'this build is broken' >&2\nexit 3\n")
    (broken / "vineyard-csi").chmod(0o755)
    work = Path(tempfile.mkdtemp(prefix=WORK_PREFIX, dir="/var/tmp"))
    stores_before = set(glob.glob("/dev/shm/vineyard-pipeline-store-*"))
    args = Namespace(bin_dir=str(broken), work_dir=str(work), seed=2024, probes=1, scale=0.001,
                     fresh_memory_settle=0.1)
    try:
        with pytest.raises(RuntimeError, match="this build is broken"):
            anatomy.run(args, {"bin_dir": str(broken), "read_mode": "direct"}, DATA_MULTIPLIER, CAPACITY)
        assert set(glob.glob("/dev/shm/vineyard-pipeline-store-*")) == stores_before
        assert list(work.iterdir()) == []
    finally:
        pipeline_csi.unmount_all_under(work)
        shutil.rmtree(work, ignore_errors=True)
