"""Put and get of numpy arrays through a volume's vineyard.sock and through the real vineyardd,
in the same run, with the unmodified vineyard Python client. Prints one table with ratios.

Usage: bench_ipc.py OUR_SOCKET VINEYARDD_SOCKET [--sizes 1,4,16,64,256,1024] [--repeat 5] [--rounds 3]
                    [--against-itself]

put: client.put(array) (create_buffer, copy into shared memory, seal, create_data);
throughput = bytes / time. get: client.get(id) (get_data, get_buffers; returns a view of shared
memory, no copy), time.

Fairness: both servers are measured alike and side by side. Each round opens fresh connections
per size, puts (and deletes) one array on each server untimed — that maps the store into the
client, once per connection, for both — and then times --repeat puts and --repeat gets per
server, interleaved repetition by repetition with the order alternating, so load from elsewhere
on the machine hits both alike. Every timed call counts, the first included (a server whose
second placement of an array faults fresh pages pays for it here). Each put's object is deleted
(untimed) before the next. The garbage collector is paused while a call is timed.

Each repetition gives a *paired* ratio (ours against vineyardd, measured back to back); the table
shows the median of the paired ratios over all rounds and their spread (the middle half, p25–p75),
besides the medians and the best runs. The load average is printed before and after.
--against-itself puts vineyardd in both columns, to see how far apart two identical servers
come out on this machine under its current load.
"""

import argparse
import gc
import os
import statistics
import time

import numpy as np
import vineyard

MiB = 1 << 20


def timed(call):
    """Seconds one call takes, with the garbage collector paused (it would otherwise run at
    arbitrary points, in either server's turn), and its result."""
    gc.disable()
    try:
        start = time.perf_counter()
        result = call()
        return time.perf_counter() - start, result
    finally:
        gc.enable()


def measure(sockets, array, repeat):
    """Times put and get on every server, interleaved repetition by repetition (alternating
    which goes first) so that load from elsewhere on the machine hits both alike."""
    clients = {label: vineyard.connect(path) for label, path in sockets.items()}
    put_times = {label: [] for label in sockets}
    get_times = {label: [] for label in sockets}
    kept = {}
    try:
        # Warm-up, for both: the first put maps the store into the client (once per connection).
        for client in clients.values():
            client.delete(client.put(array))
        for index in range(repeat):
            labels = list(clients) if index % 2 == 0 else list(reversed(clients))
            for label in labels:
                client = clients[label]
                seconds, object_id = timed(lambda: client.put(array))
                put_times[label].append(seconds)
                # Deleted (untimed) before the next put, so both servers can reuse the memory.
                if index < repeat - 1:
                    client.delete(object_id)
                else:
                    kept[label] = object_id
        for label, client in clients.items():
            value = client.get(kept[label])  # warm-up: the read-only mapping, once per connection
            assert value.shape == array.shape and value[-1] == array[-1]
            del value
        for index in range(repeat):
            labels = list(clients) if index % 2 == 0 else list(reversed(clients))
            for label in labels:
                client = clients[label]
                seconds, value = timed(lambda: client.get(kept[label]))
                get_times[label].append(seconds)
                del value
        for label, client in clients.items():
            client.delete(kept[label])
    finally:
        for client in clients.values():
            client.close()
    return {label: (put_times[label], get_times[label]) for label in sockets}


def quartiles(values):
    """(p25, median, p75) of a list."""
    ordered = sorted(values)
    if len(ordered) < 4:
        return ordered[0], statistics.median(ordered), ordered[-1]
    p25, p50, p75 = statistics.quantiles(ordered, n=4, method="inclusive")
    return p25, p50, p75


def load():
    return "/".join(f"{value:.2f}" for value in os.getloadavg())


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("ours")
    parser.add_argument("vineyardd")
    parser.add_argument("--sizes", default="1,4,16,64,256,1024", help="MiB, comma-separated")
    parser.add_argument("--repeat", type=int, default=5, help="timed calls per server, size and round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds over all sizes, each on fresh connections")
    parser.add_argument("--against-itself", action="store_true",
                        help="measure vineyardd in both columns: the ratios then show the method's own noise")
    args = parser.parse_args()

    sizes = [int(s) for s in args.sizes.split(",")]
    sockets = {"ours": args.vineyardd if args.against_itself else args.ours, "vineyardd": args.vineyardd}
    if args.against_itself:
        print("calibration: vineyardd in both columns (expect ratios of 1.00 within the noise)")
    samples = {size: {label: ([], []) for label in sockets} for size in sizes}
    print(f"load average (1/5/15 min) before: {load()}")
    for _ in range(args.rounds):
        for size in sizes:
            array = np.random.default_rng(size).integers(0, 1 << 62, size * MiB // 8, dtype=np.int64)
            for label, (puts, gets) in measure(sockets, array, args.repeat).items():
                samples[size][label][0].extend(puts)
                samples[size][label][1].extend(gets)
            del array
    print(f"load average (1/5/15 min) after:  {load()}")

    def gbps(size, seconds):
        return size * MiB / seconds / 1e9

    print(f"{args.rounds} rounds x {args.repeat} timed calls per server and size")
    print("put: median GB/s; ratio = ours/vineyardd throughput: median of the paired ratios")
    print("     [p25-p75], best = fastest run of each (target >= 1.0)")
    print("get: median microseconds; ratio = ours/vineyardd time: median of the paired ratios")
    print("     [p25-p75], best = fastest runs (target <= 1.2, and constant in size)")
    header = (f"{'size':>8} | {'put ours':>8} {'put vyd':>8} {'ratio':>5} {'p25-p75':>10} {'best':>5} | "
              f"{'get ours':>8} {'get vyd':>8} {'ratio':>5} {'p25-p75':>10} {'best':>5}")
    print(header)
    print("-" * len(header))
    for size in sizes:
        ours_put, ours_get = samples[size]["ours"]
        vyd_put, vyd_get = samples[size]["vineyardd"]
        put_low, put_ratio, put_high = quartiles([v / o for o, v in zip(ours_put, vyd_put)])
        get_low, get_ratio, get_high = quartiles([o / v for o, v in zip(ours_get, vyd_get)])
        label = f"{size} MiB" if size < 1024 else f"{size // 1024} GiB"
        put_spread = f"{put_low:.2f}-{put_high:.2f}"
        get_spread = f"{get_low:.2f}-{get_high:.2f}"
        print(f"{label:>8} | {gbps(size, statistics.median(ours_put)):>8.2f} {gbps(size, statistics.median(vyd_put)):>8.2f} "
              f"{put_ratio:>5.2f} {put_spread:>10} {min(vyd_put) / min(ours_put):>5.2f} | "
              f"{statistics.median(ours_get) * 1e6:>8.0f} {statistics.median(vyd_get) * 1e6:>8.0f} "
              f"{get_ratio:>5.2f} {get_spread:>10} {min(ours_get) / min(vyd_get):>5.2f}")


if __name__ == "__main__":
    main()
