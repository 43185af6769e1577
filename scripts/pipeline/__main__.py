"""The housing-price pipeline benchmark: `python -m pipeline` (with scripts/ on PYTHONPATH).

    python -m pipeline bench [--scales 1,2,4] [--repeats 3] [--variants nfs,tmpfs,...] [--bin-dir DIR]
                             [--results docs/pipeline-results.json] [--docs docs] [--digests] [--no-report]
    python -m pipeline report [--results docs/pipeline-results.json] [--docs docs]
    python -m pipeline anatomy [--scale 2] [--probes 5] [--bin-dir DIR]

`bench` runs every variant at every scale (GiB of the housing table), interleaved per repeat so
load from other processes falls on every variant alike, records each run as it finishes, and then
writes docs/benchmarks.md and docs/pipeline.png. `report` only rewrites them from the results.
`anatomy` takes train's vineyard.csi reads on (c) and (e) apart (anatomy.py) and writes
docs/read-anatomy.md.
"""

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from . import anatomy, machine, report
from .runner import run_pipeline
from .steps import BYTES_PER_MULTIPLIER
from .variants import VARIANTS

GiB = 1 << 30
MiB = 1 << 20
REPO = Path(__file__).resolve().parents[2]


def multiplier_for(gib):
    return max(1, round(gib * GiB / BYTES_PER_MULTIPLIER))


def capacity_for(data_multiplier):
    """Room for the table, its four splits, pickle framing and the model, with headroom."""
    return int(2.5 * data_multiplier * BYTES_PER_MULTIPLIER) + 256 * MiB


def available_memory():
    with open("/proc/meminfo") as info:
        for line in info:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return 0


def fs_of(path):
    """The file system under a path, e.g. "/var/tmp: ext4 /dev/vda"."""
    import subprocess

    found = subprocess.run(["findmnt", "-n", "-o", "FSTYPE,SOURCE", "-T", path], capture_output=True, text=True)
    return f"{path}: " + (" ".join(found.stdout.split()) or "unknown file system")


def kernel_nfs():
    """Which NFS file systems the kernel has (nfs, nfs4 client; nfsd server)."""
    try:
        with open("/proc/filesystems") as listing:
            return sorted({line.split()[-1] for line in listing if line.split() and line.split()[-1] in ("nfs", "nfs4", "nfsd")})
    except OSError:
        return []


def variant_options(args):
    return {"bin_dir": args.bin_dir, "disk_dir": getattr(args, "disk_dir", None), "read_mode": args.read_mode,
            "store_prefault": args.store_prefault, "store_huge_pages": getattr(args, "store_huge_pages", False)}


