"""The benchmark behind scripts/bench-restart.sh: I/O stall per restart of the node plugin."""

import hashlib
import json
import os
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

from harness.restart import Rig, fill, sha256


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))]


def run(sig, restarts, root):
    workdir = Path(tempfile.mkdtemp(prefix=f"bench-restart-{sig.name}-", dir=root))
    rig = Rig(workdir)
    try:
        target = rig.publish_volume(f"pvc-bench-{sig.name.lower()}")
        fill(target / "big.bin", 256 << 20)
        expected = sha256(target / "big.bin")
        stop = workdir / "stop"
        reader = rig.start_io("read", target / "big.bin", stop, expected)
        # ~30 MiB/s, so that 20 restarts fit the volume's quota.
        writer = rig.start_io("write", target / "out.bin", stop, 0.03)
        time.sleep(1.0)
        windows, answered = [], []
        for _ in range(restarts):
            started = time.monotonic()
            rig.driver.stop(sig)
            rig.driver.start()
            answered.append(time.monotonic() - started)
            windows.append((started, time.monotonic()))
            time.sleep(0.5)
        stop.touch()
        read, written = Rig.finish(reader, timeout=300), Rig.finish(writer, timeout=300)
        assert read["ok"] and written["ok"], (read, written)
        assert sha256(target / "out.bin") == written["sha256"], "written file differs"
        # The stall of one restart: the longest call of either process that overlaps its window.
        stalls = []
        calls = read["stalls"] + written["stalls"]
        for begin, end in windows:
            overlapping = [elapsed for start, elapsed in calls if start <= end + 0.5 and start + elapsed >= begin]
            stalls.append(max(overlapping, default=0.0))
        rig.unpublish_volume()
        return stalls, answered, read, written
    finally:
        rig.close()


def main():
    restarts = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    root = tempfile.mkdtemp(prefix="vineyard-csi-bench-restart-")
    rows = []
    for sig, target in ((signal.SIGTERM, 1.0), (signal.SIGKILL, 3.0)):
        stalls, answered, read, written = run(sig, restarts, root)
        rows.append((sig.name, restarts, percentile(stalls, 0.5), percentile(stalls, 0.99), max(stalls),
                     statistics.median(answered), target, read["bytes"], written["bytes"]))
    print()
    print(f"{'signal':<8} {'restarts':>8} {'stall p50':>10} {'stall p99':>10} {'stall max':>10} "
          f"{'probe p50':>10} {'target':>7}  {'read MiB':>9} {'written MiB':>12}")
    for name, count, p50, p99, worst, probe, target, read_bytes, written_bytes in rows:
        verdict = "ok" if p99 < target else "MISSED"
        print(f"{name:<8} {count:>8} {p50:>9.3f}s {p99:>9.3f}s {worst:>9.3f}s {probe:>9.3f}s {target:>5.1f}s {verdict:<3}"
              f" {read_bytes >> 20:>8} {written_bytes >> 20:>12}")
    print("\nstall: the longest read(2)/write(2) of the reader or the writer around a restart; probe: signal to "
          "the new plugin answering Probe.")


if __name__ == "__main__":
    main()
