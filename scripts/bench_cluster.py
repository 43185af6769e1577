"""Cluster-mode benchmark: sequential write/read through the mount with the vineyardd backend,
with the embedded backend, and on tmpfs, interleaved in one run, median of repeats.

Prints MB/s and ratios (higher is better): vineyardd/embedded and each against tmpfs.
With --small-files N (default 1000) it also times N 4 KiB files (create+write+close,
open+read+close, readdir): the per-file round trips, which cost the vineyardd backend socket
calls to vineyardd besides FUSE's.
Usage: bench_cluster.py TMPFS_DIR EMBEDDED_MOUNT VINEYARDD_MOUNT [--sizes 64M,512M] [--repeats 3]
                        [--small-files 1000]
"""

import argparse
import os
import statistics
import sys

from bench_fs import CHUNK, drop_caches, parse_size, read_file, small_files, write_file


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("tmpfs")
    parser.add_argument("embedded")
    parser.add_argument("vineyardd")
    parser.add_argument("--sizes", default="64M,512M")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--small-files", type=int, default=1000)
    args = parser.parse_args()
    chunk = os.urandom(CHUNK)
    targets = (("tmpfs", args.tmpfs), ("embedded", args.embedded), ("vineyardd", args.vineyardd))
    print(f"median of {args.repeats}; MB/s; ratios > 1 mean faster than the reference")
    print(f"{'operation':<22} {'tmpfs':>9} {'embedded':>9} {'vineyardd':>9} {'vyd/emb':>8} {'emb/tmpfs':>9} {'vyd/tmpfs':>9}")
    for size_text in args.sizes.split(","):
        size = parse_size(size_text)
        samples = {label: ([], [], []) for label, _ in targets}
        for _ in range(args.repeats):  # interleaved, so load changes hit every target alike
            for label, directory in targets:
                path = f"{directory}/bench-{size_text}.bin"
                samples[label][0].append(size / write_file(path, size, chunk))
                drop_caches()
                seconds, total = read_file(path)
                assert total == size, f"read {total} of {size} bytes from {path}"
                samples[label][1].append(size / seconds)
                seconds, _ = read_file(path)
                samples[label][2].append(size / seconds)
                os.unlink(path)
        for index, name in enumerate(("write", "read cold", "read warm")):
            t, e, v = (statistics.median(samples[label][index]) / 1e6 for label, _ in targets)
            print(f"{name + ' ' + size_text:<22} {t:>9.0f} {e:>9.0f} {v:>9.0f} {v / e:>8.2f} {e / t:>9.2f} {v / t:>9.2f}")
    if args.small_files:
        count = args.small_files
        runs = {label: [] for label, _ in targets}
        for _ in range(args.repeats):
            for label, directory in targets:
                runs[label].append(small_files(f"{directory}/small", count))
        print(f"{count} x 4 KiB files; files/s (readdir: entries/s)")
        for index, name in enumerate(("create+write+close", "open+read+close", "readdir")):
            t, e, v = (count / statistics.median(run[index] for run in runs[label]) for label, _ in targets)
            print(f"{name:<22} {t:>9.0f} {e:>9.0f} {v:>9.0f} {v / e:>8.2f} {e / t:>9.2f} {v / t:>9.2f}")


if __name__ == "__main__":
    sys.exit(main())
