"""Runs the pipeline once on one variant: every step in its own process and mount namespace.

For each step the variant publishes the shared storage on a fresh target directory (kubelet's
NodePublishVolume for the CSI variants, a bind mount for the others); the step process then
starts in a private mount namespace where that target is bind-mounted on the container's mount
path, so every step sees the data at the same path, as containers of one pipeline do. After the
step exits its target is unpublished again.
"""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from .variants import Unavailable

STEP_ORDER = ("prepare", "preprocess", "train", "test")
SCRIPTS_DIR = Path(__file__).resolve().parents[1]
# Step runner: bind the published target (recursively, as container runtimes do: a volume may
# carry mounts of its own, such as vineyard-csi's vineyard.sock) on the container path, then
# become the step.
_ENTER = 'mount --rbind "$1" "$2" && shift 2 && exec "$@"'


class StepFailed(RuntimeError):
    pass


def run_step(step, target, container_path, io, data_multiplier, seed, result_path, drop_caches, digests, python,
             data=None):
    """Runs one step; `data` is what it is given as --data (default: the container path)."""
    command = [python, "-m", "pipeline.steps", step, "--data", str(data or container_path), "--io", io,
               "--data-multiplier", str(data_multiplier), "--seed", str(seed), "--result", str(result_path)]
    if drop_caches:
        command.append("--drop-caches")
    if digests:
        command.append("--digests")
    environment = dict(os.environ, PYTHONPATH=str(SCRIPTS_DIR) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    start = time.perf_counter()
    finished = subprocess.run(["unshare", "--mount", "--propagation", "private", "--", "sh", "-c", _ENTER, "sh",
                               str(target), str(container_path), *command],
                              env=environment, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if finished.returncode != 0:
        raise StepFailed(f"step {step} exited with {finished.returncode}:\n{finished.stdout}{finished.stderr}")
    result = json.loads(Path(result_path).read_text())
    result["process_seconds"] = wall
    return result


def run_published_step(variant, run_dir, step, data_multiplier, seed, drop_caches, digests=False,
                       python=sys.executable, pod=None):
    """Publishes the variant's storage on a target of the step's own (its pod's), runs the step
    there and unpublishes it again."""
    run_dir = Path(run_dir)
    container_path = run_dir / "container" / "data"  # the mount path every step's container sees
    container_path.mkdir(parents=True, exist_ok=True)
    pod = pod or step
    target = run_dir / "pods" / pod / "vineyard"
    target.parent.mkdir(parents=True, exist_ok=True)
    variant.publish(target)
    try:
        return run_step(step, target, container_path, variant.io, data_multiplier, seed, run_dir / f"{pod}.json",
                        drop_caches, digests, python, data=variant.location(container_path))
    finally:
        variant.unpublish(target)


def run_pipeline(variant, run_dir, data_multiplier, capacity_bytes, seed=2024, drop_caches=False, digests=False,
                 python=sys.executable):
    """Sets the variant up, runs the four steps, tears it down. Returns a dict with the steps'
    results, or with `skipped` when the variant is unavailable."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    outcome = {"variant": variant.key, "label": variant.label, "io": variant.io, "data_multiplier": data_multiplier}
    try:
        try:
            variant.setup(run_dir, capacity_bytes)
        except Unavailable as reason:
            outcome["skipped"] = str(reason)
            return outcome
        storage = variant.describe()
        if storage:
            outcome["storage"] = storage
        steps = {}
        for step in STEP_ORDER:
            steps[step] = run_published_step(variant, run_dir, step, data_multiplier, seed, drop_caches, digests,
                                             python)
        outcome["steps"] = steps
        outcome["mse"] = steps["test"]["mse"]
        return outcome
    finally:
        variant.teardown()
