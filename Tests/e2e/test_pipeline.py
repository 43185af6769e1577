"""The housing-price pipeline of scripts/bench-pipeline.sh at a tiny scale, run as the benchmark's
own command line (`python -m pipeline`, a black box: this test imports nothing of it).

Each step is its own process in its own mount namespace; the vineyard-csi variants publish the
volume to every step through the driver's real CSI socket. Every storage path must carry the same
data: the same table and split digests and the same model error everywhere. Mounts and processes
are released even when a step fails (variants tear down in `finally`; the test then lazily unmounts
anything left under its directory).

The variants here are those that need nothing beyond this repository, root and the test
requirements: local disk, tmpfs, vineyardd (from the vineyard wheel) and both vineyard-csi
variants. The NFS variant (a) needs an NFS server and client library (nfs-ganesha, rpcbind,
libnfs) that only the benchmark installs (scripts/install-bench-deps.sh), so it is not run here.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from conftest import BIN_DIR, REPO
from harness.mounts import unmount_all_under

pytestmark = pytest.mark.skipif(
    not os.path.exists("/dev/fuse") or os.geteuid() != 0, reason="needs /dev/fuse and root to mount")

DATA_MULTIPLIER = 2  # 20,000 rows, about 6 MB
WORK_PREFIX = "vcsi-pipeline-"  # short: the vineyard.sock paths below it must fit sun_path (108 bytes)
DIGESTS = ("table_digest", "x_train_digest", "x_test_digest", "y_train_digest", "y_test_digest")
# Two command lines at a time: each run is a chain of processes, and two cores keep two chains busy.
VARIANT_GROUPS = (("tmpfs", "local-disk", "vineyard"), ("csi-file", "csi-vineyard"))
# The rows of read-anatomy.md's table for one load, in the report's order.
ANATOMY_PARTS = ("seconds", "connect", "metadata", "imports", "arrow_strings", "numpy_copies", "private_copy")


def pipeline(*arguments, timeout=1800):
    """Runs `python -m pipeline ARGUMENTS` from the repository, as scripts/bench-pipeline.sh does."""
    environment = dict(os.environ, PYTHONPATH=str(REPO / "scripts"))
    return subprocess.run([sys.executable, "-m", "pipeline", *map(str, arguments)], cwd=REPO, env=environment,
                          capture_output=True, text=True, timeout=timeout)


def vineyardd_installed():
    """Whether the vineyardd of the vineyard wheel (or one on PATH) is there for variant (c)."""
    try:
        import vineyard
    except ImportError:
        return shutil.which("vineyardd") is not None
    return (Path(vineyard.__file__).parent / "bdist" / "vineyardd").exists() or shutil.which("vineyardd") is not None


def digests_of(outcome):
    """Every digest each step recorded, keyed by step and name."""
    return {(step, name): result[name] for step, result in outcome["steps"].items() for name in DIGESTS if name in result}


@pytest.fixture(scope="module")
def outcomes():
    work = Path(tempfile.mkdtemp(prefix=WORK_PREFIX, dir="/var/tmp"))

    def run(group):
        results = work / f"{'-'.join(group)}.json"
        # The driver's page-cache read mode, as the variants use by default.
        finished = pipeline("bench", "--bin-dir", BIN_DIR, "--work-dir", work, "--disk-dir", work,
                            "--data-multiplier", DATA_MULTIPLIER, "--repeats", 1, "--variants", ",".join(group),
                            "--read-mode", "page-cache", "--no-drop-caches", "--digests", "--results", results,
                            "--no-report")
        assert finished.returncode == 0, f"python -m pipeline bench failed:\n{finished.stdout}{finished.stderr}"
        document = json.loads(results.read_text())
        found = {run["variant"]: run for run in document["runs"]}
        found.update({key: {"skipped": reason} for key, reason in document["skipped"].items()})
        return found

    try:
        with ThreadPoolExecutor(max_workers=len(VARIANT_GROUPS)) as pool:
            found = {}
            for group in pool.map(run, VARIANT_GROUPS):
                found.update(group)
            yield found
    finally:
        unmount_all_under(work)
        shutil.rmtree(work, ignore_errors=True)


def test_every_available_variant_carries_identical_data(outcomes):
    ran = {key: outcome for key, outcome in outcomes.items() if "skipped" not in outcome}
    # The plain-file variants and our volume need nothing beyond this repository and root.
    assert {"local-disk", "tmpfs", "csi-file"} <= set(ran), {k: o.get("skipped") for k, o in outcomes.items()}
    if vineyardd_installed():
        assert "vineyard" in ran, outcomes["vineyard"].get("skipped")
    reference = ran["tmpfs"]
    assert all(outcome["data_multiplier"] == DATA_MULTIPLIER for outcome in ran.values())
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
    work = Path(tempfile.mkdtemp(prefix=WORK_PREFIX, dir="/var/tmp"))
    try:
        finished = pipeline("anatomy", "--bin-dir", BIN_DIR, "--work-dir", work, "--seed", 2024, "--probes", 1,
                            "--data-multiplier", DATA_MULTIPLIER, "--fresh-memory-settle", 0.5, "--read-mode", "direct",
                            "--results", tmp_path / "read-anatomy.json", "--docs", tmp_path)
    finally:
        unmount_all_under(work)
        shutil.rmtree(work, ignore_errors=True)
    assert finished.returncode == 0, f"python -m pipeline anatomy failed:\n{finished.stdout}{finished.stderr}"
    document = json.loads((tmp_path / "read-anatomy.json").read_text())
    assert document["data_multiplier"] == DATA_MULTIPLIER
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
            assert set(ANATOMY_PARTS) <= set(part), (variant["name"], name, part)
            inside = part["connect"] + part["metadata"] + part["numpy_copies"] + part["arrow_strings"]
            assert 0 < inside <= part["seconds"], (variant["name"], name, part)
            assert part["private_copy"] > 0, (variant["name"], name)
        # x_train and y_train share the split's index: int64, one per row
        assert parts["x_train.pkl"]["index_bytes"] == parts["y_train.pkl"]["index_bytes"], variant["name"]
        assert 0 < parts["x_train.pkl"]["index_bytes"] <= 8 * most_rows, variant["name"]
    fresh = document["fresh_memory"]
    assert fresh["just_freed_seconds"] > 0 and fresh["settled_seconds"] > 0 and fresh["settle_seconds"] == 0.5
    report = (tmp_path / "read-anatomy.md").read_text()
    assert report.count("| x_train.pkl:") == len(ANATOMY_PARTS) and "store on 2 MiB pages" in report
    assert "## Why the same read is sometimes several times slower" in report


def test_read_anatomy_tears_down_a_variant_that_fails_to_start(tmp_path):
    """A driver that exits at start (here a stand-in script for a broken build) fails the anatomy
    with its message, and leaves no store directory under /dev/shm and no work directory behind."""
    import glob

    broken = tmp_path / "bin"
    broken.mkdir()
    (broken / "vineyard-csi").write_text("#!/bin/sh\necho 'this build is broken' >&2\nexit 3\n")
    (broken / "vineyard-csi").chmod(0o755)
    work = Path(tempfile.mkdtemp(prefix=WORK_PREFIX, dir="/var/tmp"))
    stores_before = set(glob.glob("/dev/shm/vineyard-pipeline-store-*"))
    try:
        finished = pipeline("anatomy", "--bin-dir", broken, "--work-dir", work, "--seed", 2024, "--probes", 1,
                            "--scale", 0.001, "--fresh-memory-settle", 0.1, "--read-mode", "direct",
                            "--results", tmp_path / "read-anatomy.json", "--docs", tmp_path)
        assert finished.returncode != 0, finished.stdout
        assert "RuntimeError" in finished.stderr and "this build is broken" in finished.stderr, finished.stderr
        # None left behind; other pipeline runs on the machine may remove theirs meanwhile.
        assert set(glob.glob("/dev/shm/vineyard-pipeline-store-*")) <= stores_before
        assert list(work.iterdir()) == []
        assert not (tmp_path / "read-anatomy.json").exists()
    finally:
        unmount_all_under(work)
        shutil.rmtree(work, ignore_errors=True)
