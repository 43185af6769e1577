"""Writes docs/benchmarks.md and docs/pipeline.png from the recorded pipeline runs."""

import statistics
from pathlib import Path

from .machine import describe_memory_return

STEPS = ("prepare", "preprocess", "train", "test")
MiB = 1 << 20
# vineyard's published numbers for its Go CSI driver (Kubeflow v1 pipeline, baseline NFS).
VINEYARD_REPORT = (
    "| data_multiplier | data | NFS write | vineyard write | NFS read | vineyard read | whole pipeline |\n"
    "| --- | --- | --- | --- | --- | --- | --- |\n"
    "| 4000 | 14,000 MiB | 33.2 s | 8.8 s (-73 %) | 56.6 s | 0.02 s | -30 to -40 % |\n"
    "| 5000 | 18,000 MiB | 40.8 s | 11.6 s (-72 %) | 76.3 s | 0.02 s | -30 to -40 % |\n"
    "| 6000 | 21,000 MiB | 48.6 s | 13.9 s (-71 %) | 93.7 s | 0.02 s | -30 to -40 % |\n"
)


# scripts/bench-ipc.sh's and scripts/bench-cluster.sh's results are written into benchmarks.md by
# hand, from this section to the end; rewriting the pipeline report keeps them.
IPC_SECTION = "## vineyard.sock against vineyardd"


def kept_sections(path):
    """The part of an existing report that other benchmarks own (from IPC_SECTION on)."""
    if not path.exists():
        return ""
    text = path.read_text()
    start = text.find("\n" + IPC_SECTION)
    return text[start:] if start >= 0 else ""


def metrics(run):
    """Per run: the numbers the report compares (seconds)."""
    steps = run["steps"]
    values = {
        "write": sum(steps[s]["write_seconds"] for s in STEPS),
        "read": sum(steps[s]["read_seconds"] for s in STEPS),
        "pipeline": sum(steps[s]["seconds"] for s in STEPS),
        # The pipeline's time outside every save and load call: what no storage can take away.
        "compute": sum(steps[s]["seconds"] - steps[s]["write_seconds"] - steps[s]["read_seconds"] for s in STEPS),
        "wall": sum(steps[s]["process_seconds"] for s in STEPS),
        "handoff_write": steps["preprocess"]["write_seconds"],
        "handoff_read": steps["train"]["read_seconds"],
        "bytes_written": sum(steps[s].get("bytes_written", 0) for s in STEPS),
    }
    for step in STEPS:
        values[f"{step}_total"] = steps[step]["seconds"]
        values[f"{step}_write"] = steps[step]["write_seconds"]
        values[f"{step}_read"] = steps[step]["read_seconds"]
    return values


def summarize(document):
    """{(variant, scale): {metric: (median, min, max, n)}} and the model errors seen."""
    grouped = {}
    for run in document["runs"]:
        grouped.setdefault((run["variant"], run["scale_gib"]), []).append(metrics(run))
    table = {}
    for key, runs in grouped.items():
        table[key] = {name: (statistics.median(r[name] for r in runs), min(r[name] for r in runs),
                             max(r[name] for r in runs), len(runs)) for name in runs[0]}
    return table


def cell(entry, digits=2):
    if entry is None:
        return "n/a"
    median, low, high, _ = entry
    return f"{median:.{digits}f} ({low:.{digits}f}–{high:.{digits}f})"


def ratio_text(value):
    return "n/a" if value is None else f"{value:.2f}x"


def baseline(document, table):
    """The variant the comparisons are relative to: (a) NFS when it ran, else (a') local disk."""
    ran = {variant for variant, _ in table}
    if "nfs" in ran or "local-disk" not in ran:
        return "nfs", "(a)"
    return "local-disk", "(a')"


