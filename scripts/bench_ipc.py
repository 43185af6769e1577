"""Put and get of numpy arrays through a volume's vineyard.sock and through the real vineyardd,
in the same run, with the unmodified vineyard Python client. Prints one table with ratios.

Usage: bench_ipc.py OUR_SOCKET VINEYARDD_SOCKET [--sizes 1,4,16,64,256,1024] [--repeat 5]

put: client.put(array) (create_buffer, copy into shared memory, seal, create_data), best and
median of --repeat runs; throughput = bytes / time. get: client.get(id) (get_data,
get_buffers, mapping on first use; returns a view of shared memory, no copy), median time.
Each size runs on fresh connections; the servers are measured interleaved, repetition by
repetition, so load from elsewhere on the machine affects both alike; each put's object is
deleted (untimed) before the next.
"""

import argparse
import statistics
import time

import numpy as np
import vineyard

MiB = 1 << 20


def measure(sockets, array, repeat):
    """Times put and get on every server, interleaved repetition by repetition (alternating
    which goes first) so that load from elsewhere on the machine hits both alike."""
    clients = {label: vineyard.connect(path) for label, path in sockets.items()}
    put_times = {label: [] for label in sockets}
    get_times = {label: [] for label in sockets}
    kept = {}
    try:
        # Warm-up: the first put maps the store into the client and may fault fresh memory.
        for client in clients.values():
            client.delete(client.put(array))
        for index in range(repeat):
            labels = list(clients) if index % 2 == 0 else list(reversed(clients))
            for label in labels:
                client = clients[label]
                start = time.perf_counter()
                object_id = client.put(array)
                put_times[label].append(time.perf_counter() - start)
                # Deleted (untimed) before the next put, so both servers can reuse the memory.
                if index < repeat - 1:
                    client.delete(object_id)
                else:
                    kept[label] = object_id
        for label, client in clients.items():
            value = client.get(kept[label])  # warm-up
            assert value.shape == array.shape and value[-1] == array[-1]
            del value
        for index in range(repeat):
            labels = list(clients) if index % 2 == 0 else list(reversed(clients))
            for label in labels:
                start = time.perf_counter()
                value = clients[label].get(kept[label])
                get_times[label].append(time.perf_counter() - start)
                del value
        for label, client in clients.items():
            client.delete(kept[label])
    finally:
        for client in clients.values():
            client.close()
    return {label: (put_times[label], get_times[label]) for label in sockets}


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
        results = measure({"ours": args.ours, "vineyardd": args.vineyardd}, array, args.repeat)
        rows.append((size, results))
        del array

    def gbps(size, seconds):
        return size * MiB / seconds / 1e9

    header = (f"{'size':>8} | {'put ours':>9} {'put vyd':>9} {'ratio':>6} {'best':>6} | "
              f"{'get ours':>9} {'get vyd':>9} {'ratio':>6} {'best':>6}")
    print("put: median GB/s; ratio = ours/vineyardd throughput (median), best = the same for the")
    print("     fastest run of each (target >= 1.0)")
    print("get: median microseconds; ratio = ours/vineyardd time (median), best = fastest runs")
    print("     (target <= 1.2, and constant in size)")
    print(header)
    print("-" * len(header))
    for size, results in rows:
        ours_put, ours_get = results["ours"]
        vyd_put, vyd_get = results["vineyardd"]
        put_ours = gbps(size, statistics.median(ours_put))
        put_vyd = gbps(size, statistics.median(vyd_put))
        put_best = min(vyd_put) / min(ours_put)
        get_ours = statistics.median(ours_get) * 1e6
        get_vyd = statistics.median(vyd_get) * 1e6
        get_best = min(ours_get) / min(vyd_get)
        label = f"{size} MiB" if size < 1024 else f"{size // 1024} GiB"
        print(f"{label:>8} | {put_ours:>9.2f} {put_vyd:>9.2f} {put_ours / put_vyd:>6.2f} {put_best:>6.2f} | "
              f"{get_ours:>9.0f} {get_vyd:>9.0f} {get_ours / get_vyd:>6.2f} {get_best:>6.2f}")


if __name__ == "__main__":
    main()
