"""Data-path benchmark with fio: the same jobs on a tmpfs directory and on a mounted volume.

Every job runs on both directories in turn (tmpfs, volume, tmpfs, volume, ...), and the report
gives each side's median throughput and the median of the per-pair ratios volume/tmpfs, so a
drift of the machine's speed during the run cancels out. fio's own numbers are used (its JSON
output); nothing is timed here except the memory a mapping adds.

Jobs (buffered psync unless said otherwise):
  seq-write       one file of --size, 1 MiB blocks, fsync at the end
  seq-read-cold   the same file read with 1 MiB blocks after its pages were dropped
                  (fio --invalidate=1 plus /proc/sys/vm/drop_caches)
  seq-read-warm   read again with the page cache kept
  mmap-read       ioengine=mmap, 1 MiB blocks
  rand-read-4k    4 KiB random reads over the file, for --runtime seconds
  create-4k       --files files of 4 KiB each, created, written and closed (files/s)

Memory: after the read jobs and a drop of the page cache, a process maps the file MAP_SHARED and
touches every page; the growth of the node's Shmem + Cached (from /proc/meminfo, so other
activity on the node shows too: run it on a quiet machine) while it holds the mapping is printed
as a fraction of the file's size, for tmpfs and for the volume.

Usage: bench_fio.py TMPFS_DIR VOLUME_DIR [--size 1G] [--repeats 3] [--files 5000]
                    [--runtime 5] [--jobs seq-write,seq-read-cold,...] [--json OUT]
"""

import argparse
import json
import mmap
import os
import shutil
import statistics
import subprocess
import sys
import time

JOBS = ["seq-write", "seq-read-cold", "seq-read-warm", "mmap-read", "rand-read-4k", "create-4k"]
TARGETS = {"seq-write": 0.9, "seq-read-cold": 0.9, "seq-read-warm": 0.9, "mmap-read": 0.9,
           "rand-read-4k": 0.9, "create-4k": 0.2}


def parse_size(text):
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    return int(text[:-1]) * units[text[-1]] if text[-1] in units else int(text)


def drop_caches():
    os.sync()
    with open("/proc/sys/vm/drop_caches", "w") as handle:
        handle.write("3\n")


def fio(directory, job, args):
    """Runs one fio job in `directory`; returns (value, unit) from fio's JSON report."""
    data = os.path.join(directory, "fio-data")
    common = ["fio", "--output-format=json", "--name=" + job, "--group_reporting"]
    if job == "seq-write":
        if os.path.exists(data):
            os.unlink(data)
        options = ["--filename=" + data, "--rw=write", "--bs=1M", "--size=" + args.size,
                   "--ioengine=psync", "--end_fsync=1"]
    elif job in ("seq-read-cold", "seq-read-warm"):
        if job == "seq-read-cold":
            drop_caches()
        options = ["--filename=" + data, "--rw=read", "--bs=1M", "--size=" + args.size,
                   "--ioengine=psync", "--invalidate=" + ("1" if job == "seq-read-cold" else "0")]
    elif job == "mmap-read":
        options = ["--filename=" + data, "--rw=read", "--bs=1M", "--size=" + args.size,
                   "--ioengine=mmap", "--invalidate=0"]
    elif job == "rand-read-4k":
        options = ["--filename=" + data, "--rw=randread", "--bs=4k", "--size=" + args.size,
                   "--ioengine=psync", "--invalidate=0", "--time_based=1",
                   "--runtime=" + str(args.runtime), "--randrepeat=0"]
    elif job == "create-4k":
        files = os.path.join(directory, "fio-files")
        shutil.rmtree(files, ignore_errors=True)
        os.mkdir(files)
        options = ["--directory=" + files, "--rw=write", "--bs=4k", "--filesize=4k",
                   "--nrfiles=" + str(args.files), "--openfiles=1", "--create_on_open=1",
                   "--file_service_type=sequential", "--ioengine=psync"]
    else:
        raise ValueError(job)
    result = subprocess.run(common + options, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"fio {job} in {directory} failed: {result.stderr.strip()}")
    report = json.loads(result.stdout[result.stdout.index("{"):])
    side = report["jobs"][0]["write" if job in ("seq-write", "create-4k") else "read"]
    if job == "create-4k":
        shutil.rmtree(os.path.join(directory, "fio-files"), ignore_errors=True)
        return side["iops"], "files/s"
    if job == "rand-read-4k":
        return side["iops"], "IOPS"
    return side["bw_bytes"] / 1e6, "MB/s"