def nfs_paragraph(document):
    """What (a) was in this run, or why (a') stands in for it."""
    if "nfs_note" in document:  # results recorded before (a) was a real NFS export
        return document["nfs_note"]
    disk = document.get("disk", "the local disk")
    kernel = document.get("kernel_nfs", [])
    facts = document.get("storage", {}).get("nfs")
    local = ("a directory on the local disk without the protocol: plain files, each fsync'd after it is written "
             "(what an NFS client's close-to-open commit costs the disk), bind-mounted per step")
    if facts is None:
        reason = document.get("skipped", {}).get("nfs", "it was not among the variants run")
        return (f"(a) did not run: {reason}. The comparisons below are therefore against (a'), {local} "
                f"({disk}), labelled as the NFS fallback wherever it is used.")
    if "nfs" in kernel or "nfs4" in kernel:
        client_note = "The steps use a user-space client although this kernel has one, so every machine runs the same client:"
    else:
        client_note = ("This machine's kernel has no NFS client (`nfs`/`nfs4` are not in /proc/filesystems and it "
                       "loads no modules), so nothing is mounted:")
    return (f"(a) is a real NFS export on loopback: {facts['server']}, `ganesha.nfsd` run in the foreground with a "
            f"config of its own per run, serving a directory on the local disk ({disk}) to 127.0.0.1 only; "
            f"{facts['protocol']}, rsize {facts['rsize'] / MiB:g} MiB and wsize {facts['wsize'] / MiB:g} MiB "
            f"(rpcbind {facts.get('rpcbind', 'running')}, as ganesha registers NFSv3 with it). {client_note} each "
            f"step connects to the export itself with {facts['client']}, and makes the same `to_pickle` / "
            "`read_pickle` / joblib calls on its file objects (8 MiB buffers, moved with up to "
            f"{facts.get('in_flight', 1)} READs or WRITEs in flight, as a kernel client reads ahead and writes behind); every written file is committed "
            "(COMMIT, the server fsyncs) at close, as the kernel client's close-to-open consistency does. The "
            "connection is made before the step's timer starts, as a pod's NFS volume is mounted before its "
            "container starts. With no network hop it is most likely *faster* than the NFS of vineyard's report, "
            f"so ratios against it are conservative. (a') is {local}, on the same disk, so (a) against (a') is what "
            "the protocol costs here.")


