"""Cross-node reads in cluster mode: what node B's mount and B's volume socket take to read an
object whose bytes node A's vineyardd holds, against vineyard's own `client.get(id, fetch=True)`
between the same two vineyardd, in one run; and how long local `fetch=True` gets take.

Two vineyardd (from the vineyard wheel) on one etcd with RPC on, and a driver per vineyardd, as
the cluster-mode tests start them (scripts/harness/cluster.py). Each repeat reads a new
object, so every read migrates: B's vineyardd copies the blobs from A's over vineyard's RPC.

- vineyard: A's vineyardd socket puts a 1 GiB uint8 array; B's vineyardd socket
  `get(id, fetch=True)` (migration, then the copy mapped), every byte read (copied out 1 MiB
  at a time, as a file read copies).
- socket: the same through the volume's sockets on A and B (the driver's relay).
- mount: a 1 GiB file written through A's mount, read (1 MiB reads) through B's mount:
  migration, then the copy served by FUSE from B's shared memory; and the same read again once
  the copy is local ("mount, copy local": what the mount adds to the migration).

Prints the median and spread (min..max) of each and the ratios to vineyard's time.
Usage: VINEYARD_CSI_BIN_DIR=.build/release python scripts/bench_crossnode.py [--size 1G] [--repeats 3]
"""

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))

import numpy as np  # noqa: E402
import vineyard  # noqa: E402

from bench_fs import drop_caches, parse_size  # noqa: E402
from harness.cluster import create_volume, two_node_cluster, wait_for  # noqa: E402


def consume(array):
    """Reads every byte as a file read would: copied into a 1 MiB buffer, piece by piece."""
    view, buffer = memoryview(array).cast("B"), bytearray(1 << 20)
    for offset in range(0, len(view), len(buffer)):
        piece = view[offset:offset + len(buffer)]
        buffer[:len(piece)] = piece


def timed(body):
    start = time.perf_counter()
    body()
    return time.perf_counter() - start


def read_through(path):
    with open(path, "rb", buffering=0) as handle:
        while handle.read(1 << 20):
            pass


def summary(times):
    return f"median {statistics.median(times):8.3f} s  spread {min(times):.3f}..{max(times):.3f}"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", default="1G")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    size = parse_size(args.size)
    payload = np.random.default_rng(1).integers(0, 256, size=size, dtype=np.uint8)
    times = {"vineyard": [], "socket": [], "mount": [], "mount, copy local": []}
    local = {}
    with tempfile.TemporaryDirectory(prefix="vineyard-csi-crossnode-") as workdir, \
            two_node_cluster(Path(workdir), vineyardd_size=f"{3 * size >> 20}Mi", store_size=f"{3 * size >> 20}Mi") as nodes:
        node_a, node_b = nodes["node_a"], nodes["node_b"]
        volume = create_volume(node_a.clients, "pvc-bench-crossnode", size=3 * size)
        mount_a, mount_b = node_a.publish(volume), node_b.publish(volume)
        try:
            direct_a, direct_b = nodes["a"].client(), nodes["b"].client()
            volume_a = vineyard.connect(str(mount_a / "vineyard.sock"))
            volume_b = vineyard.connect(str(mount_b / "vineyard.sock"))
            # Untimed: B's vineyardd faults its shared memory in on first use.
            warm = direct_a.put(payload, persist=True)
            wait_for(lambda: direct_b.exists(warm), timeout=30, what="the object on b")
            direct_b.delete(direct_b.migrate(warm))
            direct_a.delete(warm)
            for repeat in range(args.repeats):
                # vineyard's own client, vineyardd to vineyardd.
                original = direct_a.put(payload, persist=True)
                wait_for(lambda: direct_b.exists(original), timeout=30, what="the object on b")
                times["vineyard"].append(timed(lambda: consume(direct_b.get(original, fetch=True))))
                direct_b.delete(direct_b.migrate(original))
                direct_a.delete(original)
                # Through the volume's sockets.
                original = volume_a.put(payload, persist=True, name=f"socket-{repeat}")
                wait_for(lambda: f"socket-{repeat}" in volume_b.list_names("*", limit=100), timeout=30, what="the name on b")
                times["socket"].append(timed(lambda: consume(volume_b.get(original, fetch=True))))
                volume_b.delete(volume_b.migrate(original))
                volume_a.delete(original)
                volume_a.drop_name(f"socket-{repeat}")
                # Through the mounts.
                name = f"mount-{repeat}.bin"
                with open(mount_a / name, "wb") as handle:
                    handle.write(memoryview(payload))
                wait_for(lambda: name in os.listdir(mount_b), timeout=30, what="the file on b")
                drop_caches()
                times["mount"].append(timed(lambda: read_through(mount_b / name)))
                drop_caches()
                times["mount, copy local"].append(timed(lambda: read_through(mount_b / name)))
                original = volume_b.get_name(name)
                volume_b.delete(volume_b.migrate(original))
                os.unlink(mount_a / name)
                print(f"repeat {repeat + 1}: " + "  ".join(f"{k} {v[-1]:.3f} s" for k, v in times.items()), flush=True)
            # Local gets with fetch=True: nothing to migrate, as fast as plain gets (through the
            # volume's socket, and through vineyardd's own for comparison).
            for megabytes in (1, 64, 512):
                array = payload[: megabytes << 20]
                for via, client in (("volume socket", volume_a), ("vineyardd socket", direct_a)):
                    object_id = client.put(array, persist=True)
                    for fetch in (False, True):
                        client.get(object_id, fetch=fetch)
                        samples = [timed(lambda: client.get(object_id, fetch=fetch)) for _ in range(50)]
                        local[(via, megabytes, fetch)] = samples
                    client.delete(object_id)
            volume_a.close()
            volume_b.close()
        finally:
            node_b.unpublish(volume)
            node_a.unpublish(volume)
    gib = size / (1 << 30)
    print(f"\ncross-node read of {gib:g} GiB, {args.repeats} repeats")
    base = statistics.median(times["vineyard"])
    for kind, samples in times.items():
        ratio = statistics.median(samples) / base
        print(f"  {kind:17s} {summary(samples)}  {gib / statistics.median(samples):6.2f} GiB/s  {ratio:5.2f}x vineyard")
    print("\nlocal get on node a (50 each), milliseconds")
    for (via, megabytes, fetch), samples in sorted(local.items()):
        ms = [s * 1000 for s in samples]
        print(f"  {via:16s} {megabytes:4d} MiB fetch={str(fetch):5s} median {statistics.median(ms):.3f}  "
              f"spread {min(ms):.3f}..{max(ms):.3f}")


if __name__ == "__main__":
    main()
