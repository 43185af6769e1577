"""The four steps of the housing-price pipeline, each run as its own process (one task container).

    python -m pipeline.steps STEP --data DIR --io MODE [--data-multiplier N] [--seed S] [--result FILE]

STEP is prepare, preprocess, train or test (or train-reads, which anatomy.py runs). DIR is where
the step sees the shared volume (the container's mount path). MODE says how the step hands data
to the next one:

- ``file``: pandas ``to_pickle`` / ``read_pickle`` on DIR, the plain file I/O the pipeline's
  users write today;
- ``file-fsync``: the same, and every written file is fsync'd before the step goes on (what an
  NFS client's close-to-open consistency costs when there is no NFS mount: labelled as such);
- ``vineyard``: ``vineyard.csi.write`` / ``vineyard.csi.read``, the calls the vineyard Go CSI
  driver's users make; they find ``vineyard.sock`` in DIR or above it;
- ``nfs``: DIR is an NFS export's URL (``nfs://HOST/EXPORT?version=3&nfsport=...``); the step
  connects to it with the user-space client of nfsclient.py (libnfs) when it starts, before any
  timer, as a pod's NFS volume is mounted before its container starts, and then makes the same
  pandas / joblib calls on the client's file objects; every file is committed (fsync) at close.

The model and the error are small files written with joblib / plain writes in every mode.
Each step writes a JSON result: seconds spent writing, reading, and in the whole step (after the
interpreter and libraries are loaded), and with --digests the digests of the data it handled, so a
caller can prove that every storage path carried identical data.
"""

import argparse
import importlib
import json
import os
import resource
import sys
import time

import numpy as np
import pandas as pd

ROWS_PER_MULTIPLIER = 10_000
# The housing table: (column, low, high) of uniformly drawn integers, high exclusive.
COLUMNS = (
    ("Id", 1, 100_000), ("MSSubClass", 20, 201), ("LotFrontage", 50, 151), ("LotArea", 5_000, 20_001),
    ("OverallQual", 1, 11), ("OverallCond", 1, 11), ("YearBuilt", 1900, 2022), ("YearRemodAdd", 1900, 2022),
    ("MasVnrArea", 0, 1_001), ("BsmtFinSF1", 0, 2_001), ("BsmtFinSF2", 0, 1_001), ("BsmtUnfSF", 0, 2_001),
    ("TotalBsmtSF", 0, 3_001), ("1stFlrSF", 500, 4_001), ("2ndFlrSF", 0, 2_001), ("LowQualFinSF", 0, 201),
    ("GrLivArea", 600, 5_001), ("BsmtFullBath", 0, 4), ("BsmtHalfBath", 0, 3), ("FullBath", 0, 5),
    ("HalfBath", 0, 3), ("BedroomAbvGr", 0, 11), ("KitchenAbvGr", 0, 4), ("TotRmsAbvGrd", 0, 16),
    ("Fireplaces", 0, 4), ("GarageYrBlt", 1900, 2022), ("GarageCars", 0, 5), ("GarageArea", 0, 1_001),
    ("WoodDeckSF", 0, 501), ("OpenPorchSF", 0, 301), ("EnclosedPorch", 0, 201), ("3SsnPorch", 0, 101),
    ("ScreenPorch", 0, 201), ("PoolArea", 0, 301), ("MiscVal", 0, 5_001), ("MoSold", 1, 13),
    ("YrSold", 2006, 2022), ("SalePrice", 50_000, 800_001),
)
TARGET = "SalePrice"
# The table's size in bytes per data_multiplier unit: 10,000 rows of int64 columns.
BYTES_PER_MULTIPLIER = ROWS_PER_MULTIPLIER * len(COLUMNS) * 8


