"""Where the time of train's `vineyard.csi.read` calls goes, on (c) vineyardd and (e) a vineyard-csi
volume's vineyard.sock (its store on 4 KiB and on 2 MiB pages): `python -m pipeline anatomy`
(scripts/bench-pipeline.sh anatomy).

For each variant: fresh storage, the pipeline's prepare and preprocess steps, then, alternating,
the real train step (its read time is what the pipeline report calls (c)'s and (e)'s read) and the
train-reads step (steps.py), which makes the same two loads in a fresh process under cProfile and
takes them apart. Writes read-anatomy.json and read-anatomy.md.
"""

import json
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

from . import machine
from .runner import run_published_step
from .variants import VARIANTS

# (c), then (e) with its store on 4 KiB pages and on 2 MiB pages (--store-huge-pages): the page
# size decides how many faults a client takes when it first touches what it mapped.
CONFIGURATIONS = (
    ("vineyard", {}, ""),
    ("csi-vineyard", {"store_huge_pages": False}, ", store on 4 KiB pages"),
    ("csi-vineyard", {"store_huge_pages": True}, ", store on 2 MiB pages"),
)
PARTS = (
    ("seconds", "the load under cProfile"),
    ("connect", "connect"),
    ("metadata", "metadata round trip (get_meta)"),
    ("imports", "modules imported on first use"),
    ("arrow_strings", "pandas' pyarrow strings for the column names (`_from_sequence`)"),
    ("numpy_copies", "numpy copies while building the pandas objects"),
    ("private_copy", "copy of a private array of the same size into fresh memory (no server involved)"),
)


def run(args, options, data_multiplier, capacity):
    document = {"machine": machine.facts(args.bin_dir), "scale_gib": args.scale, "data_multiplier": data_multiplier,
                "probes": args.probes, "arguments": " ".join(sys.argv[1:]), "variants": []}
    # Measured first, on a quiet machine: the reads' size-dependent part is a copy into fresh memory.
    document["fresh_memory"] = machine.fresh_memory_cost(args.fresh_memory_settle)
    work = Path(tempfile.mkdtemp(prefix="vineyard-anatomy-", dir=args.work_dir))
    try:
        for index, (key, overrides, suffix) in enumerate(CONFIGURATIONS):
            variant = VARIANTS[key](dict(options, **overrides))
            name = f"{key}{suffix}"
            run_dir = work / str(index)
            run_dir.mkdir()
            try:
                variant.setup(run_dir, capacity)  # inside: teardown also undoes a setup that failed halfway
                for step in ("prepare", "preprocess"):
                    run_published_step(variant, run_dir, step, data_multiplier, args.seed, drop_caches=True)
                probes = []
                for probe in range(args.probes):
                    train = run_published_step(variant, run_dir, "train", data_multiplier, args.seed,
                                               drop_caches=True, pod=f"train-{probe}")
                    taken = run_published_step(variant, run_dir, "train-reads", data_multiplier, args.seed,
                                               drop_caches=True, pod=f"train-reads-{probe}")
                    probes.append({"train_read": train["read_seconds"], "train_read_cpu": train["read_cpu_seconds"],
                                   "train_read_minor_faults": train["read_minor_faults"], "parts": taken["parts"]})
                    print(f"{name} #{probe + 1} train read {train['read_seconds'] * 1000:.0f} ms "
                          f"(CPU {train['read_cpu_seconds'] * 1000:.0f} ms, {train['read_minor_faults']} minor faults), taken apart "
                          + ", ".join(f"{load} {part['seconds'] * 1000:.0f} ms (copies {part['numpy_copies'] * 1000:.0f}, "
                                      f"private copy {part['private_copy'] * 1000:.0f})"
                                      for load, part in taken["parts"].items()), flush=True)
            finally:
                variant.teardown()
            document["variants"].append({"name": name, "label": variant.label + suffix, "probes": probes})
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return document


def milliseconds(values):
    return f"{statistics.median(values) * 1000:.1f} ({min(values) * 1000:.1f}–{max(values) * 1000:.1f})"


def count_range(values):
    return f"{statistics.median(values):,.0f} ({min(values):,}–{max(values):,})"


# What the real train step's result says of its two loads, and how each is printed.
TRAIN_ROWS = (
    ("train_read", "its two `vineyard.csi.read` calls (the report's read)", milliseconds),
    ("train_read_cpu", "CPU time of its process inside those calls", milliseconds),
    ("train_read_minor_faults", "minor page faults inside those calls", count_range),
)


