"""Snapshot and clone cost: time and store memory, for volumes holding 10 MiB .. 4 GiB.

Drives the real vineyard-csi binary (release build) over its CSI socket: CreateVolume, stage and
publish, fill the volume through the mount, then time CreateSnapshot, CreateVolume from the
snapshot and CreateVolume from the volume (a clone), each answered only once the new tree is in
the store. Store memory is read through a real mount: statfs of a probe volume of the same
store, staged without a quota, reports the store's free bytes. The baseline is what the same data
costs to copy: `cp` of the volume's files into a tmpfs directory, timed in the same run.
Usage: bench_snapshot.py [--sizes 10M,1G,4G] [--repeats 5]
"""

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("VINEYARD_CSI_BIN_DIR", str(REPO / ".build" / "release"))
from harness.driver import Clients, Driver, cluster_parameters, csi_pb2, mount_capability  # noqa: E402

MiB = 1 << 20
Mode = csi_pb2.VolumeCapability.AccessMode


def parse_size(text):
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    return int(text[:-1]) * units[text[-1]] if text[-1] in units else int(text)


class Bench:
    def __init__(self, workdir, clients):
        self.workdir, self.clients = workdir, clients
        self.mounts = []

    def create(self, name, size, snapshot_id=None, volume_id=None):
        request = csi_pb2.CreateVolumeRequest(
            name=name, volume_capabilities=[mount_capability(Mode.SINGLE_NODE_MULTI_WRITER)],
            parameters=cluster_parameters())
        request.capacity_range.required_bytes = size
        if snapshot_id:
            request.volume_content_source.snapshot.snapshot_id = snapshot_id
        if volume_id:
            request.volume_content_source.volume.volume_id = volume_id
        return self.clients.controller.CreateVolume(request).volume

    def stage_and_publish(self, volume_id, context, name):
        staging, target = self.workdir / "staging" / name, self.workdir / "pods" / name
        capability = mount_capability(Mode.SINGLE_NODE_MULTI_WRITER)
        self.clients.node.NodeStageVolume(csi_pb2.NodeStageVolumeRequest(
            volume_id=volume_id, staging_target_path=str(staging), volume_capability=capability, volume_context=context))
        self.clients.node.NodePublishVolume(csi_pb2.NodePublishVolumeRequest(
            volume_id=volume_id, staging_target_path=str(staging), target_path=str(target),
            volume_capability=capability, volume_context=context))
        self.mounts.append((volume_id, staging, target))
        return target

    def store_free(self):
        if not hasattr(self, "probe"):
            self.probe = self.stage_and_publish("vol-" + "e" * 32, cluster_parameters(), "store-probe")
        stats = os.statvfs(self.probe)
        return stats.f_bavail * stats.f_frsize

    def unmount_all(self):
        for volume_id, staging, target in reversed(self.mounts):
            self.clients.node.NodeUnpublishVolume(csi_pb2.NodeUnpublishVolumeRequest(volume_id=volume_id, target_path=str(target)))
            self.clients.node.NodeUnstageVolume(csi_pb2.NodeUnstageVolumeRequest(volume_id=volume_id, staging_target_path=str(staging)))
        self.mounts.clear()


def timed(call):
    start = time.perf_counter()
    result = call()
    return time.perf_counter() - start, result


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="10M,1G,4G")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    sizes = [(text, parse_size(text)) for text in args.sizes.split(",")]
    store_size = max(size for _, size in sizes) * 4 + (1 << 30)
    workdir = Path(tempfile.mkdtemp(prefix="vineyard-csi-snapshot-bench-"))
    copies = Path(tempfile.mkdtemp(prefix="vineyard-csi-snapshot-copy-", dir="/dev/shm"))
    driver = Driver(workdir, node_id="bench", extra_args=["--store-size", str(store_size)])
    driver.start()
    rows = []
    try:
        with driver.channel() as channel:
            bench = Bench(workdir, Clients(channel))
            chunk = os.urandom(64 * MiB)
            for label, size in sizes:
                source = bench.create(f"pvc-{label}", size + 64 * MiB)
                target = bench.stage_and_publish(source.volume_id, source.volume_context, f"source-{label}")
                # Ten files, like a pipeline step's outputs.
                for index in range(10):
                    remaining = size // 10
                    with open(target / f"part-{index}.bin", "wb") as handle:
                        while remaining > 0:
                            remaining -= handle.write(chunk[: min(len(chunk), remaining)])
                free_before = bench.store_free()
                snapshot_times, restore_times, clone_times, copy_times = [], [], [], []
                extra = 0
                for repeat in range(args.repeats):
                    seconds, snap = timed(lambda: bench.clients.controller.CreateSnapshot(csi_pb2.CreateSnapshotRequest(
                        name=f"snap-{label}-{repeat}", source_volume_id=source.volume_id)).snapshot)
                    snapshot_times.append(seconds)
                    seconds, restored = timed(lambda: bench.create(f"restored-{label}-{repeat}", size + 64 * MiB, snapshot_id=snap.snapshot_id))
                    restore_times.append(seconds)
                    seconds, clone = timed(lambda: bench.create(f"clone-{label}-{repeat}", size + 64 * MiB, volume_id=source.volume_id))
                    clone_times.append(seconds)
                    extra = max(extra, free_before - bench.store_free())
                    # Dropped again so that provisioned capacity stays bounded; the shared
                    # objects stay with the source.
                    for volume in (restored, clone):
                        bench.clients.controller.DeleteVolume(csi_pb2.DeleteVolumeRequest(volume_id=volume.volume_id))
                    bench.clients.controller.DeleteSnapshot(csi_pb2.DeleteSnapshotRequest(snapshot_id=snap.snapshot_id))
                    seconds, _ = timed(lambda: shutil.copytree(target, copies / f"{label}-{repeat}",
                                                               ignore=shutil.ignore_patterns("vineyard.sock")))
                    copy_times.append(seconds)
                    shutil.rmtree(copies / f"{label}-{repeat}")
                extra = max(extra, free_before - bench.store_free())
                rows.append((label, size, snapshot_times, restore_times, clone_times, copy_times, extra))
            bench.unmount_all()
    finally:
        driver.stop(signal.SIGTERM)
        for line in sorted((l.split()[4] for l in open("/proc/self/mountinfo") if str(workdir) in l.split()[4]),
                           key=len, reverse=True):
            subprocess.run(["umount", "-l", line], check=False)
        shutil.rmtree(workdir, ignore_errors=True)
        shutil.rmtree(copies, ignore_errors=True)

    def ms(values):
        return f"{statistics.median(values) * 1e3:8.2f}"

    print(f"median of {args.repeats}; times in ms; extra = most store bytes a snapshot, "
          f"its restored volume and a clone used together; copy = cp of the same files into tmpfs")
    print(f"{'data':>6} {'snapshot':>9} {'restore':>9} {'clone':>9} {'max':>8} {'copy':>9} {'copy/snap':>10} {'extra':>10}")
    for label, size, snaps, restores, clones, copies_, extra in rows:
        worst = max(snaps + restores + clones) * 1e3
        print(f"{label:>6} {ms(snaps)} {ms(restores)} {ms(clones)} {worst:8.2f} {ms(copies_)} "
              f"{statistics.median(copies_) / statistics.median(snaps):10.0f} {extra:10d}")


if __name__ == "__main__":
    main()