def write(document, docs):
    docs = Path(docs)
    docs.mkdir(parents=True, exist_ok=True)
    table = summarize(document)
    variants = [v for v in document["variants"] if v not in document.get("skipped", {})]
    labels = document["labels"]
    scales = document["scales_gib"]
    multipliers = {run["scale_gib"]: run["data_multiplier"] for run in document["runs"]}

    base, base_name = baseline(document, table)
    if base == "local-disk" and "nfs" in document["variants"]:
        labels = dict(labels, **{base: labels[base] + " (NFS fallback)"})

    def get(variant, scale, metric):
        entry = table.get((variant, scale))
        return entry[metric] if entry else None

    def ratio(a, b, scale, metric):
        x, y = get(a, scale, metric), get(b, scale, metric)
        return x[0] / y[0] if x and y and y[0] > 0 else None

    def storage_free_floor(scale):
        """The baseline's pipeline without its save and load time, against itself: what storage
        that took no time at all would reach, the steps' own work unchanged."""
        compute, pipeline = get(base, scale, "compute"), get(base, scale, "pipeline")
        return compute[0] / pipeline[0] if compute and pipeline and pipeline[0] > 0 else None

    lines = []
    add = lines.append
    machine = document["machine"]
    add("# Benchmark: the housing-price ML pipeline on vineyard-csi volumes")
    add("")
    add("Generated by `scripts/bench-pipeline.sh` (this file, `pipeline.png` beside it and the raw runs in "
        "`pipeline-results.json` beside it). GitHub issue 9.")
    add("")
    add(f"This run: `python -m pipeline {document.get('arguments', 'bench')}`.")
    add("")
    add("## What runs")
    add("")
    add("The seeds' Kubeflow pipeline, locally and without Kubernetes: **prepare** generates a housing table "
        "(38 int64 columns, `data_multiplier` x 10,000 rows) and saves it; **preprocess** loads it, drops the "
        "`GrLivArea > 4800` rows, splits it 90/10 into x_train/x_test/y_train/y_test and saves the four; "
        "**train** loads x_train/y_train, fits scikit-learn's `LinearRegression` and saves the model (joblib); "
        "**test** loads x_test/y_test and the model and writes the mean squared error. Each step is its own "
        "Python process in its own mount namespace (one task container): the shared storage is published on a "
        "target directory of its own for that step and bind-mounted on the same container path in every step. "
        "Page caches are dropped (`sync; echo 3 > /proc/sys/vm/drop_caches`) before every step, as the seeds' "
        "steps do" + ("" if document.get("drop_caches", True) else " (**not in this run**: --no-drop-caches)") + ".")
    add("")
    add("| variant | storage | how the steps save and load |")
    add("| --- | --- | --- |")
    descriptions = {
        "nfs": ("see below", "`to_pickle` / `read_pickle`" + (", each written file fsync'd" if "nfs_note" in document else
                                                              " on the NFS client's file objects, committed at close")),
        "local-disk": ("a directory on the local disk, bind-mounted per step", "`to_pickle` / `read_pickle`, each written file fsync'd"),
        "tmpfs": ("a tmpfs of its own, bind-mounted per step", "`to_pickle` / `read_pickle`"),
        "vineyard": ("`vineyardd` from the vineyard wheel (`--meta=local`), its socket directory bind-mounted per step as vineyard's Go CSI driver does",
                     "`vineyard.csi.write` / `vineyard.csi.read`"),
        "csi-file": ("a vineyard-csi volume: CreateVolume, NodeStageVolume once, NodePublishVolume per step over the real driver's gRPC socket",
                     "`to_pickle` / `read_pickle` (unchanged plain file I/O)"),
        "csi-vineyard": ("the same vineyard-csi volume, through the `vineyard.sock` the driver serves in it",
                         "`vineyard.csi.write` / `vineyard.csi.read` (unchanged)"),
    }
    for key in document["variants"]:
        storage, how = descriptions[key]
        skipped = document.get("skipped", {}).get(key)
        add(f"| {labels[key]} | {storage} | {how}{' — **skipped: ' + skipped + '**' if skipped else ''} |")
    add("")
    add("**NFS.** " + nfs_paragraph(document))
    add(f"**Driver.** vineyard-csi ran with `--read-mode {document.get('read_mode', 'page-cache')}` for (d) and (e)"
        + (": read-only opens copy once, from the store into the reader's buffer." if document.get("read_mode") == "direct"
           else ": reads go through the page cache.")
        + (" Its store was backed when it opened (`--store-prefault`), as a node plugin's is once earlier pipelines "
           "used it, and vineyardd ran with `--reserve_memory`, the same head start; tmpfs starts cold."
           if document.get("store_prefault") else "")
        + (" Its stores were on 2 MiB pages (`--store-huge-pages`: a tmpfs of the driver's own with `huge=within_size`, "
           "an opt-in, off in `deploy/`); the tmpfs of (b) is a plain one (`huge=never`, what an `emptyDir` of medium Memory gets)."
           if document.get("store_huge_pages") else ""))
    add("")
    add("Every step times its own work after its libraries are loaded: *write* is the time in the save calls "
        "(including the fsync of (a') and the commit at close of (a)), *read* the time in the load calls (including unpickling, or "
        "vineyard's object resolution), *step* the whole step. *Pipeline* is the sum of the four steps; "
        "*wall* also counts each process's start, library imports, cache drop and the mount-namespace entry. "
        f"Every cell is the median of {document['repeats']} runs with (min–max); variants run interleaved "
        "per repeat, each on freshly set-up storage that is torn down after the run.")
    add("")
    add("## Machine")
    add("")
    loads = [run["load_average"] for run in document["runs"] if "load_average" in run]
    during = f", 1-minute load after each run {min(loads):.2f}–{max(loads):.2f}" if loads else ""
    add(f"- CPU: {machine['cpu']}, {machine['cores']} cores (load average at start {machine['load_average_at_start']}"
        f"{during}); benchmark processes ran at `nice -n -20`")
    add(f"- RAM: {machine['ram_gib']} GiB; kernel {machine['kernel']}; {machine['os']}")
    how = describe_memory_return(machine.get("memory_return"))
    if how:
        add(f"- Memory: {how}. Memory the guest has not touched lately is backed by the host when first "
            "touched, several times slower than memory it has, so steps that allocate a lot vary with what "
            "ran before them, storage aside: *prepare*, which generates the table before saving it, is the "
            "clearest case. The write and read cuts time only the storage calls.")
    add(f"- {machine['swift']}; libfuse {machine['libfuse']}; vineyard-csi {machine['vineyard-csi']}")
    nfs = document.get("storage", {}).get("nfs")
    if nfs:
        add(f"- NFS: server {nfs['server']}; client {nfs['client']}, a user-space client "
            + ("because the kernel has none" if not {"nfs", "nfs4"} & set(document.get("kernel_nfs", [])) else "")
            + f"; {nfs['protocol']}, rsize {nfs['rsize']:,} B, wsize {nfs['wsize']:,} B; disk {document.get('disk', 'unknown')}")
    packages = ", ".join(f"{name} {version}" for name, version in machine["packages"].items())
    add(f"- Python {machine['python']}: {packages}")
    add("")

    add("## Results")
    add("")
    for scale in scales:
        data_multiplier = multipliers.get(scale)
        if data_multiplier is None:
            continue
        add(f"### {scale:g} GiB table (data_multiplier {data_multiplier}, {data_multiplier * 10_000:,} rows)")
        add("")
        add("| variant | write s | read s | prepare s | preprocess s | train s | test s | pipeline s | wall s |")
        add("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
        for key in variants:
            if (key, scale) not in table:
                continue
            row = [cell(get(key, scale, m)) for m in ("write", "read", "prepare_total", "preprocess_total",
                                                     "train_total", "test_total", "pipeline", "wall")]
            add(f"| {labels[key]} | " + " | ".join(row) + " |")
        add("")
        add("Per step, write / read seconds (medians):")
        add("")
        add("| variant | " + " | ".join(f"{s} w / r" for s in STEPS) + " |")
        add("| --- | " + " | ".join("---" for _ in STEPS) + " |")
        for key in variants:
            if (key, scale) not in table:
                continue
            add(f"| {labels[key]} | " + " | ".join(
                f"{get(key, scale, s + '_write')[0]:.3f} / {get(key, scale, s + '_read')[0]:.3f}" for s in STEPS) + " |")
        add("")

    add("## The seeds' comparison: the hand-off from preprocess to train")
    add("")
    add("vineyard's report for its Go CSI driver prints, like the seeds' steps, *writing* as preprocess "
        "saving x_train/x_test/y_train/y_test and *reading* as train loading x_train/y_train. The same cuts "
        f"here, and the whole pipeline (sum of the steps), relative to {labels.get(base, base_name)}:")
    add("")
    add(f"| scale | variant | preprocess write s | vs {base_name} | train read s | vs {base_name} | pipeline s | vs {base_name} |")
    add("| --- | --- | --- | --- | --- | --- | --- | --- |")
    change = lambda x: "n/a" if x is None else f"{(x - 1) * 100:+.0f} %"
    for scale in scales:
        for key in variants:
            if (key, scale) not in table:
                continue
            w, r, p = (ratio(key, base, scale, m) for m in ("handoff_write", "handoff_read", "pipeline"))
            add(f"| {scale:g} GiB | {labels[key]} | {cell(get(key, scale, 'handoff_write'))} | {change(w)} | "
                f"{cell(get(key, scale, 'handoff_read'), 3)} | {change(r)} | {cell(get(key, scale, 'pipeline'))} | {change(p)} |")
    add("")
    add("vineyard's published numbers (Go CSI driver, Kubeflow v1, real NFS over the network):")
    add("")
    add(VINEYARD_REPORT)

    add("## Targets")
    add("")
    add("*Write* and *read* are the seeds' cuts above (preprocess saving the four splits; train loading "
        "x_train and y_train), *pipeline* the sum of the four steps; medians; a target is met when it holds "
        "at every scale. The second table repeats the ratios over all reads and writes of all steps."
        + ("" if base == "nfs" else " (a) did not run, so the targets against it use (a') (local disk + fsync) instead."))
    add("")

    def target_table(write_metric, read_metric, with_absolute):
        add("| target | " + " | ".join(f"{s:g} GiB" for s in scales) + " | met? |")
        add("| --- | " + " | ".join("---" for _ in scales) + " | --- |")

        def row(name, values, check, text=ratio_text):
            known = [v for v in values if v is not None]
            if not known:
                met = "not measured (variant skipped)"
            elif len(known) < len(values):
                met = "unmet (not measured at every scale)"
            else:
                met = "**met**" if all(check(v) for v in values) else "unmet"
            add(f"| {name} | " + " | ".join(text(v) for v in values) + f" | {met} |")

        def memory_limit(metric, what):
            """What tmpfs, memory itself, reaches against the baseline: the floor of a target
            relative to it on this machine."""
            values = [ratio("tmpfs", base, s, metric) for s in scales]
            add(f"| *for reference: (b) tmpfs {what} against {base_name}* | "
                + " | ".join(ratio_text(v) for v in values) + " | (the memory limit) |")

        row("(d) write <= 1.0x (b) tmpfs", [ratio("csi-file", "tmpfs", s, write_metric) for s in scales], lambda v: v <= 1.0)
        row(f"(d) write <= 0.3x {base_name}", [ratio("csi-file", base, s, write_metric) for s in scales], lambda v: v <= 0.3)
        memory_limit(write_metric, "write")
        row("(d) read <= 1.25x (b) tmpfs", [ratio("csi-file", "tmpfs", s, read_metric) for s in scales], lambda v: v <= 1.25)
        reads = [get("csi-vineyard", s, read_metric)[0] if get("csi-vineyard", s, read_metric) else None for s in scales]
        if with_absolute:
            row("(e) read < 50 ms", reads, lambda v: v < 0.05, lambda v: "n/a" if v is None else f"{v * 1000:.0f} ms")
            relative = [v / reads[0] if v is not None and reads[0] else None for v in reads]
            row("(e) read constant in data size (vs smallest scale, <= 1.5x)", relative, lambda v: v <= 1.5)
        row("(e) read <= 1.2x (c) vineyardd", [ratio("csi-vineyard", "vineyard", s, read_metric) for s in scales], lambda v: v <= 1.2)
        row("(e) write <= 1.0x (c) vineyardd", [ratio("csi-vineyard", "vineyard", s, write_metric) for s in scales], lambda v: v <= 1.0)
        row(f"(d) pipeline < 0.6x {base_name} (beats vineyard's -30 to -40 %)", [ratio("csi-file", base, s, "pipeline") for s in scales],
            lambda v: v < 0.6)
        row(f"(e) pipeline < 0.6x {base_name} (beats vineyard's -30 to -40 %)", [ratio("csi-vineyard", base, s, "pipeline") for s in scales],
            lambda v: v < 0.6)
        memory_limit("pipeline", "pipeline")
        add(f"| *for reference: {base_name}'s pipeline without its save and load time, against itself* | "
            + " | ".join(ratio_text(storage_free_floor(s)) for s in scales) + " | (the limit for storage that takes no time) |")
        add("")

    target_table("handoff_write", "handoff_read", True)
    if (docs / "read-anatomy.md").exists():
        add("Where (c)'s and (e)'s read time goes, part by part, and how much of it does not depend on the "
            "server or the data size: [read-anatomy.md](read-anatomy.md).")
        add("")
    add("The same ratios over all steps' reads and writes (informational):")
    add("")
    target_table("write", "read", False)
    add("")
    errors = {}
    for run in document["runs"]:
        errors.setdefault(run["scale_gib"], set()).add(repr(run["mse"]))
    same = all(len(values) == 1 for values in errors.values())
    add("Model error (MSE) per scale, every variant and repeat: " + "; ".join(
        f"{scale:g} GiB: {', '.join(sorted(values))}" for scale, values in sorted(errors.items()))
        + (" — identical through every storage path." if same else " — **differs between variants**."))
    add("")
    add("![write, read and pipeline seconds per variant and scale](pipeline.png)")
    add("")
    largest = max((s for s in scales if s in multipliers), default=None)
    if largest is not None:
        add("## Reading the numbers")
        add("")
        add(f"Throughput of the save calls at {largest:g} GiB (bytes of the pandas objects saved / median write seconds):")
        add("")
        add("| variant | MB saved | write MB/s | read s per GiB saved |")
        add("| --- | --- | --- | --- |")
        for key in variants:
            if (key, largest) not in table:
                continue
            saved = get(key, largest, "bytes_written")[0]
            seconds = get(key, largest, "write")[0]
            reading = get(key, largest, "read")[0]
            add(f"| {labels[key]} | {saved / 1e6:,.0f} | {saved / 1e6 / seconds:,.0f} | {reading / (saved / (1 << 30)):.3f} |")
        add("")
        add("- Plain files through a FUSE volume cross the kernel twice: the writer's bytes are copied into "
            "the kernel's FUSE request and again by the driver into the store's shared memory, where tmpfs "
            "copies once into the page cache. "
            + ("Reads (`--read-mode direct`) are copied once, by the kernel, from the store's shared memory into "
               "the reader's buffer, one FUSE request per MiB (libfuse 3.14's largest request); no copy in the driver."
               if document.get("read_mode") == "direct" else
               "Reads are answered straight out of the store's shared memory (no copy in the driver), then "
               "copied once more from the page cache into the reader."))
        add("- vineyard's `write` copies each column into the store's arena and `read` maps it: its read "
            "cost is connecting (once per call), two round trips for the metadata and the buffers, and "
            "building the pandas objects. One part grows with the data: pandas 3's `Index` constructor "
            "copies the index array that vineyard's resolver hands it (8 bytes per row), in (c) and (e) "
            "alike, and that copy is the client's first touch of the mapped store: one page fault per 4 KiB "
            "page of vineyardd's memfd, one per 2 MiB with `--store-huge-pages`. Its destination is fresh "
            "memory of the client's: where freed memory goes back to the hypervisor, that copy costs several "
            "times more when the previous step's memory has already been returned, which splits the same read "
            "into a fast and a slow group from one repeat to the next. "
            + ("[read-anatomy.md](read-anatomy.md) takes train's reads apart on (c) and on (e) with either page "
               "size and measures that fresh-memory cost (`scripts/bench-pipeline.sh anatomy`)."
               if (docs / "read-anatomy.md").exists() else ""))
        compute = storage_free_floor(largest)
        if compute is not None:
            add(f"- Most of the pipeline is the steps' own work: at {largest:g} GiB, {compute:.0%} of {base_name}'s "
                "pipeline is spent outside its save and load calls (generating the table, splitting it, fitting). "
                f"Storage that took no time at all would leave {compute:.2f}x of {base_name}'s pipeline"
                + (", so the < 0.6x pipeline targets cannot be met by storage alone. " if compute >= 0.6 else ". ")
                + "That work varies between variants "
                "too: it allocates and touches gigabytes of fresh memory, whose cost on this machine depends on "
                "what ran before.")
        if ("nfs", largest) in table and ("local-disk", largest) in table:
            add(f"- The NFS protocol's cost, (a) against (a') at {largest:g} GiB: writes "
                f"{ratio('nfs', 'local-disk', largest, 'write'):.2f}x, reads {ratio('nfs', 'local-disk', largest, 'read'):.2f}x, "
                f"pipeline {ratio('nfs', 'local-disk', largest, 'pipeline'):.2f}x. Both end on the same disk; (a) adds "
                "the RPCs over loopback and ganesha's copies between the socket and the file.")
        add("- *wall* minus *pipeline* is per-step overhead that does not depend on the storage: a process "
            "start, the pandas/scikit-learn imports (cold after the cache drop) and the cache drop itself.")
        add("")
    notes = document.get("notes")
    if notes:
        add("## Notes")
        add("")
        for note in notes:
            add(f"- {note}")
        add("")
    report = docs / "benchmarks.md"
    report.write_text("\n".join(lines) + kept_sections(report))
    plot(document, table, variants, labels, scales, docs / "pipeline.png")


def plot(document, table, variants, labels, scales, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 3, figsize=(15, 4.8))
    for axis, (metric, title) in zip(axes, (("write", "write (all steps)"), ("read", "read (all steps)"),
                                            ("pipeline", "pipeline (sum of steps)"))):
        for key in variants:
            points = [(s, table[(key, s)][metric]) for s in scales if (key, s) in table]
            if not points:
                continue
            xs = [s for s, _ in points]
            medians = [e[0] for _, e in points]
            below = [e[0] - e[1] for _, e in points]
            above = [e[2] - e[0] for _, e in points]
            axis.errorbar(xs, medians, yerr=[below, above], marker="o", capsize=3, label=labels[key])
        axis.set_title(title)
        axis.set_xlabel("housing table (GiB)")
        axis.set_ylabel("seconds (median, min–max)")
        axis.set_xticks(scales)
        axis.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    figure.suptitle(f"Housing-price pipeline, median of {document['repeats']} runs")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
