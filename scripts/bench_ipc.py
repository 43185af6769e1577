"""Put and get of numpy arrays through a volume's vineyard.sock and through the real vineyardd,
in the same run, with the unmodified vineyard Python client. Prints one table with ratios.

Usage: bench_ipc.py OUR_SOCKET VINEYARDD_SOCKET [--sizes 1,4,16,64,256,1024] [--repeat 5]

put: client.put(array) (create_buffer, copy into shared memory, seal, create_data), best and
median of --repeat runs; throughput = bytes / time. get: client.get(id) (get_data,
get_buffers, mapping on first use; returns a view of shared memory, no copy), median time.
Each size runs on a fresh connection; each put's object is deleted (untimed) before the next.
"""

import argparse
import statistics
import time

import numpy as np
import vineyard

MiB = 1 << 20


def measure(socket_path, array, repeat):
    put_times, get_times = [], []
    writer = vineyard.connect(socket_path)
    ids = []
    try:
        # One warm-up put: the first put maps the store into the client. Each timed put's object
        # is deleted before the next (untimed), so both servers can reuse the memory.
        writer.delete(writer.put(array))
        for index in range(repeat):
            start = time.perf_counter()
            object_id = writer.put(array)
            put_times.append(time.perf_counter() - start)
            if index < repeat - 1:
                writer.delete(object_id)
            else:
                ids.append(object_id)
        # (vineyard.connect shares one connection per socket within a process, so gets use it too.)
        value = writer.get(ids[-1])  # warm-up
        assert value.shape == array.shape and value[-1] == array[-1]
        del value
        for _ in range(repeat):
            start = time.perf_counter()
            value = writer.get(ids[-1])
            get_times.append(time.perf_counter() - start)
            del value
        for object_id in ids:
            writer.delete(object_id)
    finally:
        writer.close()
    return put_times, get_times


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("ours")
    parser.add_argument("vineyardd")
    parser.add_argument("--sizes", default="1,4,16,64,256,1024", help="MiB, comma-separated")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    rows = []
    for size in [int(s) for s in args.sizes.split(",")]:
        array = np.random.default_rng(size).integers(0, 1 << 62, size * MiB // 8, dtype=np.int64)
        results = {}
        # Alternate the order per size so neither server always runs on a warmer machine.
        order = [("ours", args.ours), ("vineyardd", args.vineyardd)]
        if size % 2:
            order.reverse()
        for label, path in order:
            results[label] = measure(path, array, args.repeat)
        rows.append((size, results))
        del array

    def gbps(size, seconds):
        return size * MiB / seconds / 1e9

    header = (f"{'size':>8} | {'put ours':>10} {'put vyd':>10} {'put ratio':>9} | "
              f"{'get ours':>10} {'get vyd':>10} {'get ratio':>9}")
    print("put: median GB/s (ratio = ours/vineyardd throughput, >= 1.0 is as fast or faster)")
    print("get: median microseconds (ratio = ours/vineyardd time, <= 1.2 is the target)")
    print(header)
    print("-" * len(header))
    for size, results in rows:
        put_ours = gbps(size, statistics.median(results["ours"][0]))
        put_vyd = gbps(size, statistics.median(results["vineyardd"][0]))
        get_ours = statistics.median(results["ours"][1]) * 1e6
        get_vyd = statistics.median(results["vineyardd"][1]) * 1e6
        label = f"{size} MiB" if size < 1024 else f"{size // 1024} GiB"
        print(f"{label:>8} | {put_ours:>10.2f} {put_vyd:>10.2f} {put_ours / put_vyd:>9.2f} | "
              f"{get_ours:>10.0f} {get_vyd:>10.0f} {get_ours / get_vyd:>9.2f}")


if __name__ == "__main__":
    main()