def bench(args):
    variants = [key.strip() for key in args.variants.split(",") if key.strip()]
    unknown = [key for key in variants if key not in VARIANTS]
    if unknown:
        sys.exit(f"unknown variant(s) {', '.join(unknown)}; choose from {', '.join(VARIANTS)}")
    scales = [float(text) for text in args.scales.split(",")]
    if args.data_multiplier:
        scales = [args.data_multiplier * BYTES_PER_MULTIPLIER / GiB]
    options = variant_options(args)
    results_path = Path(args.results)
    results_path.parent.mkdir(parents=True, exist_ok=True)
    document = {"machine": machine.facts(args.bin_dir), "drop_caches": not args.no_drop_caches,
                "read_mode": args.read_mode, "store_prefault": args.store_prefault,
                "store_huge_pages": args.store_huge_pages,
                "repeats": args.repeats, "scales_gib": scales, "variants": variants,
                "labels": {key: VARIANTS[key](options).label for key in variants}, "runs": [], "skipped": {},
                "storage": {}, "disk": fs_of(args.disk_dir), "kernel_nfs": kernel_nfs(),
                "arguments": " ".join(sys.argv[1:])}
    work = Path(tempfile.mkdtemp(prefix="vineyard-pipeline-", dir=args.work_dir))
    try:
        for gib in scales:
            data_multiplier = multiplier_for(gib)
            capacity = capacity_for(data_multiplier)
            for repeat in range(args.repeats):
                for key in variants:
                    if key in document["skipped"]:
                        continue
                    free = available_memory()
                    if free < 2.2 * capacity:
                        print(f"warning: {free / GiB:.1f} GiB available for a run that may hold {2.2 * capacity / GiB:.1f} GiB",
                              flush=True)
                    run_dir = work / f"{key}-x{data_multiplier}-{repeat}"  # short: vineyard.sock paths below it must fit sun_path
                    started = time.time()
                    outcome = run_pipeline(VARIANTS[key](options), run_dir, data_multiplier, capacity,
                                           seed=args.seed, drop_caches=not args.no_drop_caches, digests=args.digests)
                    if "skipped" in outcome:
                        document["skipped"][key] = outcome["skipped"]
                        print(f"{key}: skipped: {outcome['skipped']}", flush=True)
                        continue
                    facts = outcome.pop("storage", None)
                    if facts:
                        document["storage"].setdefault(key, facts)
                    outcome.update(scale_gib=gib, repeat=repeat, started=started, load_average=round(os.getloadavg()[0], 2))
                    document["runs"].append(outcome)
                    steps = outcome["steps"]
                    print(f"{gib:g} GiB #{repeat + 1} {key:<13} " + "  ".join(
                        f"{name} {steps[name]['seconds']:.2f}s (w {steps[name]['write_seconds']:.2f} r {steps[name]['read_seconds']:.2f})"
                        for name in steps) + f"  mse {outcome['mse']:.6g}", flush=True)
                    results_path.write_text(json.dumps(document, indent=1, sort_keys=True) + "\n")
                    shutil.rmtree(run_dir, ignore_errors=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    results_path.write_text(json.dumps(document, indent=1, sort_keys=True) + "\n")
    if args.no_report:
        print(f"wrote {results_path}")
        return
    report.write(document, Path(args.docs))
    print(f"wrote {results_path}, {Path(args.docs) / 'benchmarks.md'}, {Path(args.docs) / 'pipeline.png'}")


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m pipeline", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("bench", help="run the benchmark and write the report")
    run.add_argument("--scales", default=os.environ.get("PIPELINE_SCALES", "0.5,1,2"),
                     help="sizes of the housing table in GiB, comma-separated (default 0.5,1,2; 4 fits in 24 GiB)")
    run.add_argument("--repeats", type=int, default=int(os.environ.get("PIPELINE_REPEATS", "3")))
    run.add_argument("--variants", default=",".join(VARIANTS), help=f"subset of {','.join(VARIANTS)}")
    run.add_argument("--disk-dir", default="/var/tmp",
                     help="local-disk directory holding (a)'s NFS export and (a')'s files")
    run.add_argument("--no-drop-caches", action="store_true", help="do not drop the page cache before each step")
    run.add_argument("--store-huge-pages", action="store_true",
                     help="start vineyard-csi with --store-huge-pages (its stores on a tmpfs of 2 MiB pages; off in deploy/)")
    run.add_argument("--digests", action="store_true",
                     help="record the digests of the data every step handled (to prove every variant carried the same)")
    run.add_argument("--results", default=str(REPO / "docs" / "pipeline-results.json"))
    run.add_argument("--docs", default=str(REPO / "docs"))
    run.add_argument("--no-report", action="store_true", help="write the results only, not the report and plot")
    probe = commands.add_parser("anatomy", help="take train's vineyard.csi reads on (c) and (e) apart")
    probe.add_argument("--scale", type=float, default=2.0, help="size of the housing table in GiB (default 2)")
    probe.add_argument("--probes", type=int, default=5, help="train steps and probes per variant (default 5)")
    probe.add_argument("--fresh-memory-settle", type=float, default=20.0,
                       help="seconds freed memory is left before the fresh-memory touch is timed again (default 20: "
                            "long enough for a VM to hand it back to its hypervisor)")
    probe.add_argument("--results", default=str(REPO / "docs" / "read-anatomy.json"))
    probe.add_argument("--docs", default=str(REPO / "docs"))
    for command in (run, probe):
        command.add_argument("--bin-dir", default=str(REPO / ".build" / "release"), help="where vineyard-csi is built")
        command.add_argument("--work-dir", default="/var/tmp", help="where run directories and mount targets go")
        command.add_argument("--seed", type=int, default=2024)
        command.add_argument("--data-multiplier", type=int, default=0,
                             help="the table's size in units of 10,000 rows instead of GiB (one scale; for tests)")
        command.add_argument("--read-mode", default="direct", choices=["direct", "page-cache"],
                             help="vineyard-csi --read-mode for (d) and (e): how read-only opens are served")
        command.add_argument("--store-prefault", action="store_true",
                             help="start vineyard-csi with its whole store backed (--store-prefault), as a node plugin "
                                  "that has served earlier pipelines is")
    again = commands.add_parser("report", help="rewrite docs/benchmarks.md and the plot from recorded results")
    again.add_argument("--results", default=str(REPO / "docs" / "pipeline-results.json"))
    again.add_argument("--docs", default=str(REPO / "docs"))
    args = parser.parse_args(argv)
    if args.command == "bench":
        bench(args)
    elif args.command == "anatomy":
        if args.data_multiplier:
            args.scale = args.data_multiplier * BYTES_PER_MULTIPLIER / GiB
        data_multiplier = multiplier_for(args.scale)
        anatomy.main(args, variant_options(args), data_multiplier, capacity_for(data_multiplier))
    else:
        report.write(json.loads(Path(args.results).read_text()), Path(args.docs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
