"""A reader or a writer that keeps doing I/O on a volume while the node plugin restarts.

    restart_io.py read PATH STOP EXPECTED_SHA256   # reads PATH whole, again and again
    restart_io.py write PATH STOP [PAUSE]           # writes PATH in 1 MiB chunks, PAUSE s apart

Both run until the file STOP exists (at least one full pass for the reader), then print one
JSON line: ok, bytes, sha256 (writer: of everything written), passes (reader), the longest
single read/write call in seconds (`max_stall`) and every call longer than 50 ms (`stalls`,
[start, seconds] pairs, start on the CLOCK_MONOTONIC clock). Any OSError is reported
(`ok: false`, `error`) and the exit status is 1. The writer closes the file before reporting,
so a failure to publish it shows too.
"""

import hashlib
import json
import os
import sys
import time

CHUNK = 1 << 20
STALL = 0.05


def chunk(index):
    seed = hashlib.sha256(index.to_bytes(8, "little")).digest()
    return (seed * (CHUNK // len(seed)))[:CHUNK]


def timed(calls, function, *args):
    started = time.monotonic()
    result = function(*args)
    elapsed = time.monotonic() - started
    calls.append((started, elapsed))
    return result


def report(ok, calls, **fields):
    longest = max((elapsed for _, elapsed in calls), default=0.0)
    stalls = [[round(start, 4), round(elapsed, 4)] for start, elapsed in calls if elapsed > STALL]
    print(json.dumps({"ok": ok, "max_stall": longest, "stalls": stalls, "calls": len(calls), **fields}), flush=True)
    return 0 if ok else 1


def read(path, stop, expected):
    calls, passes, total = [], 0, 0
    try:
        while True:
            digest = hashlib.sha256()
            with open(path, "rb", buffering=0) as handle:
                while True:
                    data = timed(calls, handle.read, CHUNK)
                    if not data:
                        break
                    digest.update(data)
                    total += len(data)
            passes += 1
            if digest.hexdigest() != expected:
                return report(False, calls, passes=passes, bytes=total, error=f"pass {passes}: content differs")
            if os.path.exists(stop):
                return report(True, calls, passes=passes, bytes=total)
    except OSError as error:
        return report(False, calls, passes=passes, bytes=total, error=f"{type(error).__name__}: {error}")


def write(path, stop, pause=0.002):
    calls, index, digest = [], 0, hashlib.sha256()
    try:
        handle = open(path, "wb", buffering=0)
        while not os.path.exists(stop) or index < 8:
            data = chunk(index)
            written = timed(calls, handle.write, data)
            if written != len(data):
                return report(False, calls, bytes=index * CHUNK, error=f"short write {written}")
            digest.update(data)
            index += 1
            time.sleep(pause)
        timed(calls, handle.close)
        return report(True, calls, bytes=index * CHUNK, sha256=digest.hexdigest())
    except OSError as error:
        return report(False, calls, bytes=index * CHUNK, error=f"{type(error).__name__}: {error}")


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "read":
        sys.exit(read(sys.argv[2], sys.argv[3], sys.argv[4]))
    sys.exit(write(sys.argv[2], sys.argv[3], *(float(a) for a in sys.argv[4:5])))
