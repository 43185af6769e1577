"""File-system benchmark: the same operations on a baseline directory and on a mounted volume.

Prints MB/s or ops/s for each, and the ratio volume/baseline (higher is better). Both
directories are measured in the same run, interleaved per operation, median of repeats.
With --floor DIR (a mount of `vineyard-csi-bench fuse-floor`, a FUSE file system that keeps
no data), the small-file operations also run there: the floor is what the kernel's FUSE round
trips alone cost on this machine, so "vol/floor" near 1.0 means the driver adds nothing.
Usage: bench_fs.py BASELINE_DIR VOLUME_DIR [--sizes 64M,1G,4G] [--repeats 3] [--small-files 10000]
                   [--floor FLOOR_DIR]
"""

import argparse
import os
import statistics
import sys
import time

CHUNK = 1 << 20


def parse_size(text):
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    return int(text[:-1]) * units[text[-1]] if text[-1] in units else int(text)


def drop_caches():
    """Evicts clean page-cache pages (FUSE reads then reach the driver; tmpfs pages stay)."""
    os.sync()
    try:
        with open("/proc/sys/vm/drop_caches", "w") as handle:
            handle.write("3\n")
    except OSError:
        pass


def write_file(path, size, chunk):
    start = time.perf_counter()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    written = 0
    while written < size:
        written += os.write(fd, chunk[: min(CHUNK, size - written)])
    os.close(fd)
    return time.perf_counter() - start


def read_file(path):
    start = time.perf_counter()
    fd = os.open(path, os.O_RDONLY)
    buffer = bytearray(CHUNK)
    view = memoryview(buffer)
    total = 0
    while True:
        n = os.readv(fd, [view])
        if n == 0:
            break
        total += n
    os.close(fd)
    return time.perf_counter() - start, total


def small_files(directory, count):
    os.makedirs(directory, exist_ok=True)
    payload = os.urandom(4096)
    start = time.perf_counter()
    for i in range(count):
        fd = os.open(f"{directory}/f{i:06d}", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.write(fd, payload)
        os.close(fd)
    create = time.perf_counter() - start
    start = time.perf_counter()
    for i in range(count):
        fd = os.open(f"{directory}/f{i:06d}", os.O_RDONLY)
        os.read(fd, 8192)
        os.close(fd)
    read = time.perf_counter() - start
    start = time.perf_counter()
    entries = len(os.listdir(directory))
    listing = time.perf_counter() - start
    assert entries == count, f"readdir saw {entries} of {count} entries"
    for i in range(count):
        os.unlink(f"{directory}/f{i:06d}")
    os.rmdir(directory)
    return create, read, listing


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("baseline")
    parser.add_argument("volume")
    parser.add_argument("--sizes", default="64M,1G,4G")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--small-files", type=int, default=10000)
    parser.add_argument("--floor", help="mount of `vineyard-csi-bench fuse-floor` for small-file ops")
    args = parser.parse_args()
    chunk = os.urandom(CHUNK)
    rows = []  # (operation, unit, baseline value, volume value, floor value or None)

    for size_text in args.sizes.split(","):
        size = parse_size(size_text)
        results = {}
        for label, directory in (("baseline", args.baseline), ("volume", args.volume)):
            writes, cold, warm = [], [], []
            for _ in range(args.repeats):
                path = f"{directory}/bench-{size_text}.bin"
                writes.append(size / write_file(path, size, chunk))
                drop_caches()
                seconds, total = read_file(path)
                assert total == size, f"read {total} of {size} bytes from {path}"
                cold.append(size / seconds)
                seconds, _ = read_file(path)
                warm.append(size / seconds)
                os.unlink(path)
            results[label] = [statistics.median(v) / 1e6 for v in (writes, cold, warm)]
        for index, name in enumerate(("write", "read cold", "read warm")):
            rows.append((f"sequential {name} {size_text}", "MB/s", results["baseline"][index], results["volume"][index], None))

    if args.small_files:
        targets = [("baseline", args.baseline), ("volume", args.volume)]
        if args.floor:
            targets.append(("floor", args.floor))
        runs = {label: [] for label, _ in targets}
        for _ in range(args.repeats):  # interleaved, so load changes hit every target alike
            for label, directory in targets:
                runs[label].append(small_files(f"{directory}/small", args.small_files))
        results = {
            label: [args.small_files / statistics.median(r[i] for r in samples) for i in range(3)]
            for label, samples in runs.items()
        }
        count = args.small_files
        names = (f"{count} x 4 KiB create+write+close", f"{count} x 4 KiB open+read+close", f"readdir of {count} entries")
        for index, name in enumerate(names):
            floor = results["floor"][index] if args.floor else None
            unit = "entries/s" if index == 2 else "ops/s"
            rows.append((name, unit, results["baseline"][index], results["volume"][index], floor))

    print(f"baseline: {args.baseline}   volume: {args.volume}   median of {args.repeats}")
    if args.floor:
        print(f"floor: {args.floor} (FUSE file system keeping no data: the kernel round trips alone)")
    header = f"{'operation':<36} {'unit':<10} {'baseline':>12} {'volume':>12} {'ratio':>7}"
    print(header + (f" {'floor':>12} {'floor/base':>10} {'vol/floor':>9}" if args.floor else ""))
    for operation, unit, base, ours, floor in rows:
        line = f"{operation:<36} {unit:<10} {base:>12.0f} {ours:>12.0f} {ours / base:>7.2f}"
        if floor is not None:
            line += f" {floor:>12.0f} {floor / base:>10.2f} {ours / floor:>9.2f}"
        print(line)


if __name__ == "__main__":
    sys.exit(main())
