"""FUSE requests per file operation: what a create+write+close and an open+read+close cost.

Starts the driver in local mode with metrics on, runs each sequence --count times on the volume,
(the cold one with the page cache dropped before each open, a tenth as often) and prints the
requests per sequence from vineyard_csi_file_operations_total (RELEASE and FORGET
are not counted there: one RELEASE per close of the last descriptor of an open file follows).

Usage: python3 scripts/bench_roundtrips.py BIN_DIR [--count 200] [--driver-args "--no-passthrough"]
"""

import argparse
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def counters(url):
    text = urllib.request.urlopen(url, timeout=10).read().decode()
    found = {}
    for match in re.finditer(r'^vineyard_csi_file_operations_total\{operation="(\w+)"\} (\d+)', text, re.M):
        found[match.group(1)] = int(match.group(2))
    return found


def measure(url, count, sequence):
    before = counters(url)
    for index in range(count):
        sequence(index)
    time.sleep(0.5)  # requests that follow a close (RELEASE) settle
    after = counters(url)
    return {op: (after.get(op, 0) - before.get(op, 0)) / count for op in after if after.get(op, 0) != before.get(op, 0)}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("bin_dir")
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--driver-args", default="")
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="vineyard-csi-roundtrips-")
    volume = os.path.join(work, "vineyard")
    port = free_port()
    url = f"http://127.0.0.1:{port}/metrics"
    driver = subprocess.Popen(
        [os.path.join(args.bin_dir, "vineyard-csi"), "--mode", "all", "--endpoint", f"unix://{work}/csi.sock",
         "--nodeid", "rt", "--state-dir", f"{work}/state", "--store-dir", f"/dev/shm/vineyard-csi-rt.{os.getpid()}",
         "--store-size", "2Gi", "--default-volume-size", "2Gi", "--local-volume", volume,
         "--metrics-address", f"127.0.0.1:{port}", *shlex.split(args.driver_args)],
        stdout=open(os.path.join(work, "driver.log"), "wb"), stderr=subprocess.STDOUT)
    try:
        for _ in range(400):
            if os.path.ismount(volume):
                break
            time.sleep(0.05)
        else:
            sys.exit(open(os.path.join(work, "driver.log")).read())
        small, large = b"x" * 4096, os.urandom(2 << 20)

        def create(index):
            fd = os.open(os.path.join(volume, f"c{index}"), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            os.write(fd, small)
            os.close(fd)

        def reader(name, size, cold=False):
            def read(index):
                if cold:
                    with open("/proc/sys/vm/drop_caches", "w") as caches:
                        caches.write("1\n")
                fd = os.open(os.path.join(volume, name), os.O_RDONLY)
                while os.read(fd, 1 << 20):
                    pass
                os.close(fd)
            return read

        with open(os.path.join(volume, "small"), "wb") as stream:
            stream.write(small)
        with open(os.path.join(volume, "large"), "wb") as stream:
            stream.write(large)
        time.sleep(0.5)
        for title, sequence in [
            ("create+write 4 KiB+close", create),
            ("open+read 4 KiB+close", reader("small", len(small))),
            ("open+read 2 MiB+close", reader("large", len(large))),
            ("cold open+read 2 MiB+close", reader("large", len(large), cold=True)),
        ]:
            costs = measure(url, args.count // 10 if title.startswith("cold") else args.count, sequence)
            total = sum(costs.values())
            detail = ", ".join(f"{op} {value:.2f}" for op, value in sorted(costs.items()))
            print(f"{title:28} {total:5.2f} requests (+1 RELEASE): {detail}")
    finally:
        driver.send_signal(signal.SIGINT)
        driver.wait(timeout=30)
        subprocess.run(["rm", "-rf", work, f"/dev/shm/vineyard-csi-rt.{os.getpid()}"], check=False)


if __name__ == "__main__":
    main()