def fresh_memory_section(document):
    """Why the same reads are sometimes several times slower: the copies into fresh memory."""
    fresh = document["fresh_memory"]
    just, settled = fresh["just_freed_seconds"], fresh["settled_seconds"]
    lines = [
        "",
        "## Why the same read is sometimes several times slower",
        "",
        f"First-touching {fresh['bytes'] / 1e6:.0f} MB of fresh memory (about what train's two index copies write at 2 GiB) took "
        f"{just * 1000:.1f} ms when the kernel's free memory had been freed just before, and {settled * 1000:.1f} ms "
        f"({settled / just:.1f}x) when {fresh['freed_bytes'] >> 30} GiB had been freed {fresh['settle_seconds']:g} s "
        "before (medians of two rounds, measured at the start of this run). On this machine "
        f"{machine.describe_memory_return(document['machine']['memory_return']) or 'no memory return was found'}: "
        "memory freed seconds ago must be backed by the host again, one host fault per page, when a process next "
        "touches it. The guest does not count those faults: they show as CPU time of the process that touches the "
        "memory.",
        "",
        "Each pipeline step frees what it allocated when it exits, and the next step starts seconds later. Whether "
        "the index copies into fresh memory in train's reads land on pages still warm or on pages already returned "
        "depends on that timing, on (c) and (e) alike, and it is what splits the pipeline report's (e) reads into a "
        "fast and a slow group. The train steps of this run, per configuration (min–max over the probes):",
        "",
    ]
    for variant in document["variants"]:
        probes = variant["probes"]
        reads = [p["train_read"] * 1000 for p in probes]
        cpu = [p["train_read_cpu"] * 1000 for p in probes]
        faults = [p["train_read_minor_faults"] for p in probes]
        lines.append(f"- {variant['label']}: reads {min(reads):.0f}–{max(reads):.0f} ms, of which the process's own "
                     f"CPU time {min(cpu):.0f}–{max(cpu):.0f} ms, with {min(faults):,}–{max(faults):,} minor faults.")
    lines += ["", "The same number of guest faults and several times the CPU time: the slow reads spent their time "
              "touching memory, not waiting for a server."]
    return lines


def write_report(document, docs):
    lines = [
        "# Anatomy of train's reads through vineyard.csi",
        "",
        "Generated by `scripts/bench-pipeline.sh anatomy` (raw numbers in `read-anatomy.json` beside it); "
        f"this run: `python -m pipeline {document['arguments']}`. Linked from [benchmarks.md](benchmarks.md).",
        "",
        f"The pipeline's prepare and preprocess steps ran once per variant at {document['scale_gib']:g} GiB "
        f"(data_multiplier {document['data_multiplier']}); then, {document['probes']} times and alternating, the real "
        "train step and a probe that makes train's two loads (`x_train`, `y_train`) in a fresh process of its own "
        "under cProfile. Every process started after a page-cache drop, in its own mount namespace, as the "
        "pipeline's steps do. Medians (min–max), milliseconds.",
        "",
        "| | " + " | ".join(variant["label"] for variant in document["variants"]) + " |",
        "| --- | " + " | ".join("---" for _ in document["variants"]) + " |",
    ]
    variants = document["variants"]
    for key, label, text in TRAIN_ROWS:
        lines.append(f"| train step: {label} | " + " | ".join(text([p[key] for p in v["probes"]]) for v in variants) + " |")
    for name in ("x_train.pkl", "y_train.pkl"):
        for part, label in PARTS:
            lines.append(f"| {name}: {label} | "
                         + " | ".join(milliseconds([p["parts"][name][part] for p in v["probes"]]) for v in variants)
                         + " |")
    index_mb = {name: variants[0]["probes"][0]["parts"][name]["index_bytes"] / 1e6 for name in ("x_train.pkl", "y_train.pkl")}
    lines += ["", "Index copies against the private copy beside them (median of the per-load ratios, both loads):", ""]
    for variant in variants:
        ratios = [part["numpy_copies"] / part["private_copy"] for probe in variant["probes"]
                  for part in probe["parts"].values() if part["private_copy"] > 0]
        if ratios:
            lines.append(f"- {variant['label']}: {statistics.median(ratios):.1f}x "
                         f"({min(ratios):.1f}–{max(ratios):.1f}x)")
    facts = document["machine"]
    lines += [
        "",
        f"The indexes are {index_mb['x_train.pkl']:.0f} MB (x_train) and {index_mb['y_train.pkl']:.0f} MB (y_train). "
        "The numpy copies are pandas' `Index` constructor copying the index array that vineyard's resolver hands it; "
        "the private copy beside them is the same number of bytes copied from memory the probe already touched into "
        "memory it has not, with no server involved.",
        "",
        f"Machine: {facts['cpu']}, {facts['cores']} cores, {facts['ram_gib']} GiB, kernel {facts['kernel']}; "
        f"vineyard-csi {facts['vineyard-csi']}; packages {facts['packages']}; "
        f"memory: {machine.describe_memory_return(facts['memory_return']) or 'kept by the guest'}; "
        f"load average at start {facts['load_average_at_start']}.",
    ]
    lines += fresh_memory_section(document) + [""]
    (Path(docs) / "read-anatomy.md").write_text("\n".join(lines))


def main(args, options, data_multiplier, capacity):
    document = run(args, options, data_multiplier, capacity)
    results = Path(args.results)
    results.parent.mkdir(parents=True, exist_ok=True)
    results.write_text(json.dumps(document, indent=1, sort_keys=True) + "\n")
    write_report(document, args.docs)
    print(f"wrote {results}, {Path(args.docs) / 'read-anatomy.md'}")