class Storage:
    """How a step saves and loads the pipeline's tables, and the time it spends doing so."""

    def __init__(self, directory, mode):
        self.directory = directory
        self.mode = mode
        self.write_seconds = 0.0
        self.read_seconds = 0.0
        # Page faults taken inside the read timers: a load that maps shared memory pays one
        # minor fault per page it first touches (512 times fewer on 2 MiB pages).
        self.read_minor_faults = 0
        self.read_major_faults = 0
        # CPU time inside the read timers: a read whose wall time exceeds its CPU time waited (on
        # the server, the disk or the scheduler); one whose CPU time grows with the same number of
        # faults paid the hypervisor for memory it had taken back.
        self.read_cpu_seconds = 0.0
        self.bytes_written = 0
        self.export = None
        if mode == "vineyard":
            import vineyard.csi  # noqa: F401  (loaded before any timer starts)
        elif mode == "nfs":
            from .nfsclient import Export

            self.export = Export(directory)

    def path(self, name):
        return os.path.join(self.directory, name)

    def _dump(self, name, dump):
        """Writes one file with dump(file or path); fsync'd in file-fsync mode, committed at close on NFS."""
        if self.export is not None:
            with self.export.open(name, "wb") as handle:
                dump(handle)
        else:
            dump(self.path(name))
            if self.mode == "file-fsync":
                fsync_file(self.path(name))

    def _parse(self, name, parse):
        if self.export is not None:
            with self.export.open(name, "rb") as handle:
                return parse(handle)
        return parse(self.path(name))

    def save(self, value, name):
        start = time.perf_counter()
        if self.mode == "vineyard":
            import vineyard.csi

            vineyard.csi.write(value, self.path(name))
        else:
            self._dump(name, value.to_pickle)
        self.write_seconds += time.perf_counter() - start
        self.bytes_written += int(value.memory_usage(index=True, deep=True).sum()) if isinstance(value, pd.DataFrame) \
            else int(value.memory_usage(index=True, deep=True))

    def load(self, name):
        usage = resource.getrusage(resource.RUSAGE_SELF)
        start = time.perf_counter()
        if self.mode == "vineyard":
            import vineyard.csi

            value = vineyard.csi.read(self.path(name))
        else:
            value = self._parse(name, pd.read_pickle)
        self.read_seconds += time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_SELF)
        self.read_minor_faults += after.ru_minflt - usage.ru_minflt
        self.read_major_faults += after.ru_majflt - usage.ru_majflt
        self.read_cpu_seconds += (after.ru_utime + after.ru_stime) - (usage.ru_utime + usage.ru_stime)
        return value

    def save_model(self, model, name):
        """The model is a small file written with joblib in every mode."""
        import joblib

        start = time.perf_counter()
        self._dump(name, lambda target: joblib.dump(model, target))
        self.write_seconds += time.perf_counter() - start

    def load_model(self, name):
        import joblib

        start = time.perf_counter()
        model = self._parse(name, joblib.load)
        self.read_seconds += time.perf_counter() - start
        return model

    def save_text(self, text, name):
        start = time.perf_counter()

        def dump(target):
            if isinstance(target, str):
                with open(target, "w") as handle:
                    handle.write(text)
            else:
                target.write(text.encode())

        self._dump(name, dump)
        self.write_seconds += time.perf_counter() - start

    def close(self):
        if self.export is not None:
            self.export.close()
            self.export = None