def meminfo():
    values = {}
    with open("/proc/meminfo") as handle:
        for line in handle:
            key, rest = line.split(":", 1)
            values[key] = int(rest.split()[0]) * 1024
    return values


def mapping_growth(path):
    """Bytes the node's Shmem + Cached grow by while a child maps and touches `path`, starting
    from a page cache without the file's pages (earlier jobs read it)."""
    size = os.path.getsize(path)
    drop_caches()
    before = meminfo()
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_end)
        fd = os.open(path, os.O_RDONLY)
        view = mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ)
        total = 0
        for offset in range(0, size, 4096):
            total += view[offset]
        os.write(write_end, b"x")
        time.sleep(1.0)
        os._exit(0 if total >= 0 else 1)
    os.close(write_end)
    os.read(read_end, 1)
    held = meminfo()
    os.waitpid(pid, 0)
    os.close(read_end)
    grown = (held["Shmem"] + held["Cached"]) - (before["Shmem"] + before["Cached"])
    return max(0, grown) / size


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("tmpfs")
    parser.add_argument("volume")
    parser.add_argument("--size", default="1G")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--files", type=int, default=5000)
    parser.add_argument("--runtime", type=int, default=5)
    parser.add_argument("--jobs", default=",".join(JOBS))
    parser.add_argument("--json", help="write the raw figures here")
    args = parser.parse_args()
    jobs = [job for job in args.jobs.split(",") if job]
    unknown = sorted(set(jobs) - set(JOBS))
    if unknown:
        parser.error(f"unknown jobs: {', '.join(unknown)} (known: {', '.join(JOBS)})")
    if shutil.which("fio") is None:
        sys.exit("fio is not installed (apt-get install fio)")

    figures = {job: {"tmpfs": [], "volume": [], "ratio": [], "unit": ""} for job in jobs}
    for repeat in range(args.repeats):
        for job in jobs:
            base, unit = fio(args.tmpfs, job, args)
            value, _ = fio(args.volume, job, args)
            entry = figures[job]
            entry["unit"] = unit
            entry["tmpfs"].append(base)
            entry["volume"].append(value)
            entry["ratio"].append(value / base if base else 0.0)
            print(f"  [{repeat + 1}/{args.repeats}] {job}: tmpfs {base:,.0f} {unit}, "
                  f"volume {value:,.0f} {unit} ({value / base if base else 0:.2f}x)", file=sys.stderr)

    memory = {}
    for side, directory in (("tmpfs", args.tmpfs), ("volume", args.volume)):
        path = os.path.join(directory, "fio-data")
        if os.path.exists(path):
            memory[side] = mapping_growth(path)

    print(f"\nfio {args.size}, {args.repeats} repeats, medians; ratio = median of paired volume/tmpfs")
    print(f"{'job':<15} {'tmpfs':>14} {'volume':>14} {'ratio':>7} {'min-max':>11} {'target':>7}")
    for job in jobs:
        entry = figures[job]
        ratios = entry["ratio"]
        print(f"{job:<15} {statistics.median(entry['tmpfs']):>10,.0f} {entry['unit']:<3} "
              f"{statistics.median(entry['volume']):>10,.0f} {entry['unit']:<3} "
              f"{statistics.median(ratios):>6.2f}x {min(ratios):>5.2f}-{max(ratios):<5.2f} "
              f">={TARGETS[job]:.1f}x")
    for side, fraction in memory.items():
        print(f"mapping the {args.size} file on {side} grew Shmem+Cached by {fraction * 100:.1f} % of its size")
    for directory in (args.tmpfs, args.volume):
        path = os.path.join(directory, "fio-data")
        if os.path.exists(path):
            os.unlink(path)
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"size": args.size, "repeats": args.repeats, "jobs": figures, "mapping_growth": memory},
                      handle, indent=2)


if __name__ == "__main__":
    main()