def fsync_file(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def digest(value):
    """An order-sensitive digest of a table's or series' values and index."""
    hashes = pd.util.hash_pandas_object(value, index=True).to_numpy()
    weights = np.arange(1, len(hashes) + 1, dtype=np.uint64)
    return f"{int(np.bitwise_xor.reduce(hashes * weights)) if len(hashes) else 0:016x}-{len(hashes)}"


def generate_table(data_multiplier, seed):
    rows = ROWS_PER_MULTIPLIER * data_multiplier
    rng = np.random.default_rng(seed)
    return pd.DataFrame({name: rng.integers(low, high, rows, dtype=np.int64) for name, low, high in COLUMNS})


def prepare(storage, args, result):
    table = generate_table(args.data_multiplier, args.seed)
    result["rows"] = len(table)
    if args.digests:
        result["table_digest"] = digest(table)
    storage.save(table, "housing.pkl")


def preprocess(storage, args, result):
    from sklearn.model_selection import train_test_split

    table = storage.load("housing.pkl")
    table = table.drop(table[table["GrLivArea"] > 4800].index)
    features = table.drop(TARGET, axis=1)
    target = table[TARGET]
    del table
    x_train, x_test, y_train, y_test = train_test_split(features, target, test_size=0.1, random_state=args.seed)
    del features, target
    for name, value in (("x_train", x_train), ("x_test", x_test), ("y_train", y_train), ("y_test", y_test)):
        if args.digests:
            result[f"{name}_digest"] = digest(value)
        storage.save(value, f"{name}.pkl")


def train(storage, args, result):
    from sklearn.linear_model import LinearRegression

    x_train = storage.load("x_train.pkl")
    y_train = storage.load("y_train.pkl")
    if args.digests:
        result["x_train_digest"], result["y_train_digest"] = digest(x_train), digest(y_train)
    model = LinearRegression()
    model.fit(x_train, y_train)
    storage.save_model(model, "model.pkl")


def test(storage, args, result):
    from sklearn.metrics import mean_squared_error

    x_test = storage.load("x_test.pkl")
    y_test = storage.load("y_test.pkl")
    if args.digests:
        result["x_test_digest"], result["y_test_digest"] = digest(x_test), digest(y_test)
    model = storage.load_model("model.pkl")
    error = float(mean_squared_error(y_test, model.predict(x_test)))
    result["mse"] = error
    storage.save_text(repr(error), "output.txt")


def train_reads_taken_apart(storage, args, result):
    """Not a pipeline step (anatomy.py runs it beside train): train's two loads, each under
    cProfile and taken apart into connecting, the metadata round trip, modules imported on first
    use, pandas' pyarrow strings for the column names and the numpy copies made while the pandas
    objects are built. Beside every load, a copy of a private array as large as the loaded index
    into fresh memory: what such a copy costs in this process at that moment, whatever the server.
    vineyard's client keeps one connection per socket, so only a fresh process sees a load as
    train does: run this step in a process of its own."""
    import cProfile
    import pstats

    import vineyard
    import vineyard.csi

    parts = {}
    for name in ("x_train.pkl", "y_train.pkl"):
        path = storage.path(name)
        profiler = cProfile.Profile()
        start = time.perf_counter()
        profiler.enable()
        client = vineyard.connect(vineyard.csi._find_vineyard_socket(path))
        connected = time.perf_counter()
        value = client.get(name=path)
        profiler.disable()
        finished = time.perf_counter()
        own, cumulative = {}, {}  # seconds spent in each function itself / with its callees, by name
        for (_, _, function), entry in pstats.Stats(profiler).stats.items():
            own[function] = own.get(function, 0.0) + entry[2]
            cumulative[function] = cumulative.get(function, 0.0) + entry[3]
        index_bytes = int(value.index.nbytes)
        private = np.ones(index_bytes // 8, dtype=np.int64)  # touched before the timer
        copy_start = time.perf_counter()
        duplicate = private.copy()
        private_copy = time.perf_counter() - copy_start
        del duplicate, private, value
        parts[name] = {
            # The functions the load spent the most time in (itself), for what the parts miss.
            "top": sorted(((seconds, function) for function, seconds in own.items()), reverse=True)[:6],
            "seconds": finished - start,
            "connect": connected - start,
            "metadata": own.get("<built-in method vineyard._C.get_meta>", 0.0),
            "numpy_copies": own.get("<method 'copy' of 'numpy.ndarray' objects>", 0.0),
            # pandas 3 keeps column names as pyarrow strings; the first conversion sets pyarrow up.
            "arrow_strings": own.get("_from_sequence", 0.0),
            # Modules pandas and vineyard import on first use (the resolvers, pyarrow's strings).
            "imports": cumulative.get("_find_and_load", 0.0),
            "private_copy": private_copy,
            "index_bytes": index_bytes,
        }
    result["parts"] = parts


STEPS = {"prepare": prepare, "preprocess": preprocess, "train": train, "test": test,
         "train-reads": train_reads_taken_apart}
# What each step imports; loaded before its timer starts, like a container's entry point does.
LIBRARIES = {
    "prepare": (),
    "preprocess": ("sklearn.model_selection",),
    "train": ("joblib", "sklearn.linear_model"),
    "test": ("joblib", "sklearn.metrics", "sklearn.linear_model"),
    "train-reads": ("joblib", "sklearn.linear_model"),
}


def drop_caches():
    """What every step of the vineyard benchmark does first: sync, then evict clean page cache."""
    os.sync()
    try:
        with open("/proc/sys/vm/drop_caches", "w") as handle:
            handle.write("3\n")
    except OSError:
        pass


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("step", choices=sorted(STEPS))
    parser.add_argument("--data", required=True,
                        help="the shared volume's mount path in this step (with --io nfs: the export's URL)")
    parser.add_argument("--io", choices=("file", "file-fsync", "vineyard", "nfs"), default="file")
    parser.add_argument("--data-multiplier", type=int, default=1, help="rows = 10,000 x multiplier")
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--drop-caches", action="store_true", help="sync and drop the page cache before starting")
    parser.add_argument("--digests", action="store_true", help="record digests of every table handled (slow)")
    parser.add_argument("--result", help="write the step's JSON result here (default: stdout)")
    args = parser.parse_args(argv)

    for module in LIBRARIES[args.step]:
        importlib.import_module(module)
    storage = Storage(args.data, args.io)
    if args.drop_caches:
        drop_caches()
    result = {"step": args.step, "io": args.io}
    start = time.perf_counter()
    try:
        STEPS[args.step](storage, args, result)
        seconds = time.perf_counter() - start
    finally:
        storage.close()
    result.update(seconds=seconds, write_seconds=storage.write_seconds,
                  read_seconds=storage.read_seconds, read_minor_faults=storage.read_minor_faults,
                  read_major_faults=storage.read_major_faults, read_cpu_seconds=storage.read_cpu_seconds,
                  bytes_written=storage.bytes_written)
    text = json.dumps(result, sort_keys=True)
    if args.result:
        with open(args.result, "w") as handle:
            handle.write(text + "\n")
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
